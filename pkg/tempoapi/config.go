package tempoapi

import (
	"errors"
	"flag"
	"time"
)

// Flag names of the API's limits: the errors of exceeded limits name them,
// so that a user knows which setting changes the outcome.
const (
	FlagQueryTimeout       = "-querier.traces.query-timeout"
	FlagDefaultResultLimit = "-querier.traces.search.default-result-limit"
	FlagMaxResultLimit     = "-querier.traces.search.max-result-limit"
	FlagMaxSpansPerSpanSet = "-querier.traces.search.max-spans-per-span-set"
)

// Config configures the Tempo query API. The zero value is not usable: take
// the defaults from RegisterFlags (or flagext.DefaultValues).
type Config struct {
	// QueryTimeout bounds how long one request may run (0: unbounded).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// DefaultResultLimit is the most traces a search returns when it does
	// not say (Tempo's default_result_limit).
	DefaultResultLimit int `yaml:"default_result_limit"`
	// MaxResultLimit is the largest limit a search may ask for (0:
	// unbounded).
	MaxResultLimit int `yaml:"max_result_limit"`
	// MaxSpansPerSpanSet is the largest spss a search may ask for (0:
	// unbounded, and spss=0, every span, is allowed).
	MaxSpansPerSpanSet int `yaml:"max_spans_per_span_set"`
}

// RegisterFlags registers the -querier.traces.* flags of the Tempo query
// API.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.QueryTimeout, FlagQueryTimeout[1:], 2*time.Minute, "Longest a Tempo API request may run before it is answered 504. 0 is unlimited.")
	f.IntVar(&c.DefaultResultLimit, FlagDefaultResultLimit[1:], 20, "Most traces a Tempo search (/tempo/api/search) returns when its request has no limit.")
	f.IntVar(&c.MaxResultLimit, FlagMaxResultLimit[1:], 0, "Largest limit (traces) a Tempo search may ask for; a larger limit is refused with 400. 0 is unlimited.")
	f.IntVar(&c.MaxSpansPerSpanSet, FlagMaxSpansPerSpanSet[1:], 100, "Largest spss (spans listed per span set) a Tempo search may ask for; a larger one, or spss=0 (all), is refused with 400. 0 is unlimited.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.QueryTimeout < 0 {
		return errors.New(FlagQueryTimeout + " must not be negative")
	}
	if c.DefaultResultLimit <= 0 {
		return errors.New(FlagDefaultResultLimit + " must be positive")
	}
	if c.MaxResultLimit < 0 || c.MaxSpansPerSpanSet < 0 {
		return errors.New(FlagMaxResultLimit + " and " + FlagMaxSpansPerSpanSet + " must not be negative")
	}
	if c.MaxResultLimit > 0 && c.DefaultResultLimit > c.MaxResultLimit {
		return errors.New(FlagDefaultResultLimit + " must not be above " + FlagMaxResultLimit)
	}
	if c.MaxSpansPerSpanSet > 0 && defaultSpansPerSpanSet > c.MaxSpansPerSpanSet {
		return errors.New(FlagMaxSpansPerSpanSet + " must be at least 3, the default spss")
	}
	return nil
}
