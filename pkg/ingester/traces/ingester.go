// Package traces is the traces unit of an ingester (see package ingester):
// every tenant's live traces in memory behind a write-ahead log, cut once
// idle and shipped to the bucket as trace blocks (pkg/storage/traceblock),
// registered in the traces ingester ring and serving pushes and lookups by
// trace ID over gRPC (pkg/ingester/tracesclient).
package traces

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
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/thanos-io/objstore"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/util/logging"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Signal is the unit's name in -ingester.signals and its directory.
const Signal = "traces"

// RingName and RingKey identify the traces ingester ring.
const (
	RingName = "traces-ingester"
	RingKey  = "traces-ingester"
)

var errStopping = errors.New("traces ingester is stopping")

// cutCheckInterval is how often live traces are checked for idleness and
// the unshipped bytes against -ingester.traces.ship-threshold-bytes.
const cutCheckInterval = time.Second

// Ingester is the traces unit, a services.Service. Create it with New.
type Ingester struct {
	services.Service

	cfg     Config
	dir     string
	limits  validation.TenantLimits
	bkt     objstore.Bucket // nil: shipping off
	logger  log.Logger
	slogger *slog.Logger
	reg     prometheus.Registerer
	metrics *metrics

	lifecycler *ring.Lifecycler

	// pushMu is held shared by every push from its append to its WAL
	// record, and exclusively by a checkpoint while it starts a segment and
	// takes its snapshot.
	pushMu sync.RWMutex
	wal    *wlog.WL

	mu        sync.RWMutex
	instances map[string]*instance
	closing   bool

	// gen, when set, is given every trace this ingester cuts and is the
	// first replica of (primary).
	gen     Observer
	primary func(tenant string, id [16]byte) bool

	shipMu sync.Mutex // one ship at a time
	// unshipped counts the bytes of cut traces not yet in the bucket.
	unshipped atomic.Int64

	now func() time.Time
}

// New returns the traces unit keeping its WAL under dir, its ring tokens
// in tokensFile, and shipping to bkt (nil, or
// -ingester.traces.ship-interval=0: no shipping). memberlistKV may be nil
// unless the ring store is memberlist.
func New(cfg Config, dir, tokensFile string, self ringconfig.Instance, limits validation.TenantLimits, bkt objstore.Bucket, memberlistKV func() (*memberlist.KV, error), logger log.Logger, reg prometheus.Registerer) (*Ingester, error) {
	i := &Ingester{
		cfg:       cfg,
		dir:       dir,
		limits:    limits,
		logger:    log.With(logger, "component", "traces-ingester"),
		reg:       reg,
		metrics:   newMetrics(reg),
		instances: map[string]*instance{},
		now:       time.Now,
	}
	if cfg.ShipInterval > 0 {
		i.bkt = bkt
	}
	i.slogger = logging.Slog(i.logger)
	var err error
	i.lifecycler, err = cfg.Ring.NewLifecycler(ringconfig.Lifecycler{
		Name: RingName, Key: RingKey, Self: self, MemberlistKV: memberlistKV,
		TokensFile: tokensFile, Flusher: flusher{i}, FlushOnShutdown: cfg.FlushOnShutdown && i.bkt != nil,
	}, logger, prometheus.WrapRegistererWithPrefix("canopy_traces_", reg))
	if err != nil {
		return nil, err
	}
	i.Service = services.NewBasicService(i.starting, i.running, i.stopping)
	return i, nil
}

// Observer derives metrics from whole traces (tracegen.Generator).
type Observer interface {
	Observe(tenant string, td ptrace.Traces)
	Flush(ctx context.Context) error
}

// UseGenerator makes the unit give gen every trace it cuts of which
// primary says it is the first replica, and flush gen every
// -ingester.traces.metrics-generator.flush-interval. Call it before the
// unit starts.
func (i *Ingester) UseGenerator(gen Observer, primary func(tenant string, id [16]byte) bool) {
	i.gen, i.primary = gen, primary
}

// Signal names the unit.
func (i *Ingester) Signal() string { return Signal }

// Lifecycler exposes the ring lifecycler.
func (i *Ingester) Lifecycler() *ring.Lifecycler { return i.lifecycler }

// RingStatus serves the unit's lifecycler page.
func (i *Ingester) RingStatus() http.Handler { return i.lifecycler }

// CheckReady reports whether the unit is ACTIVE in its ring.
func (i *Ingester) CheckReady(ctx context.Context) error {
	if s := i.State(); s != services.Running {
		return fmt.Errorf("traces ingester is %s", s)
	}
	return i.lifecycler.CheckReady(ctx)
}

func (i *Ingester) starting(ctx context.Context) error {
	start := time.Now()
	pieces := 0
	w, err := replayWAL(walDir(i.dir), i.slogger, prometheus.WrapRegistererWithPrefix("canopy_traces_", i.reg), func(tenant string, ps []piece) error {
		in := i.getOrCreateInstance(tenant)
		now := i.now()
		for _, p := range ps {
			in.append(p.id, p.spans, p.start, p.end, now, 0, 0) // accepted once: no limits
		}
		pieces += len(ps)
		return nil
	})
	if err != nil {
		return fmt.Errorf("replaying the traces WAL: %w", err)
	}
	i.wal = w
	level.Info(i.logger).Log("msg", "replayed the traces WAL", "tenants", len(i.instances), "pieces", pieces, "duration", time.Since(start))
	return services.StartAndAwaitRunning(ctx, i.lifecycler)
}

