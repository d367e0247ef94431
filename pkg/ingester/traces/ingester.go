// Package traces is the traces unit of an ingester (see package ingester):
// every tenant's live traces in memory behind a write-ahead log, cut once
// idle and shipped to the bucket as trace blocks (pkg/storage/traceblock),
// registered in the traces ingester ring and serving pushes and lookups by
// trace ID over gRPC (pkg/ingester/tracesclient). The ring, WAL, tenants
// and the loop that cuts, ships and checkpoints are package unit's.
package traces

import (
	"context"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/ingester/unit"
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

// cutCheckInterval is how often live traces are checked for idleness and
// the unshipped bytes against -ingester.traces.ship-threshold-bytes.
const cutCheckInterval = time.Second

// Ingester is the traces unit, a services.Service. Create it with New.
type Ingester struct {
	unit.Unit // base, as the host sees it

	base    *unit.Base[*instance]
	cfg     Config
	limits  validation.TenantLimits
	metrics *metrics

	// gen, when set, is given every trace this ingester cuts and is the
	// first replica of (primary).
	gen     Observer
	primary func(tenant string, id [16]byte) bool
}

// New returns the traces unit keeping its WAL under dir, its ring tokens
// in tokensFile, and shipping to bkt (nil, or
// -ingester.traces.ship-interval=0: no shipping). memberlistKV may be nil
// unless the ring store is memberlist.
func New(cfg Config, dir, tokensFile string, self ringconfig.Instance, limits validation.TenantLimits, bkt objstore.Bucket, memberlistKV func() (*memberlist.KV, error), logger log.Logger, reg prometheus.Registerer) (*Ingester, error) {
	i := &Ingester{cfg: cfg, limits: limits, metrics: newMetrics(reg)}
	b, err := unit.New(unit.Config{
		Signal:           Signal,
		Ring:             cfg.Ring,
		Lifecycler:       ringconfig.Lifecycler{Name: RingName, Key: RingKey, Self: self, MemberlistKV: memberlistKV, TokensFile: tokensFile},
		Dir:              dir,
		Bucket:           bkt,
		Settings:         cfg.Settings,
		CutCheckInterval: cutCheckInterval,
		ReplayedItems:    "pieces",
		ShipMsg:          "shipping traces",
		ShippingOff:      "traces shipping is off (-ingester.traces.ship-interval=0): traces were cut but stay in memory and the WAL",
		Block:            "trace",
	}, unit.Hooks[*instance]{
		NewInstance: newInstance,
		Replay:      i.replay,
		Cut:         i.cutDue,
		DropShipped: (*instance).dropShipped,
		Ship:        i.shipTenant,
		Snapshot:    snapshot,
	}, logger, reg)
	if err != nil {
		return nil, err
	}
	i.Unit, i.base = b, b
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
	if gen == nil {
		return
	}
	i.base.Every(i.cfg.Generator.FlushInterval, func(ctx context.Context) {
		if err := gen.Flush(ctx); err != nil {
			level.Warn(i.base.Logger()).Log("msg", "appending span metrics", "err", err)
		}
	})
}

// replay applies a WAL record: its pieces go to live traces again,
// without limits (they were accepted once).
func (i *Ingester) replay(rec []byte, instanceOf func(string) *instance) (int, error) {
	tenant, ps, err := decodePieces(rec)
	if err != nil {
		return 0, err
	}
	in := instanceOf(tenant)
	now := i.base.Now()
	for _, p := range ps {
		in.append(p.id, p.spans, p.start, p.end, now, 0, 0)
	}
	return len(ps), nil
}

// cutDue cuts every live trace that is due (or every one, force).
func (i *Ingester) cutDue(force bool) {
	now := i.base.Now()
	live := 0
	for _, in := range i.base.Instances() {
		cut := in.cutDue(now, i.cfg.TraceIdlePeriod, i.cfg.MaxTraceLive, force)
		for _, t := range cut {
			i.base.AddUnshipped(t.bytes)
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
		i.gen.Observe(tenant, joinPieces(&u, t.pieces))
	}
}
