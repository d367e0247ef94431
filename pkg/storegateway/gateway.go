// Package storegateway serves the series of the blocks in the bucket to
// queriers. Block ownership is sharded over store-gateways by the
// store-gateway ring, with replication; a store-gateway reads only the index
// and chunk byte ranges a query needs, through a bounded in-memory page
// cache, so its local disk never holds the bucket.
package storegateway

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/concurrency"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Ring identity.
const (
	RingName = "store-gateway"
	RingKey  = "store-gateway"
)

// ReadOp selects the store-gateways that serve a block.
var ReadOp = ring.NewOp([]ring.InstanceState{ring.ACTIVE}, nil)

// BlockToken is the ring token of a block: the store-gateways owning it are
// the replication set of this token.
func BlockToken(id ulid.ULID) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(id[:])
	return h.Sum32()
}

// NewRing returns a client of the store-gateway ring. Unhealthy instances
// are skipped rather than failing the lookup: a block is served by any
// healthy replica that owns it.
func NewRing(cfg Config, memberlistKV func() (*memberlist.KV, error), logger log.Logger, reg prometheus.Registerer) (*ring.Ring, error) {
	return cfg.Ring.NewRing(RingName, RingKey, memberlistKV, ring.NewIgnoreUnhealthyInstancesReplicationStrategy(), logger, reg)
}

// StoreGateway is a services.Service. Create it with New.
type StoreGateway struct {
	services.Service

	cfg        Config
	bkt        objstore.Bucket
	cache      *pageCache
	logger     log.Logger
	ring       ring.ReadRing
	lifecycler *ring.Lifecycler
	watcher    *services.FailureWatcher

	// ctx lives as long as the service: block readers outlive requests.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	blocks map[blockKey]*blockEntry
	now    func() time.Time

	loaded          prometheus.Gauge
	unloaded        prometheus.Counter
	openFailures    prometheus.Counter
	blocksQueried   prometheus.Counter
	blocksPruned    *prometheus.CounterVec
	syncs           *prometheus.CounterVec
	lastSyncSuccess prometheus.Gauge
}

type blockKey struct {
	tenant string
	id     ulid.ULID
}

type blockEntry struct {
	mu       sync.Mutex
	block    *bucketBlock
	err      error
	failedAt time.Time
	opening  chan struct{} // closed when the opening in progress ends; nil when none is
	lastUsed atomic.Int64  // Unix nanoseconds of the last query (or opening)
}

// retryOpenAfter is how long a block that failed to open is not retried.
const retryOpenAfter = 10 * time.Second

// New returns a store-gateway reading bkt. r is the store-gateway ring
// (NewRing); memberlistKV may be nil when the ring store is not memberlist.
func New(cfg Config, self ringconfig.Instance, bkt objstore.Bucket, r ring.ReadRing, memberlistKV func() (*memberlist.KV, error), logger log.Logger, reg prometheus.Registerer) (*StoreGateway, error) {
	g := &StoreGateway{
		cfg: cfg, bkt: bkt, ring: r,
		logger: log.With(logger, "component", "store-gateway"),
		cache:  newPageCache(int64(cfg.CacheSize), reg),
		blocks: map[blockKey]*blockEntry{},
		now:    time.Now,
		loaded: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "canopy_store_gateway_blocks_loaded", Help: "Blocks whose index header the store-gateway holds open.",
		}),
		unloaded: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_blocks_unloaded_total", Help: "Block index headers let go after -store-gateway.idle-block-timeout without a query.",
		}),
		openFailures: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_block_open_failures_total", Help: "Blocks that could not be opened from the bucket.",
		}),
		blocksQueried: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_store_gateway_blocks_queried_total", Help: "Blocks read by series and label calls.",
		}),
		blocksPruned: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_store_gateway_blocks_pruned_total", Help: "Blocks skipped without reading their series, by reason (time, labels).",
		}, []string{"reason"}),
		syncs: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_store_gateway_syncs_total", Help: "Block syncs by outcome.",
		}, []string{"outcome"}),
		lastSyncSuccess: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "canopy_store_gateway_last_sync_success_timestamp_seconds", Help: "When the store-gateway last synced its blocks without error.",
		}),
	}
	var err error
	g.lifecycler, err = cfg.Ring.NewLifecycler(ringconfig.Lifecycler{Name: RingName, Key: RingKey, Self: self, MemberlistKV: memberlistKV}, logger, prometheus.WrapRegistererWithPrefix("canopy_", reg))
	if err != nil {
		return nil, err
	}
	g.Service = services.NewBasicService(g.starting, g.running, g.stopping)
	return g, nil
}

