// Package logs is the logs unit of an ingester (see package ingester):
// every tenant's recent log streams in memory behind a write-ahead log,
// open chunks cut into compressed chunks with token filters
// (pkg/storage/logchunk), shipped to the bucket as blocks, registered in
// the logs ingester ring and serving pushes and queries over gRPC
// (pkg/ingester/logsclient). The ring, WAL, tenants and the loop that cuts,
// ships and checkpoints are package unit's.
package logs

import (
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/ingester/unit"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Signal is the unit's name in -ingester.signals and its directory.
const Signal = "logs"

// RingName and RingKey identify the logs ingester ring.
const (
	RingName = "logs-ingester"
	RingKey  = "logs-ingester"
)

// cutCheckInterval is how often open chunks are checked for cutting and
// the unshipped bytes against -ingester.logs.ship-threshold.
const cutCheckInterval = 2 * time.Second

// Ingester is the logs unit, a services.Service. Create it with New.
type Ingester struct {
	unit.Unit // base, as the host sees it

	base    *unit.Base[*instance]
	cfg     Config
	limits  validation.TenantLimits
	metrics *metrics
}

// New returns the logs unit keeping its WAL under dir, its ring tokens in
// tokensFile, and shipping to bkt (nil, or -ingester.logs.ship-interval=0:
// no shipping). memberlistKV may be nil unless the ring store is memberlist.
func New(cfg Config, dir, tokensFile string, self ringconfig.Instance, limits validation.TenantLimits, bkt objstore.Bucket, memberlistKV func() (*memberlist.KV, error), logger log.Logger, reg prometheus.Registerer) (*Ingester, error) {
	i := &Ingester{cfg: cfg, limits: limits, metrics: newMetrics(reg)}
	var sb labels.ScratchBuilder // replay's
	b, err := unit.New(unit.Config{
		Signal:           Signal,
		Ring:             cfg.Ring,
		Lifecycler:       ringconfig.Lifecycler{Name: RingName, Key: RingKey, Self: self, MemberlistKV: memberlistKV, TokensFile: tokensFile},
		Dir:              dir,
		Bucket:           bkt,
		Settings:         cfg.Settings,
		CutCheckInterval: cutCheckInterval,
		ReplayedItems:    "entries",
		ShipMsg:          "shipping log chunks",
		ShippingOff:      "logs shipping is off (-ingester.logs.ship-interval=0): chunks were cut but stay in memory and the WAL",
		Block:            "log",
	}, unit.Hooks[*instance]{
		NewInstance: newInstance,
		Replay: func(rec []byte, instanceOf func(string) *instance) (int, error) {
			return i.replay(rec, &sb, instanceOf)
		},
		Cut:         i.cutDue,
		DropShipped: (*instance).removeEmpty,
		Ship:        i.shipTenant,
		Snapshot:    snapshot,
	}, logger, reg)
	if err != nil {
		return nil, err
	}
	i.Unit, i.base = b, b
	return i, nil
}

// replay applies a WAL record: entries are appended without the
// out-of-order window (they were accepted once), chunks are taken as cut.
func (i *Ingester) replay(data []byte, sb *labels.ScratchBuilder, instanceOf func(string) *instance) (int, error) {
	rec, err := decodeRecord(data, sb)
	if err != nil {
		return 0, err
	}
	s, _, err := instanceOf(rec.tenant).getOrCreate(rec.labels, 0)
	if err != nil {
		return 0, err
	}
	if rec.typ == recordChunk {
		i.base.AddUnshipped(len(rec.chunk))
		return 0, s.addChunk(rec.chunk)
	}
	s.append(rec.entries, 0, i.base.Now())
	return len(rec.entries), nil
}

// cutDue cuts every open chunk that is due (or every one, force).
func (i *Ingester) cutDue(force bool) {
	now := i.base.Now()
	for _, in := range i.base.Instances() {
		for _, s := range in.all() {
			n, err := s.cutIfDue(i.cfg, now, force)
			if err != nil {
				level.Error(i.base.Logger()).Log("msg", "cutting a chunk", "tenant", in.tenant, "stream", s.labels.String(), "err", err)
			}
			i.base.AddUnshipped(n)
		}
	}
}
