package tempoapi

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// id16 returns a 16-byte trace ID ending in b.
func id16(b ...byte) []byte {
	id := make([]byte, 16)
	copy(id[16-len(b):], b)
	return id
}

// testSearch is what the fake search finds: three traces out of order,
// two starting at the same time, span sets with more spans than spss.
func testSearch() SearchResponse {
	base := uint64(t0.UnixNano())
	span := func(id byte, name string, start uint64, attrs ...KeyValue) Span {
		return Span{SpanID: []byte{0, 0, 0, 0, 0, 0, 0, id}, Name: name, StartTimeUnixNano: start, DurationNanos: 1_500_000, Attributes: attrs}
	}
	return SearchResponse{
		Traces: []TraceSearchMetadata{
			{
				TraceID: id16(0x0b), RootServiceName: "frontend", RootTraceName: "GET /cart",
				StartTimeUnixNano: base + 1e9, DurationMs: 557,
				SpanSets: []SpanSet{{
					Spans: []Span{
						span(3, "SELECT", base+1e9+30, KeyValue{"http.status_code", IntValue(500)}),
						span(1, "GET /cart", base+1e9, KeyValue{"status", StringValue("error")}, KeyValue{"http.url", StringValue("/cart?a=1&b=<2>")}),
						span(2, "charge", base+1e9+20, KeyValue{"ratio", DoubleValue(0.5)}, KeyValue{"cached", BoolValue(true)}),
						span(4, "late", base+1e9+40),
					},
					Matched: 4,
				}},
			},
			{
				TraceID: id16(0x0a), RootServiceName: "frontend", RootTraceName: "GET /home",
				StartTimeUnixNano: base + 1e9, DurationMs: 12,
			},
			{
				TraceID: id16(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), RootServiceName: "<root span not yet received>",
				StartTimeUnixNano: base, DurationMs: 0,
				SpanSets: []SpanSet{
					{Spans: []Span{span(9, "", base)}, Matched: 1, Attributes: []KeyValue{{"by(resource.service.name)", StringValue("cart")}}},
					{Matched: 2},
				},
			},
		},
		Metrics: SearchMetrics{InspectedTraces: 3100, InspectedBytes: 3811736, TotalBlocks: 3, CompletedJobs: 2, TotalJobs: 2, TotalBlockBytes: 1 << 33},
	}
}

func TestSearchAnswer(t *testing.T) {
	f := newFake()
	f.search = testSearch()
	h := newTestAPI(t, testConfig(), f)
	// What Grafana sends.
	r := get(t, h, "search", vals("q", `{resource.service.name="frontend"}`, "limit", "20", "spss", "3", "start", "1700000000", "end", "1700003600"), "Accept", "application/json")
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	requireGolden(t, "search.json", r.body)

	var res pbSearchResponse
	decodeStrict(t, r.body, &res)
	require.Len(t, res.Traces, 3)
	// Newest first, ties by trace ID; IDs without leading zeros.
	require.Equal(t, []string{"a", "b", "ffffffffffffffffff"}, []string{res.Traces[0].TraceID, res.Traces[1].TraceID, res.Traces[2].TraceID})
	b := res.Traces[1]
	require.Equal(t, uint64(t0.UnixNano())+1e9, b.StartTimeUnixNano)
	require.Equal(t, uint32(557), b.DurationMs)
	require.Len(t, b.SpanSets, 1)
	require.Equal(t, uint32(4), b.SpanSets[0].Matched)
	// spss=3: the three earliest spans.
	require.Len(t, b.SpanSets[0].Spans, 3)
	require.Equal(t, []string{"0000000000000001", "0000000000000002", "0000000000000003"},
		[]string{b.SpanSets[0].Spans[0].SpanID, b.SpanSets[0].Spans[1].SpanID, b.SpanSets[0].Spans[2].SpanID})
	require.Equal(t, uint64(1_500_000), b.SpanSets[0].Spans[0].DurationNanos)
	// The deprecated spanSet is the first span set.
	require.Equal(t, b.SpanSets[0], *b.SpanSet)
	var got []Value
	for _, sp := range b.SpanSets[0].Spans {
		for _, kv := range sp.Attributes {
			v, err := kv.Value.value()
			require.NoError(t, err)
			got = append(got, v)
		}
	}
	require.Equal(t, []Value{StringValue("error"), StringValue("/cart?a=1&b=<2>"), DoubleValue(0.5), BoolValue(true), IntValue(500)}, got)
	require.Equal(t, pbSearchMetrics{InspectedTraces: 3100, InspectedBytes: 3811736, TotalBlocks: 3, CompletedJobs: 2, TotalJobs: 2, TotalBlockBytes: 1 << 33}, *res.Metrics)
}

