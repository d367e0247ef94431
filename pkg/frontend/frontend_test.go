package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/flagext"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/lokiapi"
	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
	"github.com/canopy-observability/canopy/pkg/validation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		// dskit's memcached client starts a DNS resolver loop that nothing stops.
		goleak.IgnoreTopFunction("github.com/grafana/dskit/dns/miekgdns.(*Resolver).loop"),
	)
}

type fixedLimits struct{ l validation.Limits }

func (f fixedLimits) ByTenant(string) *validation.Limits { return &f.l }

func defaultLimits() validation.Limits {
	var l validation.Limits
	fs := flag.NewFlagSet("", flag.PanicOnError)
	l.RegisterFlags(fs)
	return l
}

func testConfig() Config {
	var c Config
	fs := flag.NewFlagSet("", flag.PanicOnError)
	c.RegisterFlags(fs)
	return c
}

// lokiConfig is the queriers' Loki API configuration by default.
func lokiConfig() lokiapi.Config {
	var c lokiapi.Config
	flagext.DefaultValues(&c)
	return c
}

func startFrontend(t *testing.T, cfg Config, lim validation.Limits, down Downstream) *Frontend {
	t.Helper()
	return startFrontendWith(t, cfg, lim, down, lokiConfig())
}

// startFrontendWith starts a query-frontend holding LogQL queries to the
// querier's limits logs.
func startFrontendWith(t *testing.T, cfg Config, lim validation.Limits, down Downstream, logs lokiapi.Config) *Frontend {
	t.Helper()
	f, err := New(cfg, fixedLimits{lim}, down, parser.NewParser(parser.Options{}), logs, tempoConfig(), log.NewNopLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), f))
	t.Cleanup(func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), f)) })
	return f
}

func call(f http.Handler, tenant, path string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/prometheus/api/v1/"+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req = req.WithContext(user.InjectOrgID(req.Context(), tenant))
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, req)
	return rec
}

func TestSplitRangeKeepsTheStepGrid(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for range 2000 {
		step := int64(rng.Intn(7200)+1) * 1000
		start := int64(rng.Intn(10*86400)) * 1000
		end := start + int64(rng.Intn(5*86400))*1000
		interval := []int64{3600_000, 6 * 3600_000, 86400_000}[rng.Intn(3)]
		var want []int64
		for ts := start; ts <= end; ts += step {
			want = append(want, ts)
		}
		var got []int64
		parts := splitRange(start, end, step, interval)
		for i, p := range parts {
			require.LessOrEqual(t, p.start, p.end)
			if i > 0 {
				require.Greater(t, floorDiv(p.start, interval), floorDiv(parts[i-1].end, interval), "part %d starts in a new interval", i)
			}
			require.Equal(t, floorDiv(p.start, interval), floorDiv(p.end, interval), "part %d stays in one interval", i)
			for ts := p.start; ts <= p.end; ts += step {
				got = append(got, ts)
			}
		}
		require.Equal(t, want, got, "start %d end %d step %d interval %d", start, end, step, interval)
	}
}

// blockingDownstream answers once release is closed.
type blockingDownstream struct {
	release chan struct{}
	entered atomic.Int64 // calls of Do so far, answered or waiting
	mu      sync.Mutex
	order   []string
}

