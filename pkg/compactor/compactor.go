// Package compactor keeps each tenant's metrics in the bucket compact and
// bounded: it merges the overlapping blocks replicas ship (deduplicating
// their samples), compacts small blocks into larger ranges, applies
// retention, deletes marked blocks after a delay, cleans up abandoned
// uploads and maintains the bucket index. It does the same for log blocks
// (merging replicas' blocks, per-stream retention, deletion requests: see
// logs.go), and merges trace blocks and applies their retention (see
// traces.go). Tenants are sharded over compactor replicas by the compactor
// ring.
package compactor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/concurrency"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/util/logging"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Ring identity.
const (
	RingName = "compactor"
	RingKey  = "compactor"
)

// Compactor is a services.Service. Create it with New.
type Compactor struct {
	services.Service

	cfg      Config
	dir      string
	bkt      objstore.Bucket
	limits   validation.TenantLimits
	logger   log.Logger
	slogger  *slog.Logger
	metrics  *metrics
	tsdbMets *tsdb.CompactorMetrics
	now      func() time.Time

	lifecycler *ring.Lifecycler
	ring       *ring.Ring
	watcher    *services.FailureWatcher

	runMu sync.Mutex // one pass at a time

	logsChunkTarget int
	deletes         *logdelete.Store
	expiryMu        sync.Mutex
	expiries        map[ulid.ULID]cachedExpiry // of log blocks, by expiry

	tracesMetrics *tracesMetrics
}

// New returns a compactor working in dir (scratch space for the blocks it
// compacts) on bkt. logsChunkTarget is the raw bytes of lines at which it
// cuts the chunks of the log blocks it writes: the logs ingesters' target
// (-ingester.logs.chunk-target-size). memberlistKV may be nil when the
// ring store is not memberlist.
func New(cfg Config, dir string, self ringconfig.Instance, bkt objstore.Bucket, limits validation.TenantLimits, logsChunkTarget int, memberlistKV func() (*memberlist.KV, error), logger log.Logger, reg prometheus.Registerer) (*Compactor, error) {
	c := &Compactor{
		cfg: cfg, dir: dir, bkt: bkt, limits: limits,
		logsChunkTarget: logsChunkTarget,
		deletes:         logdelete.NewStore(bkt),
		expiries:        map[ulid.ULID]cachedExpiry{},
		logger:          log.With(logger, "component", "compactor"),
		metrics:         newMetrics(reg),
		tracesMetrics:   newTracesMetrics(reg),
		tsdbMets:        tsdb.NewCompactorMetrics(prometheus.WrapRegistererWithPrefix("canopy_compactor_", reg)),
		now:             time.Now,
	}
	c.slogger = logging.Slog(c.logger)
	rcfg := cfg.Ring
	rcfg.ReplicationFactor = 1 // a tenant has one owner
	wrapped := prometheus.WrapRegistererWithPrefix("canopy_", reg)
	var err error
	c.lifecycler, err = rcfg.NewLifecycler(ringconfig.Lifecycler{Name: RingName, Key: RingKey, Self: self, MemberlistKV: memberlistKV}, logger, wrapped)
	if err != nil {
		return nil, err
	}
	c.ring, err = rcfg.NewRing(RingName, RingKey, memberlistKV, nil, logger, wrapped)
	if err != nil {
		return nil, err
	}
	c.Service = services.NewBasicService(c.starting, c.running, c.stopping)
	return c, nil
}

// Ring is the compactor ring (for its status page).
func (c *Compactor) Ring() *ring.Ring { return c.ring }

