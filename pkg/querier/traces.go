package querier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/sync/errgroup"

	"github.com/canopy-observability/canopy/pkg/ingester/tracesclient"
	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
	"github.com/canopy-observability/canopy/pkg/storegateway"
)

// TracesIngester is what the traces reader needs of a traces ingester: a
// trace by ID, and the traces it holds in a time range (searches). A
// tracesclient.Client is one. Implementations are safe for concurrent use.
type TracesIngester interface {
	FindTrace(ctx context.Context, req *tracespb.FindTraceRequest) (*tracespb.FindTraceResponse, error)
	Scan(ctx context.Context, req *tracespb.ScanRequest) (func() (*tracespb.ScanBatch, error), error)
}

var _ TracesIngester = (*tracesclient.Client)(nil)

// Traces reads a tenant's traces from the traces ingesters that own a
// trace (what they hold in memory) and from the blocks in the bucket,
// merging the pieces and keeping each span once. Safe for concurrent use.
type Traces struct {
	ring     ring.ReadRing
	finder   func(addr string) (TracesIngester, error)
	bkt      objstore.Bucket // nil: no bucket
	indexTTL time.Duration
	now      func() time.Time

	// gateways, when set, serve the blocks; otherwise the querier opens
	// them from the bucket itself.
	gateways *TracesGateways

	mu      sync.Mutex
	lists   map[string]traceBlockList       // tenant → its blocks, read at most every indexTTL
	blocks  map[ulid.ULID]*traceblock.Block // opened blocks (bloom in memory)
	opening map[ulid.ULID]*sync.Mutex       // one opening of a block at a time
}

type traceBlockList struct {
	metas []traceblock.Meta
	at    time.Time
}

// TracesGateways are the store-gateways that serve trace blocks: the ring
// that says which own a block, and their clients.
type TracesGateways struct {
	Ring   ring.ReadRing
	Client func(addr string) (*tracesclient.Client, error)
	// Local, when not nil, returns the traces unit of the store-gateway
	// instance id if it runs in this process (else nil): it is called
	// directly.
	Local func(id string) *storegateway.Traces
}

// UseStoreGateways makes the querier read trace blocks through the
// store-gateways that own them instead of from the bucket.
func (t *Traces) UseStoreGateways(g *TracesGateways) { t.gateways = g }

// NewTraces returns the traces reader; it reads a tenant's list of blocks
// at most every indexTTL.
func NewTraces(r ring.ReadRing, finder func(addr string) (TracesIngester, error), bkt objstore.Bucket, indexTTL time.Duration) *Traces {
	return &Traces{ring: r, finder: finder, bkt: bkt, indexTTL: indexTTL, now: time.Now,
		lists: map[string]traceBlockList{}, blocks: map[ulid.ULID]*traceblock.Block{}, opening: map[ulid.ULID]*sync.Mutex{}}
}

// TraceByID returns the spans of trace id held anywhere: by the ingesters
// that own it and by every block whose time range meets [start, end]
// (every block when both are zero) and whose bloom filter does not rule
// it out. Pieces are merged, each span kept once.
func (t *Traces) TraceByID(ctx context.Context, tenantID string, id []byte, start, end time.Time) (ptrace.Traces, bool, error) {
	if len(id) != 16 {
		return ptrace.Traces{}, false, fmt.Errorf("a trace ID of %d bytes; trace IDs are 16 bytes", len(id))
	}
	tid := [16]byte(id)
	var (
		mu     sync.Mutex
		pieces []ptrace.Traces
	)
	add := func(td ptrace.Traces) {
		mu.Lock()
		pieces = append(pieces, td)
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return t.fromIngesters(gctx, tenantID, tid, add) })
	if t.bkt != nil {
		g.Go(func() error { return t.fromBlocks(gctx, tenantID, tid, start, end, add) })
	}
	if err := g.Wait(); err != nil {
		return ptrace.Traces{}, false, err
	}
	if len(pieces) == 0 {
		return ptrace.Traces{}, false, nil
	}
	return MergeTraces(pieces), true, nil
}

// fromIngesters asks every ingester of the trace's replication set,
// tolerating as many failures as the set allows.
func (t *Traces) fromIngesters(ctx context.Context, tenantID string, id [16]byte, add func(ptrace.Traces)) error {
	rs, err := t.ring.Get(tracesclient.TraceKey(tenantID, id), ring.Read, nil, nil, nil)
	if err != nil {
		return fmt.Errorf("finding the traces ingesters of trace %x: %w", id, err)
	}
	ctx = user.InjectOrgID(ctx, tenantID)
	errs := make([]error, len(rs.Instances))
	var wg sync.WaitGroup
	for i, inst := range rs.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = func() error {
				f, err := t.finder(inst.Addr)
				if err != nil {
					return err
				}
				resp, err := f.FindTrace(ctx, &tracespb.FindTraceRequest{TraceId: id[:]})
				if err != nil {
					return err
				}
				var u ptrace.ProtoUnmarshaler
				for _, p := range resp.Spans {
					td, err := u.UnmarshalTraces(p)
					if err != nil {
						return fmt.Errorf("a piece of trace %x that does not decode: %w", id, err)
					}
					add(td)
				}
				return nil
			}()
			if errs[i] != nil {
				errs[i] = fmt.Errorf("traces ingester %s (%s): %w", inst.Id, inst.Addr, errs[i])
			}
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > rs.MaxErrors {
		return errors.Join(failed...)
	}
	return nil
}

