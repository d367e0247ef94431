package federation

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/util/tlstest"
)

// The test world: series of four clusters in two regions, written once to
// a central store (cluster and region as labels) and once to four leaf
// stores (without them: the leaves' external labels), the leaves under
// two regional federators under one global federator, all over HTTP.

var clusters = []struct{ name, region string }{{"eu-1", "eu"}, {"eu-2", "eu"}, {"us-1", "us"}, {"us-2", "us"}}

const (
	worldStart = int64(1_700_000_000_000)
	worldStep  = int64(15_000)
	worldSteps = 240 // an hour
)

func queryConfig() querier.Config {
	var cfg querier.Config
	fs := flag.NewFlagSet("test", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	return cfg
}

// serveAPI serves Prometheus's HTTP API over q with Canopy's querier API
// (under /prometheus); requests counts the query requests.
func serveAPI(t testing.TB, q storage.Queryable, engineOf func(querier.Config) (http.Handler, error)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	h, err := engineOf(queryConfig())
	require.NoError(t, err)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/api/v1/query") {
			n.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// storeAPI is the plain querier API over a store.
func storeAPI(q storage.Queryable) func(querier.Config) (http.Handler, error) {
	return func(cfg querier.Config) (http.Handler, error) {
		eng := querier.NewEngine(cfg, nil, nil)
		eq, _ := q.(storage.ExemplarQueryable)
		return querier.NewAPI(cfg, eng, q, eq, nil, nil, nil, prometheus.NewRegistry(), prometheus.NewRegistry()), nil
	}
}

// federatorAPI is a federator over children.
func federatorAPI(t testing.TB, children []ChildConfig, mutate func(*Config)) (func(querier.Config) (http.Handler, error), **Federator) {
	var fp = new(*Federator)
	return func(qcfg querier.Config) (http.Handler, error) {
		var cfg Config
		fs := flag.NewFlagSet("test", flag.PanicOnError)
		cfg.RegisterFlags(fs)
		cfg.Children = children
		if mutate != nil {
			mutate(&cfg)
		}
		p := parser.NewParser(querier.ParserOptions(qcfg))
		f, err := New(cfg, p, nil, prometheus.NewRegistry())
		if err != nil {
			return nil, err
		}
		*fp = f
		eng := f.Engine(querier.NewEngine(qcfg, nil, nil), qcfg.LookbackDelta, qcfg.DefaultEvaluationInterval)
		h := f.Wrap(querier.NewAPI(qcfg, eng, f, f, f, nil, nil, prometheus.NewRegistry(), prometheus.NewRegistry()))
		// The tenant, as Canopy's resolver puts it in the context.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if org := r.Header.Get("X-Scope-OrgID"); org != "" {
				r = r.WithContext(user.InjectOrgID(r.Context(), org))
			}
			h.ServeHTTP(w, r)
		}), nil
	}, fp
}

type world struct {
	central    *httptest.Server
	global     *httptest.Server
	leaves     []*httptest.Server
	leafHits   []*atomic.Int64
	regional   []*httptest.Server
	globalFed  *Federator
	regionFeds []*Federator
}

