// Package tracegen turns completed traces into metrics, as Tempo's
// metrics-generator does, with the series names Grafana's service graph,
// APM table and traces-to-metrics links query:
//
//   - span metrics: traces_spanmetrics_calls_total and
//     traces_spanmetrics_latency_{bucket,sum,count} (seconds) by service,
//     span_name, span_kind and status_code;
//   - service graph: traces_service_graph_request_total,
//     traces_service_graph_request_failed_total and
//     traces_service_graph_request_{server,client}_seconds_{bucket,sum,count}
//     by client and server, from each server (or consumer) span whose
//     parent is a client (or producer) span of another service.
//
// A Generator keeps cumulative counters per tenant and series and appends
// their values to the tenant's metrics store every flush, in process, with
// the trace ID of a recent span of the series as exemplar. It sees whole
// traces (the traces ingester calls it when it cuts a trace), so both ends
// of an edge are in one call.
package tracegen

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// LatencyBuckets are the upper bounds (seconds) of the latency histograms:
// Tempo's defaults, so that dashboards written for it read the same.
var LatencyBuckets = []float64{0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384}

// Appender is where a flush writes one tenant's samples: build appends to
// app, then the samples are written to the tenant's metrics store.
type Appender func(ctx context.Context, tenant string, build func(app storage.AppenderV2) error) error

// Config bounds a Generator.
type Config struct {
	// MaxSeriesPerTenant is the most series a tenant's metrics may have;
	// spans of new series beyond it are counted in one overflow series
	// per metric (label metric_overflow="true"). 0 is unlimited.
	MaxSeriesPerTenant int
	// StaleAfter drops a series nothing updated for this long.
	StaleAfter time.Duration
}

// Generator is safe for concurrent use.
type Generator struct {
	cfg      Config
	appendTo Appender
	now      func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantSeries
}

// New returns a Generator writing through appendTo.
func New(cfg Config, appendTo Appender) *Generator {
	return &Generator{cfg: cfg, appendTo: appendTo, now: time.Now, tenants: map[string]*tenantSeries{}}
}

// tenantSeries are one tenant's series, by their labels' hash.
type tenantSeries struct {
	counters   map[uint64]*counter
	histograms map[uint64]*latencyHist
	n          int // series (a histogram counts its buckets, sum and count)
}

type counter struct {
	labels  labels.Labels
	value   float64
	ex      exemplar.Exemplar
	updated time.Time
}

type latencyHist struct {
	labels  labels.Labels // without le, with the family name in __name__
	buckets []float64     // cumulative counts by LatencyBuckets, then +Inf
	sum     float64
	count   float64
	ex      exemplar.Exemplar
	updated time.Time
}

// Observe counts the spans of td, which should be whole traces (spans of
// one trace may come under several resources). Spans without a
// service.name count under service "unknown_service".
func (g *Generator) Observe(tenant string, td ptrace.Traces) {
	type spanRef struct {
		service string
		span    ptrace.Span
	}
	var spans []spanRef
	byID := map[[8]byte]int{}
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		service := "unknown_service"
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok && v.Str() != "" {
			service = v.Str()
		}
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := range ss.Len() {
				s := ss.At(k)
				byID[s.SpanID()] = len(spans)
				spans = append(spans, spanRef{service, s})
			}
		}
	}
	if len(spans) == 0 {
		return
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	ts := g.tenants[tenant]
	if ts == nil {
		ts = &tenantSeries{counters: map[uint64]*counter{}, histograms: map[uint64]*latencyHist{}}
		g.tenants[tenant] = ts
	}
	for _, r := range spans {
		s := r.span
		secs := seconds(s)
		ex := exemplarOf(s, secs, now)
		ls := labels.FromStrings("service", r.service, "span_name", s.Name(), "span_kind", spanKind(s.Kind()), "status_code", statusCode(s.Status().Code()))
		g.count(ts, "traces_spanmetrics_calls_total", ls, 1, ex, now)
		g.observe(ts, "traces_spanmetrics_latency", ls, secs, ex, now)

		// An edge: a server (consumer) span whose parent is a client
		// (producer) span of another service.
		kind := s.Kind()
		if kind != ptrace.SpanKindServer && kind != ptrace.SpanKindConsumer {
			continue
		}
		pi, ok := byID[s.ParentSpanID()]
		if !ok {
			continue
		}
		p := spans[pi]
		if pk := p.span.Kind(); pk != ptrace.SpanKindClient && pk != ptrace.SpanKindProducer || p.service == r.service {
			continue
		}
		edge := labels.FromStrings("client", p.service, "server", r.service, "connection_type", connectionType(kind))
		g.count(ts, "traces_service_graph_request_total", edge, 1, ex, now)
		if s.Status().Code() == ptrace.StatusCodeError || p.span.Status().Code() == ptrace.StatusCodeError {
			g.count(ts, "traces_service_graph_request_failed_total", edge, 1, ex, now)
		}
		g.observe(ts, "traces_service_graph_request_server_seconds", edge, secs, ex, now)
		g.observe(ts, "traces_service_graph_request_client_seconds", edge, seconds(p.span), exemplarOf(p.span, seconds(p.span), now), now)
	}
}

