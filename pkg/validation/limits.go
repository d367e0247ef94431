// Package validation holds the per-tenant limits and the checks the write path
// applies to incoming series. Limits have defaults from flags and per-tenant
// overrides from a runtime-reloadable YAML file.
package validation

import (
	"errors"
	"flag"
	"time"

	"github.com/prometheus/common/model"
)

// Limits are the per-tenant limits, one part per signal plus the query
// path every signal shares. Every field has a flag giving its default; the
// runtime overrides file may change any of them per tenant. The parts are
// inlined: a tenant's overrides are one flat YAML map, each signal's keys
// with its own prefix.
type Limits struct {
	MetricsLimits `yaml:",inline"`
	LogsLimits    `yaml:",inline"`
	TracesLimits  `yaml:",inline"`
	QueryLimits   `yaml:",inline"`
}

// MetricsLimits bound a tenant's metrics: what the distributor accepts
// (samples per second, label sizes, timestamps), what its ingesters hold
// (series, out-of-order window, exemplars) and how long the bucket keeps it.
type MetricsLimits struct {
	// Write path.
	IngestionRate          float64        `yaml:"ingestion_rate"`
	IngestionBurstSize     int            `yaml:"ingestion_burst_size"`
	MaxLabelNamesPerSeries int            `yaml:"max_label_names_per_series"`
	MaxLabelNameLength     int            `yaml:"max_label_name_length"`
	MaxLabelValueLength    int            `yaml:"max_label_value_length"`
	MaxMetadataLength      int            `yaml:"max_metadata_length"`
	CreationGracePeriod    model.Duration `yaml:"creation_grace_period"`
	PastGracePeriod        model.Duration `yaml:"past_grace_period"`
	MaxExemplarsPerSeries  int            `yaml:"max_exemplars_per_series_per_request"`

	// Ingester.
	MaxGlobalSeriesPerTenant int            `yaml:"max_global_series_per_tenant"`
	OutOfOrderTimeWindow     model.Duration `yaml:"out_of_order_time_window"`
	MaxGlobalExemplars       int            `yaml:"max_global_exemplars_per_tenant"`

	// Reads of stored metrics.
	MaxQueryLookback          model.Duration `yaml:"max_query_lookback"`
	MaxFetchedSeriesPerQuery  int            `yaml:"max_fetched_series_per_query"`
	MaxFetchedSamplesPerQuery int            `yaml:"max_fetched_samples_per_query"`

	// Storage.
	CompactorBlocksRetentionPeriod model.Duration `yaml:"compactor_blocks_retention_period"`
}

// QueryLimits bound a tenant's queries in the query-frontend, whatever the
// signal: how long a range, how many queries at once, what is cached, how
// far a query is sharded.
type QueryLimits struct {
	MaxQueryExpressionBytes  int            `yaml:"max_query_expression_size_bytes"`
	MaxQueryExpressionDepth  int            `yaml:"max_query_expression_depth"`
	MaxQueryLength           model.Duration `yaml:"max_query_length"`
	MaxOutstandingPerTenant  int            `yaml:"max_outstanding_requests_per_tenant"`
	ResultsCacheMaxFreshness model.Duration `yaml:"max_cache_freshness"`
	QueryShardingTotalShards int            `yaml:"query_sharding_total_shards"`
	// QueryShardingTargetSeriesPerShard sizes the shards of a query from
	// the series its last run read.
	QueryShardingTargetSeriesPerShard int `yaml:"query_sharding_target_series_per_shard"`
}

// RegisterFlags registers the defaults of every limit.
func (l *Limits) RegisterFlags(f *flag.FlagSet) {
	l.MetricsLimits.RegisterFlags(f)
	l.LogsLimits.RegisterFlags(f)
	l.TracesLimits.RegisterFlags(f)
	l.QueryLimits.RegisterFlags(f)
}

