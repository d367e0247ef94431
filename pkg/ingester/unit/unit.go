// Package unit is the skeleton of an ingester unit that holds every
// tenant's recent data in memory behind a write-ahead log (the logs and
// traces units): the ring lifecycler and its flush on leaving, the WAL's
// replay, push lock and checkpoints (on unitwal's machinery), the tenants'
// instances, and the loop that cuts, ships and checkpoints. A signal
// provides its per-tenant instance type I and Hooks, which are all that is
// its own: its records, its cut, its ship of one tenant.
package unit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/ingester/unitwal"
	"github.com/canopy-observability/canopy/pkg/util/logging"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// Unit is what a Base serves its host: package ingester's Unit (which this
// package cannot name) and the ring lifecycler. A signal's unit embeds it,
// so exactly these methods are promoted.
type Unit interface {
	services.Service
	Signal() string
	CheckReady(ctx context.Context) error
	FlushAndShip(ctx context.Context) (tenants, shipped int, err error)
	RingStatus() http.Handler
	Lifecycler() *ring.Lifecycler
}

// Config is what a Base is built from: the unit's settings and the words
// it logs with.
type Config struct {
	// Signal names the unit ("logs"): in messages ("the logs WAL", "logs
	// ingester is stopping", "-ingester.logs.ship-interval"), its component
	// in logs ("logs-ingester") and the prefix of its ring and WAL metrics
	// (canopy_logs_).
	Signal string
	Ring   ringconfig.Config
	// Lifecycler names the ring and the instance; Base sets its Flusher and
	// FlushOnShutdown.
	Lifecycler ringconfig.Lifecycler
	Dir        string          // the unit's directory: the WAL is WALDir(Dir)
	Bucket     objstore.Bucket // nil: shipping off
	Settings   Settings
	// CutCheckInterval is how often the data is checked for cutting and
	// the unshipped bytes against ShipThreshold.
	CutCheckInterval time.Duration

	ReplayedItems string // what Hooks.Replay counts, the key in the replay's log line ("entries")
	ShipMsg       string // the warning of a failed ship ("shipping log chunks")
	ShippingOff   string // FlushAndShip's error when shipping is off
	Block         string // what a ship uploads, in its metrics' help ("log": "Log blocks uploaded to the bucket.")
}

// Settings are what configures every unit built on Base, each under the
// unit's own flags (-ingester.<signal>.ship-interval, …): the unit's Config
// embeds them inline and registers their flags with its own defaults and
// help.
type Settings struct {
	ShipInterval     time.Duration `yaml:"ship_interval"`        // 0: shipping off
	ShipThreshold    int           `yaml:"ship_threshold_bytes"` // unshipped bytes at which a cut check ships
	RetainShipped    time.Duration `yaml:"retain_shipped_for"`   // how long shipped data stays queryable in memory
	CheckpointPeriod time.Duration `yaml:"checkpoint_period"`
	FlushOnShutdown  bool          `yaml:"flush_on_shutdown"`
}

// Records writes records one by one through emit, stopping at the first
// error (unitwal.WriteCheckpoint).
type Records = func(emit func(rec []byte) error) error

// Hooks are what a signal provides; every one is required. No lock of
// Base's is held when a hook runs, except where said.
type Hooks[I any] struct {
	// NewInstance returns a new tenant's empty instance. It runs under the
	// lock of the tenants' map: it must not call Base.
	NewInstance func(tenant string) I
	// Replay applies one WAL record while the unit starts (no push runs
	// yet; rec is valid only during the call), getting a tenant's instance
	// from instanceOf, and returns how many items the record held, for the
	// log line.
	Replay func(rec []byte, instanceOf func(tenant string) I) (items int, err error)
	// Cut cuts every tenant's data that is due (every tenant's data, force)
	// and adds the bytes cut to AddUnshipped. It may run concurrently with
	// pushes, queries and a ship.
	Cut func(force bool)
	// DropShipped forgets what of in has been in the bucket for retain
	// (Settings.RetainShipped).
	DropShipped func(in I, now time.Time, retain time.Duration)
	// Ship uploads in's cut data not yet in the bucket as one block,
	// marks it shipped, takes its bytes off AddUnshipped and reports
	// whether it uploaded one. One ship runs at a time.
	Ship func(ctx context.Context, in I) (bool, error)
	// Snapshot takes what a checkpoint must hold of in (what it holds that
	// is not yet in the bucket) and returns the records to write it, or
	// nil when there is none. It runs while no push is between its append
	// and its WAL write (the push lock held exclusively); the records are
	// written after the lock is released.
	Snapshot func(in I) Records
}

