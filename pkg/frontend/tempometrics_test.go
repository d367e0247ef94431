package frontend

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tempoRangeSeries is a series of a metrics range answer, decoded for tests.
type tempoRangeSeries struct {
	Labels  json.RawMessage `json:"labels"`
	Samples []struct {
		TimestampMs string          `json:"timestampMs"`
		Value       json.RawMessage `json:"value"`
	} `json:"samples"`
	Exemplars []struct {
		TimestampMs string `json:"timestampMs"`
	} `json:"exemplars"`
}

func decodeRange(t *testing.T, body []byte) []tempoRangeSeries {
	t.Helper()
	var a struct {
		Series []tempoRangeSeries `json:"series"`
	}
	require.NoError(t, json.Unmarshal(body, &a), "%s", body)
	require.NotNil(t, a.Series, "%s", body)
	for i := range a.Series {
		a.Series[i].Exemplars = nil
	}
	return a.Series
}

// TestTempoMetricsRangeMatchesTheQuerier runs random TraceQL metrics
// range queries through the query-frontend, split into hours, and directly
// on the querier: the same series in the same order with the same
// samples, from parts or from the results cache.
func TestTempoMetricsRangeMatchesTheQuerier(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	down, calls := tempoDownstreamOver(genTraces(rng, 1500, 30))
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	f := startFrontend(t, cfg, defaultLimits(), down)
	queries := []string{
		`{} | rate()`,
		`{} | count_over_time() by (resource.service.name)`,
		`{ span.size >= 1 } | sum_over_time(span.size) by (resource.service.name, span.size)`,
		`{} | quantile_over_time(duration, .5, .99) by (name)`,
		`{} | max_over_time(duration) by (span.http.status_code)`,
		`{} | count_over_time() by (resource.service.name) > 3`,
		`{} | rate() by (span.http.status_code) | topk(2)`,
	}
	steps := []string{"", "60", "7m", "90s", "1h", "13s"}
	cached := 0
	for i := range 80 {
		start := baseNs + rng.Int63n(30*int64(time.Hour))
		start -= start % 1e9
		end := start + 1e9 + rng.Int63n(8*int64(time.Hour))
		form := url.Values{"q": {queries[rng.Intn(len(queries))]}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)}}
		if s := steps[rng.Intn(len(steps))]; s != "" {
			form.Set("step", s)
		}
		msg := fmt.Sprintf("case %d: %v", i, form)
		want := direct(down, "metrics/query_range", form)
		require.Equal(t, http.StatusOK, want.Code, "%s: %s", msg, want.Body)
		calls.take()
		for range 2 {
			got := callTempo(f, "metrics/query_range", form)
			require.Equal(t, http.StatusOK, got.Code, "%s: %s", msg, got.Body)
			require.Equal(t, "application/json", got.Header().Get("Content-Type"))
			require.Equal(t, decodeRange(t, want.Body.Bytes()), decodeRange(t, got.Body.Bytes()), msg)
			if len(calls.take()) == 0 {
				cached++
			}
		}
	}
	require.Positive(t, cached, "no query answered from the results cache alone")
}

// TestTempoMetricsRangeParts: a range query is cut on its step grid at the
// multiples of the split interval, each part from the start of its first
// step to the end of its last, the last part to the query's end, with the
// query's step and exemplars.
func TestTempoMetricsRangeParts(t *testing.T) {
	down, calls := tempoDownstreamOver(genTraces(rand.New(rand.NewSource(4)), 100, 3))
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	f := startFrontend(t, cfg, defaultLimits(), down)
	h, m := int64(time.Hour), int64(time.Minute)
	start, end := baseNs+50*m+1e9, baseNs+2*h+10*m+30e9
	form := url.Values{"q": {`{} | rate()`}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)}, "step": {"7m"}, "exemplars": {"5"}}
	got := callTempo(f, "metrics/query_range", form)
	require.Equal(t, http.StatusOK, got.Code, got.Body.String())
	type call struct{ start, end, step, exemplars string }
	var made []call
	for _, c := range calls.take() {
		require.Equal(t, tempoapiPath("metrics/query_range"), c.path)
		require.Equal(t, `{} | rate()`, c.form.Get("q"))
		made = append(made, call{c.form.Get("start"), c.form.Get("end"), c.form.Get("step"), c.form.Get("exemplars")})
	}
	step := strconv.FormatInt(7*m, 10) + "ns"
	// Steps start at 50m01s + k*7m; each part holds the steps whose
	// windows end in one hour: one in the first, eight in the second, the
	// last cut at the query's end. (On a grid aligned to the hour, a part
	// would hold the hour's steps: TestTempoOverHTTP.)
	require.ElementsMatch(t, []call{
		{rfc(start), rfc(start + 7*m), step, "5"},
		{rfc(start + 7*m), rfc(start + 9*7*m), step, "5"},
		{rfc(start + 9*7*m), rfc(end), step, "5"},
	}, made)
	require.Equal(t, decodeRange(t, direct(down, "metrics/query_range", form).Body.Bytes()), decodeRange(t, got.Body.Bytes()))
}