// RegisterFlags registers the defaults of the metrics limits.
func (l *MetricsLimits) RegisterFlags(f *flag.FlagSet) {
	f.Float64Var(&l.IngestionRate, "distributor.ingestion-rate-limit", 2_000_000, "Per-tenant ingestion rate in samples per second (floats, histograms and exemplars each count one), enforced by each distributor.")
	f.IntVar(&l.IngestionBurstSize, "distributor.ingestion-burst-size", 20_000_000, "Per-tenant number of samples a distributor accepts in a burst above the ingestion rate.")
	f.IntVar(&l.MaxLabelNamesPerSeries, "validation.max-label-names-per-series", 40, "Most labels a series may have, including __name__.")
	f.IntVar(&l.MaxLabelNameLength, "validation.max-length-label-name", 1024, "Longest label name accepted, in bytes.")
	f.IntVar(&l.MaxLabelValueLength, "validation.max-length-label-value", 4096, "Longest label value accepted, in bytes.")
	f.IntVar(&l.MaxMetadataLength, "validation.max-metadata-length", 4096, "Longest metric help or unit text accepted, in bytes.")
	l.CreationGracePeriod = model.Duration(10 * time.Minute)
	f.Var(&l.CreationGracePeriod, "validation.create-grace-period", "Samples more than this far in the future are rejected.")
	f.Var(&l.PastGracePeriod, "validation.past-grace-period", "Samples older than this are rejected before they reach an ingester. 0 disables the check (the ingester's TSDB still rejects samples it cannot place).")
	f.IntVar(&l.MaxExemplarsPerSeries, "validation.max-exemplars-per-series-per-request", 10, "Most exemplars kept per series in one request; the rest are dropped and counted.")
	f.IntVar(&l.MaxGlobalSeriesPerTenant, "ingester.max-global-series-per-tenant", 5_000_000, "Most active series a tenant may have across the cluster (counted before replication). 0 is unlimited.")
	l.OutOfOrderTimeWindow = model.Duration(30 * time.Minute)
	f.Var(&l.OutOfOrderTimeWindow, "ingester.out-of-order-time-window", "How far behind a series' newest sample an out-of-order sample may be and still be accepted. 0 rejects out-of-order samples.")
	f.IntVar(&l.MaxGlobalExemplars, "ingester.max-global-exemplars-per-tenant", 100_000, "Size of the per-tenant exemplar store across the cluster: each ingester holds its share (replication factor / ingesters). 0 disables exemplar storage.")
	f.Var(&l.MaxQueryLookback, "querier.max-query-lookback", "How far back queries may look: data older is not read. 0 is unlimited.")
	f.IntVar(&l.MaxFetchedSeriesPerQuery, "querier.max-fetched-series-per-query", 0, "Most series one query (each part of a split query, its shards together) may read from storage; beyond it the query fails with 422 naming this limit. 0 is unlimited.")
	f.IntVar(&l.MaxFetchedSamplesPerQuery, "querier.max-fetched-samples-per-query", 0, "Most samples one query (each part of a split query, its shards together) may read from storage; beyond it the query fails with 422 naming this limit. 0 is unlimited.")
	f.Var(&l.CompactorBlocksRetentionPeriod, "compactor.blocks-retention-period", "How long a tenant's metrics are kept in the bucket: blocks whose newest sample is older are deleted. 0 keeps them forever.")
}

// RegisterFlags registers the defaults of the query limits.
func (l *QueryLimits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.MaxQueryExpressionBytes, "query-frontend.max-query-expression-size-bytes", 256<<10, "Longest query expression accepted, in bytes, checked before it is parsed (query-frontend and querier); longer ones are rejected with 400. 0 is unlimited.")
	f.IntVar(&l.MaxQueryExpressionDepth, "query-frontend.max-query-expression-depth", 256, "Deepest a query expression may nest, counting on one path its open brackets, the binary operators before it inside each and its unary signs; checked before it is parsed (the parser's time grows with size times depth), deeper ones are rejected with 400. 0 is unlimited.")
	f.Var(&l.MaxQueryLength, "query-frontend.max-query-length", "Longest time range (end - start) a query may span; longer queries are rejected with 400. 0 is unlimited.")
	f.IntVar(&l.MaxOutstandingPerTenant, "query-frontend.max-outstanding-requests-per-tenant", 100, "Most queries a tenant may have waiting or running in a query-frontend (a split query counts once); beyond it queries are rejected with 429.")
	f.IntVar(&l.QueryShardingTotalShards, "query-frontend.query-sharding-total-shards", 16, "Shards the query-frontend splits an associative aggregation (sum, min, max, count, group, avg, topk, bottomk) into, each run by a querier over the series of its shard. 0 or 1 disables query sharding.")
	f.IntVar(&l.QueryShardingTargetSeriesPerShard, "query-frontend.query-sharding-target-series-per-shard", 2000, "Series each shard of a sharded query should read: a query runs on as many shards as the series its last run read (of the tenant, with the same text and step), divided by this, within query_sharding_total_shards; one that read no more than this runs unsharded. A query not run lately gets every shard. 0 always uses every shard.")
	l.ResultsCacheMaxFreshness = model.Duration(10 * time.Minute)
	f.Var(&l.ResultsCacheMaxFreshness, "query-frontend.max-cache-freshness", "Results newer than this are never cached: recent data may still change (late or out-of-order samples).")
}

// Validate checks the limits are coherent.
func (l *Limits) Validate() error {
	if err := l.MetricsLimits.Validate(); err != nil {
		return err
	}
	if err := l.LogsLimits.Validate(); err != nil {
		return err
	}
	return l.TracesLimits.Validate()
}

// Validate checks the metrics limits are coherent.
func (l *MetricsLimits) Validate() error {
	if !(l.IngestionRate > 0) { // NaN too
		return errors.New("ingestion_rate (-distributor.ingestion-rate-limit) must be a positive number of samples per second")
	}
	if l.IngestionBurstSize <= 0 {
		return errors.New("ingestion_burst_size (-distributor.ingestion-burst-size) must be positive")
	}
	if l.MaxLabelNamesPerSeries <= 0 || l.MaxLabelNameLength <= 0 || l.MaxLabelValueLength <= 0 {
		return errors.New("max_label_names_per_series, max_label_name_length and max_label_value_length (-validation.max-*) must be positive")
	}
	if l.MaxGlobalSeriesPerTenant < 0 || l.MaxGlobalExemplars < 0 || l.OutOfOrderTimeWindow < 0 {
		return errors.New("max_global_series_per_tenant, max_global_exemplars_per_tenant and out_of_order_time_window (-ingester.*) must not be negative")
	}
	return nil
}
