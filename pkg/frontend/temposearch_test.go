package frontend

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/traceql"
)

// decodeSearch reads a search answer.
func decodeSearch(t *testing.T, body []byte) *tempoSearchAnswer {
	t.Helper()
	a, err := (&tempoSearchCodec{}).DecodeResponse(nil, body)
	require.NoError(t, err, "%s", body)
	return a
}

// TestTempoSearchMatchesTheQuerier runs random searches through the
// query-frontend, split into hours, and directly on the querier: the same
// traces in the same order, with as many parts at once as one and as
// many as four, whether the newest parts decide the answer or not.
func TestTempoSearchMatchesTheQuerier(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	traces := genTraces(rng, 800, 30)
	down, calls := tempoDownstreamOver(traces)
	queries := []string{
		`{}`,
		`{ resource.service.name = "a" }`,
		`{ span.size >= 3 }`,
		`{ duration > 1s }`,
		`{ resource.service.name = "none" }`,
		`{ resource.service.name = "b" } >> { span.size = 1 }`,
	}
	for _, parallelism := range []int{1, 4} {
		cfg := testConfig()
		cfg.SplitInterval = time.Hour
		cfg.Parallelism = parallelism
		f := startFrontend(t, cfg, defaultLimits(), down)
		for i := range 60 {
			start := baseNs - int64(time.Hour) + rng.Int63n(32*int64(time.Hour))
			end := start + 1e9 + rng.Int63n(12*int64(time.Hour))
			form := url.Values{
				"q":     {queries[rng.Intn(len(queries))]},
				"start": {unixSeconds(start)},
				"end":   {unixSeconds(end)},
				"limit": {fmt.Sprint([]int{1, 3, 20, 500}[rng.Intn(4)])},
				"spss":  {fmt.Sprint(rng.Intn(4) + 1)},
			}
			if rng.Intn(4) == 0 {
				form.Set("minDuration", "100ms")
			}
			msg := fmt.Sprintf("case %d, parallelism %d: %v", i, parallelism, form)
			got := callTempo(f, "search", form)
			require.Equal(t, http.StatusOK, got.Code, "%s: %s", msg, got.Body)
			require.Equal(t, "application/json", got.Header().Get("Content-Type"))
			want := direct(down, "search", form)
			require.Equal(t, http.StatusOK, want.Code, "%s: %s", msg, want.Body)
			w, g := decodeSearch(t, want.Body.Bytes()).Traces, decodeSearch(t, got.Body.Bytes()).Traces
			require.Equal(t, traceIDs(w), traceIDs(g), msg)
			require.Equal(t, w, g, msg)
			calls.take()
		}
	}
}

func traceIDs(ts []tempoTrace) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.TraceID)
	}
	return out
}

// memTrace is a trace of one span of service svc over [start, end] (ns),
// with the ID n.
func memTrace(n int, svc string, start, end int64) traceql.Trace {
	id := make([]byte, 16)
	id[15], id[14] = byte(n), byte(n>>8)
	return traceql.Trace{ID: id, Spans: []traceql.Span{{
		ID: []byte{1, 2, 3, 4, 5, 6, 7, byte(n)}, Name: "op", Start: uint64(start), End: uint64(end),
		Resource: []traceql.Attr{{Key: "service.name", Value: traceql.StringValue(svc)}},
	}}}
}

// searchCall is the range and limit of a downstream search call.
type searchCall struct{ start, end, limit string }

func searchCalls(calls []recordedCall) []searchCall {
	var out []searchCall
	for _, c := range calls {
		out = append(out, searchCall{c.form.Get("start"), c.form.Get("end"), c.form.Get("limit")})
	}
	return out
}

func rfc(ns int64) string { return formatNanos(ns) }

