package querier

import (
	"errors"
	"flag"
	"time"
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
}

// RegisterFlags registers the querier flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.Timeout, "querier.timeout", 2*time.Minute, "Longest a query may run.")
	f.IntVar(&c.MaxSamples, "querier.max-samples", 50_000_000, "Most samples one query may hold in memory at once.")
	f.DurationVar(&c.LookbackDelta, "querier.lookback-delta", 5*time.Minute, "How far back PromQL looks for a sample at each evaluation step (as Prometheus's --query.lookback-delta).")
	f.IntVar(&c.MaxConcurrent, "querier.max-concurrent", 20, "Queries a querier evaluates at once.")
	f.BoolVar(&c.ExperimentalFunctions, "querier.promql-experimental-functions-enabled", true, "Accept PromQL's experimental functions, duration expressions, extended range selectors and fill modifiers.")
	f.Uint64Var(&c.MaxQueryStreamFrameBytes, "querier.max-query-stream-frame-bytes", 64<<20, "Largest frame accepted from an ingester's query stream.")
	f.DurationVar(&c.DefaultEvaluationInterval, "querier.default-evaluation-interval", time.Minute, "Step used for subqueries without one.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Timeout <= 0 || c.MaxSamples <= 0 || c.LookbackDelta <= 0 || c.MaxConcurrent <= 0 {
		return errors.New("querier timeout, max samples, lookback delta and max concurrent must be positive")
	}
	return nil
}