// writeWorld writes the test series to the central store and the leaves.
func writeWorld(t testing.TB, seed uint64) (central storage.Storage, leaves []storage.Storage) {
	rng := rand.New(rand.NewPCG(seed, 1))
	central = teststorage.New(t)
	for range clusters {
		leaves = append(leaves, teststorage.New(t))
	}
	capp := central.Appender(context.Background())
	for ci, cl := range clusters {
		lapp := leaves[ci].Appender(context.Background())
		add := func(ls labels.Labels, t0 int64, v float64) {
			lref, err := lapp.Append(0, ls, t0, v)
			require.NoError(t, err)
			b := labels.NewBuilder(ls)
			b.Set("cluster", cl.name)
			b.Set("region", cl.region)
			cref, err := capp.Append(0, b.Labels(), t0, v)
			require.NoError(t, err)
			if ls.Get(labels.MetricName) == "x_total" && (t0/worldStep)%20 == 0 {
				ex := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", fmt.Sprintf("%s-%d", cl.name, t0)), Value: v, Ts: t0, HasTs: true}
				_, err = lapp.AppendExemplar(lref, ls, ex)
				require.NoError(t, err)
				_, err = capp.AppendExemplar(cref, b.Labels(), ex)
				require.NoError(t, err)
			}
		}
		for job := range 3 {
			for inst := range 2 + ci%2 {
				base := labels.FromStrings("job", fmt.Sprintf("job-%d", job), "instance", fmt.Sprintf("%s-%d", cl.name, inst))
				counter, gauge := float64(rng.IntN(100)), rng.Float64()*100
				absentFrom := -1
				if rng.IntN(4) == 0 {
					absentFrom = rng.IntN(worldSteps)
				}
				for s := range worldSteps {
					ts := worldStart + int64(s)*worldStep
					if s == absentFrom {
						break // the series ends: its later steps have no sample
					}
					counter += float64(rng.IntN(10))
					if rng.IntN(60) == 0 {
						counter = 0 // a reset
					}
					gauge += rng.NormFloat64()
					add(labels.NewBuilder(base).Set(labels.MetricName, "x_total").Labels(), ts, counter)
					add(labels.NewBuilder(base).Set(labels.MetricName, "y").Labels(), ts, gauge)
					if inst == 0 {
						// A native histogram (a counter of observations).
						nh := &histogram.Histogram{Schema: int32(ci % 2), ZeroThreshold: 0.001, ZeroCount: uint64(s), Count: uint64(6 * (s + 1)), Sum: float64(s) * 1.5,
							PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}}, PositiveBuckets: []int64{int64(s + 1), 1, int64(s)},
							NegativeSpans: []histogram.Span{{Offset: 1, Length: 1}}, NegativeBuckets: []int64{int64(2*s + 4 - s)}}
						nh.Count = nh.ZeroCount + uint64(s+1) + uint64(s+2) + uint64(2*s+2) + uint64(s+4)
						ls := labels.NewBuilder(base).Set(labels.MetricName, "nh").Labels()
						_, err := lapp.AppendHistogram(0, ls, ts, nh, nil)
						require.NoError(t, err)
						_, err = capp.AppendHistogram(0, labels.NewBuilder(ls).Set("cluster", cl.name).Set("region", cl.region).Labels(), ts, nh, nil)
						require.NoError(t, err)
					}
					cum := 0.0
					for _, le := range []string{"0.1", "0.5", "1", "+Inf"} {
						cum += float64(rng.IntN(3))
						add(labels.NewBuilder(base).Set(labels.MetricName, "h_bucket").Set("le", le).Labels(), ts, cum*float64(s+1))
					}
				}
			}
		}
		require.NoError(t, lapp.Commit())
	}
	require.NoError(t, capp.Commit())
	return central, leaves
}

func newWorld(t testing.TB, seed uint64) *world {
	central, leaves := writeWorld(t, seed)
	ls := make([]storage.Queryable, len(leaves))
	for i, l := range leaves {
		ls[i] = l
	}
	return newTree(t, central, ls)
}

// newTree serves central and the leaves (one a cluster of clusters)
// and builds the tree over the leaves: a regional federator a region,
// a global one over them.
func newTree(t testing.TB, central storage.Queryable, leaves []storage.Queryable) *world {
	return newTreeLabeled(t, central, leaves, "cluster", "region")
}

// newTreeLabeled is newTree with other names for the external labels.
func newTreeLabeled(t testing.TB, central storage.Queryable, leaves []storage.Queryable, clusterLabel, regionLabel string) *world {
	w := &world{}
	w.central, _ = serveAPI(t, central, storeAPI(central))
	byRegion := map[string][]ChildConfig{}
	for i, cl := range clusters {
		srv, hits := serveAPI(t, leaves[i], storeAPI(leaves[i]))
		w.leaves = append(w.leaves, srv)
		w.leafHits = append(w.leafHits, hits)
		byRegion[cl.region] = append(byRegion[cl.region], ChildConfig{Name: cl.name, URL: srv.URL + "/prometheus", ExternalLabels: map[string]string{clusterLabel: cl.name}})
	}
	var top []ChildConfig
	for _, region := range []string{"eu", "us"} {
		api, fp := federatorAPI(t, byRegion[region], nil)
		srv, _ := serveAPI(t, nil, api)
		w.regional = append(w.regional, srv)
		w.regionFeds = append(w.regionFeds, *fp)
		top = append(top, ChildConfig{Name: region, URL: srv.URL + "/prometheus", ExternalLabels: map[string]string{regionLabel: region}})
	}
	api, fp := federatorAPI(t, top, nil)
	w.global, _ = serveAPI(t, nil, api)
	w.globalFed = *fp
	return w
}

