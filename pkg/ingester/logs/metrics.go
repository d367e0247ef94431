package logs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	entries      prometheus.Counter
	bytes        prometheus.Counter
	rejected     *prometheus.CounterVec
	duplicates   prometheus.Counter
	shippedBlks  prometheus.Counter
	shipFailures prometheus.Counter
	checkpoints  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		entries:      f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_entries_total", Help: "Log entries the ingester accepted."}),
		bytes:        f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_bytes_total", Help: "Raw line bytes the ingester accepted."}),
		rejected:     f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_logs_ingester_rejected_entries_total", Help: "Log entries the ingester rejected, by reason."}, []string{"reason"}),
		duplicates:   f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_duplicate_entries_total", Help: "Exact repeats of a stream's newest entry, ignored (agent retries)."}),
		shippedBlks:  f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_blocks_shipped_total", Help: "Log blocks uploaded to the bucket."}),
		shipFailures: f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_ship_failures_total", Help: "Failed uploads of log blocks (retried on the next ship)."}),
		checkpoints:  f.NewCounter(prometheus.CounterOpts{Name: "canopy_logs_ingester_checkpoints_total", Help: "Checkpoints of the logs WAL written."}),
	}
}
