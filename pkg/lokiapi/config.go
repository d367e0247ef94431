package lokiapi

import (
	"errors"
	"flag"
	"time"

	"github.com/grafana/dskit/flagext"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Flag names of the query limits: the errors of exceeded limits name them,
// so that a user knows which setting changes the outcome. The
// query-frontend, which holds a query's parts together to the same limits,
// names them too.
const (
	FlagMaxEntriesLimitPerQuery = "-querier.logs.max-entries-limit-per-query"
	FlagMaxQuerySeries          = "-querier.logs.max-query-series"
	FlagMaxQueryBytesRead       = "-querier.logs.max-query-bytes-read"
	flagMaxSamples              = "-querier.logs.max-query-samples"
	flagQueryTimeout            = "-querier.logs.query-timeout"
)

// Config configures the Loki query API. The zero value is not usable: take
// the defaults from RegisterFlags (or flagext.DefaultValues).
type Config struct {
	// MaxEntriesLimitPerQuery is the largest limit a log query may ask for.
	MaxEntriesLimitPerQuery int `yaml:"max_entries_limit_per_query"`
	// MaxQuerySeries bounds the series of a metric query and the streams
	// of a log query's result (0: unbounded).
	MaxQuerySeries int `yaml:"max_query_series"`
	// MaxQueryBytesRead bounds the bytes of log lines one query reads (0:
	// unbounded).
	MaxQueryBytesRead flagext.Bytes `yaml:"max_query_bytes_read"`
	// MaxQuerySamples bounds the samples an unwrapped range aggregation
	// holds (0: unbounded).
	MaxQuerySamples int `yaml:"max_query_samples"`
	// QueryTimeout bounds how long one request may run (0: unbounded).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// DiscoverLogLevels gives queries that name detected_level a
	// detected_level label on entries that lack one, derived from the
	// entry's level label or metadata or from its line (as Loki's
	// discover_log_levels does at ingestion).
	DiscoverLogLevels bool `yaml:"discover_log_levels"`
	// TailPollInterval is how often a live tail reads new entries.
	TailPollInterval time.Duration `yaml:"tail_poll_interval"`
	// TailMaxDuration is the longest a live tail stays open.
	TailMaxDuration time.Duration `yaml:"tail_max_duration"`
}

// RegisterFlags registers the -querier.logs.* flags of the Loki query API.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&c.MaxEntriesLimitPerQuery, FlagMaxEntriesLimitPerQuery[1:], 5000, "Largest limit (log lines) one Loki log query may ask for; a larger limit is refused with 400.")
	f.IntVar(&c.MaxQuerySeries, FlagMaxQuerySeries[1:], 500, "Most series a LogQL metric query, and most streams a log query's result, may have; more is refused with 400. 0 is unlimited.")
	c.MaxQueryBytesRead = 0
	f.Var(&c.MaxQueryBytesRead, FlagMaxQueryBytesRead[1:], "Most bytes of log lines one LogQL query may read (e.g. 10GiB); more is refused with 400. 0 is unlimited.")
	f.IntVar(&c.MaxQuerySamples, flagMaxSamples[1:], 50_000_000, "Most samples an unwrapped LogQL range aggregation (sum_over_time, quantile_over_time, …) may hold at once; more is refused with 400. 0 is unlimited.")
	f.DurationVar(&c.QueryTimeout, flagQueryTimeout[1:], 2*time.Minute, "Longest a Loki API request may run before it is answered 504. 0 is unlimited.")
	f.BoolVar(&c.DiscoverLogLevels, "querier.logs.discover-log-levels", true, "Give entries without a detected_level label one, from their level label, structured metadata or line, in queries that name detected_level (Grafana's log volume, Logs Drilldown).")
	f.DurationVar(&c.TailPollInterval, "querier.logs.tail-poll-interval", time.Second, "How often a live tail (/loki/api/v1/tail) reads the entries newer than the last it sent.")
	f.DurationVar(&c.TailMaxDuration, "querier.logs.tail-max-duration", time.Hour, "Longest a live tail stays open; the client reconnects after it.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxEntriesLimitPerQuery <= 0 {
		return errors.New(FlagMaxEntriesLimitPerQuery + " must be positive")
	}
	if c.MaxQuerySeries < 0 || c.MaxQuerySamples < 0 || c.QueryTimeout < 0 {
		return errors.New(FlagMaxQuerySeries + ", " + flagMaxSamples + " and " + flagQueryTimeout + " must not be negative")
	}
	if int64(c.MaxQueryBytesRead) < 0 {
		return errors.New(FlagMaxQueryBytesRead + " is too large")
	}
	if c.TailPollInterval <= 0 || c.TailMaxDuration <= 0 {
		return errors.New("-querier.logs.tail-poll-interval and -querier.logs.tail-max-duration must be positive")
	}
	return nil
}

// limits returns the engine's limits for one query.
func (c *Config) limits() logql.Limits {
	return logql.Limits{
		MaxSeries:        c.MaxQuerySeries,
		MaxBytesRead:     int64(c.MaxQueryBytesRead),
		MaxSamples:       c.MaxQuerySamples,
		MaxSeriesFlag:    FlagMaxQuerySeries,
		MaxBytesReadFlag: FlagMaxQueryBytesRead,
		MaxSamplesFlag:   flagMaxSamples,
	}
}