// apiResult is a query's answer from the HTTP API.
type apiResult struct {
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

func getJSON(t testing.TB, base, path string, form url.Values) (apiResult, http.Header) {
	t.Helper()
	resp, err := http.Get(base + "/prometheus" + path + "?" + form.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r apiResult
	require.NoError(t, json.Unmarshal(body, &r), "%s", body)
	return r, resp.Header
}

// matrixOf returns a query answer as a sorted matrix (a vector's samples
// as one-point series, a scalar as one unlabeled series).
func matrixOf(t testing.TB, r apiResult) model.Matrix {
	t.Helper()
	var m model.Matrix
	switch r.Data.ResultType {
	case "matrix":
		require.NoError(t, json.Unmarshal(r.Data.Result, &m))
	case "vector":
		var v model.Vector
		require.NoError(t, json.Unmarshal(r.Data.Result, &v))
		for _, s := range v {
			ss := &model.SampleStream{Metric: s.Metric}
			if s.Histogram != nil {
				ss.Histograms = []model.SampleHistogramPair{{Timestamp: s.Timestamp, Histogram: s.Histogram}}
			} else {
				ss.Values = []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}}
			}
			m = append(m, ss)
		}
	case "scalar":
		var s model.Scalar
		require.NoError(t, json.Unmarshal(r.Data.Result, &s))
		m = model.Matrix{{Metric: model.Metric{}, Values: []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}}}}
	default:
		t.Fatalf("result type %q", r.Data.ResultType)
	}
	slices.SortFunc(m, func(a, b *model.SampleStream) int { return strings.Compare(a.Metric.String(), b.Metric.String()) })
	return m
}

// requireSameMatrix compares two answers series for series and value for
// value, floats within a relative 1e-12.
func requireSameMatrix(t testing.TB, want, got model.Matrix, msg string) {
	t.Helper()
	wl, gl := make([]string, len(want)), make([]string, len(got))
	for i, s := range want {
		wl[i] = s.Metric.String()
	}
	for i, s := range got {
		gl[i] = s.Metric.String()
	}
	require.Equal(t, wl, gl, "%s: series", msg)
	close := func(a, b float64, what string) {
		if a == b || math.IsNaN(a) && math.IsNaN(b) {
			return
		}
		require.False(t, math.IsInf(a, 0) || math.IsInf(b, 0) || math.IsNaN(a) || math.IsNaN(b), "%s: want %v, got %v", what, a, b)
		require.InDelta(t, 0, (a-b)/math.Max(math.Abs(a), math.Abs(b)), 1e-12, "%s: want %v, got %v", what, a, b)
	}
	for i := range want {
		require.Equal(t, len(want[i].Histograms), len(got[i].Histograms), "%s: histogram points of %s", msg, wl[i])
		for k, wh := range want[i].Histograms {
			gh := got[i].Histograms[k]
			what := fmt.Sprintf("%s: %s at %d", msg, wl[i], wh.Timestamp)
			require.Equal(t, wh.Timestamp, gh.Timestamp, what)
			close(float64(wh.Histogram.Count), float64(gh.Histogram.Count), what+" count")
			close(float64(wh.Histogram.Sum), float64(gh.Histogram.Sum), what+" sum")
			require.Equal(t, len(wh.Histogram.Buckets), len(gh.Histogram.Buckets), what+" buckets")
			for j, wb := range wh.Histogram.Buckets {
				gb := gh.Histogram.Buckets[j]
				require.Equal(t, wb.Boundaries, gb.Boundaries, what)
				close(float64(wb.Lower), float64(gb.Lower), what+" bucket lower")
				close(float64(wb.Upper), float64(gb.Upper), what+" bucket upper")
				close(float64(wb.Count), float64(gb.Count), what+" bucket count")
			}
		}
		require.Equal(t, len(want[i].Values), len(got[i].Values), "%s: points of %s", msg, wl[i])
		for k, wp := range want[i].Values {
			gp := got[i].Values[k]
			require.Equal(t, wp.Timestamp, gp.Timestamp, "%s: %s", msg, wl[i])
			a, b := float64(wp.Value), float64(gp.Value)
			if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || a == b {
				require.True(t, a == b || math.IsNaN(a) && math.IsNaN(b), "%s: %s at %d: want %v, got %v", msg, wl[i], wp.Timestamp, a, b)
				continue
			}
			require.InDelta(t, 0, (a-b)/math.Max(math.Abs(a), math.Abs(b)), 1e-12, "%s: %s at %d: want %v, got %v", msg, wl[i], wp.Timestamp, a, b)
		}
	}
}

func rangeForm(q string) url.Values {
	return url.Values{
		"query": {q},
		"start": {fmt.Sprint(worldStart/1000 + 300)},
		"end":   {fmt.Sprint((worldStart + worldSteps*worldStep) / 1000)},
		"step":  {"60"},
	}
}

func instantForm(q string, at int64) url.Values {
	return url.Values{"query": {q}, "time": {fmt.Sprint(at / 1000)}}
}

