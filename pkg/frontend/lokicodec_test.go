package frontend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// t0Ns is a time of the codec tests (Unix ns), 2023-11-14T22:13:20Z.
const t0Ns = int64(1_700_000_000) * 1e9

func testLokiCodec(instant bool) *lokiCodec {
	return &lokiCodec{instant: instant, limits: lokiConfig(), now: func() time.Time { return time.Unix(0, t0Ns) }}
}

func decodeLoki(t *testing.T, c *lokiCodec, form url.Values, header http.Header) (*Request, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, lokiapi.PathPrefix+c.path()+"?"+form.Encode(), nil)
	for k, vs := range header {
		r.Header[k] = vs
	}
	return c.DecodeRequest(r)
}

func TestLokiDecodeRequest(t *testing.T) {
	const ms = int64(1e6)
	for _, tc := range []struct {
		name    string
		instant bool
		form    url.Values
		header  http.Header
		// What the request must be.
		start, end, step int64
		split, sharded   bool
		cacheKey         string // "" for none
		verbatim         bool
		err              string // a 400 saying this
	}{
		{
			name:  "log query, ns times: split on a 1 ms grid, not cached",
			form:  url.Values{"query": {`{app="a"}`}, "start": {fmt.Sprint(t0Ns + 5)}, "end": {fmt.Sprint(t0Ns + 3600e9)}},
			start: t0Ns / ms, end: (t0Ns+3600e9)/ms - 1, step: 1, split: true,
		},
		{
			name:  "log query, an empty range",
			form:  url.Values{"query": {`{app="a"}`}, "start": {"1700000000"}, "end": {"1700000000"}},
			start: t0Ns / ms, end: t0Ns / ms, step: 1,
		},
		{
			name:  "log query, since before now",
			form:  url.Values{"query": {`{app="a"} |= "x"`}, "since": {"30m"}},
			start: (t0Ns - 1800e9) / ms, end: t0Ns/ms - 1, step: 1, split: true,
		},
		{
			name:  "metric query, RFC 3339 times, default step: split, sharded, cached",
			form:  url.Values{"query": {`sum by (app) (rate({app="a"}[5m]))`}, "start": {"2023-11-14T22:13:20Z"}, "end": {"2023-11-15T22:13:20Z"}},
			start: t0Ns / ms, end: t0Ns/ms + 86_400_000, step: 345_000, split: true, sharded: true,
			cacheKey: "logql:sum by (app) (rate({app=\"a\"} [5m]))\x00step=345000\x00limit=100\x00direction=backward\x00categorize=false",
		},
		{
			name:   "metric query, float seconds, categorized, forward: all in the key",
			form:   url.Values{"query": {`count_over_time( {app="a"}  [1m] )`}, "start": {"1700000000.5"}, "end": {"1700003600"}, "step": {"60"}, "limit": {"10"}, "direction": {"FORWARD"}},
			header: http.Header{lokiapi.EncodingFlagsHeader: {"categorize-labels"}},
			start:  t0Ns/ms + 500, end: t0Ns/ms + 3_600_000, step: 60_000, split: true,
			cacheKey: "logql:count_over_time({app=\"a\"} [1m])\x00step=60000\x00limit=10\x00direction=forward\x00categorize=true",
		},
		{
			name:     "metric query, a step under a millisecond: the querier answers",
			form:     url.Values{"query": {`count_over_time({app="a"}[1m])`}, "start": {"1700000000"}, "end": {"1700000001"}, "step": {"0.0005"}},
			verbatim: true,
		},
		{
			name:    "instant metric query at a time: sharded, not split or cached",
			instant: true,
			form:    url.Values{"query": {`max(count_over_time({app="a"}[1m]))`}, "time": {"1700000000.25"}},
			start:   t0Ns/ms + 250, end: t0Ns/ms + 250, sharded: true,
		},
		{
			name:    "instant query at now",
			instant: true,
			form:    url.Values{"query": {`count_over_time({app="a"}[1m]) > 2`}},
			start:   t0Ns / ms, end: t0Ns / ms,
		},
		{
			name:     "instant log query: the engine refuses it",
			instant:  true,
			form:     url.Values{"query": {`{app="a"}`}},
			verbatim: true,
		},
		{
			name:     "a shard chosen by the client",
			form:     url.Values{"query": {`sum(count_over_time({app="a"}[1m]))`}, lokiapi.ShardParam: {"1_of_2"}},
			verbatim: true,
		},
		{name: "a query that does not parse", form: url.Values{"query": {`{app=}`}}, err: "parse error"},
		{name: "a bad time", form: url.Values{"query": {`{app="a"}`}, "start": {"yesterday"}}, err: `invalid parameter "start"`},
		{name: "end before start", form: url.Values{"query": {`{app="a"}`}, "start": {"1700000100"}, "end": {"1700000000"}}, err: "before its start"},
		{name: "too many points", form: url.Values{"query": {`{app="a"}`}, "start": {"1700000000"}, "end": {"1700100000"}, "step": {"1"}}, err: "more than 11000 points"},
		{name: "a bad direction", form: url.Values{"query": {`{app="a"}`}, "direction": {"up"}}, err: `invalid parameter "direction"`},
		{name: "over the entries limit", form: url.Values{"query": {`{app="a"}`}, "limit": {"5001"}}, err: "-querier.logs.max-entries-limit-per-query"},
		{name: "over the entries limit, instant", instant: true, form: url.Values{"query": {`count_over_time({app="a"}[1m])`}, "limit": {"5001"}}, err: "-querier.logs.max-entries-limit-per-query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := decodeLoki(t, testLokiCodec(tc.instant), tc.form, tc.header)
			if tc.err != "" {
				var bad badRequest
				require.ErrorAs(t, err, &bad)
				require.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.verbatim, req.Verbatim)
			if tc.verbatim {
				return
			}
			require.Equal(t, [3]int64{tc.start, tc.end, tc.step}, [3]int64{req.Start, req.End, req.Step})
			require.Equal(t, tc.split, req.Split)
			require.Equal(t, tc.sharded, req.Sharding != nil)
			require.Equal(t, tc.cacheKey, req.CacheKey)
			require.Equal(t, lokiConfig().MaxQueryBytesRead > 0, req.Budget != nil)
			if tc.header != nil {
				require.Equal(t, tc.header, req.Header, "the encoding flags go downstream")
			}
		})
	}
}