func (g *StoreGateway) starting(ctx context.Context) error {
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.watcher = services.NewFailureWatcher()
	g.watcher.WatchService(g.lifecycler)
	return services.StartAndAwaitRunning(ctx, g.lifecycler)
}

func (g *StoreGateway) running(ctx context.Context) error {
	// Sync once the ring shows this instance, so ownership is decided on it.
	for ctx.Err() == nil && !g.ringHasMe() {
		select {
		case <-ctx.Done():
		case err := <-g.watcher.Chan():
			return ringconfig.LifecyclerFailure(ctx, "store-gateway", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t := time.NewTicker(g.cfg.SyncInterval)
	defer t.Stop()
	for {
		if err := g.Sync(ctx); err != nil && ctx.Err() == nil {
			level.Warn(g.logger).Log("msg", "block sync failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-g.watcher.Chan():
			return ringconfig.LifecyclerFailure(ctx, "store-gateway", err)
		case <-t.C:
		}
	}
}

func (g *StoreGateway) stopping(_ error) error {
	g.cancel()
	return ringconfig.StopLifecycler(g.lifecycler)
}

func (g *StoreGateway) ringHasMe() bool {
	rs, err := g.ring.GetAllHealthy(ring.Reporting)
	if err != nil {
		return false
	}
	return rs.Includes(g.lifecycler.Addr)
}

// owns reports whether this store-gateway is among the replicas of block id.
func (g *StoreGateway) owns(id ulid.ULID) (bool, error) {
	rs, err := g.ring.Get(BlockToken(id), ReadOp, nil, nil, nil)
	if err != nil {
		return false, err
	}
	for _, in := range rs.Instances {
		if in.Id == g.lifecycler.ID {
			return true, nil
		}
	}
	return false, nil
}

// Sync opens the index headers of the blocks this store-gateway owns (per
// the tenants' bucket indexes) and forgets every other block. Queries for a
// block not opened yet open it then: Sync only warms and trims.
func (g *StoreGateway) Sync(ctx context.Context) error {
	err := g.sync(ctx)
	if err != nil {
		g.syncs.WithLabelValues("failure").Inc()
	} else {
		g.syncs.WithLabelValues("success").Inc()
		g.lastSyncSuccess.SetToCurrentTime()
	}
	return err
}

func (g *StoreGateway) sync(ctx context.Context) error {
	tenants, err := metricsblocks.ListTenants(ctx, g.bkt)
	if err != nil {
		return err
	}
	var (
		owned []blockKey
		errs  []error
	)
	for _, t := range tenants {
		idx, err := layout.ReadBucketIndex(ctx, metricsblocks.TenantBucket(g.bkt, t))
		if errors.Is(err, layout.ErrNoBucketIndex) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
			continue
		}
		marked := idx.DeletionMarked()
		for _, b := range idx.Blocks {
			if _, ok := marked[b.ID]; ok {
				continue
			}
			mine, err := g.owns(b.ID)
			if err != nil {
				return fmt.Errorf("store-gateway ring: %w", err)
			}
			if mine {
				owned = append(owned, blockKey{t, b.ID})
			}
		}
	}
	keep := make(map[blockKey]bool, len(owned))
	for _, k := range owned {
		keep[k] = true
	}
	// Newly owned blocks are opened now, so their first query does not
	// wait; blocks unloaded for idleness are opened again by a query.
	// An entry's lock is never held across bucket reads (see block), nor
	// taken under g.mu.
	var fresh []blockKey
	known := map[blockKey]*blockEntry{}
	g.mu.Lock()
	for k := range g.blocks {
		if !keep[k] {
			delete(g.blocks, k)
		}
	}
	for _, k := range owned {
		if e, ok := g.blocks[k]; ok {
			known[k] = e
		} else {
			fresh = append(fresh, k)
		}
	}
	g.mu.Unlock()
	for k, e := range known {
		e.mu.Lock()
		if e.err != nil { // failed to open: try again
			fresh = append(fresh, k)
		}
		e.mu.Unlock()
	}
	g.unloadIdle()
	defer g.updateLoaded() // blocks no longer owned were dropped
	var errMu sync.Mutex
	_ = concurrency.ForEachJob(ctx, len(fresh), g.cfg.SyncConcurrency, func(_ context.Context, n int) error {
		if _, err := g.block(ctx, fresh[n].tenant, fresh[n].id); err != nil {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
		return nil
	})
	return errors.Join(errs...)
}

// unloadIdle lets go of the index of every block no query has read for
// -store-gateway.idle-block-timeout: its postings offset table and symbol
// table leave memory (a query in flight keeps what it holds).
func (g *StoreGateway) unloadIdle() {
	if g.cfg.IdleBlockTimeout <= 0 {
		return
	}
	before := g.now().Add(-g.cfg.IdleBlockTimeout).UnixNano()
	for _, e := range g.entries() {
		e.mu.Lock()
		if e.block != nil && e.lastUsed.Load() < before {
			e.block = nil
			g.unloaded.Inc()
			g.loaded.Dec()
		}
		e.mu.Unlock()
	}
}

func (g *StoreGateway) entries() []*blockEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*blockEntry, 0, len(g.blocks))
	for _, e := range g.blocks {
		out = append(out, e)
	}
	return out
}

func (g *StoreGateway) updateLoaded() {
	n := 0
	for _, e := range g.entries() {
		e.mu.Lock()
		if e.block != nil {
			n++
		}
		e.mu.Unlock()
	}
	g.loaded.Set(float64(n))
}

// block returns the open block, opening it on first use. The block is
// opened in the background with the service's context: it is shared by
// every query, so a caller whose ctx ends stops waiting for it (with ctx's
// error) but the opening goes on for the next one.
func (g *StoreGateway) block(ctx context.Context, t string, id ulid.ULID) (*bucketBlock, error) {
	k := blockKey{t, id}
	g.mu.Lock()
	e, ok := g.blocks[k]
	if !ok {
		e = &blockEntry{}
		g.blocks[k] = e
	}
	g.mu.Unlock()

	e.lastUsed.Store(g.now().UnixNano())
	e.mu.Lock()
	if e.block != nil {
		defer e.mu.Unlock()
		return e.block, nil
	}
	if e.err != nil && time.Since(e.failedAt) < retryOpenAfter {
		defer e.mu.Unlock()
		return nil, e.err
	}
	opened := e.opening
	if opened == nil {
		opened = make(chan struct{})
		e.opening = opened
		go g.open(e, t, id, opened)
	}
	e.mu.Unlock()
	select {
	case <-opened:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.block != nil {
		return e.block, nil
	}
	return nil, e.err
}

// open opens block id of tenant t into e, then closes opened.
func (g *StoreGateway) open(e *blockEntry, t string, id ulid.ULID, opened chan struct{}) {
	b, err := openBlock(g.ctx, metricsblocks.TenantBucket(g.bkt, t), t, id, g.cache)
	e.mu.Lock()
	if err != nil {
		g.openFailures.Inc()
		e.err, e.failedAt = err, time.Now()
	} else {
		e.block, e.err = b, nil
		g.loaded.Inc()
	}
	e.opening = nil
	e.mu.Unlock()
	close(opened)
}

// selectBlocks opens the requested blocks and keeps those that may hold
// matching data in [start, end]. queried lists every block that was opened:
// pruned blocks count as read, since they were checked and hold nothing.
func (g *StoreGateway) selectBlocks(ctx context.Context, ids []string, start, end int64, matchers []*labels.Matcher) (queried []string, failed map[string]string, selected []*bucketBlock, err error) {
	t, err := tenant.ID(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(ids) > g.cfg.MaxBlocksPerCall {
		return nil, nil, nil, fmt.Errorf("a query asked for %d blocks, more than -store-gateway.max-blocks-per-call (%d)", len(ids), g.cfg.MaxBlocksPerCall)
	}
	for _, s := range ids {
		id, err := ulid.ParseStrict(s)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("block id %q: %w", s, err)
		}
		b, err := g.block(ctx, t, id)
		if err != nil && ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		if err != nil {
			// Not reported as queried: the querier asks another replica.
			level.Warn(g.logger).Log("msg", "cannot open block", "tenant", t, "block", s, "err", err)
			if failed == nil {
				failed = map[string]string{}
			}
			failed[s] = err.Error()
			continue
		}
		queried = append(queried, s)
		switch {
		case b.meta.MinTime > end || b.meta.MaxTime <= start:
			g.blocksPruned.WithLabelValues("time").Inc()
		case !b.mayMatch(matchers):
			g.blocksPruned.WithLabelValues("labels").Inc()
		default:
			selected = append(selected, b)
		}
	}
	g.blocksQueried.Add(float64(len(selected)))
	return queried, failed, selected, nil
}

// Series implements Server.
func (g *StoreGateway) Series(req *SeriesRequest, stream client.FrameSender) (err error) {
	ctx := stream.Context()
	matchers, err := client.ToMatchers(req.Matchers)
	if err != nil {
		return fmt.Errorf("series matchers: %w", err)
	}
	// As ingesters do, chunks are sent whole; the querier drops samples
	// outside the range. The shard matcher is no label of any block: it is
	// taken out before blocks are pruned by label.
	hints := &storage.SelectHints{Start: req.Start, End: req.End, DisableTrimming: true}
	if matchers, err = queryshard.Extract(matchers, hints); err != nil {
		return err
	}
	queried, failed, selected, err := g.selectBlocks(ctx, req.BlockIDs, req.Start, req.End, matchers)
	if err != nil {
		return err
	}
	if err := SendQueriedBlocks(stream, queried, failed); err != nil {
		return err
	}
	defer recoverRead(&err)
	sets := make([]storage.ChunkSeriesSet, 0, len(selected))
	for _, b := range selected {
		q, err := tsdb.NewBlockChunkQuerier(b.reader(ctx), req.Start, req.End)
		if err != nil {
			return fmt.Errorf("block %s: %w", b.meta.ULID, err)
		}
		defer q.Close()
		sets = append(sets, q.Select(ctx, true, hints, matchers...))
	}
	// Blocks of one range from several ingesters (not compacted yet) hold
	// the same samples: the compacting merge sends them once.
	css := storage.NewMergeChunkSeriesSet(sets, 0, storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge))
	return rpc.StreamSeries(stream, css, g.cfg.MaxFrameBytes)
}

// LabelNames implements Server.
func (g *StoreGateway) LabelNames(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error) {
	return g.labels(ctx, req, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		v, _, err := q.LabelNames(ctx, hints, ms...)
		return v, err
	})
}

// LabelValues implements Server.
func (g *StoreGateway) LabelValues(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error) {
	return g.labels(ctx, req, func(q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, error) {
		v, _, err := q.LabelValues(ctx, req.Name, hints, ms...)
		return v, err
	})
}

func (g *StoreGateway) labels(ctx context.Context, req *LabelsRequest, get func(storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, error)) (_ *LabelsResponse, err error) {
	matchers, err := client.ToMatchers(req.Matchers)
	if err != nil {
		return nil, fmt.Errorf("label matchers: %w", err)
	}
	queried, failed, selected, err := g.selectBlocks(ctx, req.BlockIDs, req.Start, req.End, matchers)
	if err != nil {
		return nil, err
	}
	defer recoverRead(&err)
	seen := map[string]struct{}{}
	hints := &storage.LabelHints{Limit: req.Limit}
	for _, b := range selected {
		q, err := tsdb.NewBlockQuerier(b.reader(ctx), req.Start, req.End)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", b.meta.ULID, err)
		}
		vals, err := get(q, hints, matchers)
		_ = q.Close()
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", b.meta.ULID, err)
		}
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	if req.Limit > 0 && len(out) > req.Limit {
		out = out[:req.Limit]
	}
	return &LabelsResponse{Values: out, QueriedBlocks: queried, BlockErrors: failed}, nil
}

// mayMatch reports whether series matching ms may be in the block: false
// when a matcher needs a label (it does not match the empty value) that no
// series of the block has. The label names are in memory once the block is
// open, so this costs no bucket read.
func (b *bucketBlock) mayMatch(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Matches("") {
			continue
		}
		if _, ok := b.names[m.Name]; !ok {
			return false
		}
	}
	return true
}