// equivalenceQueries cover each rewrite rule: pushed whole, decomposed,
// evaluated by the federator over pushed parts, and over raw samples.
var equivalenceQueries = []string{
	`x_total`,
	`y{cluster="eu-1"}`,
	`y{region="us", job="job-1"}`,
	`rate(x_total[5m])`,
	`sum(rate(x_total[5m]))`,
	`sum by (cluster) (rate(x_total[5m]))`,
	`sum by (job) (rate(x_total[5m]))`,
	`sum without (instance) (rate(x_total[5m]))`,
	`sum without (instance, cluster) (rate(x_total[5m]))`,
	`avg by (job) (y)`,
	`avg(y)`,
	`count by (region) (y)`,
	`count(y > 50)`,
	`min(y)`, `max by (job) (y)`, `group by (job) (y)`,
	`topk(3, y)`, `bottomk(2, y) by (job)`, `topk(1, sum by (cluster) (y))`,
	`count_values("v", y)`, `count_values by (job) ("v", round(y / 10))`,
	`quantile(0.9, y)`, `quantile by (region) (0.5, y)`, `stddev(y)`, `stdvar by (job) (y)`,
	`histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))`,
	`histogram_quantile(0.9, sum by (le, cluster) (rate(h_bucket[5m])))`,
	`histogram_quantile(0.5, rate(h_bucket[5m]))`,
	`rate(x_total[5m]) / on (job, instance, cluster, region) group_left rate(x_total[10m])`,
	`sum by (job) (rate(x_total[5m])) / sum by (job) (rate(x_total[10m]))`,
	`y - ignoring (cluster) group_left y{cluster="eu-1"}`,
	`y > 60 and y < 80`, `y{cluster="eu-2"} or y{cluster="us-1"}`, `y unless y > 50`,
	`sum(y) + count(y)`, `-sum(y)`, `y * 2 + 1`, `2 ^ scalar(count(y))`,
	`absent(nope)`, `absent(y{cluster="eu-1"})`, `absent_over_time(y{cluster="eu-1"}[5m])`,
	`sort(y)`, `scalar(sum(y))`, `vector(1) + sum(y)`, `time() - timestamp(y)`,
	`label_replace(y, "c", "$1", "cluster", "(.*)")`, `label_replace(y, "j", "$1", "job", "job-(.*)")`,
	`max_over_time(rate(x_total[5m])[10m:1m])`, `max_over_time(sum(rate(x_total[5m]))[10m:1m])`,
	`sum(y offset 5m)`, `sum(y @ 1700001000)`, `changes(y[10m])`, `resets(x_total[30m])`,
	`increase(x_total[1h])`, `predict_linear(y[10m], 60)`, `quantile_over_time(0.5, y[10m])`,
	`sum_over_time(y[5m:30s])`, `last_over_time(y[2m])`,
	// Subqueries the federator evaluates: parts at their steps.
	`max_over_time(sum(y)[7m:45s] offset 3m)`, `min_over_time(count(y > 50)[5m:])`,
	`max_over_time(avg_over_time(sum by (job) (y)[5m:1m])[10m:2m])`,
	`max_over_time(sum(y)[5m:1m] @ 1700001000)`, `max_over_time(sum(y)[5m:1m] @ end())`,
	`absent_over_time(y{cluster="eu-1", job="job-1"}[5m])`, `absent_over_time(nope{job="x"}[5m])`,
	`count(last_over_time(y[1m]))`, `sum(count_over_time(y[3m]))`,
	// Native histograms: answered as JSON buckets, rebuilt.
	`nh`, `sum(rate(nh[5m]))`, `sum by (region) (nh)`, `histogram_quantile(0.9, sum(rate(nh[5m])))`,
	`histogram_count(sum by (job) (nh))`, `histogram_sum(rate(nh{cluster="us-1"}[5m]))`, `avg(nh)`,
}

// TestFederatedEqualsCentral: every query answers through the global
// federator (two levels above the leaves) exactly as the central store.
func TestFederatedEqualsCentral(t *testing.T) {
	w := newWorld(t, 1)
	for _, q := range equivalenceQueries {
		want, _ := getJSON(t, w.central.URL, "/api/v1/query_range", rangeForm(q))
		got, _ := getJSON(t, w.global.URL, "/api/v1/query_range", rangeForm(q))
		require.Equal(t, "success", want.Status, "%s: central: %s", q, want.Error)
		require.Equal(t, "success", got.Status, "%s: federated: %s", q, got.Error)
		requireSameMatrix(t, matrixOf(t, want), matrixOf(t, got), "range "+q)
		if q == "nh" {
			require.NotEmpty(t, matrixOf(t, want)[0].Histograms, "the histogram queries compare histograms")
		}
		at := worldStart + 1800_000
		want, _ = getJSON(t, w.central.URL, "/api/v1/query", instantForm(q, at))
		got, _ = getJSON(t, w.global.URL, "/api/v1/query", instantForm(q, at))
		require.Equal(t, "success", got.Status, "%s: federated: %s", q, got.Error)
		requireSameMatrix(t, matrixOf(t, want), matrixOf(t, got), "instant "+q)
	}
}

