package distributor

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/canopy-observability/canopy/pkg/ingester/tracesclient"
	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
	"github.com/canopy-observability/canopy/pkg/tracepush"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// TracesPusher is what the traces write path needs of a traces ingester,
// local or remote. Implementations are safe for concurrent use.
type TracesPusher interface {
	Push(ctx context.Context, req *tracespb.PushRequest) (*tracespb.PushResponse, error)
}

// TracesClientPool returns the pusher of a traces ingester address.
type TracesClientPool interface {
	TracesPusher(addr string) (TracesPusher, error)
}

// TracesPoolPushers adapts a tracesclient.Pool to TracesClientPool.
type TracesPoolPushers struct{ *tracesclient.Pool }

// TracesPusher implements TracesClientPool.
func (p TracesPoolPushers) TracesPusher(addr string) (TracesPusher, error) { return p.Client(addr) }

// LocalTracesIngester returns the traces ingester running in this process
// and its ring ID, or nil; asked on every push.
type LocalTracesIngester func() (TracesPusher, string)

// Traces is the traces half of the distributor: it checks spans against
// the tenant's traces limits, enforces the ingestion rate in bytes, cuts a
// push into one piece per trace, shards the pieces by trace ID over the
// traces ingester ring and writes each to its replicas with a quorum. It
// shares the distributor's body limits and in-flight budget. It is a
// services.Service (dropping idle tenants' rate limiters).
type Traces struct {
	services.Service

	d       *Distributor
	ring    ring.ReadRing
	pool    TracesClientPool
	local   LocalTracesIngester
	logger  log.Logger
	metrics *tracesMetrics

	limiters tenantLimiters
}

// NewTraces returns the traces write path of d, writing to the ingesters
// of tracesRing.
func NewTraces(d *Distributor, tracesRing ring.ReadRing, pool TracesClientPool, local LocalTracesIngester, logger log.Logger, reg prometheus.Registerer) *Traces {
	t := &Traces{d: d, ring: tracesRing, pool: pool, local: local, logger: log.With(logger, "component", "distributor"), metrics: newTracesMetrics(reg)}
	t.Service = services.NewTimerService(time.Minute, nil, func(context.Context) error {
		t.dropIdleTenants()
		return nil
	}, nil)
	return t
}

type tracesMetrics struct {
	receivedSpans  *prometheus.CounterVec
	receivedBytes  *prometheus.CounterVec
	discardedSpans *prometheus.CounterVec
	requests       *prometheus.CounterVec
}

func newTracesMetrics(reg prometheus.Registerer) *tracesMetrics {
	f := promauto.With(reg)
	return &tracesMetrics{
		receivedSpans:  f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_distributor_traces_received_spans_total", Help: "Spans received, before validation."}, []string{"tenant"}),
		receivedBytes:  f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_distributor_traces_received_bytes_total", Help: "OTLP protobuf bytes of the spans kept, cut into one piece per trace."}, []string{"tenant"}),
		discardedSpans: f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_discarded_spans_total", Help: "Spans dropped by the distributor, by reason; traces ingesters reject whole pieces (canopy_traces_ingester_rejected_pieces_total)."}, []string{"tenant", "reason"}),
		requests:       f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_distributor_traces_requests_total", Help: "Trace push requests, by protocol and status code."}, []string{"protocol", "code"}),
	}
}

// TracesResult says what happened to a trace push.
type TracesResult struct {
	Spans    int // written with a quorum
	Rejected int // spans rejected
	Message  string
	// Status is the HTTP status the first rejection calls for (400 or
	// 429), 0 when none.
	Status int
}

// tracesLimitNames name the settings in rejection messages.
var tracesLimitNames = tracepush.LimitNames{
	MaxAttributeKeyBytes:   "-validation.traces.max-attribute-key-bytes or traces_max_attribute_key_bytes in the runtime overrides file",
	MaxAttributeValueBytes: "-validation.traces.max-attribute-value-bytes or traces_max_attribute_value_bytes in the runtime overrides file",
	MaxBytesPerTrace:       "-ingester.traces.max-bytes-per-trace or traces_max_bytes_per_trace in the runtime overrides file",
}

// splitLimits are the tenant's limits as tracepush takes them.
func splitLimits(lim *validation.Limits) tracepush.Limits {
	return tracepush.Limits{
		MaxAttributeKeyBytes:   lim.TracesMaxAttributeKeyBytes,
		MaxAttributeValueBytes: lim.TracesMaxAttributeValueByte,
		MaxBytesPerTrace:       lim.TracesMaxBytesPerTrace,
		Names:                  tracesLimitNames,
	}
}

// PushProto checks and writes an OTLP ExportTraceServiceRequest protobuf.
// The accepted part of a push is written even when some spans are
// rejected; the result says which and why.
func (t *Traces) PushProto(ctx context.Context, tenantID string, body []byte) (TracesResult, error) {
	lim := t.d.limits.ByTenant(tenantID)
	b, err := tracepush.SplitProto(body, splitLimits(lim))
	if err != nil {
		return TracesResult{}, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding OTLP traces: %v", err)}
	}
	return t.push(ctx, tenantID, lim, b)
}

