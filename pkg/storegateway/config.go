package storegateway

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/grafana/dskit/flagext"

	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// Config configures store-gateways, and how queriers reach them.
type Config struct {
	Ring ringconfig.Config `yaml:"ring"`

	CacheSize        flagext.Bytes `yaml:"cache_size"`
	SyncInterval     time.Duration `yaml:"sync_interval"`
	SyncConcurrency  int           `yaml:"sync_concurrency"`
	MaxFrameBytes    int           `yaml:"max_frame_bytes"`
	MaxBlocksPerCall int           `yaml:"max_blocks_per_call"`
	IdleBlockTimeout time.Duration `yaml:"idle_block_timeout"`

	// Client is how queriers reach store-gateways.
	Client rpc.ClientConfig `yaml:"client"`
}

// RegisterFlags registers the -store-gateway.* flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Ring.RegisterFlags("store-gateway.", f)
	c.Client.RegisterFlagsWithPrefix("store-gateway.client", f)
	c.CacheSize = 1 << 30
	f.Var(&c.CacheSize, "store-gateway.cache-size", "Memory for the cache of index and chunk byte ranges read from the bucket (e.g. 512MiB, 4GiB). Nothing of a block is kept on local disk.")
	f.DurationVar(&c.SyncInterval, "store-gateway.sync-interval", 5*time.Minute, "How often the store-gateway reads the bucket indexes to open the index headers of the blocks it owns and forget the ones it no longer owns.")
	f.IntVar(&c.SyncConcurrency, "store-gateway.sync-concurrency", 4, "Blocks opened in parallel while syncing.")
	f.IntVar(&c.MaxFrameBytes, "store-gateway.max-frame-bytes", 1<<20, "Largest frame of a series stream sent to queriers.")
	f.IntVar(&c.MaxBlocksPerCall, "store-gateway.max-blocks-per-call", 10_000, "Most blocks one query may ask a store-gateway to read.")
	f.DurationVar(&c.IdleBlockTimeout, "store-gateway.idle-block-timeout", time.Hour, "A block no query has read for this long lets go of its index header (postings offset table, symbol table) until the next query that needs it; checked at every sync. 0 keeps every owned block open.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Ring.Validate(); err != nil {
		return fmt.Errorf("store-gateway ring: %w", err)
	}
	if err := c.Client.Validate("store-gateway.client"); err != nil {
		return err
	}
	if c.CacheSize < 1<<20 {
		return errors.New("-store-gateway.cache-size must be at least 1MiB")
	}
	if c.IdleBlockTimeout < 0 {
		return errors.New("-store-gateway.idle-block-timeout must not be negative")
	}
	if c.SyncInterval <= 0 || c.SyncConcurrency < 1 || c.MaxFrameBytes < 1024 || c.MaxBlocksPerCall < 1 {
		return errors.New("-store-gateway.sync-interval, sync-concurrency, max-frame-bytes (at least 1024) and max-blocks-per-call must be positive")
	}
	return nil
}
