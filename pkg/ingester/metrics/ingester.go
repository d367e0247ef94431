// Package metrics is the metrics unit of an ingester (see package
// ingester): recent metrics in one Prometheus TSDB per tenant (head, WAL,
// out-of-order window, exemplars, native histograms), registered in the
// ingester ring, serving pushes and queries over gRPC, shipping blocks to
// the bucket.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/util/logging"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Signal is the name of this unit: its directory under <data-dir>/ingester
// and its value in -ingester.signals.
const Signal = "metrics"

// RingName and RingKey identify the (metrics) ingester ring; the key is the
// one Canopy used before ingesters hosted several signals.
const (
	RingName = "ingester"
	RingKey  = "ingester"
)

var errStopping = errors.New("ingester is stopping")

// Ingester is a services.Service. Create it with New.
type Ingester struct {
	services.Service

	cfg     Config
	dir     string
	limits  validation.TenantLimits
	bkt     objstore.Bucket // nil: shipping off
	logger  log.Logger
	slogger *slog.Logger
	metrics *metrics

	lifecycler *ring.Lifecycler

	mu      sync.RWMutex
	tenants map[string]*userTSDB
	closing bool

	now func() time.Time
}

// New returns the metrics unit storing under dir (one subdirectory per
// tenant, created on start) with its ring tokens in tokensFile, and shipping
// blocks to bkt. bkt nil, or -ingester.ship-interval=0, keeps blocks on
// local disk only. memberlistKV may be nil when the ring store is not
// memberlist.
func New(cfg Config, dir, tokensFile string, self ringconfig.Instance, limits validation.TenantLimits, bkt objstore.Bucket, memberlistKV func() (*memberlist.KV, error), logger log.Logger, reg prometheus.Registerer) (*Ingester, error) {
	i := &Ingester{
		cfg:     cfg,
		dir:     dir,
		limits:  limits,
		logger:  log.With(logger, "component", "ingester"),
		metrics: newMetrics(reg),
		tenants: map[string]*userTSDB{},
		now:     time.Now,
	}
	if cfg.ShipInterval > 0 {
		i.bkt = bkt
	}
	i.slogger = logging.Slog(i.logger)
	if reg != nil {
		reg.MustRegister(headCollector{ing: i, desc: prometheus.NewDesc("canopy_ingester_head_series", "Series in each tenant's TSDB head in this ingester.", []string{"tenant"}, nil)})
	}
	var err error
	i.lifecycler, err = cfg.Ring.NewLifecycler(ringconfig.Lifecycler{
		Name: RingName, Key: RingKey, Self: self, MemberlistKV: memberlistKV,
		TokensFile: tokensFile, Flusher: flusher{i}, FlushOnShutdown: cfg.FlushOnShutdown && i.bkt != nil,
	}, logger, prometheus.WrapRegistererWithPrefix("canopy_", reg))
	if err != nil {
		return nil, err
	}
	i.Service = services.NewBasicService(i.starting, i.running, i.stopping)
	return i, nil
}

// Lifecycler exposes the ring lifecycler (for /ready and the ring page).
func (i *Ingester) Lifecycler() *ring.Lifecycler { return i.lifecycler }

// ID is this ingester's ring instance ID.
func (i *Ingester) ID() string { return i.lifecycler.ID }

// CheckReady reports whether the ingester is ACTIVE in the ring.
func (i *Ingester) CheckReady(ctx context.Context) error {
	if s := i.State(); s != services.Running {
		return fmt.Errorf("ingester is %s", s)
	}
	return i.lifecycler.CheckReady(ctx)
}

// Signal names the unit (package ingester's Unit).
func (i *Ingester) Signal() string { return Signal }

// RingStatus serves the unit's lifecycler page.
func (i *Ingester) RingStatus() http.Handler { return i.lifecycler }

