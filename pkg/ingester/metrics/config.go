package metrics

import (
	"errors"
	"flag"
	"time"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// Config configures an ingester.
type Config struct {
	Ring ringconfig.Config `yaml:"ring"`

	BlockRange      time.Duration `yaml:"tsdb_block_range"`
	Retention       time.Duration `yaml:"tsdb_retention_period"`
	WALCompression  bool          `yaml:"tsdb_wal_compression_enabled"`
	HeadChunksQueue int           `yaml:"tsdb_head_chunks_write_queue_size"`
	MaxFrameBytes   int           `yaml:"query_stream_max_frame_bytes"`
	StripeSize      int           `yaml:"tsdb_stripe_size"`
	ExemplarsSize   int           `yaml:"-"`

	ShipInterval         time.Duration `yaml:"ship_interval"`
	FlushOnShutdown      bool          `yaml:"flush_on_shutdown"`
	ShutdownFlushTimeout time.Duration `yaml:"shutdown_flush_timeout"`
	ShipConcurrency      int           `yaml:"ship_concurrency"`
	IdleTenantTimeout    time.Duration `yaml:"idle_tenant_timeout"`
}

// RegisterFlags registers the ingester flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Ring.RegisterFlags("ingester.", f)
	f.DurationVar(&c.BlockRange, "ingester.tsdb.block-range", 2*time.Hour, "Time range of the TSDB blocks the ingester cuts from its head.")
	f.DurationVar(&c.Retention, "ingester.tsdb.retention-period", 24*time.Hour, "How long an ingester keeps blocks on its local disk after shipping them; queriers read the last -querier.query-ingesters-within from ingesters, so this must be at least that. A block not yet in the bucket is never deleted.")
	f.DurationVar(&c.ShipInterval, "ingester.ship-interval", time.Minute, "How often each tenant's new TSDB blocks are uploaded to the bucket. 0 disables shipping: blocks then stay only on local disk.")
	f.IntVar(&c.ShipConcurrency, "ingester.ship-concurrency", 4, "Tenants whose blocks are uploaded in parallel.")
	f.BoolVar(&c.FlushOnShutdown, "ingester.flush-on-shutdown", true, "On shutdown, after leaving the ring, cut every tenant's head into blocks and upload them, so the bucket holds everything this ingester had.")
	f.DurationVar(&c.ShutdownFlushTimeout, "ingester.shutdown-flush-timeout", 5*time.Minute, "Longest the flush on shutdown may take; blocks not uploaded by then stay on local disk and are uploaded at the next start.")
	f.BoolVar(&c.WALCompression, "ingester.tsdb.wal-compression-enabled", true, "Compress the write-ahead log (snappy).")
	f.IntVar(&c.HeadChunksQueue, "ingester.tsdb.head-chunks-write-queue-size", 1_000_000, "Size of the queue of head chunks waiting to be written to disk.")
	f.IntVar(&c.MaxFrameBytes, "ingester.query-stream-max-frame-bytes", 1<<20, "Largest frame of series an ingester streams to a querier.")
	f.DurationVar(&c.IdleTenantTimeout, "ingester.idle-tenant-timeout", time.Hour, "A tenant that has pushed nothing for this long has its head cut into blocks and shipped; once the local retention has deleted its last block, its TSDB is closed, its directory removed and its per-tenant metrics dropped. 0 keeps idle tenants open.")
	f.IntVar(&c.StripeSize, "ingester.tsdb.stripe-size", 16384, "Number of lock stripes in each tenant's series map (power of two); more reduces contention with many series.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Ring.Validate(); err != nil {
		return err
	}
	if c.BlockRange < time.Minute || c.BlockRange%time.Minute != 0 {
		return errors.New("ingester TSDB block range must be a whole number of minutes, at least 1m")
	}
	if c.Retention < c.BlockRange {
		return errors.New("ingester TSDB retention must be at least one block range")
	}
	if c.ShipInterval < 0 {
		return errors.New("-ingester.ship-interval must not be negative")
	}
	if c.IdleTenantTimeout < 0 {
		return errors.New("-ingester.idle-tenant-timeout must not be negative")
	}
	if c.ShipConcurrency < 1 {
		return errors.New("-ingester.ship-concurrency must be at least 1")
	}
	if c.StripeSize <= 0 || c.StripeSize&(c.StripeSize-1) != 0 {
		return errors.New("ingester TSDB stripe size must be a power of two")
	}
	return nil
}
