package traces

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gogo/status"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"

	"github.com/canopy-observability/canopy/pkg/ingester/tracesclient"
	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
	"github.com/canopy-observability/canopy/pkg/traceql"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Push appends the pieces of req's traces. Pieces a limit rejects are
// counted in the response with the first error; the rest are kept and in
// the WAL before Push returns.
func (i *Ingester) Push(ctx context.Context, req *tracespb.PushRequest) (*tracespb.PushResponse, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	lim := i.limits.ByTenant(tid)
	maxLive := 0
	if g := lim.TracesMaxLiveTracesPerTenant; g > 0 {
		maxLive = ringconfig.LocalLimit(g, i.cfg.Ring.ReplicationFactor, i.Lifecycler().HealthyInstancesCount())
	}
	resp := &tracespb.PushResponse{}
	reject := func(t *tracespb.Trace, reason string, status int, msg string) {
		resp.RejectedTraces++
		resp.RejectedSpans += t.SpanCount
		i.metrics.rejected.WithLabelValues(reason).Inc()
		if resp.FirstError == "" {
			resp.FirstError, resp.FirstErrorStatus = msg, int32(status)
		}
	}

	accepted := make([]piece, 0, len(req.Traces))
	bytes := 0
	err = i.base.Append(tid, func(in *instance) ([][]byte, error) {
		now := i.base.Now()
		for _, t := range req.Traces {
			if len(t.TraceId) != 16 {
				reject(t, "invalid_trace_id", http.StatusBadRequest, fmt.Sprintf("a trace ID of %d bytes; trace IDs are 16 bytes", len(t.TraceId)))
				continue
			}
			id := [16]byte(t.TraceId)
			// The request's buffer is gRPC's: keep a copy.
			spans := append([]byte(nil), t.Spans...)
			switch res, n := in.append(id, spans, t.StartUnixNano, t.EndUnixNano, now, maxLive, lim.TracesMaxBytesPerTrace); res {
			case tooManyLive:
				reject(t, "live_traces_limit", http.StatusTooManyRequests, fmt.Sprintf(
					"tenant %s has %d live traces in this ingester, its share of the limit of %d (-ingester.traces.max-live-traces-per-tenant or traces_max_live_traces_per_tenant in the runtime overrides file); trace %x refused",
					tid, n, lim.TracesMaxLiveTracesPerTenant, id))
				continue
			case traceTooLarge:
				reject(t, "trace_too_large", http.StatusBadRequest, fmt.Sprintf(
					"trace %x: %d bytes held and %d more would exceed the per-trace limit of %d bytes (-ingester.traces.max-bytes-per-trace or traces_max_bytes_per_trace in the runtime overrides file)",
					id, n, len(spans), lim.TracesMaxBytesPerTrace))
				continue
			}
			accepted = append(accepted, piece{id: id, spans: spans, start: t.StartUnixNano, end: t.EndUnixNano})
			bytes += len(spans)
		}
		if len(accepted) == 0 {
			return nil, nil
		}
		return [][]byte{encodePieces(nil, tid, accepted)}, nil
	})
	if err != nil {
		return nil, err
	}
	i.metrics.traces.Add(float64(len(accepted)))
	i.metrics.bytes.Add(float64(bytes))
	return resp, nil
}

// FindTrace returns the pieces the ingester holds of a trace: live, cut,
// or shipped within -ingester.traces.retain-shipped-for.
func (i *Ingester) FindTrace(ctx context.Context, req *tracespb.FindTraceRequest) (*tracespb.FindTraceResponse, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	if len(req.TraceId) != 16 {
		return nil, fmt.Errorf("a trace ID of %d bytes; trace IDs are 16 bytes", len(req.TraceId))
	}
	resp := &tracespb.FindTraceResponse{}
	if in, ok := i.base.Instance(tid); ok {
		resp.Spans = in.find([16]byte(req.TraceId))
	}
	return resp, nil
}

// Scan sends the traces the ingester holds with a span in the request's
// range, in batches of about tracesclient.ScanBatchBytes.
func (i *Ingester) Scan(req *tracespb.ScanRequest, send tracesclient.BatchSender) error {
	tid, err := tenant.ID(send.Context())
	if err != nil {
		return err
	}
	var ev *traceql.Evaluator
	if req.Query != "" {
		q, err := traceql.Parse(req.Query)
		if err == nil {
			ev, err = traceql.NewEvaluator(q)
		}
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
	in, ok := i.base.Instance(tid)
	if !ok {
		return nil
	}
	batches := tracesclient.NewBatcher(send)
	var u ptrace.ProtoUnmarshaler
	for _, t := range in.scan(req.StartUnixNano, req.EndUnixNano) {
		if err := send.Context().Err(); err != nil {
			return err
		}
		if ev != nil && !ev.MatchesPdata(joinPieces(&u, t.pieces)) {
			continue
		}
		n := 0
		for _, p := range t.pieces {
			n += len(p)
		}
		spans := make([]byte, 0, n)
		for _, p := range t.pieces {
			spans = append(spans, p...)
		}
		if err := batches.Add(t.id[:], spans); err != nil {
			return err
		}
	}
	return batches.Flush()
}

// joinPieces decodes a trace's pieces into one OTLP Traces (pieces that do
// not decode are left out: the ship logs them).
func joinPieces(u *ptrace.ProtoUnmarshaler, pieces [][]byte) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, p := range pieces {
		piece, err := u.UnmarshalTraces(p)
		if err != nil {
			continue
		}
		piece.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	return td
}