// TestTempoSearchPartsNewestFirst: a search is cut at the multiples of the
// split interval, the parts sharing their boundaries, sent newest first
// with the whole search's limit; the answer adds up their metrics.
func TestTempoSearchPartsNewestFirst(t *testing.T) {
	down, calls := tempoDownstreamOver(genTraces(rand.New(rand.NewSource(1)), 300, 4))
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	cfg.Parallelism = 1
	f := startFrontend(t, cfg, defaultLimits(), down)
	h := int64(time.Hour)
	start, end := baseNs+h/2, baseNs+3*h+10*int64(time.Minute)
	form := url.Values{"q": {`{ resource.service.name = "none" }`}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)}}
	got := callTempo(f, "search", form)
	require.Equal(t, http.StatusOK, got.Code, got.Body.String())
	want := []searchCall{
		{rfc(baseNs + 3*h), rfc(end), "20"},
		{rfc(baseNs + 2*h), rfc(baseNs + 3*h), "20"},
		{rfc(baseNs + h), rfc(baseNs + 2*h), "20"},
		{rfc(start), rfc(baseNs + h), "20"},
	}
	made := calls.take()
	require.Equal(t, want, searchCalls(made))
	for _, c := range made {
		require.Equal(t, tempoapiPath("search"), c.path)
		require.Equal(t, `{ resource.service.name = "none" }`, c.form.Get("q"))
	}

	// The metrics are the parts'.
	var sum tempoSearchMetrics
	for _, c := range want {
		part := direct(down, "search", url.Values{"q": form["q"], "start": {c.start}, "end": {c.end}})
		sum.add(decodeSearch(t, part.Body.Bytes()).Metrics)
	}
	calls.take()
	require.NotZero(t, sum.InspectedTraces)
	require.JSONEq(t, fmt.Sprintf(`{"traces":[],"metrics":{"inspectedTraces":%d,"inspectedBytes":"%d","totalBlocks":4}}`, sum.InspectedTraces, sum.InspectedBytes), got.Body.String())
}

func tempoapiPath(p string) string { return "/tempo/api/" + p }

// TestTempoSearchStopsEarly: once the parts answered hold limit traces
// that started after the end of every part left, the parts left are not
// sent. A trace found by a newer part but started in an older one does
// not count.
func TestTempoSearchStopsEarly(t *testing.T) {
	h, m := int64(time.Hour), int64(time.Minute)
	for name, tc := range map[string]struct {
		traces []traceql.Trace
		calls  int
		want   []string // trace IDs
	}{
		"the newest part decides": {
			traces: []traceql.Trace{
				memTrace(1, "a", baseNs+3*h+10*m, baseNs+3*h+11*m),
				memTrace(2, "a", baseNs+3*h+20*m, baseNs+3*h+21*m),
				memTrace(3, "a", baseNs+3*h+30*m, baseNs+3*h+31*m),
				memTrace(4, "a", baseNs+2*h+30*m, baseNs+2*h+31*m),
			},
			calls: 1,
			want:  []string{"3", "2", "1"},
		},
		"a trace of the newest part started before it": {
			traces: []traceql.Trace{
				memTrace(1, "a", baseNs+2*h+50*m, baseNs+3*h+11*m),
				memTrace(2, "a", baseNs+3*h+20*m, baseNs+3*h+21*m),
				memTrace(3, "a", baseNs+3*h+30*m, baseNs+3*h+31*m),
				memTrace(4, "a", baseNs+2*h+55*m, baseNs+2*h+56*m),
				memTrace(5, "a", baseNs+1*h+30*m, baseNs+1*h+31*m),
			},
			calls: 2,
			want:  []string{"3", "2", "4"},
		},
		"too few traces": {
			traces: []traceql.Trace{
				memTrace(1, "a", baseNs+3*h+10*m, baseNs+3*h+11*m),
				memTrace(2, "a", baseNs+30*m, baseNs+31*m),
			},
			calls: 4,
			want:  []string{"1", "2"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			down, calls := tempoDownstreamOver(&memTraces{traces: tc.traces})
			cfg := testConfig()
			cfg.SplitInterval = time.Hour
			cfg.Parallelism = 1
			f := startFrontend(t, cfg, defaultLimits(), down)
			form := url.Values{"q": {"{}"}, "start": {unixSeconds(baseNs)}, "end": {unixSeconds(baseNs + 4*h - 1e9)}, "limit": {"3"}}
			got := callTempo(f, "search", form)
			require.Equal(t, http.StatusOK, got.Code, got.Body.String())
			require.Len(t, calls.take(), tc.calls)
			require.Equal(t, tc.want, traceIDs(decodeSearch(t, got.Body.Bytes()).Traces))
			want := direct(down, "search", form)
			require.Equal(t, decodeSearch(t, want.Body.Bytes()).Traces, decodeSearch(t, got.Body.Bytes()).Traces)
		})
	}
}