// TestTempoMetricsRangeUnsplit: a query whose start or step is not a
// whole millisecond runs as one part.
func TestTempoMetricsRangeUnsplit(t *testing.T) {
	down, calls := tempoDownstreamOver(genTraces(rand.New(rand.NewSource(5)), 100, 3))
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	f := startFrontend(t, cfg, defaultLimits(), down)
	for _, form := range []url.Values{
		{"q": {`{} | rate()`}, "start": {rfc(baseNs + 1)}, "end": {unixSeconds(baseNs + 3*int64(time.Hour))}},
		{"q": {`{} | rate()`}, "start": {unixSeconds(baseNs)}, "end": {unixSeconds(baseNs + 3*int64(time.Hour))}, "step": {"60.0000001"}},
	} {
		got := callTempo(f, "metrics/query_range", form)
		require.Equal(t, http.StatusOK, got.Code, got.Body.String())
		require.Len(t, calls.take(), 1)
		require.Equal(t, decodeRange(t, direct(down, "metrics/query_range", form).Body.Bytes()), decodeRange(t, got.Body.Bytes()))
		calls.take()
	}
}

// TestTempoMetricsMerge: series joined by labels, ordered as the querier
// orders them; samples and exemplars in time order, at most the query's
// exemplars, spread over the range; metrics added up.
func TestTempoMetricsMerge(t *testing.T) {
	c := &tempoRangeCodec{}
	decode := func(s string) *tempoRangeAnswer {
		a, err := c.DecodeResponse(nil, []byte(s))
		require.NoError(t, err)
		return a
	}
	sample := func(ts int) string { return fmt.Sprintf(`{"timestampMs":"%d","value":1}`, ts) }
	ex := func(ts int) string { return fmt.Sprintf(`{"labels":[],"value":1,"timestampMs":"%d"}`, ts) }
	svc := func(v string) string { return `[{"key":"resource.service.name","value":{"stringValue":"` + v + `"}}]` }
	code := func(v string) string { return `[{"key":"span.http.status_code","value":` + v + `}]` }
	parts := []*tempoRangeAnswer{
		decode(`{"series":[{"labels":` + svc("b") + `,"samples":[` + sample(1) + `],"exemplars":[` + ex(1) + `]},{"labels":` + code(`{"intValue":"500"}`) + `,"samples":[` + sample(1) + `]}],"metrics":{"inspectedTraces":2,"totalBlocks":1}}`),
		decode(`{"series":[{"labels":` + svc("a") + `,"samples":[` + sample(2) + `]},{"labels":` + svc("b") + `,"samples":[` + sample(2) + `],"exemplars":[` + ex(2) + `,` + ex(3) + `]},{"labels":` + code(`{"intValue":"404"}`) + `,"samples":[` + sample(2) + `]},{"labels":` + code(`{}`) + `,"samples":[]}],"metrics":{"inspectedTraces":3,"inspectedBytes":"10"}}`),
		decode(`{"series":[{"labels":` + svc("b") + `,"samples":[` + sample(3) + `],"exemplars":[` + ex(4) + `]}],"metrics":{}}`),
	}
	got, err := c.MergeResponses(&Request{State: &tempoMetrics{exemplars: 2}}, parts)
	require.NoError(t, err)
	resp, err := c.EncodeResponse(nil, got)
	require.NoError(t, err)
	require.JSONEq(t, `{"series":[
		{"labels":`+svc("a")+`,"samples":[`+sample(2)+`]},
		{"labels":`+svc("b")+`,"samples":[`+sample(1)+`,`+sample(2)+`,`+sample(3)+`],"exemplars":[`+ex(1)+`,`+ex(3)+`]},
		{"labels":`+code(`{}`)+`,"samples":[]},
		{"labels":`+code(`{"intValue":"404"}`)+`,"samples":[`+sample(2)+`]},
		{"labels":`+code(`{"intValue":"500"}`)+`,"samples":[`+sample(1)+`]}
	],"metrics":{"inspectedTraces":5,"inspectedBytes":"10","totalBlocks":1}}`, string(resp.Body))
}

