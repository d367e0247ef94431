package distributor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	receivedSamples      *prometheus.CounterVec
	writtenSamples       *prometheus.CounterVec
	discardedSamples     *prometheus.CounterVec
	requests             *prometheus.CounterVec
	ingesterPushDuration prometheus.Histogram
	ingesterPushFailures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		receivedSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_distributor_received_samples_total",
			Help: "Samples (floats and histograms) received, before validation.",
		}, []string{"tenant"}),
		writtenSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_distributor_written_samples_total",
			Help: "Samples written to ingesters with a quorum.",
		}, []string{"tenant"}),
		discardedSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_discarded_samples_total",
			Help: "Samples the distributor dropped, by reason.",
		}, []string{"tenant", "reason"}),
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_distributor_requests_total",
			Help: "Push requests, by protocol and status code.",
		}, []string{"protocol", "code"}),
		ingesterPushDuration: promauto.With(reg).NewHistogram(prometheus.HistogramOpts{
			Name:                        "canopy_distributor_ingester_push_duration_seconds",
			Help:                        "Duration of pushes from this distributor to one ingester.",
			NativeHistogramBucketFactor: 1.1,
			Buckets:                     prometheus.DefBuckets,
		}),
		ingesterPushFailures: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_distributor_ingester_push_failures_total",
			Help: "Pushes to an ingester that failed.",
		}, []string{"ingester"}),
	}
}

// forgetTenant drops a tenant's series from the per-tenant metrics.
func (m *metrics) forgetTenant(id string) {
	m.receivedSamples.DeleteLabelValues(id)
	m.writtenSamples.DeleteLabelValues(id)
	m.discardedSamples.DeletePartialMatch(prometheus.Labels{"tenant": id})
}