func (i *Ingester) starting(ctx context.Context) error {
	if err := os.MkdirAll(i.dir, 0o750); err != nil {
		return fmt.Errorf("creating the metrics directory: %w", err)
	}
	// Replay every tenant's WAL before joining the ring, so an instance that
	// is ACTIVE always has its data.
	entries, err := os.ReadDir(i.dir)
	if err != nil {
		return fmt.Errorf("listing tenants: %w", err)
	}
	start := time.Now()
	for _, e := range entries {
		if !e.IsDir() || tenant.Validate(e.Name()) != nil {
			continue
		}
		if _, err := i.openTSDB(e.Name()); err != nil {
			return fmt.Errorf("opening TSDB of tenant %s: %w", e.Name(), err)
		}
	}
	level.Info(i.logger).Log("msg", "opened tenant TSDBs", "tenants", len(i.tenants), "duration", time.Since(start))
	return services.StartAndAwaitRunning(ctx, i.lifecycler)
}

func (i *Ingester) running(ctx context.Context) error {
	failed := services.NewFailureWatcher()
	failed.WatchService(i.lifecycler)
	var tick <-chan time.Time
	if i.bkt != nil {
		t := time.NewTicker(i.cfg.ShipInterval)
		defer t.Stop()
		tick = t.C
		i.shipAll(ctx) // blocks left from before a restart or an outage
	}
	limitsTick := time.NewTicker(limitsApplyInterval)
	defer limitsTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed.Chan():
			return ringconfig.LifecyclerFailure(ctx, RingName, err)
		case <-tick:
			i.shipAll(ctx)
		case <-limitsTick.C:
			i.applyLimits()
			i.handleIdle(ctx)
		}
	}
}

func (i *Ingester) stopping(_ error) error {
	i.mu.Lock()
	i.closing = true
	i.mu.Unlock()
	// Leave the ring first so distributors stop sending (the lifecycler
	// flushes and ships every head while LEAVING when
	// -ingester.flush-on-shutdown is on), then close the databases; the WAL
	// has every acknowledged sample either way.
	err := ringconfig.StopLifecycler(i.lifecycler)
	i.mu.Lock()
	defer i.mu.Unlock()
	for id, db := range i.tenants {
		if cerr := db.Close(); cerr != nil {
			level.Warn(i.logger).Log("msg", "closing TSDB", "tenant", id, "err", cerr)
		}
	}
	i.tenants = map[string]*userTSDB{}
	return err
}

// userTSDB is one tenant's database.
type userTSDB struct {
	*tsdb.DB
	shipper  *shipper // nil when shipping is off
	limiter  *seriesLimiter
	metadata *metadataStore
	refs     *refCache
	applied  tsdbLimits // owned by applyLimits once the TSDB is open

	// lastPush is when the tenant last pushed, Unix nanoseconds.
	lastPush atomic.Int64
	// use is held shared by every user of the TSDB (acquire) and
	// exclusively by closeIdle; closed is set under it, once.
	use    sync.RWMutex
	closed bool
}

// tenantsSnapshot copies the map of open tenant databases.
func (i *Ingester) tenantsSnapshot() map[string]*userTSDB {
	i.mu.RLock()
	defer i.mu.RUnlock()
	out := make(map[string]*userTSDB, len(i.tenants))
	for k, v := range i.tenants {
		out[k] = v
	}
	return out
}

// getTSDB returns the tenant's database or nil.
func (i *Ingester) getTSDB(id string) *userTSDB {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.tenants[id]
}

// acquire returns tenant id's database held for use until release is
// called, creating it when create is set; without create it returns nil
// (and a no-op release) for a tenant with no database. A database closed
// for idleness meanwhile is never returned.
func (i *Ingester) acquire(id string, create bool) (db *userTSDB, release func(), err error) {
	for {
		if create {
			db, err = i.getOrCreateTSDB(id)
			if err != nil {
				return nil, func() {}, err
			}
		} else if db = i.getTSDB(id); db == nil {
			return nil, func() {}, nil
		}
		db.use.RLock()
		if !db.closed {
			return db, db.use.RUnlock, nil
		}
		db.use.RUnlock() // closed for idleness: its map entry is gone now
	}
}

func (i *Ingester) getOrCreateTSDB(id string) (*userTSDB, error) {
	if db := i.getTSDB(id); db != nil {
		return db, nil
	}
	return i.openTSDB(id)
}