func (b *blockingDownstream) Do(ctx context.Context, tenant, _ string, _ url.Values, _ http.Header) (*Response, error) {
	b.entered.Add(1)
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	b.order = append(b.order, tenant)
	b.mu.Unlock()
	return &Response{Status: 200, Header: http.Header{}, Body: []byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`)}, nil
}

func (b *blockingDownstream) Proxy(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}

func TestQueueLimitsAndFairness(t *testing.T) {
	cfg := testConfig()
	cfg.Parallelism = 1
	lim := defaultLimits()
	lim.MaxOutstandingPerTenant = 3
	down := &blockingDownstream{release: make(chan struct{})}
	f := startFrontend(t, cfg, lim, down)

	// One running and two queued for tenant a: the fourth is rejected.
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	send := func(tenant string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- call(f, tenant, "query", url.Values{"query": {"1"}}).Code
		}()
	}
	send("a")
	// The worker holds the first.
	require.Eventually(t, func() bool { return down.entered.Load() == 1 }, 5*time.Second, time.Millisecond)
	for range 2 {
		send("a")
	}
	require.Eventually(t, func() bool { return f.queue.len("a") == 2 }, 5*time.Second, time.Millisecond)
	rec := call(f, "a", "query", url.Values{"query": {"1"}})
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Contains(t, rec.Body.String(), "max_outstanding_requests_per_tenant")
	// Tenant b is not blocked by a's queue, and is served before a's backlog.
	send("b")
	require.Eventually(t, func() bool { return f.queue.len("b") == 1 }, 5*time.Second, time.Millisecond)
	close(down.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		require.Equal(t, http.StatusOK, c)
	}
	// After the running query, a and b take turns: b waits for one of a's
	// two queued queries, not both.
	require.Equal(t, []string{"a", "a", "b", "a"}, down.order, "tenants are served in turn")

	// Other API calls go straight to the querier.
	require.Equal(t, http.StatusTeapot, call(f, "a", "labels", nil).Code)
}

func TestMaxQueryLength(t *testing.T) {
	lim := defaultLimits()
	lim.MaxQueryLength = model.Duration(24 * time.Hour)
	f := startFrontend(t, testConfig(), lim, &blockingDownstream{release: make(chan struct{})})
	rec := call(f, "a", "query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"90000"}, "step": {"60"}})
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "max_query_length")
	require.Contains(t, rec.Body.String(), "query length: 1d1h")
}

// promDownstream is the real Prometheus API of a Canopy querier over a
// local TSDB, as the query-frontend sees it in a single process.
func promDownstream(t *testing.T, lim validation.Limits) (HandlerDownstream, *teststorage.TestStorage) {
	st := teststorage.New(t, func(o *tsdb.Options) { o.EnableSharding = true })
	t.Cleanup(func() { _ = st.Close() })
	var qcfg querier.Config
	fs := flag.NewFlagSet("", flag.PanicOnError)
	qcfg.RegisterFlags(fs)
	engine := querier.NewEngine(qcfg, nil, prometheus.NewRegistry())
	q := querier.NewLimitedQueryable(shardingQueryable{st}, fixedLimits{lim})
	api := querier.NewAPI(qcfg, engine, q, st, nil, nil, nil, prometheus.NewRegistry(), prometheus.NewRegistry())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(user.InjectOrgID(r.Context(), r.Header.Get("X-Scope-OrgID"))))
	})
	return HandlerDownstream{Handler: func() http.Handler { return h }}, st
}

// shardingQueryable takes the shard matcher out of selectors, as ingesters
// and store-gateways do.
type shardingQueryable struct{ storage.Queryable }

func (s shardingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.Queryable.Querier(mint, maxt)
	return shardingQuerier{q}, err
}

type shardingQuerier struct{ storage.Querier }

func (s shardingQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	h := storage.SelectHints{}
	if hints != nil {
		h = *hints
	}
	ms, err := queryshard.Extract(ms, &h)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return s.Querier.Select(ctx, sorted, &h, ms...)
}

// base is the start of the generated data (a UTC midnight).
const base = int64(1_700_006_400_000) - 1_700_006_400_000%86_400_000

// generate writes three days of counters and gauges, with integer values
// (so sums are exact in any order), resets and gaps. Gauge values differ
// between series at each time, because Prometheus leaves the choice among
// ties in topk and bottomk open.
func generate(t *testing.T, st *teststorage.TestStorage, rng *rand.Rand) {
	app := st.Appender(context.Background())
	for i := range 24 {
		job := fmt.Sprintf("j%d", i%3)
		c := labels.FromStrings("__name__", "c_total", "job", job, "i", fmt.Sprint(i))
		g := labels.FromStrings("__name__", "g", "job", job, "i", fmt.Sprint(i))
		gapFrom := base + int64(rng.Intn(3*86400))*1000
		gapTo := gapFrom + int64(rng.Intn(6*3600))*1000
		var cv float64
		for ts := base; ts < base+3*86_400_000; ts += 60_000 {
			if ts >= gapFrom && ts < gapTo && i%4 == 0 {
				continue
			}
			cv += float64(rng.Intn(10))
			if rng.Intn(2000) == 0 {
				cv = 0
			}
			_, err := app.Append(0, c, ts, cv)
			require.NoError(t, err)
			// Distinct per series: topk and bottomk have no ties to break.
			_, err = app.Append(0, g, ts, float64((rng.Intn(101)-50)*32+i))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
}

var queryTemplates = []string{
	`c_total`,
	`rate(c_total[5m])`,
	`sum by (job) (rate(c_total[5m]))`,
	`sum(increase(c_total{job="%s"}[1h]))`,
	`max_over_time(g[1h])`,
	`min by (job) (g)`,
	`avg(g)`,
	`count by (job) (g > 0)`,
	`topk(2, g)`,
	`bottomk(3, max_over_time(g[30m]))`,
	`g offset 1h`,
	`sum_over_time(g[2h:5m])`,
	`g and on (i) c_total`,
	`count_over_time(c_total{job="%s"}[10m])`,
	`quantile_over_time(0.9, g[1h])`,
	`absent(nope)`,
	`time()`,
	`g @ 1700050000`,
	`max(g @ start())`,
	`resets(c_total[3h])`,
	`group by (job) (c_total)`,
	`sort_desc(sum by (i) (g))`,
	// Shardable aggregations, alone and inside larger expressions.
	`avg by (job) (rate(c_total[5m]))`,
	`count(c_total)`,
	`max without (i) (g)`,
	`sum without (i) (rate(c_total[5m]))`,
	`topk by (job) (2, g)`,
	`bottomk without (job) (1, -g)`,
	`sum(rate(c_total[5m])) / count(c_total)`,
	`quantile(0.5, sum by (i) (g))`,
	`sum(count by (job) (g))`,
	`stddev(g)`,
	`2 * sum by (job) (g) - 1`,
	`sum by (x) (label_replace(g, "x", "$1", "i", "(.)"))`,
	`sum(clamp_max(g, 10))`,
	`max(max_over_time(g[30m:1m]))`,
	`sum by (job) (g) + on (job) group_left sum by (job) (c_total)`,
	`min(g) < bool 0`,
	`avg(g offset 2h)`,
	`sum by (job) (g) / on (job) max by (job) (g)`,
	`sum(g) * scalar(sum(c_total))`,
	`group(g) or vector(1)`,
	`count(g > 1000)`,
	`absent(sum(nope))`,
}

type decoded struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Infos     []string `json:"infos"`
}

var position = regexp.MustCompile(` \(\d+:\d+\)$`)

// requireSameAnswer compares two answers. Sample values may differ in the
// last bits: a sharded sum adds the same numbers in another order, and
// floating-point addition is not associative (Prometheus's own answer
// depends on the order of series too).
func requireSameAnswer(t *testing.T, want, got decoded, msgAndArgs ...any) {
	t.Helper()
	type row struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
		Value  *[2]any           `json:"value"`
	}
	rows := func(d decoded) []row {
		out := make([]row, len(d.Data.Result))
		for i, r := range d.Data.Result {
			require.NoError(t, json.Unmarshal(r, &out[i]), msgAndArgs...)
			if out[i].Value != nil {
				out[i].Values, out[i].Value = append(out[i].Values, *out[i].Value), nil
			}
		}
		return out
	}
	var w, g []row
	if want.Data.ResultType == "matrix" || want.Data.ResultType == "vector" {
		w, g = rows(want), rows(got)
		want.Data.Result, got.Data.Result = nil, nil
	}
	// Positions in warnings are those of the query that ran: a shard's or
	// the frontend's part of it.
	for _, d := range []*decoded{&want, &got} {
		for _, ws := range [][]string{d.Warnings, d.Infos} {
			for i := range ws {
				ws[i] = position.ReplaceAllString(ws[i], "")
			}
			sort.Strings(ws)
		}
		d.Warnings, d.Infos = slices.Compact(d.Warnings), slices.Compact(d.Infos)
	}
	require.Equal(t, want, got, msgAndArgs...)
	require.Len(t, g, len(w), msgAndArgs...)
	for i := range w {
		require.Equal(t, w[i].Metric, g[i].Metric, msgAndArgs...)
		require.Len(t, g[i].Values, len(w[i].Values), msgAndArgs...)
		for j, p := range w[i].Values {
			q := g[i].Values[j]
			require.Equal(t, p[0], q[0], msgAndArgs...)
			a, err1 := strconv.ParseFloat(p[1].(string), 64)
			b, err2 := strconv.ParseFloat(q[1].(string), 64)
			require.NoError(t, errors.Join(err1, err2))
			if a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
				require.InEpsilon(t, a, b, 1e-12, msgAndArgs...)
			}
		}
	}
}

func decode(t *testing.T, body []byte) decoded {
	t.Helper()
	var d decoded
	require.NoError(t, json.Unmarshal(body, &d), "%s", body)
	sort.Strings(d.Warnings)
	sort.Strings(d.Infos)
	// Compare series as canonical JSON (key order of re-encoded maps).
	for i, r := range d.Data.Result {
		var v any
		require.NoError(t, json.Unmarshal(r, &v))
		d.Data.Result[i], _ = json.Marshal(v)
	}
	return d
}

// propertyFixture is the data and querier of the property tests, from a
// seed the test logs.
func propertyFixture(t *testing.T) (*rand.Rand, validation.Limits, HandlerDownstream) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	lim := defaultLimits()
	// Every run sharded, however few series its last read: these tests
	// compare sharded answers with unsharded ones.
	lim.QueryShardingTargetSeriesPerShard = 0
	down, st := promDownstream(t, lim)
	generate(t, st, rng)
	return rng, lim, down
}

// randomQuery picks one of queryTemplates, with a job filled in.
func randomQuery(rng *rand.Rand) string {
	q := queryTemplates[rng.Intn(len(queryTemplates))]
	if strings.Contains(q, "%s") {
		q = fmt.Sprintf(q, fmt.Sprintf("j%d", rng.Intn(3)))
	}
	return q
}

// TestSplitAndCacheGiveTheUnsplitAnswer is a property test: for random
// range queries over generated data, the answer through the query-frontend
// (split into parts, sharded, then again from the results cache) is the
// answer of the querier to the whole query (see requireSameAnswer).
func TestSplitAndCacheGiveTheUnsplitAnswer(t *testing.T) {
	rng, lim, down := propertyFixture(t)
	for _, interval := range []time.Duration{24 * time.Hour, 5 * time.Hour} {
		cfg := testConfig()
		cfg.SplitInterval = interval
		f := startFrontend(t, cfg, lim, down)
		f.now = func() time.Time { return time.UnixMilli(base).Add(30 * 24 * time.Hour) } // everything is cacheable
		for n := range 40 {
			q := randomQuery(rng)
			step := []int64{15, 60, 300, 1020, 3600}[rng.Intn(5)]
			start := base/1000 - 3600 + int64(rng.Intn(3*86400))
			end := start + int64(rng.Intn(3*86400))
			if (end-start)/step > 11000 {
				end = start + 11000*step
			}
			form := url.Values{"query": {q}, "start": {fmt.Sprint(start)}, "end": {fmt.Sprint(end)}, "step": {fmt.Sprint(step)}}
			want, err := down.Do(context.Background(), "t", "/prometheus/api/v1/query_range", form, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, want.Status, "%s", want.Body)
			for pass := range 2 { // the second pass is answered from the cache
				got := call(f, "t", "query_range", form)
				require.Equal(t, http.StatusOK, got.Code, "%s", got.Body)
				requireSameAnswer(t, decode(t, want.Body), decode(t, got.Body.Bytes()), "query %d %s start %d end %d step %d split %s pass %d", n, q, start, end, step, interval, pass)
			}
		}
		require.Positive(t, testutilCounter(f.cacheHits))
		require.Positive(t, testutilCounter(f.shardedParts))
	}
}

// TestShardedInstantQueriesGiveTheUnshardedAnswer is the same property for
// instant queries, which are sharded but not split.
func TestShardedInstantQueriesGiveTheUnshardedAnswer(t *testing.T) {
	rng, lim, down := propertyFixture(t)
	for _, shards := range []int{2, 3, 16} {
		lim.QueryShardingTotalShards = shards
		f := startFrontend(t, testConfig(), lim, down)
		for range 30 {
			q := randomQuery(rng)
			ts := base/1000 + int64(rng.Intn(3*86400))
			form := url.Values{"query": {q}, "time": {fmt.Sprint(ts)}}
			want, err := down.Do(context.Background(), "t", "/prometheus/api/v1/query", form, nil)
			require.NoError(t, err)
			got := call(f, "t", "query", form)
			require.Equal(t, want.Status, got.Code, "%s", got.Body)
			w, g := decode(t, want.Body), decode(t, got.Body.Bytes())
			// An instant vector's order is not defined (but for sort).
			if w.Data.ResultType == "vector" && !strings.HasPrefix(q, "sort") {
				for _, d := range []*decoded{&w, &g} {
					sort.Slice(d.Data.Result, func(i, j int) bool { return string(d.Data.Result[i]) < string(d.Data.Result[j]) })
				}
			}
			requireSameAnswer(t, w, g, "query %s time %d shards %d", q, ts, shards)
		}
		require.Positive(t, testutilCounter(f.shardedParts))
	}
}

func TestStatsAllAreMerged(t *testing.T) {
	lim := defaultLimits()
	down, st := promDownstream(t, lim)
	generate(t, st, rand.New(rand.NewSource(1)))
	f := startFrontend(t, testConfig(), lim, down)
	form := url.Values{"query": {"sum(rate(c_total[5m]))"}, "start": {fmt.Sprint(base / 1000)}, "end": {fmt.Sprint(base/1000 + 2*86400)}, "step": {"600"}, "stats": {"all"}}
	whole, err := down.Do(context.Background(), "t", "/prometheus/api/v1/query_range", form, nil)
	require.NoError(t, err)
	split := call(f, "t", "query_range", form)
	require.Equal(t, http.StatusOK, split.Code)
	var a, b struct {
		Data struct {
			Stats queryStats `json:"stats"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(whole.Body, &a))
	require.NoError(t, json.Unmarshal(split.Body.Bytes(), &b))
	require.NotNil(t, b.Data.Stats.Samples)
	require.Equal(t, a.Data.Stats.Samples.Total, b.Data.Stats.Samples.Total, "samples read add up over the parts")
	require.Len(t, b.Data.Stats.Samples.PerStep, len(a.Data.Stats.Samples.PerStep))
	require.Contains(t, b.Data.Stats.Timings, "execTotalTime")
}

