package federation

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// The logs world: streams of four clusters, written once to a central
// store (cluster and region as stream labels) and once to four leaves
// (without them: the leaves' external labels), the leaves under two
// regional federators under one global federator, all serving Loki's
// HTTP API.

const logsStart = int64(1_700_000_000) * 1e9 // ns

// memLogs is a tenant's logs in memory, as lokiapi reads a Backend.
type memLogs struct{ streams []logql.Stream }

func (m *memLogs) matching(start, end int64, ms []*labels.Matcher) []logql.Stream {
	var out []logql.Stream
	for _, s := range m.streams {
		ok := true
		for _, mt := range ms {
			ok = ok && mt.Matches(s.Labels.Get(mt.Name))
		}
		if !ok {
			continue
		}
		var es []logql.Entry
		for _, e := range s.Entries {
			if e.Timestamp >= start && e.Timestamp < end {
				es = append(es, e)
			}
		}
		if len(es) > 0 {
			out = append(out, logql.Stream{Labels: s.Labels, Entries: es})
		}
	}
	return out
}

func (m *memLogs) Select(_ context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	return &streamsIterator{streams: m.matching(p.Start, p.End, p.Matchers), i: -1}, nil
}

func (m *memLogs) Labels(_ context.Context, start, end int64, ms []*labels.Matcher) ([]string, error) {
	seen := map[string]bool{}
	for _, s := range m.matching(start, end, ms) {
		s.Labels.Range(func(l labels.Label) { seen[l.Name] = true })
	}
	return sortedKeys(seen), nil
}

func (m *memLogs) LabelValues(_ context.Context, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	seen := map[string]bool{}
	for _, s := range m.matching(start, end, ms) {
		if v := s.Labels.Get(name); v != "" {
			seen[v] = true
		}
	}
	return sortedKeys(seen), nil
}

func (m *memLogs) Series(_ context.Context, start, end int64, sets [][]*labels.Matcher) ([]labels.Labels, error) {
	seen := map[string]labels.Labels{}
	for _, ms := range sets {
		for _, s := range m.matching(start, end, ms) {
			seen[s.Labels.String()] = s.Labels
		}
	}
	out := make([]labels.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, labels.Compare)
	return out, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// writeLogsWorld returns the central store and the four leaves: per
// cluster, streams of three apps at two levels, an hour of logfmt lines.
func writeLogsWorld(seed uint64) (*memLogs, []*memLogs) {
	rng := rand.New(rand.NewPCG(seed, 7))
	central := &memLogs{}
	leaves := make([]*memLogs, len(clusters))
	msgs := []string{"served request", "error talking to db", "cache miss", "retrying"}
	for ci, cl := range clusters {
		leaves[ci] = &memLogs{}
		for _, app := range []string{"api", "web", "db"} {
			for _, lvl := range []string{"info", "warn"} {
				var es []logql.Entry
				n := 50 + rng.IntN(150)
				for range n {
					ts := logsStart + rng.Int64N(int64(time.Hour))
					status := []int{200, 200, 200, 404, 500, 503}[rng.IntN(6)]
					line := fmt.Sprintf("level=%s msg=%q status=%d latency=%.3f pod=%s-%d", lvl, msgs[rng.IntN(len(msgs))], status, rng.Float64()*2, app, rng.IntN(3))
					es = append(es, logql.Entry{Timestamp: ts, Line: line})
				}
				// Two lines at one time in every stream: a page of
				// fetched lines may end between them.
				es = append(es, logql.Entry{Timestamp: logsStart + int64(30*time.Minute), Line: "level=" + lvl + " msg=\"tick\" status=200 latency=0.1"},
					logql.Entry{Timestamp: logsStart + int64(30*time.Minute), Line: "level=" + lvl + " msg=\"tock\" status=200 latency=0.2"})
				slices.SortStableFunc(es, func(a, b logql.Entry) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
				leaf := labels.FromStrings("app", app, "level", lvl)
				leaves[ci].streams = append(leaves[ci].streams, logql.Stream{Labels: leaf, Entries: es})
				central.streams = append(central.streams, logql.Stream{Labels: labels.FromStrings("app", app, "level", lvl, "cluster", cl.name, "region", cl.region), Entries: es})
			}
		}
	}
	return central, leaves
}

// serveLoki serves Loki's query API over b with engine eng, the tenant
// put in the context as Canopy's resolver does; requests counts the query
// requests.
func serveLoki(t testing.TB, eng *logql.Engine, b lokiapi.Backend, wrap func(http.Handler) http.Handler) (*httptest.Server, *atomic.Int64) {
	var cfg lokiapi.Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.PanicOnError))
	var h http.Handler = lokiapi.NewHandler(cfg, eng, b, nil)
	if wrap != nil {
		h = wrap(h)
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/query") {
			n.Add(1)
		}
		org := r.Header.Get("X-Scope-OrgID")
		if org == "" {
			org = "t1"
		}
		h.ServeHTTP(w, r.WithContext(user.InjectOrgID(r.Context(), org)))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// logsFederator serves a federator's Loki API over children.
func logsFederator(t testing.TB, children []ChildConfig, mutate func(*Config)) (*httptest.Server, *Federator) {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.PanicOnError))
	cfg.Children = children
	if mutate != nil {
		mutate(&cfg)
	}
	f, err := New(cfg, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	logs := f.Logs()
	srv, _ := serveLoki(t, logql.NewEngine(nil, nil).WithRemote(logs), logs, f.Wrap)
	return srv, f
}