// TestLokiEncodeRequestRoundTrip: what EncodeRequest sends, read back with
// the querier's own parameter rules, is the decoded request, and its parts
// tile the query's range exactly.
func TestLokiEncodeRequestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		form url.Values
		// The ranges [start, end) (log) or evaluation spans [start, end]
		// (metric) of the parts when split by the hour, ns.
		parts [][2]int64
	}{
		{
			name: "log query over 2h30m starting and ending off the millisecond",
			form: url.Values{"query": {`{app="a"} |= "x"`}, "start": {fmt.Sprint(t0Ns + 123)}, "end": {fmt.Sprint(t0Ns + 9000e9 + 456)}, "limit": {"7"}, "direction": {"forward"}, "interval": {"10s"}, "other": {"kept"}},
			// t0 is 22:13:20: hours start at t0+2800s and t0+6400s.
			parts: [][2]int64{{t0Ns + 123, t0Ns + 2800e9}, {t0Ns + 2800e9, t0Ns + 6400e9}, {t0Ns + 6400e9, t0Ns + 9000e9 + 456}},
		},
		{
			name: "metric query every 7 minutes over 2h",
			form: url.Values{"query": {`sum(count_over_time({app="a"}[5m]))`}, "start": {fmt.Sprint(t0Ns)}, "end": {fmt.Sprint(t0Ns + 7200e9)}, "step": {"7m"}, "other": {"kept"}},
			// Steps at t0 + k*420s, cut at t0+2800s and t0+6400s.
			parts: [][2]int64{{t0Ns, t0Ns + 2520e9}, {t0Ns + 2940e9, t0Ns + 6300e9}, {t0Ns + 6720e9, t0Ns + 7200e9}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testLokiCodec(false)
			req, err := decodeLoki(t, c, tc.form, nil)
			require.NoError(t, err)
			orig := httptest.NewRequest(http.MethodGet, "/?"+tc.form.Encode(), nil)
			require.NoError(t, orig.ParseForm())
			want, err := lokiapi.ParseRangeParams(orig, time.Unix(0, t0Ns), 5000)
			require.NoError(t, err)

			var got [][2]int64
			for _, p := range splitParts(req, time.Hour) {
				path, form := c.EncodeRequest(withRange(req, p))
				require.Equal(t, "query_range", path)
				require.Equal(t, tc.form.Get("query"), form.Get("query"))
				require.Equal(t, "kept", form.Get("other"), "unknown parameters go downstream")
				require.False(t, form.Has("interval"), "the merge applies the interval")
				r := httptest.NewRequest(http.MethodGet, "/?"+form.Encode(), nil)
				require.NoError(t, r.ParseForm())
				back, err := lokiapi.ParseRangeParams(r, time.Unix(0, 0), 5000)
				require.NoError(t, err)
				require.Equal(t, want.Step, back.Step)
				require.Equal(t, want.Limit, back.Limit)
				require.Equal(t, want.Direction, back.Direction)
				got = append(got, [2]int64{back.Start, back.End})
			}
			require.Equal(t, tc.parts, got)
			require.Equal(t, tc.form, url.Values(tc.form), "the request's parameters are left alone")
		})
	}
}