func (t *Traces) push(ctx context.Context, tenantID string, lim *validation.Limits, b *tracepush.Batch) (TracesResult, error) {
	now := t.d.now()
	t.metrics.receivedSpans.WithLabelValues(tenantID).Add(float64(b.Spans + b.RejectedSpans))
	var res TracesResult
	for reason, n := range b.Rejected {
		t.metrics.discardedSpans.WithLabelValues(tenantID, string(reason)).Add(float64(n))
	}
	res.Rejected = b.RejectedSpans
	if b.FirstRejection != nil {
		res.Message, res.Status = b.FirstRejection.Msg, http.StatusBadRequest
	}
	if len(b.Traces) == 0 {
		return res, nil
	}
	if !t.limiter(tenantID, lim, now).AllowN(now, b.Bytes) {
		t.metrics.discardedSpans.WithLabelValues(tenantID, "rate_limited").Add(float64(b.Spans))
		return res, &Error{Code: http.StatusTooManyRequests, Msg: fmt.Sprintf(
			"trace ingestion rate limit of %g MB/s (burst %g MB) exceeded by tenant %s while writing %d bytes of spans; raise -distributor.traces.ingestion-rate-limit-mb / -distributor.traces.ingestion-burst-size-mb or traces_ingestion_rate_mb / traces_ingestion_burst_size_mb in the runtime overrides file",
			lim.TracesIngestionRateMB, lim.TracesIngestionBurstSizeMB, tenantID, b.Bytes)}
	}
	t.metrics.receivedBytes.WithLabelValues(tenantID).Add(float64(b.Bytes))
	rejected, resp, err := t.send(ctx, tenantID, b)
	if err != nil {
		return res, err
	}
	res.Spans = b.Spans - rejected
	res.Rejected += rejected
	if res.Message == "" && resp.FirstError != "" {
		res.Message, res.Status = resp.FirstError, int(resp.FirstErrorStatus)
	}
	if rejected > 0 {
		t.metrics.discardedSpans.WithLabelValues(tenantID, "rejected_by_ingester").Add(float64(rejected))
	}
	return res, nil
}

func (t *Traces) limiter(tenantID string, lim *validation.Limits, now time.Time) *rate.Limiter {
	return t.limiters.get(tenantID, rate.Limit(lim.TracesIngestionRateMB*1e6), int(lim.TracesIngestionBurstSizeMB*1e6), now)
}

func (t *Traces) dropIdleTenants() {
	t.limiters.dropIdle(t.d.now().Add(-t.d.cfg.IdleTenantTimeout), func(id string) {
		t.metrics.receivedSpans.DeleteLabelValues(id)
		t.metrics.receivedBytes.DeleteLabelValues(id)
		t.metrics.discardedSpans.DeletePartialMatch(prometheus.Labels{"tenant": id})
	})
}

// send shards the batch's traces over the traces ring and waits for a
// write quorum of each. It returns the spans of the traces an ingester
// rejected (the most any replica rejected: a replica's limits differ from
// another's only while they change).
func (t *Traces) send(ctx context.Context, tenantID string, b *tracepush.Batch) (int, *tracespb.PushResponse, error) {
	keys := make([]uint32, len(b.Traces))
	pieces := make([]*tracespb.Trace, len(b.Traces))
	for i := range b.Traces {
		tr := &b.Traces[i]
		keys[i] = tracesclient.TraceKey(tenantID, tr.ID)
		pieces[i] = &tracespb.Trace{TraceId: tr.ID[:], Spans: tr.Data, SpanCount: int64(tr.Spans), StartUnixNano: int64(tr.Start), EndUnixNano: int64(tr.End)}
	}
	var (
		local   TracesPusher
		localID string
	)
	if t.local != nil {
		local, localID = t.local()
	}
	merged := &tracespb.PushResponse{}
	var out *tracespb.PushResponse
	err := quorumWrite[TracesPusher, *tracespb.PushResponse]{
		signal: "traces",
		ring:   t.ring,
		keys:   keys,
		pusher: localOr(local, localID, t.pool.TracesPusher),
		push: func(ctx context.Context, p TracesPusher, idx []int) (*tracespb.PushResponse, error) {
			sub := &tracespb.PushRequest{Traces: make([]*tracespb.Trace, len(idx))}
			for j, i := range idx {
				sub.Traces[j] = pieces[i]
			}
			return p.Push(ctx, sub)
		},
		merge: func(resp *tracespb.PushResponse) {
			merged.RejectedTraces = max(merged.RejectedTraces, resp.RejectedTraces)
			merged.RejectedSpans = max(merged.RejectedSpans, resp.RejectedSpans)
			if merged.FirstError == "" {
				merged.FirstError, merged.FirstErrorStatus = resp.FirstError, resp.FirstErrorStatus
			}
		},
		result: func() {
			out = &tracespb.PushResponse{RejectedTraces: merged.RejectedTraces, RejectedSpans: merged.RejectedSpans, FirstError: merged.FirstError, FirstErrorStatus: merged.FirstErrorStatus}
		},
	}.run(ctx, t.d, tenantID)
	if err != nil {
		return 0, nil, err
	}
	return int(out.RejectedSpans), out, nil
}