// TestTempoSearchMerge: each trace once, the answer with more span sets
// kept and its root names filled; newest first, then by trace ID as the
// 16-byte number it is; limit traces; metrics added up.
func TestTempoSearchMerge(t *testing.T) {
	c := &tempoSearchCodec{}
	req := &Request{State: &tempoSearch{limit: 4}}
	ss := func(n int) []json.RawMessage {
		out := make([]json.RawMessage, n)
		for i := range out {
			out[i] = json.RawMessage(fmt.Sprintf(`{"matched":%d}`, i+1))
		}
		return out
	}
	newer := &tempoSearchAnswer{
		Traces: []tempoTrace{
			{TraceID: "ff", StartTimeUnixNano: 50, SpanSets: ss(1), SpanSet: ss(1)[0]},
			{TraceID: "a1", RootServiceName: "svc", StartTimeUnixNano: 40, SpanSets: ss(1)},
			{TraceID: "100", StartTimeUnixNano: 50, RootTraceName: "kept"},
		},
		Metrics: tempoSearchMetrics{InspectedTraces: 3, InspectedBytes: 300, TotalBlocks: 1},
	}
	older := &tempoSearchAnswer{
		Traces: []tempoTrace{
			{TraceID: "A1", RootTraceName: "GET /", StartTimeUnixNano: 40, DurationMs: 7, SpanSets: ss(2), SpanSet: ss(2)[0]},
			{TraceID: "100", StartTimeUnixNano: 50, RootServiceName: "filled", RootTraceName: "lost"},
			{TraceID: "2", StartTimeUnixNano: 10},
			{TraceID: "1", StartTimeUnixNano: 10},
		},
		Metrics: tempoSearchMetrics{InspectedTraces: 4, InspectedBytes: 400, TotalBlocks: 2, TotalJobs: 1},
	}
	got, err := c.MergeResponses(req, []*tempoSearchAnswer{newer, older})
	require.NoError(t, err)
	require.Equal(t, &tempoSearchAnswer{
		Traces: []tempoTrace{
			{TraceID: "ff", StartTimeUnixNano: 50, SpanSets: ss(1), SpanSet: ss(1)[0]},
			{TraceID: "100", StartTimeUnixNano: 50, RootServiceName: "filled", RootTraceName: "kept"},
			{TraceID: "A1", RootServiceName: "svc", RootTraceName: "GET /", StartTimeUnixNano: 40, DurationMs: 7, SpanSets: ss(2), SpanSet: ss(2)[0]},
			{TraceID: "1", StartTimeUnixNano: 10},
		},
		Metrics: tempoSearchMetrics{InspectedTraces: 7, InspectedBytes: 700, TotalBlocks: 3, TotalJobs: 1},
	}, got)

	resp, err := c.EncodeResponse(req, &tempoSearchAnswer{Traces: []tempoTrace{}})
	require.NoError(t, err)
	require.Equal(t, `{"traces":[],"metrics":{}}`, string(resp.Body))
}

func TestSearchParts(t *testing.T) {
	for name, tc := range map[string]struct {
		start, end, interval int64
		want                 []searchPart
	}{
		"within one interval":   {start: 5, end: 9, interval: 10, want: []searchPart{{5, 9}}},
		"end on a boundary":     {start: 5, end: 20, interval: 10, want: []searchPart{{10, 20}, {5, 10}}},
		"start on a boundary":   {start: 10, end: 25, interval: 10, want: []searchPart{{20, 25}, {10, 20}}},
		"three parts":           {start: 1, end: 21, interval: 10, want: []searchPart{{20, 21}, {10, 20}, {1, 10}}},
		"no split":              {start: 1, end: 100, interval: 0, want: []searchPart{{1, 100}}},
		"one nanosecond across": {start: 9, end: 11, interval: 10, want: []searchPart{{10, 11}, {9, 10}}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, searchParts(tc.start, tc.end, tc.interval))
		})
	}
}

// TestTempoSearchWithoutRange: a search without start and end (recent
// data) is not split: it goes to the querier as it came.
func TestTempoSearchWithoutRange(t *testing.T) {
	down, calls := tempoDownstreamOver(genTraces(rand.New(rand.NewSource(2)), 100, 3))
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	f := startFrontend(t, cfg, defaultLimits(), down)
	form := url.Values{"q": {`{ resource.service.name = "a" }`}, "limit": {"5"}, "spss": {"2"}}
	got := callTempo(f, "search", form)
	require.Equal(t, http.StatusOK, got.Code, got.Body.String())
	made := calls.take()
	require.Len(t, made, 1)
	require.Equal(t, form, made[0].form)
	require.Equal(t, direct(down, "search", form).Body.String(), got.Body.String())
}