func (c *Compactor) starting(ctx context.Context) error {
	if err := os.RemoveAll(c.dir); err != nil { // leftovers of an interrupted job
		return fmt.Errorf("cleaning compactor directory: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o750); err != nil {
		return fmt.Errorf("creating compactor directory: %w", err)
	}
	c.watcher = services.NewFailureWatcher()
	c.watcher.WatchService(c.lifecycler)
	c.watcher.WatchService(c.ring)
	if err := services.StartAndAwaitRunning(ctx, c.ring); err != nil {
		return err
	}
	return services.StartAndAwaitRunning(ctx, c.lifecycler)
}

func (c *Compactor) running(ctx context.Context) error {
	// Wait until this instance is ACTIVE and visible in the ring before the
	// first pass, so ownership is decided on a stable ring.
	for ctx.Err() == nil {
		if c.ringHasMe() {
			break
		}
		select {
		case <-ctx.Done():
		case err := <-c.watcher.Chan():
			return ringconfig.LifecyclerFailure(ctx, "compactor", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.Run(ctx, true)
	compact := time.NewTicker(c.cfg.CompactionInterval)
	defer compact.Stop()
	cleanup := time.NewTicker(c.cfg.CleanupInterval)
	defer cleanup.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-c.watcher.Chan():
			return ringconfig.LifecyclerFailure(ctx, "compactor", err)
		case <-compact.C:
			c.Run(ctx, true)
		case <-cleanup.C:
			c.Run(ctx, false)
		}
	}
}

func (c *Compactor) stopping(_ error) error {
	err := ringconfig.StopLifecycler(c.lifecycler)
	return errors.Join(err, services.StopAndAwaitTerminated(context.Background(), c.ring))
}

func (c *Compactor) ringHasMe() bool {
	rs, err := c.ring.GetAllHealthy(ring.Reporting)
	if err != nil {
		return false
	}
	for _, in := range rs.Instances {
		if in.Id == c.lifecycler.ID {
			return true
		}
	}
	return false
}

var ownerOp = ring.NewOp([]ring.InstanceState{ring.ACTIVE}, nil)

// owns reports whether this compactor owns tenant id.
func (c *Compactor) owns(id string) (bool, error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	rs, err := c.ring.Get(h.Sum32(), ownerOp, nil, nil, nil)
	if err != nil {
		return false, err
	}
	return len(rs.Instances) > 0 && rs.Instances[0].Id == c.lifecycler.ID, nil
}

// RunResult summarises one pass.
type RunResult struct {
	Tenants   []string `json:"tenants"`
	Compacted int      `json:"blocks_written"`
	Errors    []string `json:"errors,omitempty"`
}

// Run makes one pass over the tenants this compactor owns: compaction (when
// compact is true) and then cleanup and the bucket index. Passes never
// overlap.
func (c *Compactor) Run(ctx context.Context, compact bool) RunResult {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	var (
		res RunResult
		mu  sync.Mutex
	)
	tenants, err := c.ownedTenants(ctx)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		c.metrics.runs.WithLabelValues(kind(compact), "failure").Inc()
		return res
	}
	res.Tenants = tenants
	_ = concurrency.ForEachJob(ctx, len(tenants), c.cfg.TenantConcurrency, func(ctx context.Context, n int) error {
		id := tenants[n]
		written, err := c.runTenant(ctx, id, compact)
		mu.Lock()
		defer mu.Unlock()
		res.Compacted += written
		if err != nil {
			level.Error(c.logger).Log("msg", "compactor pass failed", "tenant", id, "err", err)
			res.Errors = append(res.Errors, fmt.Sprintf("tenant %s: %v", id, err))
		}
		return nil
	})
	written, errs := c.logsPass(ctx, compact)
	res.Compacted += written
	res.Errors = append(res.Errors, errs...)
	written, errs = c.tracesPass(ctx, compact)
	res.Compacted += written
	res.Errors = append(res.Errors, errs...)
	sort.Strings(res.Errors)
	if len(res.Errors) == 0 {
		c.metrics.runs.WithLabelValues(kind(compact), "success").Inc()
		if compact {
			c.metrics.lastSuccess.SetToCurrentTime()
		}
	} else {
		c.metrics.runs.WithLabelValues(kind(compact), "failure").Inc()
	}
	return res
}

func kind(compact bool) string {
	if compact {
		return "compaction"
	}
	return "cleanup"
}

// ownedTenants lists the tenants with a metrics prefix in the bucket that
// this compactor owns.
func (c *Compactor) ownedTenants(ctx context.Context) ([]string, error) {
	all, err := metricsblocks.ListTenants(ctx, c.bkt)
	if err != nil {
		return nil, err
	}
	var owned []string
	for _, id := range all {
		ok, err := c.owns(id)
		if err != nil {
			return nil, fmt.Errorf("compactor ring: %w", err)
		}
		if ok {
			owned = append(owned, id)
		}
	}
	c.metrics.ownedTenants.Set(float64(len(owned)))
	return owned, nil
}

// RunHandler serves POST /compactor/run: one compaction and cleanup pass
// now, answering when it is done.
func (c *Compactor) RunHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	res := c.Run(r.Context(), true)
	writeJSON(w, res, len(res.Errors) > 0)
}

// tenantDir is the scratch directory of one tenant's jobs.
func (c *Compactor) tenantDir(id string) string { return filepath.Join(c.dir, id) }
