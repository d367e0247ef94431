package frontend

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/grafana/dskit/cache"
	"github.com/grafana/dskit/flagext"
)

// Results cache backends.
const (
	CacheInMemory  = "inmemory"
	CacheMemcached = "memcached"
	CacheNone      = "none"
)

// Config configures the query-frontend.
type Config struct {
	SplitInterval time.Duration `yaml:"split_queries_by_interval"`
	Parallelism   int           `yaml:"parallelism"`
	DownstreamURL string        `yaml:"downstream_url"`
	ResultsCache  CacheConfig   `yaml:"results_cache"`
	// MaxShardedQueries bounds the downstream queries one part of a sharded
	// query becomes.
	MaxShardedQueries int `yaml:"query_sharding_max_sharded_queries"`
}

// CacheConfig configures the results cache.
type CacheConfig struct {
	Backend   string                      `yaml:"backend"`
	Size      flagext.Bytes               `yaml:"size"`
	TTL       time.Duration               `yaml:"ttl"`
	Memcached cache.MemcachedClientConfig `yaml:"memcached"`
}

// RegisterFlags registers the -query-frontend.* flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.SplitInterval, "query-frontend.split-queries-by-interval", 24*time.Hour, "Range queries are split into parts of this length, aligned to it (UTC days by default), run in parallel and cached separately. 0 disables splitting.")
	f.IntVar(&c.Parallelism, "query-frontend.parallelism", 16, "Queries (or parts of split queries) this query-frontend runs at once, taken from the tenants' queues in turn.")
	f.StringVar(&c.DownstreamURL, "query-frontend.downstream-url", "", "Base URL of the queriers (e.g. http://querier:9009) when they run in other processes. Empty: the querier of this process.")
	f.StringVar(&c.ResultsCache.Backend, "query-frontend.results-cache.backend", CacheInMemory, "Where query results are cached: inmemory (this process, bounded by -query-frontend.results-cache.size), memcached (shared by every query-frontend) or none.")
	f.IntVar(&c.MaxShardedQueries, "query-frontend.query-sharding-max-sharded-queries", 128, "Most downstream queries one sharded query (each part of a split one) becomes: a query with several shardable aggregations runs with fewer shards each.")
	c.ResultsCache.Size = 256 << 20
	f.Var(&c.ResultsCache.Size, "query-frontend.results-cache.size", "Memory of the in-process results cache (e.g. 256MiB).")
	f.DurationVar(&c.ResultsCache.TTL, "query-frontend.results-cache.ttl", 7*24*time.Hour, "How long a cached result is kept.")
	c.ResultsCache.Memcached.RegisterFlagsWithPrefix("query-frontend.results-cache.memcached.", f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxShardedQueries < 1 {
		return errors.New("-query-frontend.query-sharding-max-sharded-queries must be at least 1")
	}
	if c.SplitInterval < 0 || c.Parallelism < 1 {
		return errors.New("-query-frontend.split-queries-by-interval must not be negative and -query-frontend.parallelism must be at least 1")
	}
	switch c.ResultsCache.Backend {
	case CacheInMemory, CacheNone:
	case CacheMemcached:
		if len(c.ResultsCache.Memcached.Addresses) == 0 {
			return errors.New("-query-frontend.results-cache.backend=memcached needs -query-frontend.results-cache.memcached.addresses")
		}
	default:
		return fmt.Errorf("-query-frontend.results-cache.backend %q: must be %s, %s or %s", c.ResultsCache.Backend, CacheInMemory, CacheMemcached, CacheNone)
	}
	return nil
}