// TestPruning: a query is sent only to the children whose external labels
// its selectors can match, down the tree.
func TestPruning(t *testing.T) {
	w := newWorld(t, 4)
	hits := func() []int64 {
		out := make([]int64, len(w.leafHits))
		for i, h := range w.leafHits {
			out[i] = h.Load()
		}
		return out
	}
	for _, tc := range []struct {
		query string
		asked []bool // by leaf: eu-1, eu-2, us-1, us-2
	}{
		{`y{cluster="eu-1"}`, []bool{true, false, false, false}},
		{`sum(rate(x_total{cluster=~"us-.*"}[5m]))`, []bool{false, false, true, true}},
		{`y{region="eu", cluster!="eu-1"}`, []bool{false, true, false, false}},
		{`y{cluster="mars"}`, []bool{false, false, false, false}},
		{`y`, []bool{true, true, true, true}},
	} {
		before := hits()
		res, _ := getJSON(t, w.global.URL, "/api/v1/query", instantForm(tc.query, worldStart+1800_000))
		require.Equal(t, "success", res.Status, tc.query)
		after := hits()
		for i := range after {
			require.Equal(t, tc.asked[i], after[i] > before[i], "%s: leaf %s asked", tc.query, clusters[i].name)
		}
		want, _ := getJSON(t, w.central.URL, "/api/v1/query", instantForm(tc.query, worldStart+1800_000))
		requireSameMatrix(t, matrixOf(t, want), matrixOf(t, res), tc.query)
	}
}

