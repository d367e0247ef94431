package frontend

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the query-frontend's, shared by every signal's pipeline.
type metrics struct {
	queries     *prometheus.CounterVec
	parts       prometheus.Counter
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	rejected    *prometheus.CounterVec

	shardedParts   prometheus.Counter
	shardFallbacks prometheus.Counter
	// shardingSkipped counts shardable queries run unsharded for their
	// few series.
	shardingSkipped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		queries: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_query_frontend_queries_total", Help: "Queries received by the query-frontend, by kind.",
		}, []string{"kind"}),
		parts: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_split_parts_total", Help: "Parts range queries were split into.",
		}),
		cacheHits: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_results_cache_hits_total", Help: "Query parts answered from the results cache.",
		}),
		cacheMisses: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_results_cache_misses_total", Help: "Cacheable query parts not in the results cache.",
		}),
		rejected: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_query_frontend_rejected_queries_total", Help: "Queries rejected by the query-frontend, by limit.",
		}, []string{"reason"}),
		shardedParts: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_sharded_queries_total", Help: "Queries (or parts of split queries) run sharded.",
		}),
		shardingSkipped: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_sharding_skipped_total", Help: "Shardable queries run unsharded because their last run read no more series than one shard should (query_sharding_target_series_per_shard).",
		}),
		shardFallbacks: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_sharding_fallbacks_total", Help: "Sharded queries run again unsharded because their partial results could not be merged exactly (native histograms, or one label set from two shards).",
		}),
	}
}