type logsWorld struct {
	central  string
	global   string
	leaves   []*httptest.Server
	requests []*atomic.Int64 // the leaves' query requests
}

func newLogsWorld(t testing.TB, seed uint64, mutate func(*Config)) *logsWorld {
	central, leaves := writeLogsWorld(seed)
	csrv, _ := serveLoki(t, logql.NewEngine(nil, nil), central, nil)
	w := &logsWorld{central: csrv.URL}
	byRegion := map[string][]ChildConfig{}
	for i, leaf := range leaves {
		srv, n := serveLoki(t, logql.NewEngine(nil, nil), leaf, nil)
		w.leaves = append(w.leaves, srv)
		w.requests = append(w.requests, n)
		// A Canopy cluster's Prometheus URL: its Loki API is beside it.
		byRegion[clusters[i].region] = append(byRegion[clusters[i].region], ChildConfig{
			Name: clusters[i].name, URL: srv.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": clusters[i].name},
		})
	}
	var regions []ChildConfig
	for _, region := range []string{"eu", "us"} {
		srv, _ := logsFederator(t, byRegion[region], mutate)
		regions = append(regions, ChildConfig{Name: region, URL: srv.URL + "/prometheus", ExternalLabels: map[string]string{"region": region}})
	}
	global, _ := logsFederator(t, regions, mutate)
	w.global = global.URL
	return w
}

// lokiQuery asks base's Loki API and returns the decoded answer, or the
// error's body.
func lokiQuery(t testing.TB, base, path string, form url.Values) (*logql.Result, int, string) {
	t.Helper()
	resp, err := http.Get(base + lokiapi.PathPrefix + path + "?" + form.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, string(body)
	}
	res, err := lokiapi.DecodeQueryResult(body)
	require.NoError(t, err, string(body))
	return res, resp.StatusCode, string(body)
}

// requireSameResult checks two answers are equal: streams entry for
// entry, series point for point (sums in another order within 1e-12).
func requireSameResult(t testing.TB, want, got *logql.Result, msg string) {
	t.Helper()
	require.Equal(t, want.Type, got.Type, msg)
	require.Equal(t, len(want.Streams), len(got.Streams), msg)
	for i := range want.Streams {
		require.Equal(t, want.Streams[i].Labels.String(), got.Streams[i].Labels.String(), msg)
		require.Equal(t, want.Streams[i].Entries, got.Streams[i].Entries, "%s: stream %s", msg, want.Streams[i].Labels)
	}
	m := func(r *logql.Result) map[string]map[int64]float64 {
		out := map[string]map[int64]float64{}
		for _, s := range r.Matrix {
			out[s.Metric.String()] = map[int64]float64{}
			for _, p := range s.Floats {
				out[s.Metric.String()][p.T] = p.F
			}
		}
		for _, s := range r.Vector {
			if out[s.Metric.String()] == nil {
				out[s.Metric.String()] = map[int64]float64{}
			}
			out[s.Metric.String()][s.T] = s.F
		}
		return out
	}
	w, g := m(want), m(got)
	require.Equal(t, sortedSeries(w), sortedSeries(g), msg)
	for k, ps := range w {
		require.Equal(t, len(ps), len(g[k]), "%s: %s", msg, k)
		for ts, f := range ps {
			gf, ok := g[k][ts]
			require.True(t, ok, "%s: %s has no point at %d", msg, k, ts)
			if f != gf && !(math.IsNaN(f) && math.IsNaN(gf)) {
				require.InEpsilon(t, f, gf, 1e-12, "%s: %s at %d", msg, k, ts)
			}
		}
	}
}