func TestSearchEmpty(t *testing.T) {
	r := get(t, newTestAPI(t, testConfig(), newFake()), "search", nil)
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	requireGolden(t, "search_empty.json", r.body)
	var res pbSearchResponse
	decodeStrict(t, r.body, &res)
}

func TestSearchLimit(t *testing.T) {
	f := newFake()
	f.search = testSearch()
	h := newTestAPI(t, testConfig(), f)
	for _, tc := range []struct {
		params   url.Values
		wantIDs  []string
		wantSpss []int // spans listed per span set, trace by trace
	}{
		{params: vals("limit", "1"), wantIDs: []string{"a"}, wantSpss: []int{}},
		{params: vals("limit", "2", "spss", "1"), wantIDs: []string{"a", "b"}, wantSpss: []int{1}},
		{params: vals("limit", "5", "spss", "10"), wantIDs: []string{"a", "b", "ffffffffffffffffff"}, wantSpss: []int{4, 1, 0}},
	} {
		t.Run(tc.params.Encode(), func(t *testing.T) {
			r := get(t, h, "search", tc.params)
			require.Equal(t, http.StatusOK, r.code, string(r.body))
			var res pbSearchResponse
			decodeStrict(t, r.body, &res)
			ids := []string{}
			spss := []int{}
			for _, tr := range res.Traces {
				ids = append(ids, tr.TraceID)
				for _, ss := range tr.SpanSets {
					spss = append(spss, len(ss.Spans))
				}
			}
			require.Equal(t, tc.wantIDs, ids)
			require.Equal(t, tc.wantSpss, spss)
		})
	}
}

