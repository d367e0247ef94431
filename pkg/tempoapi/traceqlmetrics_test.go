package tempoapi

import (
	"math"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var msT0 = t0.UnixMilli()

// testRange is the fake's range answer: series out of label order,
// samples and exemplars out of time order, a NaN.
func testRange() MetricsRangeResponse {
	return MetricsRangeResponse{
		Series: []TimeSeries{
			{
				Labels: []KeyValue{{"resource.service.name", StringValue("frontend")}, {"p", DoubleValue(0.9)}},
				Samples: []Sample{
					{TimestampMs: msT0 + 30_000, Value: 13},
					{TimestampMs: msT0, Value: 12.5},
					{TimestampMs: msT0 + 60_000, Value: math.NaN()},
				},
				Exemplars: []Exemplar{
					{Labels: []KeyValue{{"trace:id", StringValue("2f3e0cee77ae5dc9c17ade3689eb2e54")}}, Value: 0.412, TimestampMs: msT0 + 12_345},
				},
			},
			{
				Labels:  []KeyValue{{"resource.service.name", StringValue("cart")}},
				Samples: []Sample{{TimestampMs: msT0, Value: 0}, {TimestampMs: msT0 + 30_000, Value: math.Inf(1)}},
			},
			{
				Labels:  []KeyValue{{"http.status_code", IntValue(500)}},
				Samples: []Sample{{TimestampMs: msT0, Value: 1}},
			},
			{
				Labels:  []KeyValue{{"http.status_code", IntValue(200)}},
				Samples: []Sample{{TimestampMs: msT0, Value: 2}},
			},
		},
		Metrics: SearchMetrics{InspectedBytes: 1024, TotalJobs: 1, CompletedJobs: 1},
	}
}

func TestQueryRangeAnswer(t *testing.T) {
	f := newFake()
	f.rng = testRange()
	h := newTestAPI(t, testConfig(), f)
	// What Grafana sends.
	r := get(t, h, "metrics/query_range", vals("q", "{} | rate()", "start", "1700000000", "end", "1700003600", "step", "15s"), "Accept", "application/json")
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	requireGolden(t, "query_range.json", r.body)

	var res pbQueryRangeResponse
	decodeStrict(t, r.body, &res)
	require.Len(t, res.Series, 4)
	// Series by labels: http.status_code 200, 500, then resource.service.name cart, frontend.
	first, err := res.Series[0].Labels[0].Value.value()
	require.NoError(t, err)
	require.Equal(t, IntValue(200), first)
	fe := res.Series[3]
	require.Equal(t, []int64{msT0, msT0 + 30_000, msT0 + 60_000}, []int64{fe.Samples[0].TimestampMs, fe.Samples[1].TimestampMs, fe.Samples[2].TimestampMs})
	require.Equal(t, pbDouble(12.5), fe.Samples[0].Value)
	require.True(t, math.IsNaN(float64(fe.Samples[2].Value)))
	require.True(t, math.IsInf(float64(res.Series[2].Samples[1].Value), 1))
	require.Equal(t, msT0+12_345, fe.Exemplars[0].TimestampMs)
	require.Equal(t, pbDouble(0.412), fe.Exemplars[0].Value)
	require.Equal(t, uint64(1024), res.Metrics.InspectedBytes)
}

func TestQueryInstantAnswer(t *testing.T) {
	f := newFake()
	f.instant = MetricsInstantResponse{
		Series: []InstantSeries{
			{Labels: []KeyValue{{"resource.service.name", StringValue("frontend")}}, Value: 42},
			{Labels: []KeyValue{{"resource.service.name", StringValue("cart")}}, Value: 0},
			{Value: math.NaN()},
		},
		Metrics: SearchMetrics{InspectedTraces: 7},
	}
	r := get(t, newTestAPI(t, testConfig(), f), "metrics/query", vals("q", "{status=error} | count_over_time() by (resource.service.name)", "start", "1700000000", "end", "1700003600"))
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	requireGolden(t, "query_instant.json", r.body)
	var res pbQueryInstantResponse
	decodeStrict(t, r.body, &res)
	require.Len(t, res.Series, 3)
	require.Empty(t, res.Series[0].Labels)
	require.Equal(t, pbDouble(0), res.Series[1].Value)
	require.Equal(t, pbDouble(42), res.Series[2].Value)
	require.Zero(t, f.metricsReq.Step)
}

func TestMetricsEmpty(t *testing.T) {
	h := newTestAPI(t, testConfig(), newFake())
	r := get(t, h, "metrics/query_range", vals("q", "{} | rate()"))
	require.Equal(t, `{"series":[],"metrics":{}}`, string(r.body))
	r = get(t, h, "metrics/query", vals("q", "{} | rate()"))
	require.Equal(t, `{"series":[],"metrics":{}}`, string(r.body))
}

func TestMetricsParams(t *testing.T) {
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		instant bool
		params  url.Values
		want    MetricsRequest
		wantErr string
	}{
		{
			name:   "defaults: the last hour, about 240 steps",
			params: vals("q", "{} | rate()"),
			want:   MetricsRequest{Query: "{} | rate()", Start: t0, End: now, Step: 15 * time.Second},
		},
		{
			name:   "what Grafana sends",
			params: vals("q", "{} | rate()", "start", "1700000000", "end", "1700000600", "step", "15s"),
			want:   MetricsRequest{Query: "{} | rate()", Start: t0, End: t0.Add(10 * time.Minute), Step: 15 * time.Second},
		},
		{
			name:   "nanoseconds, RFC3339, float step, exemplars, query instead of q",
			params: vals("query", "{} | rate()", "start", "1700000000000000000", "end", "2023-11-14T22:23:20Z", "step", "0.5", "exemplars", "100"),
			want:   MetricsRequest{Query: "{} | rate()", Start: t0, End: t0.Add(10 * time.Minute), Step: 500 * time.Millisecond, Exemplars: 100},
		},
		{
			name:   "since, Prometheus step",
			params: vals("q", "{} | rate()", "since", "3h", "step", "1m"),
			want:   MetricsRequest{Query: "{} | rate()", Start: now.Add(-3 * time.Hour), End: now, Step: time.Minute},
		},
		{
			name:   "since from an end, a day",
			params: vals("q", "{} | rate()", "end", "1700003600", "since", "1d"),
			want:   MetricsRequest{Query: "{} | rate()", Start: now.Add(-24 * time.Hour), End: now, Step: 5 * time.Minute},
		},
		{
			name:    "instant: no step",
			instant: true,
			params:  vals("q", "{} | rate()", "start", "1700000000", "end", "1700000600", "step", "15s"),
			want:    MetricsRequest{Query: "{} | rate()", Start: t0, End: t0.Add(10 * time.Minute)},
		},
		{name: "no q", params: vals("start", "1700000000"), wantErr: `missing parameter "q": a TraceQL metrics query, e.g. {} | rate()`},
		{name: "blank q", instant: true, params: vals("q", " "), wantErr: `missing parameter "q": a TraceQL metrics query, e.g. {} | rate()`},
		{name: "end before start", params: vals("q", "{} | rate()", "start", "1700000600", "end", "1700000000"), wantErr: `invalid parameters "start" and "end": start (2023-11-14T22:23:20Z) must be before end (2023-11-14T22:13:20Z)`},
		{name: "bad since", params: vals("q", "{} | rate()", "since", "ages"), wantErr: `invalid parameter "since": cannot parse "ages" as a duration (e.g. 100ms, 15s, 1m30s, 1h, 1d)`},
		{name: "zero since", params: vals("q", "{} | rate()", "since", "0s"), wantErr: `invalid parameter "since": it must be positive`},
		{name: "bad step", params: vals("q", "{} | rate()", "step", "often"), wantErr: `invalid parameter "step": cannot parse "often" as a duration (e.g. 100ms, 15s, 1m30s, 1h, 1d)`},
		{name: "negative step", params: vals("q", "{} | rate()", "step", "-15s"), wantErr: `invalid parameter "step": it must be positive`},
		{name: "zero step", params: vals("q", "{} | rate()", "step", "0"), wantErr: `invalid parameter "step": it must be positive`},
		{name: "NaN step", params: vals("q", "{} | rate()", "step", "NaN"), wantErr: `invalid parameter "step": "NaN" is out of range`},
		{name: "too many points", params: vals("q", "{} | rate()", "since", "1d", "step", "1s"), wantErr: `invalid parameter "step": the query would have 86400 samples per series, more than 11000: raise step (now 1s) or shorten the range`},
		{name: "bad exemplars", params: vals("q", "{} | rate()", "exemplars", "many"), wantErr: `invalid parameter "exemplars": "many" is not a non-negative integer`},
		{name: "bad start", instant: true, params: vals("q", "{} | rate()", "start", "-1"), wantErr: `invalid parameter "start": "-1" is before 1970`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			path := "metrics/query_range"
			if tc.instant {
				path = "metrics/query"
			}
			r := get(t, newTestAPI(t, testConfig(), f), path, tc.params)
			if tc.wantErr != "" {
				require.Equal(t, http.StatusBadRequest, r.code)
				require.Equal(t, tc.wantErr, string(r.body))
				return
			}
			require.Equal(t, http.StatusOK, r.code, string(r.body))
			got := f.metricsReq
			require.True(t, tc.want.Start.Equal(got.Start), got.Start)
			require.True(t, tc.want.End.Equal(got.End), got.End)
			got.Start, got.End, tc.want.Start, tc.want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDefaultStep(t *testing.T) {
	for _, tc := range []struct {
		rng  time.Duration
		want time.Duration
	}{
		{rng: time.Second, want: 50 * time.Millisecond},
		{rng: 30 * time.Second, want: 100 * time.Millisecond}, // 125ms rounded down to 50ms
		{rng: 59 * time.Second, want: 200 * time.Millisecond}, // 245.8ms
		{rng: time.Minute, want: time.Second},                 // 250ms: at least 1s
		{rng: 10 * time.Minute, want: 2 * time.Second},        // 2.5s
		{rng: time.Hour, want: 15 * time.Second},
		{rng: 3 * time.Hour, want: 45 * time.Second},
		{rng: 6 * time.Hour, want: time.Minute}, // 90s
		{rng: 24 * time.Hour, want: 5 * time.Minute},
		{rng: 7 * 24 * time.Hour, want: 40 * time.Minute}, // 42m
		{rng: 30 * 24 * time.Hour, want: 3 * time.Hour},
	} {
		t.Run(tc.rng.String(), func(t *testing.T) {
			got := defaultStep(t0, t0.Add(tc.rng))
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, int64(tc.rng/got), int64(maxPoints))
		})
	}
}