// TestPartialResponse: with one child dead and one slower than its
// timeout, warn answers from the rest within the timeout, naming both;
// abort fails naming them; the config's default applies without the
// parameter.
func TestPartialResponse(t *testing.T) {
	central, leaves := writeWorld(t, 5)
	_ = central
	ok, _ := serveAPI(t, leaves[0], storeAPI(leaves[0]))
	dead, _ := serveAPI(t, leaves[1], storeAPI(leaves[1]))
	dead.Close()
	slowAPI, _ := serveAPI(t, leaves[2], storeAPI(leaves[2]))
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			return
		}
		resp, err := http.Get(slowAPI.URL + r.URL.RequestURI())
		if err != nil {
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(slow.Close)
	children := []ChildConfig{
		{Name: "eu-1", URL: ok.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "eu-1"}},
		{Name: "eu-2", URL: dead.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "eu-2"}},
		{Name: "us-1", URL: slow.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "us-1"}, Timeout: 500 * time.Millisecond},
	}
	api, _ := federatorAPI(t, children, nil)
	fed, _ := serveAPI(t, nil, api)
	only, _ := serveAPI(t, leaves[0], storeAPI(leaves[0]))

	q := `sum by (job) (rate(x_total[5m]))`
	form := instantForm(q, worldStart+1800_000)
	form.Set("partial_response", "warn")
	t0 := time.Now()
	res, hdr := getJSON(t, fed.URL, "/api/v1/query", form)
	took := time.Since(t0)
	require.Equal(t, "success", res.Status, res.Error)
	require.Less(t, took, 3*time.Second, "a slow child costs at most its timeout")
	warnings := strings.Join(res.Warnings, "\n")
	require.Contains(t, warnings, "child eu-2")
	require.Contains(t, warnings, "child us-1")
	require.Contains(t, warnings, "timeout of 500ms")
	require.Contains(t, hdr.Get(StatsHeader), "eu-1;status=ok")
	require.Contains(t, hdr.Get(StatsHeader), "us-1;status=failed")
	// The answer is eu-1's alone.
	want, _ := getJSON(t, only.URL, "/api/v1/query", instantForm(`sum by (job) (rate(x_total[5m]))`, worldStart+1800_000))
	requireSameMatrix(t, matrixOf(t, want), matrixOf(t, res), "warn")

	// With stats asked for, the children's are in the answer's stats.
	form.Set("stats", "all")
	resp, err := http.Get(fed.URL + "/prometheus/api/v1/query?" + form.Encode())
	require.NoError(t, err)
	var withStats struct {
		Data struct {
			Stats struct {
				Federation struct {
					Children map[string]struct {
						Requests int     `json:"requests"`
						Bytes    int64   `json:"bytes"`
						Seconds  float64 `json:"seconds"`
						Error    string  `json:"error"`
					} `json:"children"`
				} `json:"federation"`
				Timings map[string]any `json:"timings"`
			} `json:"stats"`
		} `json:"data"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, json.Unmarshal(raw, &withStats), "%s", raw)
	ch := withStats.Data.Stats.Federation.Children
	require.Positive(t, ch["eu-1"].Bytes)
	require.Empty(t, ch["eu-1"].Error)
	require.Contains(t, ch["us-1"].Error, "timeout")
	require.NotEmpty(t, withStats.Data.Stats.Timings, "Prometheus's own stats stay")
	form.Del("stats")

	for _, pr := range []string{"abort", ""} { // "": the default, abort
		form.Set("partial_response", pr)
		t0 = time.Now()
		res, _ = getJSON(t, fed.URL, "/api/v1/query", form)
		require.Less(t, time.Since(t0), 3*time.Second)
		require.Equal(t, "error", res.Status, pr)
		require.Contains(t, res.Error, "child eu-2", pr)
		require.Contains(t, res.Error, "partial_response=abort", pr)
	}
	// A tenant whose default is warn.
	api2, _ := federatorAPI(t, children, func(c *Config) { c.TenantPartialResponse = map[string]string{"team-warn": "warn"} })
	fed2, _ := serveAPI(t, nil, api2)
	form.Del("partial_response")
	for tenant, want := range map[string]string{"team-warn": "success", "team-other": "error"} {
		req, err := http.NewRequest(http.MethodGet, fed2.URL+"/prometheus/api/v1/query?"+form.Encode(), nil)
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var r apiResult
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		resp.Body.Close()
		require.Equal(t, want, r.Status, "tenant %s: %s", tenant, r.Error)
	}

	form.Set("partial_response", "maybe")
	res, _ = getJSON(t, fed.URL, "/api/v1/query", form)
	require.Equal(t, "error", res.Status)
	require.Contains(t, res.Error, "neither warn nor abort")
}

// TestHAReplicas: two replicas of one cluster, each missing other parts
// of the same series (counter resets included), answer through the
// federator as the complete data does: no gaps, no doubled samples, no
// rate inflated where the merge switches replica.
func TestHAReplicas(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	complete, repA, repB := teststorage.New(t), teststorage.New(t), teststorage.New(t)
	ca, aa, ba := complete.Appender(context.Background()), repA.Appender(context.Background()), repB.Appender(context.Background())
	for inst := range 4 {
		base := labels.FromStrings("job", "api", "instance", fmt.Sprintf("i-%d", inst))
		counter := 0.0
		gapA, gapB := 40+inst*7, 120+inst*5 // each replica misses 10 minutes elsewhere
		for s := range worldSteps {
			ts := worldStart + int64(s)*worldStep
			counter += float64(rng.IntN(20))
			if s == 90 || s == 200 {
				counter = float64(rng.IntN(3)) // resets, seen by both replicas
			}
			for _, m := range []struct {
				name string
				v    float64
			}{{"x_total", counter}, {"y", float64(rng.IntN(1000)) / 10}} {
				ls := labels.NewBuilder(base).Set(labels.MetricName, m.name).Labels()
				_, err := ca.Append(0, labels.NewBuilder(ls).Set("cluster", "c1").Labels(), ts, m.v)
				require.NoError(t, err)
				if s < gapA || s >= gapA+40 {
					_, err = aa.Append(0, ls, ts, m.v)
					require.NoError(t, err)
				}
				if s < gapB || s >= gapB+40 {
					_, err = ba.Append(0, ls, ts, m.v)
					require.NoError(t, err)
				}
			}
		}
	}
	require.NoError(t, ca.Commit())
	require.NoError(t, aa.Commit())
	require.NoError(t, ba.Commit())
	central, _ := serveAPI(t, complete, storeAPI(complete))
	a, _ := serveAPI(t, repA, storeAPI(repA))
	b, _ := serveAPI(t, repB, storeAPI(repB))
	api, _ := federatorAPI(t, []ChildConfig{
		{Name: "c1-a", URL: a.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "c1", "replica": "a"}},
		{Name: "c1-b", URL: b.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": "c1", "replica": "b"}},
	}, func(c *Config) { c.ReplicaLabels = []string{"replica"} })
	fed, _ := serveAPI(t, nil, api)
	for _, q := range []string{
		`x_total`, `rate(x_total[5m])`, `sum(rate(x_total[5m]))`, `increase(x_total[1h])`,
		`count_over_time(x_total[10m])`, `resets(x_total[30m])`, `y`, `max_over_time(y[5m])`,
		`sum by (cluster) (y)`, `quantile(0.5, y)`, `avg(rate(x_total[2m]))`,
	} {
		want, _ := getJSON(t, central.URL, "/api/v1/query_range", rangeForm(q))
		got, _ := getJSON(t, fed.URL, "/api/v1/query_range", rangeForm(q))
		require.Equal(t, "success", got.Status, "%s: %s", q, got.Error)
		require.Empty(t, got.Warnings, q)
		requireSameMatrix(t, matrixOf(t, want), matrixOf(t, got), "HA "+q)
	}
	// One replica down: the other answers, with a warning, even with abort.
	b.Close()
	got, _ := getJSON(t, fed.URL, "/api/v1/query", instantForm(`sum(y)`, worldStart+1800_000))
	require.Equal(t, "success", got.Status, got.Error)
	require.Contains(t, strings.Join(got.Warnings, "\n"), "answered from the other replicas")
}

// TestSeriesFetching: with pushdown disabled (the series-fetching
// federator the benchmark compares with), answers are the same.
func TestSeriesFetching(t *testing.T) {
	central, leaves := writeWorld(t, 6)
	c, _ := serveAPI(t, central, storeAPI(central))
	var children []ChildConfig
	for i, cl := range clusters {
		srv, _ := serveAPI(t, leaves[i], storeAPI(leaves[i]))
		children = append(children, ChildConfig{Name: cl.name, URL: srv.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": cl.name, "region": cl.region}})
	}
	api, _ := federatorAPI(t, children, func(c *Config) { c.DisablePushdown = true })
	fed, _ := serveAPI(t, nil, api)
	for _, q := range equivalenceQueries {
		want, _ := getJSON(t, c.URL, "/api/v1/query_range", rangeForm(q))
		got, _ := getJSON(t, fed.URL, "/api/v1/query_range", rangeForm(q))
		require.Equal(t, "success", got.Status, "%s: %s", q, got.Error)
		requireSameMatrix(t, matrixOf(t, want), matrixOf(t, got), "series-fetching "+q)
	}
}

// TestChildTLSAndAuth: a child behind TLS and basic auth, configured in
// YAML as the README shows (tls_config, basic_auth with a password
// file, tenant), answers; with a wrong password the child's 401 names it.
func TestChildTLSAndAuth(t *testing.T) {
	central, leaves := writeWorld(t, 7)
	_ = central
	h, err := storeAPI(leaves[0])(queryConfig())
	require.NoError(t, err)
	var tenants atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "fed" || p != "s3cret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"unauthorized","error":"bad credentials"}`)
			return
		}
		tenants.Store(r.Header.Get("X-Scope-OrgID"))
		h.ServeHTTP(w, r)
	}))
	ca := tlstest.NewCA(t, "fed-test")
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	files := ca.WriteFiles(t)
	dir := t.TempDir()
	// authorization: a bearer token from a file.
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"unauthorized","error":"no token"}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(tokenSrv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("t0ken"), 0o600))
	{
		var cfg struct {
			Federation Config `yaml:"federation"`
		}
		doc := fmt.Sprintf("federation:\n  children:\n    - name: t\n      url: %s/prometheus\n      authorization: {credentials_file: %s}\n", tokenSrv.URL, tokenFile)
		require.NoError(t, yaml.Unmarshal([]byte(doc), &cfg))
		api, _ := federatorAPI(t, cfg.Federation.Children, nil)
		fed, _ := serveAPI(t, nil, api)
		res, _ := getJSON(t, fed.URL, "/api/v1/query", instantForm(`count(y)`, worldStart+1800_000))
		require.Equal(t, "success", res.Status, res.Error)
	}
	for _, pw := range []string{"s3cret", "wrong"} {
		pwFile := filepath.Join(dir, "pw")
		require.NoError(t, os.WriteFile(pwFile, []byte(pw), 0o600))
		var cfg struct {
			Federation Config `yaml:"federation"`
		}
		doc := fmt.Sprintf(`federation:
  children:
    - name: eu-1
      url: %s/prometheus
      external_labels: {cluster: eu-1}
      tenant: team-a
      basic_auth: {username: fed, password_file: %s}
      tls_config: {ca_file: %s}
`, srv.URL, pwFile, files.CA)
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&cfg))
		api, _ := federatorAPI(t, cfg.Federation.Children, nil)
		fed, _ := serveAPI(t, nil, api)
		res, _ := getJSON(t, fed.URL, "/api/v1/query", instantForm(`count(y)`, worldStart+1800_000))
		if pw == "wrong" {
			require.Equal(t, "error", res.Status)
			require.Contains(t, res.Error, "child eu-1: HTTP 401")
			continue
		}
		require.Equal(t, "success", res.Status, res.Error)
		require.NotEmpty(t, matrixOf(t, res))
		require.Equal(t, "team-a", tenants.Load())
	}
}