// Base is the skeleton of a unit, a services.Service: starting replays the
// WAL then joins the ring; running cuts every CutCheckInterval (shipping
// when ShipThreshold bytes wait, dropping what was shipped RetainShipped
// ago), ships every ShipInterval and checkpoints every CheckpointPeriod;
// stopping leaves the ring (flushing first when FlushOnShutdown) then
// closes the WAL. Create it with New. Every method is safe for concurrent
// use but Every, which comes before the unit starts.
type Base[I any] struct {
	services.Service

	cfg         Config
	hooks       Hooks[I]
	bkt         objstore.Bucket // nil: shipping off
	logger      log.Logger
	slogger     *slog.Logger
	reg         prometheus.Registerer // prefixed canopy_<signal>_
	metrics     metrics
	errStopping error

	lifecycler *ring.Lifecycler

	// pushMu is held shared by every push from its append to its WAL
	// record, and exclusively by a checkpoint while it starts a segment and
	// takes its snapshot: what is in memory then is exactly what the
	// segments before have.
	pushMu sync.RWMutex
	wal    *wlog.WL

	mu        sync.RWMutex
	instances map[string]I
	closing   bool

	shipMu sync.Mutex // one ship (tick, flush endpoint, shutdown) at a time
	// unshipped counts the bytes of cut data not yet in the bucket.
	unshipped atomic.Int64

	// every and tick are the running loop's extra work (Every).
	every time.Duration
	tick  func(ctx context.Context)

	now atomic.Pointer[func() time.Time]
}

// New returns the skeleton of the unit cfg describes, logging with logger
// (component <signal>-ingester) and registering its metrics with reg: its
// ships' and checkpoints' (canopy_<signal>_ingester_*), its ring's and its
// WAL's (prefixed canopy_<signal>_).
func New[I any](cfg Config, hooks Hooks[I], logger log.Logger, reg prometheus.Registerer) (*Base[I], error) {
	b := &Base[I]{
		cfg:         cfg,
		hooks:       hooks,
		logger:      log.With(logger, "component", cfg.Signal+"-ingester"),
		reg:         prometheus.WrapRegistererWithPrefix("canopy_"+cfg.Signal+"_", reg),
		metrics:     newMetrics(cfg.Signal, cfg.Block, reg),
		errStopping: errors.New(cfg.Signal + " ingester is stopping"),
		instances:   map[string]I{},
	}
	b.SetNow(time.Now)
	if cfg.Settings.ShipInterval > 0 {
		b.bkt = cfg.Bucket
	}
	b.slogger = logging.Slog(b.logger)
	lc := cfg.Lifecycler
	lc.Flusher, lc.FlushOnShutdown = flusher[I]{b}, cfg.Settings.FlushOnShutdown && b.bkt != nil
	var err error
	b.lifecycler, err = cfg.Ring.NewLifecycler(lc, logger, b.reg)
	if err != nil {
		return nil, err
	}
	b.Service = services.NewBasicService(b.starting, b.running, b.stopping)
	return b, nil
}

// WALDir is the WAL's directory in a unit's directory.
func WALDir(dir string) string { return dir + "/wal" }

// Signal names the unit.
func (b *Base[I]) Signal() string { return b.cfg.Signal }

// Lifecycler exposes the ring lifecycler.
func (b *Base[I]) Lifecycler() *ring.Lifecycler { return b.lifecycler }

// RingStatus serves the unit's lifecycler page.
func (b *Base[I]) RingStatus() http.Handler { return b.lifecycler }

// CheckReady reports whether the unit is ACTIVE in its ring.
func (b *Base[I]) CheckReady(ctx context.Context) error {
	if s := b.State(); s != services.Running {
		return fmt.Errorf("%s ingester is %s", b.cfg.Signal, s)
	}
	return b.lifecycler.CheckReady(ctx)
}

// Logger is the unit's logger (component <signal>-ingester).
func (b *Base[I]) Logger() log.Logger { return b.logger }

// Dir is the unit's directory.
func (b *Base[I]) Dir() string { return b.cfg.Dir }

// Bucket is where the unit ships; nil when shipping is off.
func (b *Base[I]) Bucket() objstore.Bucket { return b.bkt }

// Now is the unit's clock.
func (b *Base[I]) Now() time.Time { return (*b.now.Load())() }

// SetNow replaces the unit's clock (tests).
func (b *Base[I]) SetNow(now func() time.Time) { b.now.Store(&now) }

// AddUnshipped adds n (negative once shipped) to the bytes of cut data not
// yet in the bucket.
func (b *Base[I]) AddUnshipped(n int) { b.unshipped.Add(int64(n)) }

// Every makes the running loop also call tick every period, on its
// goroutine (between cuts, ships and checkpoints). Call it before the unit
// starts; a later call replaces an earlier one.
func (b *Base[I]) Every(period time.Duration, tick func(ctx context.Context)) {
	b.every, b.tick = period, tick
}

