package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	appendedSamples   *prometheus.CounterVec
	appendedExemplars *prometheus.CounterVec
	rejectedSamples   *prometheus.CounterVec
	tenants           prometheus.Gauge
	pushes            prometheus.Counter
	pushErrors        prometheus.Counter
	shippedBlocks     prometheus.Counter
	shipFailures      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		appendedSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_ingester_samples_appended_total",
			Help: "Samples (floats and histograms) appended to tenants' TSDB heads.",
		}, []string{"tenant"}),
		appendedExemplars: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_ingester_exemplars_appended_total",
			Help: "Exemplars appended to tenants' exemplar storage.",
		}, []string{"tenant"}),
		rejectedSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_ingester_samples_rejected_total",
			Help: "Samples the ingester rejected, by reason.",
		}, []string{"tenant", "reason"}),
		tenants: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "canopy_ingester_tenants",
			Help: "Tenants with an open TSDB in this ingester.",
		}),
		pushes: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_ingester_push_requests_total",
			Help: "Push requests received.",
		}),
		pushErrors: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_ingester_push_failures_total",
			Help: "Push requests that failed as a whole (nothing appended).",
		}),
		shippedBlocks: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_ingester_shipper_uploads_total",
			Help: "TSDB blocks uploaded to the bucket.",
		}),
		shipFailures: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_ingester_shipper_upload_failures_total",
			Help: "Block uploads that failed after retries; the block stays on local disk and is retried.",
		}),
	}
}

// headCollector reports per-tenant head series without keeping state of its own.
type headCollector struct {
	ing  *Ingester
	desc *prometheus.Desc
}

func (c headCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c headCollector) Collect(ch chan<- prometheus.Metric) {
	for tenant, db := range c.ing.tenantsSnapshot() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(db.Head().NumSeries()), tenant)
	}
}