func sortedSeries(m map[string]map[int64]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fetchedLogQueries marks the queries below it in federatedLogQueries:
// the federator computes them from the children's lines.
const fetchedLogQueries = "# fetched"

var federatedLogQueries = []string{
	// Log queries: the limit best of all clusters.
	`{app="api"}`,
	`{app="api"} |= "error"`,
	`{app=~"api|web", cluster="eu-1"}`,
	`{app="web", region="us"} | logfmt | status >= 500`,
	// Metric queries: range aggregations pushed down.
	`sum(count_over_time({app="api"}[5m]))`,
	`sum by (cluster) (rate({app=~".+"}[5m]))`,
	`sum by (region, level) (count_over_time({app="web"} | logfmt [10m]))`,
	`count_over_time({app="db"}[5m])`,
	`topk(3, sum by (app, cluster) (rate({app=~".+"}[5m])))`,
	`max by (app) (max_over_time({app="api"} | logfmt | unwrap latency [5m]))`,
	`max_over_time({app="api"} | logfmt | unwrap latency [5m]) by (app)`,
	`min_over_time({app="api"} | logfmt | unwrap latency [5m]) by (level)`,
	`sum_over_time({app="web"} | logfmt | unwrap latency [5m]) by (app)`,
	`sum by (app) (bytes_over_time({app=~".+"}[5m]))`,
	`sum(rate({app="api"} |= "error" [5m])) / sum(rate({app="api"}[5m]))`,
	`avg by (app) (count_over_time({app=~".+"}[5m]))`,
	`count(count_over_time({app=~".+"}[5m]))`,
	`absent_over_time({app="nope"}[5m])`,
	`absent_over_time({app="api", cluster="eu-1"} |= "never there" [5m])`,
	`sum by (status) (count_over_time({app="api", cluster=~"us-.*"} | logfmt [5m]))`,
	fetchedLogQueries,
	// Computed on the federator from the children's lines.
	`avg_over_time({app="api"} | logfmt | unwrap latency [5m]) by (app)`,
	`quantile_over_time(0.9, {app="web"} | logfmt | unwrap latency [10m]) by (level)`,
	`sum by (cluster) (count_over_time({app="api"} | drop cluster [5m]))`,
	`{app="db"} | logfmt | line_format "{{.msg}} {{.cluster}}"`,
	`{app="api"} | region="eu"`,
}

func TestFederatedLogsEqualCentral(t *testing.T) {
	// Pages of fetched lines end within the 12 lines a leaf has at one
	// time.
	defer func(n int) { fetchPage = n }(fetchPage)
	fetchPage = 13
	w := newLogsWorld(t, 1, nil)
	start, end := logsStart, logsStart+int64(time.Hour)
	for _, q := range federatedLogQueries {
		if q == fetchedLogQueries {
			continue
		}
		forms := []url.Values{{"query": {q}, "start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}, "step": {"60"}, "limit": {"70"}}}
		if strings.HasPrefix(q, "{") {
			forms = append(forms, url.Values{"query": {q}, "start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}, "limit": {"33"}, "direction": {"forward"}})
		} else {
			forms = append(forms, url.Values{"query": {q}, "time": {strconv.FormatInt(start+int64(40*time.Minute), 10)}})
		}
		for _, form := range forms {
			path := "query_range"
			if form.Has("time") {
				path = "query"
			}
			want, code, body := lokiQuery(t, w.central, path, form)
			require.Equal(t, http.StatusOK, code, "%s: %s", q, body)
			got, code, body := lokiQuery(t, w.global, path, form)
			require.Equal(t, http.StatusOK, code, "%s: %s", q, body)
			if !strings.HasPrefix(q, "absent") {
				require.NotZero(t, len(want.Streams)+len(want.Matrix)+len(want.Vector), "%s: the central answer is empty", q)
			}
			requireSameResult(t, want, got, q+" "+form.Encode())
		}
	}
}

func TestFederatedLogLabels(t *testing.T) {
	w := newLogsWorld(t, 2, nil)
	form := url.Values{"start": {strconv.FormatInt(logsStart, 10)}, "end": {strconv.FormatInt(logsStart+int64(time.Hour), 10)}}
	for _, path := range []string{"labels", "label/cluster/values", "label/app/values", "label/region/values", "series"} {
		for _, sel := range []string{"", `{app="api"}`, `{app="db", cluster="us-2"}`} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if sel != "" {
				f.Set("query", sel)
				f.Set("match[]", sel)
			} else if path == "series" {
				f.Set("match[]", `{app=~".+"}`)
			}
			get := func(base string) any {
				resp, err := http.Get(base + lokiapi.PathPrefix + path + "?" + f.Encode())
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				var env struct{ Data any }
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
				return env.Data
			}
			want := get(w.central)
			require.NotEmpty(t, want, "%s %s", path, sel)
			require.ElementsMatch(t, want, get(w.global), "%s %s", path, sel)
		}
	}
}

func TestFederatedLogsPruning(t *testing.T) {
	w := newLogsWorld(t, 3, nil)
	for _, n := range w.requests {
		n.Store(0)
	}
	form := url.Values{"query": {`sum(count_over_time({app="api", cluster="eu-2"}[5m]))`}, "start": {strconv.FormatInt(logsStart, 10)}, "end": {strconv.FormatInt(logsStart+int64(time.Hour), 10)}, "step": {"300"}}
	_, code, body := lokiQuery(t, w.global, "query_range", form)
	require.Equal(t, http.StatusOK, code, body)
	for i, n := range w.requests {
		want := int64(0)
		if clusters[i].name == "eu-2" {
			want = 1
		}
		require.Equal(t, want, n.Load(), "requests to %s", clusters[i].name)
	}
}

func TestFederatedLogsPartialResponse(t *testing.T) {
	w := newLogsWorld(t, 4, nil)
	w.leaves[2].Close() // us-1
	form := url.Values{"query": {`{app="api"}`}, "start": {strconv.FormatInt(logsStart, 10)}, "end": {strconv.FormatInt(logsStart+int64(time.Hour), 10)}, "limit": {"20"}}
	_, code, body := lokiQuery(t, w.global, "query_range", form)
	require.Equal(t, http.StatusInternalServerError, code, body)
	require.Contains(t, body, "child us-1")
	require.Contains(t, body, "partial_response=abort")

	form.Set("partial_response", "warn")
	res, code, body := lokiQuery(t, w.global, "query_range", form)
	require.Equal(t, http.StatusOK, code, body)
	require.NotEmpty(t, res.Streams)
	require.Len(t, res.Warnings, 1, body)
	require.Contains(t, res.Warnings[0], "child us-1")
	for _, s := range res.Streams {
		require.NotEqual(t, "us-1", s.Labels.Get("cluster"))
	}
}

// TestFederatedLogsFetchLimit checks which queries the children compute
// whole: with no line to fetch allowed, those answer and the others fail,
// naming the flag.
func TestFederatedLogsFetchLimit(t *testing.T) {
	w := newLogsWorld(t, 5, func(c *Config) { c.MaxFetchedLogLines = 0 })
	fetched := false
	for _, q := range federatedLogQueries {
		if q == fetchedLogQueries {
			fetched = true
			continue
		}
		form := url.Values{"query": {q}, "start": {strconv.FormatInt(logsStart, 10)}, "end": {strconv.FormatInt(logsStart+int64(time.Hour), 10)}, "step": {"60"}}
		_, code, body := lokiQuery(t, w.global, "query_range", form)
		if !fetched {
			require.Equal(t, http.StatusOK, code, "%s: %s", q, body)
			continue
		}
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", q, body)
		require.Contains(t, body, "-federation.max-fetched-log-lines")
	}
	require.True(t, fetched)
}