// TestExemplars: exemplars through the tree are the central store's,
// with the external labels on their series; a selector on an external
// label reaches only the children it can match.
func TestExemplars(t *testing.T) {
	w := newWorld(t, 8)
	for _, q := range []string{`x_total{job="job-1"}`, `x_total{cluster="us-2"}`, `rate(x_total{region="eu", instance=~".*-0"}[5m])`} {
		form := url.Values{"query": {q}, "start": {fmt.Sprint(worldStart / 1000)}, "end": {fmt.Sprint((worldStart + worldSteps*worldStep) / 1000)}}
		data := func(base string) []map[string]any {
			resp, err := http.Get(base + "/prometheus/api/v1/query_exemplars?" + form.Encode())
			require.NoError(t, err)
			defer resp.Body.Close()
			var r struct {
				Status string           `json:"status"`
				Error  string           `json:"error"`
				Data   []map[string]any `json:"data"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
			require.Equal(t, "success", r.Status, "%s: %s", q, r.Error)
			return r.Data
		}
		a, b := data(w.central.URL), data(w.global.URL)
		require.NotEmpty(t, a, q)
		key := func(m map[string]any) string { return fmt.Sprint(m["seriesLabels"]) }
		slices.SortFunc(a, func(x, y map[string]any) int { return strings.Compare(key(x), key(y)) })
		slices.SortFunc(b, func(x, y map[string]any) int { return strings.Compare(key(x), key(y)) })
		require.Equal(t, a, b, q)
	}
}

// TestMetadata: metadata is the children's, merged, each entry once.
func TestMetadata(t *testing.T) {
	child := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			require.Equal(t, "/prometheus/api/v1/metadata", r.URL.Path)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"success","data":`+body+`}`)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/prometheus"
	}
	a := child(`{"up":[{"type":"gauge","help":"Up.","unit":""}],"x_total":[{"type":"counter","help":"X.","unit":""}]}`)
	b := child(`{"up":[{"type":"gauge","help":"Up.","unit":""}],"y":[{"type":"gauge","help":"Y.","unit":"seconds"}]}`)
	api, _ := federatorAPI(t, []ChildConfig{
		{Name: "a", URL: a, ExternalLabels: map[string]string{"cluster": "a"}},
		{Name: "b", URL: b, ExternalLabels: map[string]string{"cluster": "b"}},
	}, nil)
	fed, _ := serveAPI(t, nil, api)
	resp, err := http.Get(fed.URL + "/prometheus/api/v1/metadata")
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Status string                         `json:"status"`
		Data   map[string][]map[string]string `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status)
	require.Len(t, r.Data["up"], 1)
	require.Equal(t, "counter", r.Data["x_total"][0]["type"])
	require.Equal(t, "seconds", r.Data["y"][0]["unit"])
}

// TestLabelsAPI: label names, label values and series through the tree
// equal one central store's, with and without selectors (one that only
// a child of one region can match).
func TestLabelsAPI(t *testing.T) {
	w := newWorld(t, 6)
	get := func(base, path string, form url.Values) any {
		resp, err := http.Get(base + "/prometheus" + path + "?" + form.Encode())
		require.NoError(t, err)
		defer resp.Body.Close()
		var env struct {
			Status string
			Data   any
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		require.Equal(t, "success", env.Status, "%s %s", path, form)
		return env.Data
	}
	for _, path := range []string{"/api/v1/labels", "/api/v1/label/cluster/values", "/api/v1/label/region/values", "/api/v1/label/job/values", "/api/v1/series"} {
		for _, sel := range []string{"", `{job="job-1"}`, `{job="job-0", cluster="us-2"}`} {
			form := url.Values{"start": {formatTime(time.UnixMilli(worldStart))}, "end": {formatTime(time.UnixMilli(worldStart + worldStep*worldSteps))}}
			switch {
			case sel != "":
				form.Set("match[]", sel)
			case path == "/api/v1/series":
				form.Set("match[]", `{job=~".+"}`)
			}
			want := get(w.central.URL, path, form)
			require.NotEmpty(t, want, "%s %s", path, sel)
			require.ElementsMatch(t, want, get(w.global.URL, path, form), "%s %s", path, sel)
		}
	}
}