func TestSearchParams(t *testing.T) {
	cfg := testConfig()
	cfg.MaxResultLimit = 1000
	for _, tc := range []struct {
		name    string
		params  url.Values
		want    SearchRequest
		wantErr string
	}{
		{
			name: "defaults: every trace, recent",
			want: SearchRequest{Query: "{}", Limit: 20, SpansPerSpanSet: 3},
		},
		{
			name:   "what Grafana sends",
			params: vals("q", `{resource.service.name="fake-svc"}`, "limit", "20", "spss", "3", "start", "1700000000", "end", "1700003600"),
			want:   SearchRequest{Query: `{resource.service.name="fake-svc"}`, Limit: 20, SpansPerSpanSet: 3, Start: t0, End: t0.Add(time.Hour)},
		},
		{
			name:   "legacy tags and durations",
			params: vals("tags", `service.name=cartservice http.status_code=500`, "minDuration", "600ms", "maxDuration", "1m"),
			want:   SearchRequest{Query: `{ .service.name = "cartservice" && .http.status_code = 500 }`, MinDuration: 600 * time.Millisecond, MaxDuration: time.Minute, Limit: 20, SpansPerSpanSet: 3},
		},
		{
			name:   "times in nanoseconds, float seconds and RFC3339",
			params: vals("start", "1700000000000000000", "end", "2023-11-14T23:13:20.5Z", "spss", "7", "limit", "1000"),
			want:   SearchRequest{Query: "{}", Limit: 1000, SpansPerSpanSet: 7, Start: t0, End: t0.Add(time.Hour + 500*time.Millisecond)},
		},
		{
			name:   "float seconds; start and end 0 are not given",
			params: vals("start", "1700000000.25", "end", "1700000001.5"),
			want:   SearchRequest{Query: "{}", Limit: 20, SpansPerSpanSet: 3, Start: t0.Add(250 * time.Millisecond), End: t0.Add(1500 * time.Millisecond)},
		},
		{name: "zero times", params: vals("start", "0", "end", "0"), want: SearchRequest{Query: "{}", Limit: 20, SpansPerSpanSet: 3}},
		{name: "q and tags", params: vals("q", "{}", "tags", "a=b"), wantErr: `invalid parameters "q" and "tags": give one of them, not both`},
		{name: "bad tags", params: vals("tags", "a=b a=c"), wantErr: `invalid parameter "tags": tag "a" is given twice`},
		{name: "limit 0", params: vals("limit", "0"), wantErr: `invalid parameter "limit": it must be positive`},
		{name: "limit not a number", params: vals("limit", "ten"), wantErr: `invalid parameter "limit": "ten" is not a non-negative integer`},
		{name: "limit negative", params: vals("limit", "-1"), wantErr: `invalid parameter "limit": "-1" is not a non-negative integer`},
		{name: "limit above the max", params: vals("limit", "1001"), wantErr: `invalid parameter "limit": 1001 is above the most traces a search may return (1000, -querier.traces.search.max-result-limit)`},
		{name: "spss above the max", params: vals("spss", "101"), wantErr: `invalid parameter "spss": 101 is above the most spans a span set may list (100, -querier.traces.search.max-spans-per-span-set)`},
		{name: "spss 0 with a max", params: vals("spss", "0"), wantErr: `invalid parameter "spss": 0 asks for every span of a span set, and a span set may list at most 100 (-querier.traces.search.max-spans-per-span-set)`},
		{name: "bad minDuration", params: vals("minDuration", "long"), wantErr: `invalid parameter "minDuration": cannot parse "long" as a duration (e.g. 100ms, 15s, 1m30s, 1h, 1d)`},
		{name: "negative maxDuration", params: vals("maxDuration", "-1s"), wantErr: `invalid parameter "maxDuration": it must not be negative`},
		{name: "maxDuration below minDuration", params: vals("minDuration", "2s", "maxDuration", "1s"), wantErr: `invalid parameter "maxDuration": 1s is below minDuration 2s`},
		{name: "only start", params: vals("start", "1700000000"), wantErr: `invalid parameter "end": give both start and end, or neither`},
		{name: "only end", params: vals("end", "1700000000"), wantErr: `invalid parameter "start": give both start and end, or neither`},
		{name: "start at end", params: vals("start", "1700000000", "end", "1700000000"), wantErr: `invalid parameters "start" and "end": start (2023-11-14T22:13:20Z) must be before end (2023-11-14T22:13:20Z)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			r := get(t, newTestAPI(t, cfg, f), "search", tc.params)
			if tc.wantErr != "" {
				require.Equal(t, http.StatusBadRequest, r.code)
				require.Equal(t, tc.wantErr, string(r.body))
				return
			}
			require.Equal(t, http.StatusOK, r.code, string(r.body))
			got := f.searchReq
			require.True(t, tc.want.Start.Equal(got.Start), got.Start)
			require.True(t, tc.want.End.Equal(got.End), got.End)
			got.Start, got.End, tc.want.Start, tc.want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestSearchUnlimitedSpss: with no max, spss=0 asks for every span.
func TestSearchUnlimitedSpss(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSpansPerSpanSet = 0
	f := newFake()
	f.search = testSearch()
	r := get(t, newTestAPI(t, cfg, f), "search", vals("spss", "0"))
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	require.Equal(t, 0, f.searchReq.SpansPerSpanSet)
	var res pbSearchResponse
	decodeStrict(t, r.body, &res)
	require.Len(t, res.Traces[1].SpanSets[0].Spans, 4)
}
