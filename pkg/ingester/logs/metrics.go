package logs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the unit's own; its ships' and checkpoints'
// (canopy_logs_ingester_blocks_shipped_total,
// canopy_logs_ingester_ship_failures_total,
// canopy_logs_ingester_checkpoints_total) are unit.Base's.
type metrics struct {
	entries    prometheus.Counter
	bytes      prometheus.Counter
	rejected   *prometheus.CounterVec
	duplicates prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		entries:    f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_entries_total", Help: "Log entries the ingester accepted."}),
		bytes:      f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_bytes_total", Help: "Raw line bytes the ingester accepted."}),
		rejected:   f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_logs_ingester_rejected_entries_total", Help: "Log entries the ingester rejected, by reason."}, []string{"reason"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_duplicate_entries_total", Help: "Exact repeats of a stream's newest entry, ignored (agent retries)."}),
	}
}