func TestFetchedLimitsNameTheLimit(t *testing.T) {
	lim := defaultLimits()
	lim.MaxFetchedSeriesPerQuery = 5
	down, st := promDownstream(t, lim)
	generate(t, st, rand.New(rand.NewSource(1)))
	f := startFrontend(t, testConfig(), lim, down)
	rec := call(f, "t", "query_range", url.Values{"query": {"g"}, "start": {fmt.Sprint(base / 1000)}, "end": {fmt.Sprint(base/1000 + 3600)}, "step": {"60"}})
	require.Equal(t, 422, rec.Code)
	require.Contains(t, rec.Body.String(), "max_fetched_series_per_query")
	// Sharded, each shard reads fewer than 5 of the 24 series; the shards
	// together are one query over the limit.
	rec = call(f, "t", "query_range", url.Values{"query": {"sum(g)"}, "start": {fmt.Sprint(base / 1000)}, "end": {fmt.Sprint(base/1000 + 3600)}, "step": {"60"}})
	require.Equal(t, 422, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "read 24 series over its 16 shards, more than 5, the tenant's limit max_fetched_series_per_query")
	require.Positive(t, testutilCounter(f.shardedParts))

	lim = defaultLimits()
	lim.MaxFetchedSamplesPerQuery = 1000
	down, st = promDownstream(t, lim)
	generate(t, st, rand.New(rand.NewSource(1)))
	f = startFrontend(t, testConfig(), lim, down)
	rec = call(f, "t", "query_range", url.Values{"query": {`g{i="1"}`}, "start": {fmt.Sprint(base / 1000)}, "end": {fmt.Sprint(base/1000 + 3600)}, "step": {"60"}})
	require.Equal(t, http.StatusOK, rec.Code, "61 samples are within the limit")
	rec = call(f, "t", "query_range", url.Values{"query": {`max_over_time(g[1d])`}, "start": {fmt.Sprint(base / 1000)}, "end": {fmt.Sprint(base/1000 + 3600)}, "step": {"60"}})
	require.Equal(t, 422, rec.Code)
	require.Contains(t, rec.Body.String(), "max_fetched_samples_per_query")
	// 24 series × 61 samples: each of 16 shards stays under 1,000.
	rec = call(f, "t", "query_range", url.Values{"query": {`sum(g)`}, "start": {fmt.Sprint(base / 1000)}, "end": {fmt.Sprint(base/1000 + 3600)}, "step": {"60"}})
	require.Equal(t, 422, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "over its 16 shards, more than 1000, the tenant's limit max_fetched_samples_per_query")
}