// TestTempoMetricsInstant: an instant query runs as one call, its answer
// the querier's.
func TestTempoMetricsInstant(t *testing.T) {
	down, calls := tempoDownstreamOver(genTraces(rand.New(rand.NewSource(6)), 200, 6))
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	f := startFrontend(t, cfg, defaultLimits(), down)
	form := url.Values{"q": {`{} | count_over_time() by (resource.service.name)`}, "start": {unixSeconds(baseNs)}, "end": {unixSeconds(baseNs + 5*int64(time.Hour))}}
	got := callTempo(f, "metrics/query", form)
	require.Equal(t, http.StatusOK, got.Code, got.Body.String())
	made := calls.take()
	require.Len(t, made, 1)
	require.Equal(t, tempoapiPath("metrics/query"), made[0].path)
	require.Equal(t, direct(down, "metrics/query", form).Body.String(), got.Body.String())
}

// TestTempoMetricsErrors: parameters the querier refuses are refused with
// its message before any call; max_query_length holds.
func TestTempoMetricsErrors(t *testing.T) {
	down, calls := tempoDownstreamOver(genTraces(rand.New(rand.NewSource(8)), 50, 3))
	cfg := testConfig()
	lim := defaultLimits()
	lim.MaxQueryLength.Set("24h")
	f := startFrontend(t, cfg, lim, down)
	s, e := unixSeconds(baseNs), unixSeconds(baseNs+3*int64(time.Hour))
	for name, tc := range map[string]struct {
		path string
		form url.Values
	}{
		"no query":          {"metrics/query_range", url.Values{"start": {s}, "end": {e}}},
		"a bad step":        {"metrics/query_range", url.Values{"q": {"{} | rate()"}, "step": {"often"}}},
		"a negative step":   {"metrics/query_range", url.Values{"q": {"{} | rate()"}, "step": {"-1s"}}},
		"too many samples":  {"metrics/query_range", url.Values{"q": {"{} | rate()"}, "start": {s}, "end": {e}, "step": {"0.1"}}},
		"a bad exemplars":   {"metrics/query_range", url.Values{"q": {"{} | rate()"}, "exemplars": {"x"}}},
		"start after end":   {"metrics/query_range", url.Values{"q": {"{} | rate()"}, "start": {e}, "end": {s}}},
		"a bad since":       {"metrics/query", url.Values{"q": {"{} | rate()"}, "since": {"long"}}},
		"instant, no query": {"metrics/query", url.Values{}},
	} {
		t.Run(name, func(t *testing.T) {
			got := callTempo(f, tc.path, tc.form)
			require.Empty(t, calls.take())
			want := direct(down, tc.path, tc.form)
			require.Equal(t, http.StatusBadRequest, want.Code, want.Body.String())
			require.Equal(t, http.StatusBadRequest, got.Code, got.Body.String())
			require.Equal(t, want.Body.String(), got.Body.String())
			calls.take()
		})
	}
	for _, path := range []string{"metrics/query_range", "metrics/query"} {
		got := callTempo(f, path, url.Values{"q": {"{} | rate()"}, "since": {"25h"}})
		require.Equal(t, http.StatusBadRequest, got.Code, path)
		require.Contains(t, got.Body.String(), "max_query_length")
		require.Empty(t, calls.take())
	}
}
