package traces

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the unit's own; its ships' and checkpoints'
// (canopy_traces_ingester_blocks_shipped_total,
// canopy_traces_ingester_ship_failures_total,
// canopy_traces_ingester_checkpoints_total) are unit.Base's.
type metrics struct {
	traces     prometheus.Counter
	bytes      prometheus.Counter
	rejected   *prometheus.CounterVec
	liveTraces prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		traces:     f.NewCounter(prometheus.CounterOpts{Name: "canopy_traces_ingester_pieces_total", Help: "Pieces of traces (spans of one trace in one push) the ingester accepted."}),
		bytes:      f.NewCounter(prometheus.CounterOpts{Name: "canopy_traces_ingester_bytes_total", Help: "OTLP protobuf bytes of spans the ingester accepted."}),
		rejected:   f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_traces_ingester_rejected_pieces_total", Help: "Pieces of traces the ingester rejected, by reason."}, []string{"reason"}),
		liveTraces: f.NewGauge(prometheus.GaugeOpts{Name: "canopy_traces_ingester_live_traces", Help: "Traces receiving spans, over every tenant."}),
	}
}