func (b *Base[I]) starting(ctx context.Context) error {
	start := time.Now()
	items := 0
	w, err := unitwal.Replay(WALDir(b.cfg.Dir), b.slogger, b.reg, func(rec []byte) error {
		n, err := b.hooks.Replay(rec, b.getOrCreate)
		items += n
		return err
	})
	if err != nil {
		return fmt.Errorf("replaying the %s WAL: %w", b.cfg.Signal, err)
	}
	b.wal = w
	level.Info(b.logger).Log("msg", "replayed the "+b.cfg.Signal+" WAL", "tenants", b.tenants(), b.cfg.ReplayedItems, items, "duration", time.Since(start))
	return services.StartAndAwaitRunning(ctx, b.lifecycler)
}

func (b *Base[I]) running(ctx context.Context) error {
	failed := services.NewFailureWatcher()
	failed.WatchService(b.lifecycler)
	cut := time.NewTicker(b.cfg.CutCheckInterval)
	defer cut.Stop()
	checkpoint := time.NewTicker(b.cfg.Settings.CheckpointPeriod)
	defer checkpoint.Stop()
	var tick <-chan time.Time
	if b.tick != nil {
		t := time.NewTicker(b.every)
		defer t.Stop()
		tick = t.C
	}
	var ship <-chan time.Time
	if b.bkt != nil {
		t := time.NewTicker(b.cfg.Settings.ShipInterval)
		defer t.Stop()
		ship = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed.Chan():
			return ringconfig.LifecyclerFailure(ctx, b.cfg.Lifecycler.Name, err)
		case <-cut.C:
			b.hooks.Cut(false)
			b.DropShipped()
			if b.bkt != nil && b.unshipped.Load() >= int64(b.cfg.Settings.ShipThreshold) {
				if _, err := b.ship(ctx); err != nil {
					level.Warn(b.logger).Log("msg", b.cfg.ShipMsg, "err", err)
				}
			}
		case <-ship:
			if _, err := b.ship(ctx); err != nil {
				level.Warn(b.logger).Log("msg", b.cfg.ShipMsg, "err", err)
			}
		case <-tick:
			b.tick(ctx)
		case <-checkpoint.C:
			if err := b.Checkpoint(); err != nil {
				level.Warn(b.logger).Log("msg", "checkpointing the "+b.cfg.Signal+" WAL", "err", err)
			}
		}
	}
}

func (b *Base[I]) stopping(_ error) error {
	// Leave the ring first (shipping everything while LEAVING when
	// -ingester.<signal>.flush-on-shutdown is on), then stop taking pushes
	// and close the WAL, which has everything acknowledged either way.
	err := ringconfig.StopLifecycler(b.lifecycler)
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	b.pushMu.Lock()
	defer b.pushMu.Unlock()
	if b.wal != nil {
		if cerr := b.wal.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the %s WAL: %w", b.cfg.Signal, cerr))
		}
	}
	return err
}

// DropShipped forgets every tenant's data in the bucket for long enough
// (Hooks.DropShipped).
func (b *Base[I]) DropShipped() {
	now := b.Now()
	for _, in := range b.Instances() {
		b.hooks.DropShipped(in, now, b.cfg.Settings.RetainShipped)
	}
}

// flusher ships everything when the lifecycler leaves the ring.
type flusher[I any] struct{ b *Base[I] }

func (f flusher[I]) Flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, _, err := f.b.FlushAndShip(ctx); err != nil {
		level.Error(f.b.logger).Log("msg", "flushing "+f.b.cfg.Signal+" on shutdown", "err", err)
	}
}

func (f flusher[I]) TransferOut(context.Context) error { return ring.ErrTransferDisabled }

// FlushAndShip cuts everything and uploads everything not yet in the
// bucket, then checkpoints (package ingester's Unit).
func (b *Base[I]) FlushAndShip(ctx context.Context) (tenants, shipped int, err error) {
	b.hooks.Cut(true)
	if b.bkt == nil {
		return b.tenants(), 0, errors.New(b.cfg.ShippingOff)
	}
	n, err := b.ship(ctx)
	if err == nil {
		err = b.Checkpoint()
	}
	return b.tenants(), n, err
}

// ship uploads every tenant's cut data not yet in the bucket, one block
// per tenant (Hooks.Ship). It returns the blocks uploaded and one error
// per tenant that failed (its data is retried next time).
func (b *Base[I]) ship(ctx context.Context) (int, error) {
	b.shipMu.Lock()
	defer b.shipMu.Unlock()
	var (
		errs    []error
		shipped int
	)
	for tenant, in := range b.snapshot() {
		ok, err := b.hooks.Ship(ctx, in)
		if err != nil {
			b.metrics.shipFailures.Inc()
			errs = append(errs, fmt.Errorf("tenant %s: %w", tenant, err))
		}
		if ok {
			b.metrics.shipped.Inc()
			shipped++
		}
	}
	return shipped, errors.Join(errs...)
}