// fromBlocks looks the trace up in the tenant's blocks.
func (t *Traces) fromBlocks(ctx context.Context, tenantID string, id [16]byte, start, end time.Time, add func(ptrace.Traces)) error {
	metas, err := t.blockMetas(ctx, tenantID)
	if err != nil {
		return err
	}
	if t.gateways != nil {
		var ids []ulid.ULID
		for _, m := range metas {
			if start.IsZero() || (m.MaxTime >= start.UnixNano() && m.MinTime <= end.UnixNano()) {
				ids = append(ids, m.ULID)
			}
		}
		return t.fromGateways(ctx, tenantID, id, ids, add)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, m := range metas {
		if !start.IsZero() && (m.MaxTime < start.UnixNano() || m.MinTime > end.UnixNano()) {
			continue
		}
		g.Go(func() error {
			b, err := t.openBlock(gctx, tenantID, m)
			if err != nil {
				return err
			}
			if !b.MayHold(id) {
				return nil
			}
			td, ok, err := b.FindTrace(gctx, id)
			if err != nil {
				return err
			}
			if ok {
				add(td)
			}
			return nil
		})
	}
	return g.Wait()
}

// fromGateways asks the store-gateways owning the blocks for the trace.
func (t *Traces) fromGateways(ctx context.Context, tenantID string, id [16]byte, blocks []ulid.ULID, add func(ptrace.Traces)) error {
	ctx = user.InjectOrgID(ctx, tenantID)
	return forBlockOwners(ctx, t.gateways.Ring, "trace", blocks, func(ctx context.Context, inst ring.InstanceDesc, ids []string) error {
		req := &tracespb.FindTraceRequest{TraceId: id[:], BlockIds: ids}
		var (
			resp *tracespb.FindTraceResponse
			err  error
		)
		if local := t.gatewayLocal(inst); local != nil {
			resp, err = local.FindTrace(ctx, req)
		} else {
			var c *tracesclient.Client
			if c, err = t.gateways.Client(inst.Addr); err == nil {
				resp, err = c.FindTrace(ctx, req)
			}
		}
		if err != nil {
			return err
		}
		var u ptrace.ProtoUnmarshaler
		for _, p := range resp.Spans {
			td, err := u.UnmarshalTraces(p)
			if err != nil {
				return fmt.Errorf("a piece of trace %x that does not decode: %w", id, err)
			}
			add(td)
		}
		return nil
	})
}

// gatewayLocal is the in-process traces unit of store-gateway inst, or nil.
func (t *Traces) gatewayLocal(inst ring.InstanceDesc) *storegateway.Traces {
	if t.gateways.Local == nil {
		return nil
	}
	return t.gateways.Local(inst.Id)
}

// blockMetas returns the tenant's blocks, listed at most every indexTTL.
func (t *Traces) blockMetas(ctx context.Context, tenantID string) ([]traceblock.Meta, error) {
	t.mu.Lock()
	list, ok := t.lists[tenantID]
	t.mu.Unlock()
	if ok && t.now().Sub(list.at) <= t.indexTTL {
		return list.metas, nil
	}
	metas, err := traceblock.ListBlocks(ctx, t.bkt, tenantID)
	if err != nil {
		return nil, fmt.Errorf("listing trace blocks: %w", err)
	}
	listed := make(map[ulid.ULID]struct{}, len(metas))
	for _, m := range metas {
		listed[m.ULID] = struct{}{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Blocks no longer listed were replaced by the compactor or are past
	// retention: their blooms go from memory now.
	for _, m := range t.lists[tenantID].metas {
		if _, ok := listed[m.ULID]; !ok {
			delete(t.blocks, m.ULID)
			delete(t.opening, m.ULID)
		}
	}
	t.lists[tenantID] = traceBlockList{metas: metas, at: t.now()}
	return metas, nil
}

// openBlock returns block m, opening it (reading its bloom filter) once.
func (t *Traces) openBlock(ctx context.Context, tenantID string, m traceblock.Meta) (*traceblock.Block, error) {
	t.mu.Lock()
	if b, ok := t.blocks[m.ULID]; ok {
		t.mu.Unlock()
		return b, nil
	}
	om, ok := t.opening[m.ULID]
	if !ok {
		om = &sync.Mutex{}
		t.opening[m.ULID] = om
	}
	t.mu.Unlock()
	om.Lock()
	defer om.Unlock()
	t.mu.Lock()
	b, ok := t.blocks[m.ULID]
	t.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := traceblock.OpenBlock(ctx, t.bkt, tenantID, m)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.blocks[m.ULID] = b
	t.mu.Unlock()
	return b, nil
}

// MergeTraces merges pieces of one trace into one, keeping each span once
// (by span ID and start time: replicas', retried and re-shipped copies).
// The pieces are moved, not copied: they must not be used afterwards.
func MergeTraces(pieces []ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	type key struct {
		id    [8]byte
		start uint64
	}
	seen := map[key]struct{}{}
	for _, td := range pieces {
		td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
			rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
				ss.Spans().RemoveIf(func(s ptrace.Span) bool {
					k := key{s.SpanID(), uint64(s.StartTimestamp())}
					if _, dup := seen[k]; dup {
						return true
					}
					seen[k] = struct{}{}
					return false
				})
				return ss.Spans().Len() == 0
			})
			return rs.ScopeSpans().Len() == 0
		})
		td.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
	}
	return out
}