func seconds(s ptrace.Span) float64 {
	if s.EndTimestamp() < s.StartTimestamp() {
		return 0
	}
	return float64(s.EndTimestamp()-s.StartTimestamp()) / 1e9
}

func exemplarOf(s ptrace.Span, v float64, now time.Time) exemplar.Exemplar {
	tid := s.TraceID()
	return exemplar.Exemplar{Labels: labels.FromStrings("traceID", hex.EncodeToString(tid[:])), Value: v, Ts: now.UnixMilli(), HasTs: true}
}

// spanKind and statusCode are the label values Tempo writes (and Grafana's
// queries match): the OTLP enum names.
func spanKind(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "SPAN_KIND_SERVER"
	case ptrace.SpanKindClient:
		return "SPAN_KIND_CLIENT"
	case ptrace.SpanKindProducer:
		return "SPAN_KIND_PRODUCER"
	case ptrace.SpanKindConsumer:
		return "SPAN_KIND_CONSUMER"
	case ptrace.SpanKindInternal:
		return "SPAN_KIND_INTERNAL"
	}
	return "SPAN_KIND_UNSPECIFIED"
}

func statusCode(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "STATUS_CODE_OK"
	case ptrace.StatusCodeError:
		return "STATUS_CODE_ERROR"
	}
	return "STATUS_CODE_UNSET"
}

func connectionType(serverKind ptrace.SpanKind) string {
	if serverKind == ptrace.SpanKindConsumer {
		return "messaging_system"
	}
	return ""
}

// withName returns ls with __name__ set.
func withName(name string, ls labels.Labels) labels.Labels {
	b := labels.NewBuilder(ls)
	b.Set(labels.MetricName, name)
	return b.Labels()
}

// overflow is the series spans of series beyond the limit count in.
func overflow(name string) labels.Labels {
	return labels.FromStrings(labels.MetricName, name, "metric_overflow", "true")
}

func (g *Generator) count(ts *tenantSeries, name string, ls labels.Labels, v float64, ex exemplar.Exemplar, now time.Time) {
	ls = withName(name, ls)
	h := ls.Hash()
	c, ok := ts.counters[h]
	if !ok || !labels.Equal(c.labels, ls) {
		if g.cfg.MaxSeriesPerTenant > 0 && ts.n+1 > g.cfg.MaxSeriesPerTenant {
			ls = overflow(name)
			h = ls.Hash()
			c, ok = ts.counters[h]
		}
		if !ok {
			c = &counter{labels: ls}
			ts.counters[h] = c
			ts.n++
		}
	}
	c.value += v
	c.ex, c.updated = ex, now
}

