package frontend

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// The LogQL pipeline end to end: the query-frontend in front of the
// querier's real Loki API (pkg/lokiapi and the LogQL engine over logs in
// memory), its answers compared with the querier's to the whole query.

// whole is the querier's answer to the whole query.
func whole(t *testing.T, down Downstream, path string, form url.Values, header http.Header) *Response {
	t.Helper()
	resp, err := down.Do(context.Background(), "t", lokiapi.PathPrefix+path, form, header)
	require.NoError(t, err)
	return resp
}

var logQueries = []string{
	`{app="a1"}`,
	`{app=~"a.*"} |= "error"`,
	`{app=~"a.*"} | logfmt | status >= 400`,
	// Not line_format: the engine breaks ties at the limit inconsistently
	// once the line is rewritten (it compares a kept entry's new line with
	// a candidate's old one), so its answer depends on the order it reads.
	`{pod=~"p1.*"} != "warn"`,
	`{app=~"a[12]"} | logfmt | drop level`,
}

// TestLogQLSplitGivesTheUnsplitAnswer is a property test: a log query
// split by time, in either direction, with any limit, interval and label
// encoding, answers what the querier answers to the whole query.
func TestLogQLSplitGivesTheUnsplitAnswer(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	down, calls := lokiDownstream(t, lokiConfig(), genLogs(rng))
	for _, interval := range []time.Duration{time.Hour, 7 * time.Minute} {
		cfg := testConfig()
		cfg.SplitInterval = interval
		f := startFrontend(t, cfg, defaultLimits(), down)
		for n := range 60 {
			q := logQueries[rng.Intn(len(logQueries))]
			start := baseNs - 600e9 + rng.Int63n(3*hour*1e6+1200e9)
			end := start + rng.Int63n(3*hour*1e6)
			form := url.Values{"query": {q}, "start": {fmt.Sprint(start)}, "end": {fmt.Sprint(end)}, "limit": {fmt.Sprint([]int{1, 7, 100, 1000}[rng.Intn(4)])}}
			if rng.Intn(2) == 0 {
				form.Set("direction", "forward")
			}
			if rng.Intn(3) == 0 {
				form.Set("interval", fmt.Sprint(30+rng.Intn(300), "s"))
			}
			var header http.Header
			if rng.Intn(2) == 0 {
				header = http.Header{lokiapi.EncodingFlagsHeader: {"categorize-labels"}}
			}
			method := []string{http.MethodGet, http.MethodPost}[rng.Intn(2)]
			want := whole(t, down, "query_range", form, header)
			calls.take()
			got := callLoki(f, method, "query_range", form, header)
			msg := fmt.Sprintf("query %d %s %v split %s", n, q, form, interval)
			require.Equal(t, want.Status, got.Code, "%s: %s", msg, got.Body)
			if want.Status != http.StatusOK {
				// Over the streams limit, with a limit above it: unsplit.
				require.Equal(t, string(want.Body), got.Body.String(), msg)
				continue
			}
			requireSameLokiAnswer(t, want.Body, got.Body.Bytes(), msg)
			require.Equal(t, header != nil, strings.Contains(got.Body.String(), `"encodingFlags":["categorize-labels"]`), msg)
			for _, c := range calls.take() {
				require.Equal(t, lokiapi.PathPrefix+"query_range", c.path)
				require.Equal(t, header.Get(lokiapi.EncodingFlagsHeader), c.header.Get(lokiapi.EncodingFlagsHeader), "the encoding flags go downstream")
			}
		}
		require.Zero(t, testutilCounter(f.cacheHits), "log queries are not cached")
	}
}

