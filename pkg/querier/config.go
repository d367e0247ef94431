package querier

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/canopy-observability/canopy/pkg/lokiapi"
	"github.com/canopy-observability/canopy/pkg/tempoapi"
)

// Config configures queriers and the PromQL engine.
type Config struct {
	Timeout                   time.Duration `yaml:"timeout"`
	MaxSamples                int           `yaml:"max_samples"`
	LookbackDelta             time.Duration `yaml:"lookback_delta"`
	MaxConcurrent             int           `yaml:"max_concurrent"`
	ExperimentalFunctions     bool          `yaml:"promql_experimental_functions_enabled"`
	MaxQueryStreamFrameBytes  uint64        `yaml:"max_query_stream_frame_bytes"`
	DefaultEvaluationInterval time.Duration `yaml:"default_evaluation_interval"`
	QueryIngestersWithin      time.Duration `yaml:"query_ingesters_within"`
	QueryStoreAfter           time.Duration `yaml:"query_store_after"`
	BucketIndexTTL            time.Duration `yaml:"bucket_index_ttl"`
	// ExternalLabels are this cluster's labels for federators
	// (-cluster.external-labels).
	ExternalLabels ExternalLabels `yaml:"external_labels"`

	// Logs configures the Loki query API (-querier.logs.*).
	Logs lokiapi.Config `yaml:"logs"`
	// Traces configures the Tempo query API (-querier.traces.*).
	Traces tempoapi.Config `yaml:"traces"`
}

// RegisterFlags registers the querier flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Logs.RegisterFlags(f)
	c.Traces.RegisterFlags(f)
	f.DurationVar(&c.Timeout, "querier.timeout", 2*time.Minute, "Longest a query may run.")
	f.IntVar(&c.MaxSamples, "querier.max-samples", 50_000_000, "Most samples one query may hold in memory at once.")
	f.DurationVar(&c.LookbackDelta, "querier.lookback-delta", 5*time.Minute, "How far back PromQL looks for a sample at each evaluation step (as Prometheus's --query.lookback-delta).")
	f.IntVar(&c.MaxConcurrent, "querier.max-concurrent", 20, "Queries a querier evaluates at once.")
	f.BoolVar(&c.ExperimentalFunctions, "querier.promql-experimental-functions-enabled", true, "Accept PromQL's experimental functions, duration expressions, extended range selectors and fill modifiers.")
	f.Uint64Var(&c.MaxQueryStreamFrameBytes, "querier.max-query-stream-frame-bytes", 64<<20, "Largest frame accepted from an ingester's query stream.")
	f.DurationVar(&c.QueryIngestersWithin, "querier.query-ingesters-within", 13*time.Hour, "Queries reach ingesters only for data newer than this (0: always). Must exceed -querier.query-store-after, and ingesters must keep data this long (-ingester.tsdb.retention-period).")
	f.DurationVar(&c.QueryStoreAfter, "querier.query-store-after", 12*time.Hour, "Queries read the bucket (through store-gateways) only for data older than this (0: always). Leaves ingesters the time to ship and the compactor the time to index what they shipped.")
	f.Var(&c.ExternalLabels, "cluster.external-labels", "This cluster's external labels, name=value pairs separated by commas (cluster=eu-1,region=eu): every series the Prometheus API and /federate answer with has them (a label a series stores keeps its own value), and selectors match them, so that a federator above tells this cluster's data apart and may skip it. Empty: none.")
	f.DurationVar(&c.BucketIndexTTL, "querier.bucket-index-ttl", time.Minute, "How long a querier uses a tenant's bucket index before reading it again.")
	f.DurationVar(&c.DefaultEvaluationInterval, "querier.default-evaluation-interval", time.Minute, "Step used for subqueries without one.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Traces.Validate(); err != nil {
		return err
	}
	if err := c.Logs.Validate(); err != nil {
		return err
	}
	if c.Timeout <= 0 || c.MaxSamples <= 0 || c.LookbackDelta <= 0 || c.MaxConcurrent <= 0 {
		return errors.New("querier timeout, max samples, lookback delta and max concurrent must be positive")
	}
	if c.QueryIngestersWithin < 0 || c.QueryStoreAfter < 0 || c.BucketIndexTTL <= 0 {
		return errors.New("-querier.query-ingesters-within and -querier.query-store-after must not be negative, -querier.bucket-index-ttl must be positive")
	}
	if err := c.ExternalLabels.Validate(); err != nil {
		return fmt.Errorf("-cluster.external-labels: %w", err)
	}
	if c.QueryIngestersWithin > 0 && c.QueryStoreAfter >= c.QueryIngestersWithin {
		return fmt.Errorf("-querier.query-store-after (%s) must be shorter than -querier.query-ingesters-within (%s), or data between them is read from nowhere", c.QueryStoreAfter, c.QueryIngestersWithin)
	}
	return nil
}
