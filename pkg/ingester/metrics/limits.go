package metrics

import (
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"

	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/prometheus/config"
)

// limitsApplyInterval is how often the per-tenant limits a TSDB was opened
// with are compared with those in force (the runtime overrides file and
// the ring's size change while tenants are open).
const limitsApplyInterval = 10 * time.Second

// tsdbLimits are the limits a tenant's TSDB is configured with.
type tsdbLimits struct {
	oooWindow    int64 // milliseconds
	maxExemplars int64 // this ingester's share of the tenant's exemplars
}

// tsdbLimits returns what tenant id's TSDB should be configured with now.
// The exemplar limit is "across the cluster": this ingester holds its share,
// as with the series limit.
func (i *Ingester) tsdbLimits(id string) tsdbLimits {
	l := i.limits.ByTenant(id)
	out := tsdbLimits{oooWindow: time.Duration(l.OutOfOrderTimeWindow).Milliseconds()}
	if l.MaxGlobalExemplars > 0 {
		out.maxExemplars = int64(ringconfig.LocalLimit(l.MaxGlobalExemplars, i.cfg.Ring.ReplicationFactor, i.lifecycler.HealthyInstancesCount()))
	}
	return out
}

// applyLimits reconfigures every open TSDB whose limits changed: a reloaded
// out_of_order_time_window or exemplar limit takes effect for tenants
// already open, not only for those opened afterwards. It runs in the
// ingester's running loop only.
func (i *Ingester) applyLimits() {
	for id, db := range i.tenantsSnapshot() {
		want := i.tsdbLimits(id)
		if want == db.applied {
			continue
		}
		cfg := &config.Config{StorageConfig: config.StorageConfig{
			TSDBConfig:      &config.TSDBConfig{OutOfOrderTimeWindow: want.oooWindow},
			ExemplarsConfig: &config.ExemplarsConfig{MaxExemplars: want.maxExemplars},
		}}
		if err := db.ApplyConfig(cfg); err != nil {
			level.Warn(i.logger).Log("msg", "applying changed limits", "tenant", id, "err", err)
			continue
		}
		level.Info(i.logger).Log("msg", "applied changed limits", "tenant", id, "out_of_order_window_ms", want.oooWindow, "max_exemplars", want.maxExemplars)
		db.applied = want
	}
}