var metricQueries = []string{
	// Sharded.
	`sum by (app) (count_over_time({app=~"a.*"}[5m]))`,
	`sum(rate({app=~"a.*"} | logfmt status | status >= 400 [5m]))`,
	`max by (app) (bytes_over_time({app=~"a.*"}[15m]))`,
	`min(count_over_time({app=~"a.*"} |= "info" [5m]))`,
	`count(count_over_time({app=~"a.*"} | logfmt level [5m]))`,
	`avg by (app) (count_over_time({app=~"a.*"}[5m]))`,
	`topk(3, count_over_time({app=~"a.*"}[10m]))`,
	`bottomk by (app) (2, count_over_time({app=~"a.*"} | logfmt level [10m]))`,
	`sum without (pod) (count_over_time({app=~"a.*"} | logfmt level, status | drop level [5m]))`,
	`sum by (level) (count_over_time({app=~"a.*"} | logfmt level [5m]))`,
	`sum by (app) (sum_over_time({app=~"a.*"} | logfmt bytes | unwrap bytes [5m]))`,
	`sum(rate({app=~"a.*"} | logfmt bytes | unwrap bytes [5m]))`,
	// Not sharded.
	`max(max_over_time({app=~"a.*"} | logfmt bytes | unwrap bytes [5m]))`,
	`sum(count_over_time({app=~"a.*"}[5m])) / 2`,
	`quantile_over_time(0.9, {app="a0"} | logfmt bytes | unwrap bytes [10m]) by (app)`,
	`count_over_time({app="a0"} | logfmt level | __error__="" [1m] offset 5m)`,
	`rate({app="a2"} |= "error" [2m])`,
}

// TestLogQLMetricQueriesGiveTheWholeAnswer is a property test: metric range
// queries split on their step grid, sharded by stream where associative,
// then answered again from the results cache, answer what the querier
// answers to the whole query; so do instant queries, sharded.
func TestLogQLMetricQueriesGiveTheWholeAnswer(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	down, _ := lokiDownstream(t, lokiConfig(), genLogs(rng))
	for _, shards := range []int{3, 16} {
		cfg := testConfig()
		cfg.SplitInterval = time.Hour
		lim := defaultLimits()
		lim.QueryShardingTotalShards = shards
		f := startFrontend(t, cfg, lim, down)
		f.now = func() time.Time { return time.Unix(0, baseNs).Add(30 * 24 * time.Hour) } // everything is cacheable
		for n := range 30 {
			q := metricQueries[rng.Intn(len(metricQueries))]
			step := []int64{17, 60, 300, 900}[rng.Intn(4)]
			start := baseNs/1e9 - 600 + rng.Int63n(3*3600)
			end := start + rng.Int63n(3*3600)
			form := url.Values{"query": {q}, "start": {fmt.Sprint(start)}, "end": {fmt.Sprint(end)}, "step": {fmt.Sprint(step)}}
			want := whole(t, down, "query_range", form, nil)
			require.Equal(t, http.StatusOK, want.Status, "%s", want.Body)
			same := requireSameLokiAnswer
			if strings.HasPrefix(q, "topk") || strings.HasPrefix(q, "bottomk") {
				same = requireSameRanking
			}
			for pass := range 2 { // the second pass is answered from the cache
				got := callLoki(f, http.MethodGet, "query_range", form, nil)
				require.Equal(t, http.StatusOK, got.Code, "%s", got.Body)
				same(t, want.Body, got.Body.Bytes(), "range query %d %s %v shards %d pass %d", n, q, form, shards, pass)
			}

			form = url.Values{"query": {q}, "time": {fmt.Sprint(baseNs/1e9 + rng.Int63n(3*3600))}}
			want = whole(t, down, "query", form, nil)
			require.Equal(t, http.StatusOK, want.Status, "%s", want.Body)
			got := callLoki(f, http.MethodPost, "query", form, nil)
			require.Equal(t, http.StatusOK, got.Code, "%s", got.Body)
			same(t, want.Body, got.Body.Bytes(), "instant query %d %s %v shards %d", n, q, form, shards)
		}
		require.Positive(t, testutilCounter(f.cacheHits))
		require.Positive(t, testutilCounter(f.shardedParts))
	}
}