func testutilCounter(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

// TestQueryExpressionBounds: the query-frontend refuses an expression too
// long or too deeply nested with 400 naming the limit, before parsing it.
func TestQueryExpressionBounds(t *testing.T) {
	lim := defaultLimits()
	lim.MaxQueryExpressionBytes, lim.MaxQueryExpressionDepth = 256<<10, 256
	f := startFrontend(t, testConfig(), lim, &blockingDownstream{release: make(chan struct{})})
	for name, tc := range map[string]struct{ query, msg string }{
		"3 MiB of minus": {strings.Repeat("-", 3<<20) + "1", "max_query_expression_size_bytes"},
		"deep nesting":   {strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), "max_query_expression_depth"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"query", "query_range"} {
				rec := call(f, "a", path, url.Values{"query": {tc.query}, "start": {"0"}, "end": {"3600"}, "step": {"60"}})
				require.Equal(t, http.StatusBadRequest, rec.Code, path)
				require.Contains(t, rec.Body.String(), tc.msg, path)
			}
		})
	}
}

// countingDownstream counts the downstream query calls.
type countingDownstream struct {
	Downstream
	calls atomic.Int64
}

func (c *countingDownstream) Do(ctx context.Context, tenant, path string, form url.Values, header http.Header) (*Response, error) {
	c.calls.Add(1)
	return c.Downstream.Do(ctx, tenant, path, form, header)
}