// TestTempoSearchErrors: parameters the querier refuses are refused with
// its message before any call; a limit of the tenant names itself; an
// answer other than 200 of any part is the answer.
func TestTempoSearchErrors(t *testing.T) {
	down, calls := tempoDownstreamOver(genTraces(rand.New(rand.NewSource(3)), 50, 3))
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	lim := defaultLimits()
	lim.MaxQueryLength.Set("24h")
	lim.MaxQueryExpressionBytes = 100
	f := startFrontend(t, cfg, lim, down)
	day := int64(24 * time.Hour)
	s, e := unixSeconds(baseNs), unixSeconds(baseNs+3*int64(time.Hour))
	for name, form := range map[string]url.Values{
		"limit 0":               {"q": {"{}"}, "limit": {"0"}},
		"start without end":     {"q": {"{}"}, "start": {s}},
		"a bad time":            {"q": {"{}"}, "start": {"yesterday"}, "end": {e}},
		"start after end":       {"q": {"{}"}, "start": {e}, "end": {s}},
		"spss over its maximum": {"q": {"{}"}, "spss": {"1000"}},
		"q and tags":            {"q": {"{}"}, "tags": {"service.name=a"}},
		"bad tags":              {"tags": {"service.name=\"a"}},
		"a negative duration":   {"q": {"{}"}, "minDuration": {"-1s"}},
	} {
		t.Run(name, func(t *testing.T) {
			got := callTempo(f, "search", form)
			require.Empty(t, calls.take())
			want := direct(down, "search", form)
			require.Equal(t, http.StatusBadRequest, want.Code, want.Body.String())
			require.Equal(t, http.StatusBadRequest, got.Code, got.Body.String())
			require.Equal(t, want.Body.String(), got.Body.String())
			require.Equal(t, "text/plain; charset=utf-8", got.Header().Get("Content-Type"))
			calls.take()
		})
	}

	t.Run("max_query_length", func(t *testing.T) {
		got := callTempo(f, "search", url.Values{"q": {"{}"}, "start": {unixSeconds(baseNs)}, "end": {unixSeconds(baseNs + day + 1e9)}})
		require.Equal(t, http.StatusBadRequest, got.Code)
		require.Contains(t, got.Body.String(), "max_query_length")
		require.Empty(t, calls.take())
	})
	t.Run("max_query_expression_size_bytes", func(t *testing.T) {
		got := callTempo(f, "search", url.Values{"q": {`{ .a = "` + strings.Repeat("x", 200) + `" }`}})
		require.Equal(t, http.StatusBadRequest, got.Code)
		require.Contains(t, got.Body.String(), "max_query_expression_size_bytes")
		require.Empty(t, calls.take())
	})
	t.Run("a query the querier refuses", func(t *testing.T) {
		form := url.Values{"q": {`{ .a = }`}, "start": {s}, "end": {e}}
		got := callTempo(f, "search", form)
		require.Equal(t, http.StatusBadRequest, got.Code)
		require.NotEmpty(t, calls.take())
		require.Equal(t, direct(down, "search", form).Body.String(), got.Body.String())
		calls.take()
	})
}

// TestTempoQueriesOutstandingLimit: searches and metrics queries count
// against max_outstanding_requests_per_tenant with every other query: over
// it, 429 in Tempo's error shape.
func TestTempoQueriesOutstandingLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Parallelism = 1
	lim := defaultLimits()
	lim.MaxOutstandingPerTenant = 1
	down := &blockingDownstream{release: make(chan struct{})}
	f := startFrontend(t, cfg, lim, down)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		callTempo(f, "search", url.Values{"q": {"{}"}})
	}()
	require.Eventually(t, func() bool { return down.entered.Load() == 1 }, 5*time.Second, time.Millisecond)
	for _, path := range []string{"search", "metrics/query_range", "metrics/query"} {
		got := callTempo(f, path, url.Values{"q": {"{} | rate()"}})
		require.Equal(t, http.StatusTooManyRequests, got.Code, path)
		require.Equal(t, "text/plain; charset=utf-8", got.Header().Get("Content-Type"))
		require.Contains(t, got.Body.String(), "max_outstanding_requests_per_tenant")
	}
	close(down.release)
	wg.Wait()
}