// TestLogQLShardedSumEqualsUnsharded: a sum over 30 streams run as 4
// shards, each a querier call over its own streams, is the sum the querier
// computes over all of them.
func TestLogQLShardedSumEqualsUnsharded(t *testing.T) {
	down, calls := lokiDownstream(t, lokiConfig(), genLogs(rand.New(rand.NewSource(1))))
	lim := defaultLimits()
	lim.QueryShardingTotalShards = 4
	f := startFrontend(t, testConfig(), lim, down)
	form := url.Values{"query": {`sum by (app) (count_over_time({app=~"a.*"}[10m]))`}, "start": {fmt.Sprint(baseNs / 1e9)}, "end": {fmt.Sprint(baseNs/1e9 + 3*3600)}, "step": {"300"}}
	want := whole(t, down, "query_range", form, nil)
	calls.take()
	got := callLoki(f, http.MethodGet, "query_range", form, nil)
	require.Equal(t, http.StatusOK, got.Code, "%s", got.Body)
	requireSameLokiAnswer(t, want.Body, got.Body.Bytes())
	w, err := decodeLokiResult(want.Body)
	require.NoError(t, err)
	require.Len(t, w.Matrix, 3, "one series per app")

	var shards []string
	for _, c := range calls.take() {
		require.Equal(t, `sum by (app) (count_over_time({app=~"a.*"} [10m]))`, c.form.Get("query"))
		shards = append(shards, c.form.Get(lokiapi.ShardParam))
	}
	require.ElementsMatch(t, []string{"1_of_4", "2_of_4", "3_of_4", "4_of_4"}, shards, "one part, four shards")
	// The statistics are the shards' together: every line read once.
	g, err := decodeLokiResult(got.Body.Bytes())
	require.NoError(t, err)
	require.Equal(t, w.Stats.LinesProcessed, g.Stats.LinesProcessed)
	require.Equal(t, w.Stats.BytesProcessed, g.Stats.BytesProcessed)
}

// TestLogQLQueryLimits: the querier's per-query limits hold for a whole
// query through the frontend, each failing with 400 naming its flag: the
// entries limit before anything runs, the bytes read by all the parts
// together, the series of the merged answer. (A log query's streams are at
// most its limit: one with a limit above -querier.logs.max-query-series
// runs unsplit, and the querier holds it to the limit.)
func TestLogQLQueryLimits(t *testing.T) {
	logs := genLogs(rand.New(rand.NewSource(1)))
	cfgWith := func(set func(*lokiapi.Config)) lokiapi.Config {
		var c lokiapi.Config
		flagext.DefaultValues(&c)
		set(&c)
		return c
	}
	threeHours := url.Values{"query": {`{app=~"a.*"}`}, "start": {fmt.Sprint(baseNs)}, "end": {fmt.Sprint(baseNs + 3*hour*1e6)}, "limit": {"500"}}
	unlimited, _ := lokiDownstream(t, lokiConfig(), logs)
	total, err := strconv.ParseInt(whole(t, unlimited, "query_range", threeHours, nil).Header.Get(lokiapi.BytesReadHeader), 10, 64)
	require.NoError(t, err)

	// Every stream's entries in one of the three hours.
	hourly := &memLogs{}
	for i := range 30 {
		ls := labels.FromStrings("app", "a", "pod", fmt.Sprint("p", i))
		from := baseNs + int64(i%3)*hour*1e6
		hourly.streams = append(hourly.streams, logql.Stream{Labels: ls, Entries: []logql.Entry{{Timestamp: from + 60e9, Line: "x"}, {Timestamp: from + 120e9, Line: "y"}}})
	}

	for _, tc := range []struct {
		name  string
		cfg   lokiapi.Config
		logs  lokiapi.Backend
		path  string
		form  url.Values
		calls int // downstream calls made
		msg   string
	}{
		{
			name: "entries: refused before any call",
			cfg:  lokiConfig(), logs: logs, path: "query_range",
			form: url.Values{"query": {`{app="a1"}`}, "limit": {"5001"}},
			msg:  "max entries limit per query exceeded: limit 5001 > 5000; ask for fewer lines or raise -querier.logs.max-entries-limit-per-query",
		},
		{
			name: "bytes read: each hour is within the limit, the three are not",
			cfg:  cfgWith(func(c *lokiapi.Config) { c.MaxQueryBytesRead = flagext.Bytes(total * 2 / 3) }), logs: logs, path: "query_range",
			form: threeHours, calls: 3,
			msg: "the query would read more than " + fmt.Sprint(total*2/3) + " bytes of log lines over its parts and shards (-querier.logs.max-query-bytes-read)",
		},
		{
			name: "series: ten in each hour, thirty in the answer",
			cfg:  cfgWith(func(c *lokiapi.Config) { c.MaxQuerySeries = 20 }), logs: hourly, path: "query_range",
			form:  url.Values{"query": {`count_over_time({app="a"}[1m])`}, "start": {fmt.Sprint(baseNs)}, "end": {fmt.Sprint(baseNs + 3*hour*1e6 - 1)}, "step": {"60"}},
			calls: 3,
			msg:   "the query has more than 20 series (-querier.logs.max-query-series)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down, calls := lokiDownstream(t, tc.cfg, tc.logs)
			cfg := testConfig()
			cfg.SplitInterval = time.Hour
			f := startFrontendWith(t, cfg, defaultLimits(), down, tc.cfg)
			rec := callLoki(f, http.MethodGet, tc.path, tc.form, nil)
			require.Equal(t, http.StatusBadRequest, rec.Code, "%s", rec.Body)
			require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
			require.Contains(t, rec.Body.String(), tc.msg)
			require.LessOrEqual(t, len(calls.take()), tc.calls)
		})
	}
}

