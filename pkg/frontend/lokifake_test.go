package frontend

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// memLogs is a lokiapi.Backend over streams in memory, every tenant's the
// same. It is read-only once built, so safe for concurrent use.
type memLogs struct {
	streams []logql.Stream // entries in timestamp order
}

func (m *memLogs) Select(_ context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	var out []logql.Stream
	for _, s := range m.streams {
		if !matchAll(p.Matchers, s.Labels) {
			continue
		}
		var es []logql.Entry
		for _, e := range s.Entries {
			if e.Timestamp >= p.Start && e.Timestamp < p.End {
				es = append(es, e)
			}
		}
		// Two batches per stream, as a store may give them.
		if h := len(es) / 2; h > 0 {
			out = append(out, logql.Stream{Labels: s.Labels, Entries: es[:h]}, logql.Stream{Labels: s.Labels, Entries: es[h:]})
		} else if len(es) > 0 {
			out = append(out, logql.Stream{Labels: s.Labels, Entries: es})
		}
	}
	return &memIterator{streams: out, i: -1}, nil
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (m *memLogs) Labels(context.Context, int64, int64, []*labels.Matcher) ([]string, error) {
	return []string{"app", "pod"}, nil
}

func (m *memLogs) LabelValues(context.Context, string, int64, int64, []*labels.Matcher) ([]string, error) {
	return nil, nil
}

func (m *memLogs) Series(context.Context, int64, int64, [][]*labels.Matcher) ([]labels.Labels, error) {
	return nil, nil
}

type memIterator struct {
	streams []logql.Stream
	i       int
}

func (it *memIterator) Next() bool             { it.i++; return it.i < len(it.streams) }
func (it *memIterator) Labels() labels.Labels  { return it.streams[it.i].Labels }
func (it *memIterator) Entries() []logql.Entry { return it.streams[it.i].Entries }
func (it *memIterator) Err() error             { return nil }
func (it *memIterator) Close() error           { return nil }

// baseNs is the start of the generated logs (a UTC midnight), in Unix ns.
const baseNs = base * 1e6

// genLogs writes three hours of logs of 30 streams (3 apps, 10 pods each),
// an entry every 20 to 120 seconds, some at the same nanosecond in two
// streams, some lines structured metadata.
func genLogs(rng *rand.Rand) *memLogs {
	m := &memLogs{}
	levels := []string{"info", "warn", "error"}
	for i := range 30 {
		ls := labels.FromStrings("app", fmt.Sprint("a", i%3), "pod", fmt.Sprint("p", i))
		var es []logql.Entry
		for ts := baseNs + int64(rng.Intn(60))*1e9; ts < baseNs+3*hour*1e6; ts += int64(20+rng.Intn(100)) * 1e9 {
			if rng.Intn(4) == 0 {
				ts -= ts % 60e9 // on a minute: ties between streams
			}
			if n := len(es); n > 0 && es[n-1].Timestamp >= ts {
				continue
			}
			e := logql.Entry{Timestamp: ts, Line: fmt.Sprintf("level=%s status=%d bytes=%d msg=\"req %d\"", levels[rng.Intn(3)], 200+100*rng.Intn(4), rng.Intn(5000), rng.Intn(50))}
			if rng.Intn(3) == 0 {
				e.Metadata = labels.FromStrings("trace_id", fmt.Sprint("t", rng.Intn(2)))
			}
			es = append(es, e)
		}
		m.streams = append(m.streams, logql.Stream{Labels: ls, Entries: es})
	}
	return m
}

// lokiDownstream is the querier's real Loki API over logs, as the
// query-frontend of a single process sees it, counting its calls.
func lokiDownstream(t *testing.T, cfg lokiapi.Config, logs lokiapi.Backend) (HandlerDownstream, *callLog) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	api := lokiapi.NewHandler(cfg, logql.NewEngine(nil, nil), logs, nil)
	calls := &callLog{}
	// One query at a time: the LogQL engine hands out a metric query's
	// result after closing its PromQL query, which gives the result's
	// points back to Prometheus's pool, so a query running at the same
	// time can overwrite them (pkg/logql/metricquery.go, execMetric).
	var one sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.add(r)
		one.Lock()
		defer one.Unlock()
		api.ServeHTTP(w, r.WithContext(user.InjectOrgID(r.Context(), r.Header.Get("X-Scope-OrgID"))))
	})
	return HandlerDownstream{Handler: func() http.Handler { return h }}, calls
}

