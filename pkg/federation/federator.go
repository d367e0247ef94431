package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
)

// Federator answers the Prometheus HTTP API over its children.
type Federator struct {
	logger  *slog.Logger
	parser  parser.Parser
	metrics *metrics

	mu       sync.RWMutex
	cfg      Config
	children []*child
	units    []*unit
	ext      []string       // the children's external label names, replica labels left out
	local    *promql.Engine // evaluates pushed parts over an HA group's merged samples
	// subqueryStep is the engine's step of subqueries that give none.
	subqueryStep time.Duration
	health       map[string]*health
}

// health is what the federator last saw of a child.
type health struct {
	LastSuccess time.Time `json:"last_success"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at"`
	LastLatency float64   `json:"last_latency_seconds"`
	Requests    int64     `json:"requests"`
	Failures    int64     `json:"failures"`
}

// New returns a Federator for cfg (validated).
func New(cfg Config, p parser.Parser, logger *slog.Logger, reg prometheus.Registerer) (*Federator, error) {
	f := &Federator{logger: logger, parser: p, metrics: newMetrics(reg), health: map[string]*health{}}
	if err := f.ApplyConfig(cfg); err != nil {
		return nil, err
	}
	return f, nil
}

// ApplyConfig replaces the children; queries running keep the children
// they started with.
func (f *Federator) ApplyConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	children := make([]*child, 0, len(cfg.Children))
	extSet := map[string]bool{}
	for _, cc := range cfg.Children {
		c, err := newChild(cc, cfg.DefaultTimeout)
		if err != nil {
			return err
		}
		children = append(children, c)
		for k := range cfg.groupLabels(&cc) {
			extSet[k] = true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg, f.children, f.units = cfg, children, unitsOf(&cfg, children)
	f.ext = slices.Sorted(maps.Keys(extSet))
	for _, c := range children {
		if f.health[c.cfg.Name] == nil {
			f.health[c.cfg.Name] = &health{}
		}
	}
	return nil
}

// partialKey carries a request's partial_response choice.
type partialKey struct{}

// WithPartialResponse returns ctx in which failing children make queries
// warn (true) or abort (false).
func WithPartialResponse(ctx context.Context, warn bool) context.Context {
	return context.WithValue(ctx, partialKey{}, warn)
}

// newEvaluation starts a query over the current children.
func (f *Federator) newEvaluation(ctx context.Context, p *plan, start, end time.Time, step, lookback time.Duration) *evaluation {
	f.mu.RLock()
	defer f.mu.RUnlock()
	tenant, _ := user.ExtractOrgID(ctx)
	partial := f.cfg.PartialResponse == "warn"
	if v, ok := f.cfg.TenantPartialResponse[tenant]; ok {
		partial = v == "warn"
	}
	if v, ok := ctx.Value(partialKey{}).(bool); ok {
		partial = v
	}
	return &evaluation{fed: f, children: f.children, units: f.units, plan: p, tenant: tenant, start: start, end: end, step: step, lookback: lookback, partial: partial}
}

// Engine returns the PromQL engine of the federator: it rewrites each
// query (plan.go) and evaluates the rest with inner over the children's
// answers. The Queryable its queries are given is not used. lookback
// and subqueryStep must be inner's lookback delta and step of subqueries
// without one.
func (f *Federator) Engine(inner *promql.Engine, lookback, subqueryStep time.Duration) promql.QueryEngine {
	f.mu.Lock()
	f.local, f.subqueryStep = inner, subqueryStep
	f.mu.Unlock()
	return &engine{f: f, inner: inner, lookback: lookback}
}

type engine struct {
	f        *Federator
	inner    *promql.Engine
	lookback time.Duration
}

func (e *engine) prepare(ctx context.Context, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (*evaluation, string, error) {
	expr, err := e.f.parser.ParseExpr(qs)
	if err != nil {
		return nil, "", err
	}
	e.f.mu.RLock()
	ext, selectorsOnly := e.f.ext, e.f.cfg.DisablePushdown
	e.f.mu.RUnlock()
	p := planQuery(expr, ext, selectorsOnly)
	lookback := e.lookback
	if opts != nil && opts.LookbackDelta() > 0 {
		lookback = opts.LookbackDelta()
	}
	ev := e.f.newEvaluation(ctx, p, start, end, step, lookback)
	if r := statsFrom(ctx); r != nil {
		r.add(ev)
	}
	return ev, p.root.String(), nil
}

func (e *engine) NewInstantQuery(ctx context.Context, _ storage.Queryable, opts promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	ev, root, err := e.prepare(ctx, opts, qs, ts, ts, 0)
	if err != nil {
		return nil, err
	}
	return e.inner.NewInstantQuery(ctx, ev, opts, root, ts)
}

func (e *engine) NewRangeQuery(ctx context.Context, _ storage.Queryable, opts promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	ev, root, err := e.prepare(ctx, opts, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	return e.inner.NewRangeQuery(ctx, ev, opts, root, start, end, step)
}

// Querier implements storage.Queryable for the series, labels and
// label values endpoints: the children's, with their external labels.
func (f *Federator) Querier(mint, maxt int64) (storage.Querier, error) {
	return &apiQuerier{f: f, mint: mint, maxt: maxt}, nil
}

type apiQuerier struct {
	f          *Federator
	mint, maxt int64
}

func (q *apiQuerier) querier(ctx context.Context) *fedQuerier {
	ev := q.f.newEvaluation(ctx, &plan{}, time.UnixMilli(q.mint), time.UnixMilli(q.maxt), 0, 0)
	if r := statsFrom(ctx); r != nil {
		r.add(ev)
	}
	return &fedQuerier{ev: ev, mint: q.mint, maxt: q.maxt}
}

func (q *apiQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	qr := q.querier(ctx)
	if hints != nil && hints.Func == "series" {
		return qr.ev.series(ctx, q.mint, q.maxt, ms)
	}
	return qr.Select(ctx, sorted, hints, ms...)
}

func (q *apiQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.querier(ctx).LabelNames(ctx, hints, ms...)
}

func (q *apiQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.querier(ctx).LabelValues(ctx, name, hints, ms...)
}

func (q *apiQuerier) Close() error { return nil }

// Metadata merges the children's /api/v1/metadata.
func (f *Federator) Metadata(ctx context.Context, req *client.MetadataRequest) (map[string][]metadata.Metadata, error) {
	ev := f.newEvaluation(ctx, &plan{}, time.Time{}, time.Time{}, 0, 0)
	form := url.Values{}
	if req.Metric != "" {
		form.Set("metric", req.Metric)
	}
	type answer struct {
		data map[string][]metadata.Metadata
		err  error
	}
	answers := make([]answer, len(ev.children))
	eachChild(ev.children, func(i int, c *child) {
		data, err := fetchData[map[string][]metadata.Metadata](ctx, ev, c, "/api/v1/metadata", form)
		answers[i] = answer{data, err}
	})
	out := map[string][]metadata.Metadata{}
	var failed []error
	for _, a := range answers {
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		for name, list := range a.data {
			for _, m := range list {
				if !slices.Contains(out[name], m) {
					out[name] = append(out[name], m)
				}
			}
		}
	}
	var annots annotations.Annotations
	if err := ev.settle(failed, &annots); err != nil {
		return nil, err
	}
	return out, nil
}

// ChildStatus is one child as /federation/children shows it.
type ChildStatus struct {
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	ExternalLabels map[string]string `json:"external_labels"`
	Timeout        string            `json:"timeout"`
	Healthy        bool              `json:"healthy"`
	health
}

// Children returns the children and what the federator last saw of
// them: a child is healthy when its last answer was a success.
func (f *Federator) Children() []ChildStatus {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]ChildStatus, 0, len(f.children))
	for _, c := range f.children {
		h := *f.health[c.cfg.Name]
		out = append(out, ChildStatus{
			Name: c.cfg.Name, URL: c.cfg.URL, ExternalLabels: c.external, Timeout: c.timeout.String(),
			Healthy: h.LastError == "",
			health:  h,
		})
	}
	return out
}

// ServeChildren serves /federation/children: JSON when asked for (Accept
// or ?format=json), else an HTML table.
func (f *Federator) ServeChildren(w http.ResponseWriter, r *http.Request) {
	children := f.Children()
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"children": children})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><head><title>Federation children</title></head><body><h1>Federation children</h1><table border=1><tr><th>name</th><th>URL</th><th>external labels</th><th>timeout</th><th>healthy</th><th>last latency</th><th>requests</th><th>failures</th><th>last error</th></tr>")
	for _, c := range children {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%t</td><td>%.3fs</td><td>%d</td><td>%d</td><td>%s</td></tr>",
			htmlEscape(c.Name), htmlEscape(c.URL), htmlEscape(labels.FromMap(c.ExternalLabels).String()), c.Timeout, c.Healthy, c.LastLatency, c.Requests, c.Failures, htmlEscape(c.LastError))
	}
	b.WriteString("</table></body></html>")
	_, _ = w.Write([]byte(b.String()))
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// metrics are the federator's per-child counters.
type metrics struct {
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "canopy_federation_child_requests_total", Help: "Requests the federator sent to each child."}, []string{"child"}),
		failures: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "canopy_federation_child_failures_total", Help: "Requests to each child that failed or timed out."}, []string{"child"}),
		bytes:    promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "canopy_federation_child_response_bytes_total", Help: "Bytes of the answers of each child."}, []string{"child"}),
		latency:  promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{Name: "canopy_federation_child_request_duration_seconds", Help: "How long each child took to answer.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"child"}),
	}
}

func (m *metrics) observe(name string, bytes int64, took time.Duration, err error) {
	m.requests.WithLabelValues(name).Inc()
	m.bytes.WithLabelValues(name).Add(float64(bytes))
	m.latency.WithLabelValues(name).Observe(took.Seconds())
	if err != nil {
		m.failures.WithLabelValues(name).Inc()
	}
}

func (f *Federator) noteHealth(name string, took time.Duration, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.health[name]
	if h == nil {
		h = &health{}
		f.health[name] = h
	}
	h.Requests++
	h.LastLatency = took.Seconds()
	if err != nil {
		h.Failures++
		h.LastError, h.LastErrorAt = err.Error(), time.Now()
	} else {
		h.LastSuccess = time.Now()
		h.LastError = ""
	}
}