func (i *Ingester) running(ctx context.Context) error {
	failed := services.NewFailureWatcher()
	failed.WatchService(i.lifecycler)
	cut := time.NewTicker(cutCheckInterval)
	defer cut.Stop()
	checkpoint := time.NewTicker(i.cfg.CheckpointPeriod)
	defer checkpoint.Stop()
	var genFlush <-chan time.Time
	if i.gen != nil {
		t := time.NewTicker(i.cfg.Generator.FlushInterval)
		defer t.Stop()
		genFlush = t.C
	}
	var ship <-chan time.Time
	if i.bkt != nil {
		t := time.NewTicker(i.cfg.ShipInterval)
		defer t.Stop()
		ship = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed.Chan():
			return ringconfig.LifecyclerFailure(ctx, RingName, err)
		case <-cut.C:
			i.cutDue(false)
			i.dropShipped()
			if i.bkt != nil && i.unshipped.Load() >= int64(i.cfg.ShipThreshold) {
				if _, err := i.ship(ctx); err != nil {
					level.Warn(i.logger).Log("msg", "shipping traces", "err", err)
				}
			}
		case <-ship:
			if _, err := i.ship(ctx); err != nil {
				level.Warn(i.logger).Log("msg", "shipping traces", "err", err)
			}
		case <-genFlush:
			if err := i.gen.Flush(ctx); err != nil {
				level.Warn(i.logger).Log("msg", "appending span metrics", "err", err)
			}
		case <-checkpoint.C:
			if err := i.checkpoint(); err != nil {
				level.Warn(i.logger).Log("msg", "checkpointing the traces WAL", "err", err)
			}
		}
	}
}

func (i *Ingester) stopping(_ error) error {
	// Leave the ring first (shipping everything while LEAVING when
	// -ingester.traces.flush-on-shutdown is on), then stop taking pushes
	// and close the WAL, which has every acknowledged span either way.
	err := ringconfig.StopLifecycler(i.lifecycler)
	i.mu.Lock()
	i.closing = true
	i.mu.Unlock()
	i.pushMu.Lock()
	defer i.pushMu.Unlock()
	if i.wal != nil {
		if cerr := i.wal.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the traces WAL: %w", cerr))
		}
	}
	return err
}

func (i *Ingester) isClosing() bool {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.closing
}

func (i *Ingester) getInstance(tenant string) *instance {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.instances[tenant]
}

func (i *Ingester) getOrCreateInstance(tenant string) *instance {
	if in := i.getInstance(tenant); in != nil {
		return in
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	in, ok := i.instances[tenant]
	if !ok {
		in = newInstance(tenant)
		i.instances[tenant] = in
	}
	return in
}

func (i *Ingester) instancesSnapshot() []*instance {
	i.mu.RLock()
	defer i.mu.RUnlock()
	out := make([]*instance, 0, len(i.instances))
	for _, in := range i.instances {
		out = append(out, in)
	}
	return out
}

// cutDue cuts every live trace that is due (or every one, force).
func (i *Ingester) cutDue(force bool) {
	now := i.now()
	live := 0
	for _, in := range i.instancesSnapshot() {
		cut := in.cutDue(now, i.cfg.TraceIdlePeriod, i.cfg.MaxTraceLive, force)
		for _, t := range cut {
			i.unshipped.Add(int64(t.bytes))
		}
		live += in.liveCount()
		i.generate(in.tenant, cut)
	}
	i.metrics.liveTraces.Set(float64(live))
}

// generate gives the generator the cut traces this ingester is the first
// replica of.
func (i *Ingester) generate(tenant string, cut []*trace) {
	if i.gen == nil {
		return
	}
	var u ptrace.ProtoUnmarshaler
	for _, t := range cut {
		if i.primary != nil && !i.primary(tenant, t.id) {
			continue
		}
		td := ptrace.NewTraces()
		for _, p := range t.pieces {
			piece, err := u.UnmarshalTraces(p)
			if err != nil {
				continue // the ship logs it
			}
			piece.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
		}
		i.gen.Observe(tenant, td)
	}
}

// dropShipped forgets traces in the bucket for long enough.
func (i *Ingester) dropShipped() {
	now := i.now()
	for _, in := range i.instancesSnapshot() {
		in.dropShipped(now, i.cfg.RetainShipped)
	}
}

// flusher ships everything when the lifecycler leaves the ring.
type flusher struct{ i *Ingester }

func (f flusher) Flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, _, err := f.i.FlushAndShip(ctx); err != nil {
		level.Error(f.i.logger).Log("msg", "flushing traces on shutdown", "err", err)
	}
}

func (f flusher) TransferOut(context.Context) error { return ring.ErrTransferDisabled }

// FlushAndShip cuts every live trace and uploads everything not yet in
// the bucket (package ingester's Unit).
func (i *Ingester) FlushAndShip(ctx context.Context) (tenants, shipped int, err error) {
	i.cutDue(true)
	if i.bkt == nil {
		return len(i.instancesSnapshot()), 0, errors.New("traces shipping is off (-ingester.traces.ship-interval=0): traces were cut but stay in memory and the WAL")
	}
	n, err := i.ship(ctx)
	if err == nil {
		err = i.checkpoint()
	}
	return len(i.instancesSnapshot()), n, err
}