// TestLogQLErrorsAreTheQueriers: a request the frontend refuses is answered
// as the querier answers it, in Loki's shape (text/plain).
func TestLogQLErrorsAreTheQueriers(t *testing.T) {
	down, _ := lokiDownstream(t, lokiConfig(), &memLogs{})
	f := startFrontend(t, testConfig(), defaultLimits(), down)
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"query_range", url.Values{"query": {`{app=}`}}},
		{"query_range", url.Values{"query": {`{app="a"}`}, "start": {"yesterday"}}},
		{"query_range", url.Values{"query": {`{app="a"}`}, "start": {"1700000100"}, "end": {"1700000000"}}},
		{"query_range", url.Values{"query": {`{app="a"}`}, "step": {"-1"}}},
		{"query_range", url.Values{"query": {`{app="a"}`}, "limit": {"0"}}},
		{"query_range", url.Values{"query": {`{app="a"}`}, "interval": {"-5s"}}},
		{"query_range", url.Values{"query": {`sum(count_over_time({app="a"}[1m]))`}, "start": {"1700000000"}, "end": {"1700000001"}, "step": {"0.0001"}}},
		{"query_range", url.Values{"query": {`sum(count_over_time({app="a"}[1m]))`}, lokiapi.ShardParam: {"9_of_4"}}},
		{"query", url.Values{"query": {`{app="a"}`}}},
		{"query", url.Values{"query": {`count_over_time({app="a"}[1m])`}, "time": {"noon"}}},
		{"query", url.Values{"query": {`count_over_time({app="a"}[1m])`}, "direction": {"sideways"}}},
	} {
		want := whole(t, down, tc.path, tc.form, nil)
		require.Equal(t, http.StatusBadRequest, want.Status, "%v", tc.form)
		got := callLoki(f, http.MethodGet, tc.path, tc.form, nil)
		require.Equal(t, want.Status, got.Code, "%v", tc.form)
		require.Equal(t, string(want.Body), got.Body.String(), "%v", tc.form)
		require.Equal(t, "text/plain; charset=utf-8", got.Header().Get("Content-Type"))
	}

	// The frontend's own limits, in Loki's shape.
	lim := defaultLimits()
	lim.MaxQueryLength = 3600_000_000_000 // 1h
	lim.MaxQueryExpressionBytes = 100
	f = startFrontend(t, testConfig(), lim, down)
	rec := callLoki(f, http.MethodGet, "query_range", url.Values{"query": {`{app="a"}`}, "start": {"1700000000"}, "end": {"1700007200"}}, nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Body.String(), "max_query_length")
	rec = callLoki(f, http.MethodGet, "query_range", url.Values{"query": {`{app="` + strings.Repeat("a", 200) + `"}`}}, nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "max_query_expression_size_bytes")
	require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
}

// TestLogQLOtherPathsGoStraightThrough: the Loki API's other paths (and
// other methods) are the querier's.
func TestLogQLOtherPathsGoStraightThrough(t *testing.T) {
	down, calls := lokiDownstream(t, lokiConfig(), &memLogs{})
	f := startFrontend(t, testConfig(), defaultLimits(), down)
	rec := callLoki(f, http.MethodGet, "labels", nil, nil)
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.JSONEq(t, `{"status":"success","data":["app","pod"]}`, rec.Body.String())
	rec = callLoki(f, http.MethodPut, "query_range", nil, nil)
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	require.Len(t, calls.take(), 2)
	require.Zero(t, testutilCounter(f.queries.WithLabelValues("logql_range")))
}