// callLog records the downstream calls. It is safe for concurrent use.
type callLog struct {
	mu    sync.Mutex
	calls []recordedCall
}

type recordedCall struct {
	path   string
	form   url.Values
	header http.Header
}

func (c *callLog) add(r *http.Request) {
	_ = r.ParseForm()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, recordedCall{r.URL.Path, r.Form, r.Header.Clone()})
}

// take returns the calls since the last take.
func (c *callLog) take() []recordedCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// callLoki sends a Loki API request to h as the given tenant: GET with the
// parameters in the URL, or a form POST.
func callLoki(h http.Handler, method, path string, form url.Values, header http.Header) *httptest.ResponseRecorder {
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequest(method, lokiapi.PathPrefix+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, lokiapi.PathPrefix+path+"?"+form.Encode(), nil)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req = req.WithContext(user.InjectOrgID(req.Context(), "t"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// requireSameLokiAnswer compares two Loki answers but their statistics:
// streams exactly, sample values within 1e-12 (a sharded sum adds in
// another order).
func requireSameLokiAnswer(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	w, err := decodeLokiResult(want)
	require.NoError(t, err, "%s", want)
	g, err := decodeLokiResult(got)
	require.NoError(t, err, "%s", got)
	require.Equal(t, w.Type, g.Type, msgAndArgs...)
	require.Equal(t, w.Streams, g.Streams, msgAndArgs...)
	require.Equal(t, w.Scalar, g.Scalar, msgAndArgs...)
	require.Equal(t, w.Stats.EntriesReturned, g.Stats.EntriesReturned, msgAndArgs...)
	if w.Vector != nil || g.Vector != nil {
		// An instant vector's order is not defined.
		slices.SortFunc(w.Vector, func(a, b promql.Sample) int { return labels.Compare(a.Metric, b.Metric) })
		slices.SortFunc(g.Vector, func(a, b promql.Sample) int { return labels.Compare(a.Metric, b.Metric) })
		require.Len(t, g.Vector, len(w.Vector), msgAndArgs...)
		for i := range w.Vector {
			require.Equal(t, w.Vector[i].Metric, g.Vector[i].Metric, msgAndArgs...)
			require.Equal(t, w.Vector[i].T, g.Vector[i].T, msgAndArgs...)
			requireClose(t, w.Vector[i].F, g.Vector[i].F, msgAndArgs...)
		}
	}
	require.Len(t, g.Matrix, len(w.Matrix), msgAndArgs...)
	for i := range w.Matrix {
		require.Equal(t, w.Matrix[i].Metric, g.Matrix[i].Metric, msgAndArgs...)
		require.Len(t, g.Matrix[i].Floats, len(w.Matrix[i].Floats), msgAndArgs...)
		for j, p := range w.Matrix[i].Floats {
			require.Equal(t, p.T, g.Matrix[i].Floats[j].T, msgAndArgs...)
			requireClose(t, p.F, g.Matrix[i].Floats[j].F, msgAndArgs...)
		}
	}
}

func requireClose(t *testing.T, a, b float64, msgAndArgs ...any) {
	t.Helper()
	if a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
		require.InEpsilon(t, a, b, 1e-12, msgAndArgs...)
	}
}

// requireSameRanking compares two answers of topk or bottomk, whose choice
// among equal values PromQL leaves open: at each time, the same values in
// each app (the tests' topk group by app or by nothing).
func requireSameRanking(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	ranks := func(body []byte) map[int64][]string {
		res, err := decodeLokiResult(body)
		require.NoError(t, err, "%s", body)
		out := map[int64][]string{}
		add := func(ls labels.Labels, tm int64, f float64) {
			out[tm] = append(out[tm], fmt.Sprint(ls.Get("app"), "=", f))
		}
		for _, s := range res.Matrix {
			for _, p := range s.Floats {
				add(s.Metric, p.T, p.F)
			}
		}
		for _, s := range res.Vector {
			add(s.Metric, s.T, s.F)
		}
		for _, vs := range out {
			slices.Sort(vs)
		}
		return out
	}
	w, g := ranks(want), ranks(got)
	if !strings.Contains(fmt.Sprint(msgAndArgs...), " by (app) ") {
		// No grouping: the values, whichever app they are of.
		for _, m := range []map[int64][]string{w, g} {
			for tm, vs := range m {
				for i, v := range vs {
					vs[i] = v[strings.Index(v, "=")+1:]
				}
				slices.Sort(vs)
				m[tm] = vs
			}
		}
	}
	require.Equal(t, w, g, msgAndArgs...)
}