// TestShardsSizedBySeries: a shardable query's first run gets every
// shard; the next run of the same query gets as many as the series its
// last run read need at query_sharding_target_series_per_shard, and runs
// unsharded when that is fewer than two. The answers stay the same.
func TestShardsSizedBySeries(t *testing.T) {
	lim := defaultLimits()
	require.Equal(t, 2000, lim.QueryShardingTargetSeriesPerShard, "the flag's default")
	down, st := promDownstream(t, lim)
	generate(t, st, rand.New(rand.NewSource(1))) // 24 series of g
	counted := &countingDownstream{Downstream: down}
	form := url.Values{"query": {"sum by (i) (g)"}, "time": {fmt.Sprint(base/1000 + 3600)}}
	run := func(f *Frontend) (int64, []byte) {
		t.Helper()
		before := counted.calls.Load()
		rec := call(f, "t", "query", form)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		return counted.calls.Load() - before, rec.Body.Bytes()
	}
	want, err := down.Do(context.Background(), "t", "/prometheus/api/v1/query", form, nil)
	require.NoError(t, err)
	same := func(body []byte) {
		t.Helper()
		w, g := decode(t, want.Body), decode(t, body)
		for _, d := range []*decoded{&w, &g} {
			sort.Slice(d.Data.Result, func(i, j int) bool { return string(d.Data.Result[i]) < string(d.Data.Result[j]) })
		}
		requireSameAnswer(t, w, g, "sum by (i) (g)")
	}

	f := startFrontend(t, testConfig(), lim, counted)
	calls, body := run(f)
	require.EqualValues(t, 16, calls, "the first run: every shard")
	same(body)
	calls, body = run(f)
	require.EqualValues(t, 1, calls, "24 series are fewer than two shards of 2,000: unsharded")
	same(body)
	require.Equal(t, 1.0, testutilCounter(f.shardingSkipped))
	calls, _ = run(f)
	require.EqualValues(t, 1, calls, "the unsharded run reported its series too")

	lim.QueryShardingTargetSeriesPerShard = 5
	f = startFrontend(t, testConfig(), lim, counted)
	run(f)
	calls, body = run(f)
	require.EqualValues(t, 5, calls, "24 series at 5 a shard: 5 shards")
	same(body)
	lim.QueryShardingTargetSeriesPerShard = 1
	f = startFrontend(t, testConfig(), lim, counted)
	run(f)
	calls, _ = run(f)
	require.EqualValues(t, 16, calls, "24 series at 1 a shard: bounded by query_sharding_total_shards")
}
