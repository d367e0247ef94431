package unit

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are a unit's ships' and checkpoints'.
type metrics struct {
	shipped      prometheus.Counter
	shipFailures prometheus.Counter
	checkpoints  prometheus.Counter
}

// newMetrics registers the metrics of signal's unit, which ships block
// blocks ("log"): canopy_<signal>_ingester_blocks_shipped_total,
// _ship_failures_total and _checkpoints_total (for logs:
// canopy_logs_ingester_blocks_shipped_total, "Log blocks uploaded to the
// bucket."; canopy_logs_ingester_ship_failures_total, "Failed uploads of
// log blocks (retried on the next ship)."; canopy_logs_ingester_checkpoints_total,
// "Checkpoints of the logs WAL written.").
func newMetrics(signal, block string, reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	name := func(n string) string { return "canopy_" + signal + "_ingester_" + n }
	title := block
	if block != "" {
		title = strings.ToUpper(block[:1]) + block[1:]
	}
	return metrics{
		shipped:      f.NewCounter(prometheus.CounterOpts{Name: name("blocks_shipped_total"), Help: title + " blocks uploaded to the bucket."}),
		shipFailures: f.NewCounter(prometheus.CounterOpts{Name: name("ship_failures_total"), Help: "Failed uploads of " + block + " blocks (retried on the next ship)."}),
		checkpoints:  f.NewCounter(prometheus.CounterOpts{Name: name("checkpoints_total"), Help: "Checkpoints of the " + signal + " WAL written."}),
	}
}