func entry(sec int64, line string) logql.Entry {
	return logql.Entry{Timestamp: t0Ns + sec*1e9, Line: line}
}

func streamsResult(streams ...logql.Stream) *logql.Result {
	return &logql.Result{Type: logql.ValueTypeStreams, Streams: streams}
}

func TestLokiMergeStreams(t *testing.T) {
	a, b := labels.FromStrings("app", "a"), labels.FromStrings("app", "b")
	// Two parts of a query, the older first.
	older := streamsResult(
		logql.Stream{Labels: a, Entries: []logql.Entry{entry(1, "a1"), entry(2, "a2"), entry(3, "a3")}},
		logql.Stream{Labels: b, Entries: []logql.Entry{entry(2, "b2")}},
	)
	newer := streamsResult(
		logql.Stream{Labels: b, Entries: []logql.Entry{entry(10, "b10"), entry(11, "b11")}},
		logql.Stream{Labels: a, Entries: []logql.Entry{entry(10, "a10"), entry(3, "a3")}}, // a3 again: once
	)
	for _, tc := range []struct {
		name     string
		st       lokiRequest
		parts    []*logql.Result
		want     []logql.Stream
		returned int64
	}{
		{
			name:  "backward keeps the newest, newest first",
			st:    lokiRequest{log: true, limit: 4, dir: logql.Backward},
			parts: []*logql.Result{older, newer},
			want: []logql.Stream{
				{Labels: a, Entries: []logql.Entry{entry(10, "a10"), entry(3, "a3")}},
				{Labels: b, Entries: []logql.Entry{entry(11, "b11"), entry(10, "b10")}},
			},
			returned: 4,
		},
		{
			name:  "forward keeps the oldest, oldest first; a tie goes to the smaller line",
			st:    lokiRequest{log: true, limit: 2, dir: logql.Forward},
			parts: []*logql.Result{older, newer},
			want: []logql.Stream{
				{Labels: a, Entries: []logql.Entry{entry(1, "a1"), entry(2, "a2")}},
			},
			returned: 2,
		},
		{
			name:  "backward, a tie at 2s goes to the larger line",
			st:    lokiRequest{log: true, limit: 5, dir: logql.Backward},
			parts: []*logql.Result{older, newer},
			want: []logql.Stream{
				{Labels: a, Entries: []logql.Entry{entry(10, "a10"), entry(3, "a3")}},
				{Labels: b, Entries: []logql.Entry{entry(11, "b11"), entry(10, "b10"), entry(2, "b2")}},
			},
			returned: 5,
		},
		{
			name:  "duplicates once, a limit above what there is",
			st:    lokiRequest{log: true, limit: 100, dir: logql.Forward},
			parts: []*logql.Result{older, newer},
			want: []logql.Stream{
				{Labels: a, Entries: []logql.Entry{entry(1, "a1"), entry(2, "a2"), entry(3, "a3"), entry(10, "a10")}},
				{Labels: b, Entries: []logql.Entry{entry(2, "b2"), entry(10, "b10"), entry(11, "b11")}},
			},
			returned: 7,
		},
		{
			name:  "interval thins each stream after the limit, across parts",
			st:    lokiRequest{log: true, limit: 100, dir: logql.Forward, interval: 2 * time.Second},
			parts: []*logql.Result{older, newer},
			want: []logql.Stream{
				{Labels: a, Entries: []logql.Entry{entry(1, "a1"), entry(3, "a3"), entry(10, "a10")}},
				{Labels: b, Entries: []logql.Entry{entry(2, "b2"), entry(10, "b10")}},
			},
			returned: 7,
		},
		{
			name: "categorized entries: the same line with other metadata is another entry",
			st:   lokiRequest{log: true, limit: 10, dir: logql.Backward, categorize: true},
			parts: []*logql.Result{
				streamsResult(logql.Stream{Labels: a, Entries: []logql.Entry{{Timestamp: t0Ns, Line: "x", Metadata: labels.FromStrings("t", "1")}}}),
				streamsResult(logql.Stream{Labels: a, Entries: []logql.Entry{{Timestamp: t0Ns, Line: "x", Metadata: labels.FromStrings("t", "2")}, {Timestamp: t0Ns, Line: "x", Metadata: labels.FromStrings("t", "1")}}}),
			},
			want: []logql.Stream{{Labels: a, Entries: []logql.Entry{
				{Timestamp: t0Ns, Line: "x", Metadata: labels.FromStrings("t", "1")},
				{Timestamp: t0Ns, Line: "x", Metadata: labels.FromStrings("t", "2")},
			}}},
			returned: 2,
		},
		{
			name:     "nothing",
			st:       lokiRequest{log: true, limit: 10},
			parts:    []*logql.Result{streamsResult(), streamsResult()},
			returned: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeLokiResults(tc.parts, &tc.st)
			require.NoError(t, err)
			require.Equal(t, logql.ValueTypeStreams, got.Type)
			require.Equal(t, tc.want, got.Streams)
			require.Equal(t, tc.returned, got.Stats.EntriesReturned)
		})
	}
}

