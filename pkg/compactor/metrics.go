package compactor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	runs            *prometheus.CounterVec
	compactions     *prometheus.CounterVec
	blocksMarked    *prometheus.CounterVec
	blocksDeleted   prometheus.Counter
	partialsDeleted prometheus.Counter
	corrupt         *prometheus.GaugeVec
	lastSuccess     prometheus.Gauge
	ownedTenants    prometheus.Gauge

	logEntriesDropped   *prometheus.CounterVec
	logDeletesProcessed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_compactor_runs_total",
			Help: "Compaction and cleanup passes over the owned tenants, by kind and outcome.",
		}, []string{"kind", "outcome"}),
		compactions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_compactor_compactions_total",
			Help: "Blocks written by compaction, by kind (metrics: vertical, overlapping blocks merged and deduplicated; level, adjacent blocks into the next range; logs: logs_merge, the blocks of a merge window; logs_rewrite, a block rewritten without deleted or expired entries; traces: traces_merge, the blocks of a merge window).",
		}, []string{"kind"}),
		blocksMarked: f.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_compactor_blocks_marked_for_deletion_total",
			Help: "Blocks marked for deletion, by reason (compacted, retention).",
		}, []string{"reason"}),
		blocksDeleted: f.NewCounter(prometheus.CounterOpts{
			Name: "canopy_compactor_blocks_deleted_total",
			Help: "Blocks deleted from the bucket after the deletion delay.",
		}),
		partialsDeleted: f.NewCounter(prometheus.CounterOpts{
			Name: "canopy_compactor_partial_blocks_deleted_total",
			Help: "Abandoned partial uploads deleted.",
		}),
		corrupt: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "canopy_compactor_corrupt_blocks",
			Help: "Blocks of a tenant that cannot be read or compacted (named in the log); they are skipped.",
		}, []string{"tenant"}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_compactor_last_successful_run_timestamp_seconds",
			Help: "When a compaction pass last finished without error.",
		}),
		ownedTenants: f.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_compactor_owned_tenants",
			Help: "Tenants this compactor owns in the compactor ring.",
		}),
		logEntriesDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_compactor_log_entries_dropped_total",
			Help: "Log entries the compactor left out of the blocks it wrote, by reason: duplicate (a replica's copy), deleted (a deletion request), retention (past the stream's retention; chunks wholly past it are left out unread and not counted).",
		}, []string{"reason"}),
		logDeletesProcessed: f.NewCounter(prometheus.CounterOpts{
			Name: "canopy_compactor_log_delete_requests_processed_total",
			Help: "Log deletion requests the compactor has applied to every block they concern.",
		}),
	}
}