func (g *Generator) observe(ts *tenantSeries, family string, ls labels.Labels, v float64, ex exemplar.Exemplar, now time.Time) {
	ls = withName(family, ls)
	h := ls.Hash()
	hg, ok := ts.histograms[h]
	if !ok || !labels.Equal(hg.labels, ls) {
		cost := len(LatencyBuckets) + 3
		if g.cfg.MaxSeriesPerTenant > 0 && ts.n+cost > g.cfg.MaxSeriesPerTenant {
			ls = overflow(family)
			h = ls.Hash()
			hg, ok = ts.histograms[h]
		}
		if !ok {
			hg = &latencyHist{labels: ls, buckets: make([]float64, len(LatencyBuckets)+1)}
			ts.histograms[h] = hg
			ts.n += cost
		}
	}
	for i, ub := range LatencyBuckets {
		if v <= ub {
			hg.buckets[i]++
		}
	}
	hg.buckets[len(LatencyBuckets)]++
	hg.sum += v
	hg.count++
	hg.ex, hg.updated = ex, now
}

// Flush appends every tenant's series, at the current time, and drops the
// series not updated for Config.StaleAfter. A tenant whose write fails
// keeps its values for the next flush; the errors are returned.
func (g *Generator) Flush(ctx context.Context) error {
	now := g.now()
	g.mu.Lock()
	type snapshot struct {
		tenant string
		build  func(app storage.AppenderV2) error
	}
	var snaps []snapshot
	for tenant, ts := range g.tenants {
		snaps = append(snaps, snapshot{tenant, ts.snapshot(now.UnixMilli())})
		ts.dropStale(now, g.cfg.StaleAfter)
	}
	g.mu.Unlock()
	slices.SortFunc(snaps, func(a, b snapshot) int {
		switch {
		case a.tenant < b.tenant:
			return -1
		case a.tenant > b.tenant:
			return 1
		}
		return 0
	})
	var errs []error
	for _, s := range snaps {
		if err := g.appendTo(ctx, s.tenant, s.build); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", s.tenant, err))
		}
	}
	return errors.Join(errs...)
}

// snapshot returns an append of the series' current values at t (ms).
func (ts *tenantSeries) snapshot(t int64) func(app storage.AppenderV2) error {
	type sample struct {
		ls labels.Labels
		v  float64
		ex []exemplar.Exemplar
	}
	var out []sample
	for _, c := range ts.counters {
		out = append(out, sample{c.labels, c.value, []exemplar.Exemplar{c.ex}})
	}
	for _, h := range ts.histograms {
		name := h.labels.Get(labels.MetricName)
		base := labels.NewBuilder(h.labels)
		for i, ub := range append(slices.Clone(LatencyBuckets), math.Inf(1)) {
			le := strconv.FormatFloat(ub, 'f', -1, 64)
			if math.IsInf(ub, 1) {
				le = "+Inf"
			}
			base.Set(labels.MetricName, name+"_bucket")
			base.Set("le", le)
			var ex []exemplar.Exemplar
			if h.ex.Value <= ub && (i == 0 || h.ex.Value > LatencyBuckets[i-1]) {
				ex = []exemplar.Exemplar{h.ex}
			}
			out = append(out, sample{base.Labels(), h.buckets[i], ex})
		}
		base.Del("le")
		base.Set(labels.MetricName, name+"_sum")
		out = append(out, sample{base.Labels(), h.sum, nil})
		base.Set(labels.MetricName, name+"_count")
		out = append(out, sample{base.Labels(), h.count, nil})
	}
	return func(app storage.AppenderV2) error {
		for _, s := range out {
			if _, err := app.Append(0, s.ls, 0, t, s.v, nil, nil, storage.AppendV2Options{Exemplars: s.ex}); err != nil {
				return err
			}
		}
		return app.Commit()
	}
}

func (ts *tenantSeries) dropStale(now time.Time, after time.Duration) {
	if after <= 0 {
		return
	}
	for h, c := range ts.counters {
		if now.Sub(c.updated) > after {
			delete(ts.counters, h)
			ts.n--
		}
	}
	for h, hg := range ts.histograms {
		if now.Sub(hg.updated) > after {
			delete(ts.histograms, h)
			ts.n -= len(LatencyBuckets) + 3
		}
	}
}