func series(ls labels.Labels, pts ...int64) promql.Series {
	s := promql.Series{Metric: ls}
	for _, t := range pts {
		s.Floats = append(s.Floats, promql.FPoint{T: t, F: float64(t % 1000)})
	}
	return s
}

func TestLokiMergeMatrices(t *testing.T) {
	a, b, c := labels.FromStrings("app", "a"), labels.FromStrings("app", "b"), labels.FromStrings("app", "c")
	parts := []*logql.Result{
		{Type: "matrix", Matrix: promql.Matrix{series(b, 1, 2), series(c, 2)}, Stats: logql.Stats{BytesProcessed: 10, LinesProcessed: 1, ExecTime: time.Second}},
		{Type: "matrix", Matrix: promql.Matrix{series(a, 3, 4), series(b, 3)}, Stats: logql.Stats{BytesProcessed: 5, LinesProcessed: 2, ExecTime: time.Second}},
		{Type: "matrix", Matrix: promql.Matrix{}},
		{Type: "matrix", Matrix: promql.Matrix{series(c, 5, 6)}},
	}
	got, err := mergeLokiResults(parts, &lokiRequest{})
	require.NoError(t, err)
	require.Equal(t, promql.Matrix{series(a, 3, 4), series(b, 1, 2, 3), series(c, 2, 5, 6)}, got.Matrix)
	require.Equal(t, logql.Stats{BytesProcessed: 15, LinesProcessed: 3, ExecTime: 2 * time.Second}, got.Stats)

	_, err = mergeLokiResults([]*logql.Result{parts[0], streamsResult()}, &lokiRequest{})
	require.ErrorContains(t, err, "parts answered a matrix and a streams")
}