func (i *Ingester) openTSDB(id string) (*userTSDB, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closing {
		return nil, errStopping
	}
	if db, ok := i.tenants[id]; ok {
		return db, nil
	}
	want := i.tsdbLimits(id)
	limiter := &seriesLimiter{tenant: id, limits: i.limits, ring: i.lifecycler, rf: i.cfg.Ring.ReplicationFactor, refs: newRefCache()}
	blockMs := i.cfg.BlockRange.Milliseconds()
	dir := filepath.Join(i.dir, id)
	var ship *shipper
	if i.bkt != nil {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		var err error
		if ship, err = newShipper(i.bkt, dir, id, i.lifecycler.ID, i.logger, i.metrics); err != nil {
			return nil, err
		}
	}
	opts := &tsdb.Options{
		RetentionDuration:        i.cfg.Retention.Milliseconds(),
		MinBlockDuration:         blockMs,
		MaxBlockDuration:         blockMs,
		StripeSize:               i.cfg.StripeSize,
		HeadChunksWriteQueueSize: i.cfg.HeadChunksQueue,
		SeriesLifecycleCallback:  limiter,
		EnableExemplarStorage:    true,
		MaxExemplars:             want.maxExemplars,
		OutOfOrderTimeWindow:     want.oooWindow,
		OutOfOrderCapMax:         32,
		BlocksToDelete:           blocksToDelete(ship, i.cfg.Retention, time.Now),
		// The compactor merges overlapping blocks (out-of-order data,
		// replicas) in the bucket; merging locally too would ship the same
		// samples twice.
		EnableOverlappingCompaction: false,
		EnableSTAsZeroSample:        true,
		// The query-frontend shards aggregations by series hash.
		EnableSharding:           true,
		SamplesPerChunk:          120,
		WALSegmentSize:           0,
		MaxBlockChunkSegmentSize: 0,
	}
	if i.cfg.WALCompression {
		opts.WALCompression = compression.Snappy
	}
	db, err := tsdb.Open(dir, i.slogger.With("tenant", id), nil, opts, nil)
	if err != nil {
		return nil, err
	}
	limiter.db = db
	u := &userTSDB{DB: db, shipper: ship, limiter: limiter, metadata: newMetadataStore(), refs: limiter.refs, applied: want}
	u.lastPush.Store(i.now().UnixNano())
	i.tenants[id] = u
	i.metrics.tenants.Set(float64(len(i.tenants)))
	return u, nil
}

// seriesLimiter enforces the per-tenant series limit when the head is about
// to create a series. It is the TSDB's SeriesLifecycleCallback.
type seriesLimiter struct {
	tenant string
	limits validation.TenantLimits
	ring   interface{ HealthyInstancesCount() int }
	rf     int
	db     *tsdb.DB
	refs   *refCache // told of every series the head creates and deletes
}

// errSeriesLimit is returned by PreCreation; push.go maps it to a rejection.
type errSeriesLimit struct {
	limit, local int
}

func (e errSeriesLimit) Error() string {
	return fmt.Sprintf("per-tenant series limit of %d reached (this ingester's share: %d); raise -ingester.max-global-series-per-tenant or max_global_series_per_tenant in the runtime overrides file", e.limit, e.local)
}

func (l *seriesLimiter) PreCreation(labels.Labels) error {
	global := l.limits.ByTenant(l.tenant).MaxGlobalSeriesPerTenant
	if global <= 0 || l.db == nil {
		return nil
	}
	local := ringconfig.LocalLimit(global, l.rf, l.ring.HealthyInstancesCount())
	if l.db.Head().NumSeries() >= uint64(local) {
		return errSeriesLimit{limit: global, local: local}
	}
	return nil
}

// PostCreation tells the ref cache of the series replaying the WAL creates
// (the TSDB is not open yet). A series a push creates is cached by the push,
// with the labels it gave the head.
func (l *seriesLimiter) PostCreation(ls labels.Labels) {
	if l.db == nil {
		l.refs.created(ls)
	}
}
func (l *seriesLimiter) PostDeletion(series map[chunks.HeadSeriesRef]labels.Labels) {
	l.refs.deleted(series)
}
