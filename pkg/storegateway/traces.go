package storegateway

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/canopy-observability/canopy/pkg/ingester/tracesclient"
	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
	"github.com/canopy-observability/canopy/pkg/traceql"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Traces is the traces unit of a store-gateway: it serves the trace blocks
// a querier names in a request (each block goes to a store-gateway owning
// it in the ring, so its bloom filter and Parquet footer are in memory in
// few places). A block is opened on first use — meta and bloom filter
// read, the Parquet footer and page index on the first lookup that needs
// them — and let go once no request has used it for the idle timeout.
// Safe for concurrent use.
type Traces struct {
	blocks *openBlocks[*traceblock.Block]

	loaded, queried prometheus.Counter
}

// NewTraces returns the traces unit reading bkt; blocks unused for idle
// are let go (0 keeps them).
func NewTraces(bkt objstore.BucketReader, idle time.Duration, reg prometheus.Registerer) *Traces {
	t := &Traces{
		loaded: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_trace_blocks_opened_total", Help: "Trace blocks opened (meta and bloom filter read) by the store-gateway.",
		}),
		queried: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_trace_blocks_queried_total", Help: "Trace blocks read by find-trace and scan calls.",
		}),
	}
	t.blocks = newOpenBlocks("trace", idle, func(ctx context.Context, tenantID string, id ulid.ULID) (*traceblock.Block, error) {
		m, err := traceblock.ReadMeta(ctx, bkt, tenantID, id)
		if err != nil {
			return nil, err
		}
		return traceblock.OpenBlock(ctx, bkt, tenantID, m)
	}, t.loaded.Inc)
	return t
}

// open returns the named blocks of the context's tenant, in order.
func (t *Traces) open(ctx context.Context, ids []string) ([]*traceblock.Block, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*traceblock.Block, len(ids))
	for i, s := range ids {
		id, err := ulid.ParseStrict(s)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "block ID %q: %v", s, err)
		}
		if out[i], err = t.blocks.get(ctx, tid, id); err != nil {
			return nil, err
		}
	}
	t.queried.Add(float64(len(out)))
	return out, nil
}

// FindTrace returns the spans of a trace the named blocks hold, one piece
// (OTLP TracesData protobuf) per block holding it.
func (t *Traces) FindTrace(ctx context.Context, req *tracespb.FindTraceRequest) (*tracespb.FindTraceResponse, error) {
	if len(req.TraceId) != 16 {
		return nil, status.Errorf(codes.InvalidArgument, "a trace ID of %d bytes; trace IDs are 16 bytes", len(req.TraceId))
	}
	blocks, err := t.open(ctx, req.BlockIds)
	if err != nil {
		return nil, err
	}
	id := [16]byte(req.TraceId)
	resp := &tracespb.FindTraceResponse{}
	var m ptrace.ProtoMarshaler
	for _, b := range blocks {
		td, ok, err := b.FindTrace(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		p, err := m.MarshalTraces(td)
		if err != nil {
			return nil, fmt.Errorf("encoding trace %x: %w", id, err)
		}
		resp.Spans = append(resp.Spans, p)
	}
	return resp, nil
}

// Scan sends the traces of the named blocks, block after block in the
// order named, that have a span in the request's range and match its
// query (when set): with a limit, each block's newest limit of them.
func (t *Traces) Scan(req *tracespb.ScanRequest, send tracesclient.BatchSender) error {
	ctx := send.Context()
	var (
		ev  *traceql.Evaluator
		flt *traceblock.Filter
	)
	if req.Query != "" {
		q, err := traceql.Parse(req.Query)
		if err == nil {
			ev, err = traceql.NewEvaluator(q)
		}
		if err == nil {
			flt, err = traceblock.NewFilter(q)
		}
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
	blocks, err := t.open(ctx, req.BlockIds)
	if err != nil {
		return err
	}
	batches := tracesclient.NewBatcher(send)
	var (
		m       ptrace.ProtoMarshaler
		sendErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	send1 := func(id [16]byte, td ptrace.Traces) bool {
		p, err := m.MarshalTraces(td)
		if err != nil {
			sendErr = fmt.Errorf("encoding trace %x: %w", id, err)
		} else {
			sendErr = batches.Add(append([]byte(nil), id[:]...), p)
		}
		if sendErr != nil {
			cancel() // ends a ScanNewest, which goes on after a trace that did not match
		}
		return sendErr == nil
	}
	for _, b := range blocks {
		var err error
		if ev != nil && req.Limit > 0 {
			err = b.ScanNewest(ctx, req.StartUnixNano, req.EndUnixNano, flt, int(req.Limit), func(id [16]byte, td ptrace.Traces) bool {
				return sendErr == nil && ev.MatchesPdata(td) && send1(id, td)
			})
		} else {
			err = b.Scan(ctx, req.StartUnixNano, req.EndUnixNano, flt, func(id [16]byte, td ptrace.Traces) bool {
				if ev != nil && !ev.MatchesPdata(td) {
					return true
				}
				return send1(id, td)
			})
		}
		if sendErr != nil {
			return sendErr
		}
		if err != nil {
			return err
		}
	}
	return batches.Flush()
}