// TestLokiAnswersRoundTrip: an answer written by the querier reads back
// into the result it was written from.
func TestLokiAnswersRoundTrip(t *testing.T) {
	a := labels.FromStrings("app", "a", "pod", "p\"1")
	for _, tc := range []struct {
		name       string
		res        *logql.Result
		categorize bool
	}{
		{name: "streams", res: streamsResult(logql.Stream{Labels: a, Entries: []logql.Entry{entry(2, "line\n\"two\" <b>"), entry(1, "one")}})},
		{name: "categorized streams", categorize: true, res: streamsResult(logql.Stream{Labels: a, Entries: []logql.Entry{
			{Timestamp: t0Ns + 2, Line: "x", Metadata: labels.FromStrings("trace_id", "t1"), Parsed: labels.FromStrings("level", "info")},
			{Timestamp: t0Ns + 1, Line: "y"},
		}})},
		{name: "matrix", res: &logql.Result{Type: "matrix", Matrix: promql.Matrix{{Metric: a, Floats: []promql.FPoint{{T: 1_700_000_000_123, F: 1.5}, {T: 1_700_000_060_123, F: 1e-300}}}}}},
		{name: "vector", res: &logql.Result{Type: "vector", Vector: promql.Vector{{Metric: a, T: 1_700_000_000_000, F: 3}}}},
		{name: "scalar", res: &logql.Result{Type: "scalar", Scalar: promql.Scalar{T: 1_700_000_000_000, V: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.Stats = logql.Stats{BytesProcessed: 100, LinesProcessed: 7, EntriesReturned: 2, ExecTime: 1500 * time.Millisecond}
			body := lokiapi.EncodeQueryResult(tc.res, tc.categorize, logql.Backward)
			got, err := decodeLokiResult(body)
			require.NoError(t, err)
			if tc.res.Type != logql.ValueTypeStreams {
				// The encoder counts what it returns.
				got.Stats.EntriesReturned = tc.res.Stats.EntriesReturned
			}
			require.Equal(t, tc.res, got)
			require.Equal(t, string(body), string(lokiapi.EncodeQueryResult(got, tc.categorize, logql.Backward)), "the same bytes again")
		})
	}
}

// TestLogQLCacheKeysArePinned pins the results cache keys of LogQL metric
// queries, as TestPromQLCacheKeysArePinned does PromQL's: equivalent
// queries share them, every parameter that changes the answer is in them,
// and they never meet PromQL's.
func TestLogQLCacheKeysArePinned(t *testing.T) {
	form := func(kv ...string) url.Values {
		v := url.Values{"start": {"1700002800"}, "end": {"1700150400"}, "step": {"60"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	key := func(f url.Values, h http.Header) string {
		req, err := decodeLoki(t, testLokiCodec(false), f, h)
		require.NoError(t, err)
		p := splitParts(req, 24*time.Hour)[1]
		return cacheKey("tenant-1", req.CacheKey, p.start, p.end, req.Step)
	}
	k := key(form("query", `sum by (app) (count_over_time({app="a"} |= "x" [5m]))`), nil)
	require.Equal(t, "qf1:9fd94aa899aa13789e0689d01978cfd0cc23bff5e40632449245407bc6c486da", k)
	require.Equal(t, k, key(form("query", "sum  by(app)(count_over_time( {app=\"a\"}|=\"x\"[5m] ))"), nil), "the canonical query")
	for name, other := range map[string]string{
		"another query": key(form("query", `sum by (app) (count_over_time({app="b"} |= "x" [5m]))`), nil),
		"another step":  key(form("query", `sum by (app) (count_over_time({app="a"} |= "x" [5m]))`, "step", "120"), nil),
		"categorized":   key(form("query", `sum by (app) (count_over_time({app="a"} |= "x" [5m]))`), http.Header{lokiapi.EncodingFlagsHeader: {"categorize-labels"}}),
		"forward":       key(form("query", `sum by (app) (count_over_time({app="a"} |= "x" [5m]))`, "direction", "forward"), nil),
		"a limit":       key(form("query", `sum by (app) (count_over_time({app="a"} |= "x" [5m]))`, "limit", "5"), nil),
	} {
		require.NotEqual(t, k, other, name)
	}
}

// TestPlanLokiSharding: which queries shard, and the shard queries.
func TestPlanLokiSharding(t *testing.T) {
	for _, tc := range []struct {
		query   string
		queries []string // nil: not sharded
	}{
		{`sum by (app) (count_over_time({app="a"}[5m]))`, []string{`sum by (app) (count_over_time({app="a"} [5m]))`}},
		{`sum(rate({app="a"} | json | drop pod [1m]))`, []string{`sum(rate({app="a"} | json | drop pod [1m]))`}},
		{`(sum without (pod) (bytes_rate({app="a"}[1m])))`, []string{`sum without (pod) (bytes_rate({app="a"} [1m]))`}},
		{`sum(sum_over_time({app="a"} | logfmt | unwrap bytes [1m]))`, []string{`sum(sum_over_time({app="a"} | logfmt | unwrap bytes [1m]))`}},
		{`sum(count_over_time({app="a"} | logfmt | label_format x=pod [1m]))`, []string{`sum(count_over_time({app="a"} | logfmt | label_format x=pod [1m]))`}},
		{`count(count_over_time({app="a"} | logfmt [5m]))`, []string{`count(count_over_time({app="a"} | logfmt [5m]))`}},
		{`max by (app) (bytes_over_time({app="a"}[5m]))`, []string{`max by (app) (bytes_over_time({app="a"} [5m]))`}},
		{`min(rate({app="a"} |= "x" | line_format "{{.msg}}" [5m]))`, []string{`min(rate({app="a"} |= "x" | line_format "{{.msg}}" [5m]))`}},
		{`avg by (app) (count_over_time({app="a"}[5m]))`, []string{`sum by (app) (count_over_time({app="a"} [5m]))`, `count by (app) (count_over_time({app="a"} [5m]))`}},
		{`topk(3, count_over_time({app="a"}[5m]))`, []string{`topk(3, count_over_time({app="a"} [5m]))`}},
		{`bottomk by (app) (2, rate({app="a"}[5m]))`, []string{`bottomk by (app) (2, rate({app="a"} [5m]))`}},
		// A series from several streams: only a sum of a count adds up.
		{`max(count_over_time({app="a"} | logfmt | drop pod [5m]))`, nil},
		{`count(rate({app="a"} | label_format x=pod [5m]))`, nil},
		{`sum(max_over_time({app="a"} | logfmt | unwrap bytes [1m]))`, nil},
		{`avg(avg_over_time({app="a"} | logfmt | unwrap bytes [1m]))`, nil},
		{`max(sum_over_time({app="a"} | logfmt | unwrap bytes [1m]) by (app))`, nil},
		{`sum(absent_over_time({app="a"}[1m]))`, nil},
		// Not an aggregation of a range aggregation, or not associative.
		{`count_over_time({app="a"}[5m])`, nil},
		{`sum(count_over_time({app="a"}[5m])) / 2`, nil},
		{`sum(sum by (pod) (count_over_time({app="a"}[5m])))`, nil},
		{`stddev(count_over_time({app="a"}[5m]))`, nil},
		{`sort(count_over_time({app="a"}[5m]))`, nil},
		{`topk(1.5, count_over_time({app="a"}[5m]))`, nil},
		{`{app="a"}`, nil},
	} {
		expr, err := logql.Parse(tc.query)
		require.NoError(t, err, tc.query)
		plan := planLokiSharding(expr, testLokiCodec(false))
		if tc.queries == nil {
			require.Nil(t, plan, tc.query)
			continue
		}
		require.NotNil(t, plan, tc.query)
		require.Equal(t, len(tc.queries), plan.Queries(), tc.query)
		part := &Request{Query: tc.query, State: &lokiRequest{}, Params: url.Values{}}
		for k, want := range tc.queries {
			sub := plan.Shard(part, k, 2, 4)
			require.Equal(t, want, sub.Query, tc.query)
			require.Equal(t, "3_of_4", sub.State.(*lokiRequest).shard)
			require.Nil(t, sub.Sharding)
			_, err := logql.Parse(sub.Query)
			require.NoError(t, err, "a shard query parses: %s", sub.Query)
		}
		require.Empty(t, part.State.(*lokiRequest).shard, "the part is left alone")
	}
}

func matrixBody(t *testing.T, m promql.Matrix) []byte {
	t.Helper()
	return lokiapi.EncodeQueryResult(&logql.Result{Type: "matrix", Matrix: m, Stats: logql.Stats{BytesProcessed: 10, LinesProcessed: 2}}, false, logql.Backward)
}

func pts(tv ...float64) []promql.FPoint {
	var out []promql.FPoint
	for i := 0; i+1 < len(tv); i += 2 {
		out = append(out, promql.FPoint{T: int64(tv[i]), F: tv[i+1]})
	}
	return out
}

// TestLokiShardMerge merges shard answers as the aggregation of the whole:
// sums of sums, min of mins, avg as sum / count, topk again.
func TestLokiShardMerge(t *testing.T) {
	a, b, c := labels.FromStrings("app", "a"), labels.FromStrings("app", "b"), labels.FromStrings("app", "c")
	ax, ay := labels.FromStrings("app", "a", "pod", "x"), labels.FromStrings("app", "a", "pod", "y")
	bz := labels.FromStrings("app", "b", "pod", "z")
	for _, tc := range []struct {
		query  string
		shards [][]promql.Matrix // by shard query, by shard
		want   promql.Matrix
	}{
		{
			query: `sum by (app) (count_over_time({app=~".+"}[1m]))`,
			shards: [][]promql.Matrix{{
				{{Metric: a, Floats: pts(1000, 1, 2000, 2)}, {Metric: b, Floats: pts(1000, 5)}},
				{{Metric: a, Floats: pts(2000, 3, 3000, 4)}},
				{{Metric: c, Floats: pts(3000, 1)}},
			}},
			want: promql.Matrix{{Metric: a, Floats: pts(1000, 1, 2000, 5, 3000, 4)}, {Metric: b, Floats: pts(1000, 5)}, {Metric: c, Floats: pts(3000, 1)}},
		},
		{
			query: `count by (app) (count_over_time({app=~".+"}[1m]))`,
			shards: [][]promql.Matrix{{
				{{Metric: a, Floats: pts(1000, 2)}},
				{{Metric: a, Floats: pts(1000, 1, 2000, 1)}},
			}},
			want: promql.Matrix{{Metric: a, Floats: pts(1000, 3, 2000, 1)}},
		},
		{
			query: `min by (app) (count_over_time({app=~".+"}[1m]))`,
			shards: [][]promql.Matrix{{
				{{Metric: a, Floats: pts(1000, 2, 2000, 7)}},
				{{Metric: a, Floats: pts(1000, 4, 2000, 1)}},
			}},
			want: promql.Matrix{{Metric: a, Floats: pts(1000, 2, 2000, 1)}},
		},
		{
			query: `max(count_over_time({app=~".+"}[1m]))`,
			shards: [][]promql.Matrix{{
				{{Metric: labels.EmptyLabels(), Floats: pts(1000, 2, 2000, 7)}},
				{{Metric: labels.EmptyLabels(), Floats: pts(1000, 4, 2000, 1)}},
			}},
			want: promql.Matrix{{Metric: labels.EmptyLabels(), Floats: pts(1000, 4, 2000, 7)}},
		},
		{
			query: `avg by (app) (count_over_time({app=~".+"}[1m]))`,
			shards: [][]promql.Matrix{
				{ // sums
					{{Metric: a, Floats: pts(1000, 6, 2000, 1)}},
					{{Metric: a, Floats: pts(1000, 3)}, {Metric: b, Floats: pts(1000, 8)}},
				},
				{ // counts
					{{Metric: a, Floats: pts(1000, 2, 2000, 1)}},
					{{Metric: a, Floats: pts(1000, 1)}, {Metric: b, Floats: pts(1000, 2)}},
				},
			},
			want: promql.Matrix{{Metric: a, Floats: pts(1000, 3, 2000, 1)}, {Metric: b, Floats: pts(1000, 4)}},
		},
		{
			query: `topk by (app) (1, count_over_time({app=~".+"}[1m]))`,
			shards: [][]promql.Matrix{{
				{{Metric: ax, Floats: pts(1000, 5, 2000, 1)}, {Metric: bz, Floats: pts(1000, 1)}},
				{{Metric: ay, Floats: pts(1000, 3, 2000, 4)}},
			}},
			want: promql.Matrix{{Metric: ax, Floats: pts(1000, 5)}, {Metric: ay, Floats: pts(2000, 4)}, {Metric: bz, Floats: pts(1000, 1)}},
		},
		{
			query: `bottomk(2, count_over_time({app=~".+"}[1m]))`,
			shards: [][]promql.Matrix{{
				{{Metric: ax, Floats: pts(1000, 5, 2000, 1)}, {Metric: bz, Floats: pts(1000, 1)}},
				{{Metric: ay, Floats: pts(1000, 3, 2000, 4)}},
			}},
			want: promql.Matrix{{Metric: ax, Floats: pts(2000, 1)}, {Metric: ay, Floats: pts(1000, 3, 2000, 4)}, {Metric: bz, Floats: pts(1000, 1)}},
		},
	} {
		t.Run(tc.query, func(t *testing.T) {
			c := testLokiCodec(false)
			req, err := decodeLoki(t, c, url.Values{"query": {tc.query}, "start": {"1"}, "end": {"3"}, "step": {"1"}}, nil)
			require.NoError(t, err)
			require.NotNil(t, req.Sharding)
			m := req.Sharding.Merger(req)
			for k, byShard := range tc.shards {
				for i, mat := range byShard {
					require.NoError(t, m.Add(k, i, matrixBody(t, mat)))
				}
			}
			resp, err := m.Merge(t.Context())
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.Status)
			got, err := decodeLokiResult(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.want, got.Matrix)
			n := int64(len(tc.shards) * len(tc.shards[0]))
			require.Equal(t, [2]int64{10 * n, 2 * n}, [2]int64{got.Stats.BytesProcessed, got.Stats.LinesProcessed}, "statistics add up")
		})
	}
}

func TestLokiErrorsHaveLokisShape(t *testing.T) {
	for _, tc := range []struct {
		code int
		typ  string
		want int
	}{
		{http.StatusBadRequest, "bad_data", http.StatusBadRequest},
		{http.StatusTooManyRequests, "unavailable", http.StatusTooManyRequests},
		{http.StatusUnprocessableEntity, "execution", http.StatusBadRequest},
		{http.StatusServiceUnavailable, "timeout", http.StatusGatewayTimeout},
		{499, "canceled", 499},
		{http.StatusInternalServerError, "internal", http.StatusInternalServerError},
	} {
		r := testLokiCodec(false).EncodeError(tc.code, tc.typ, "the message")
		require.Equal(t, tc.want, r.Status, tc.typ)
		require.Equal(t, "text/plain; charset=utf-8", r.Header.Get("Content-Type"))
		require.Equal(t, "the message", string(r.Body))
		require.False(t, json.Valid(r.Body) && strings.HasPrefix(string(r.Body), "{"))
	}
}
