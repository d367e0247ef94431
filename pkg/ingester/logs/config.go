package logs

import (
	"errors"
	"flag"
	"time"

	"github.com/canopy-observability/canopy/pkg/ingester/unit"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// Config configures the logs unit of an ingester.
type Config struct {
	Ring ringconfig.Config `yaml:"ring"`

	ChunkTargetSize int           `yaml:"chunk_target_size"`
	MaxChunkAge     time.Duration `yaml:"max_chunk_age"`
	ChunkIdlePeriod time.Duration `yaml:"chunk_idle_period"`
	// Shipping, checkpoints and flush on shutdown (-ingester.logs.ship-interval, …).
	unit.Settings    `yaml:",inline"`
	SelectBatchBytes int `yaml:"select_batch_bytes"`
}

// RegisterFlags registers the flags of the logs unit (-ingester.logs.*).
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Ring.RegisterFlags("ingester.logs.", f)
	f.IntVar(&c.ChunkTargetSize, "ingester.logs.chunk-target-size", 256<<10, "Raw bytes of lines at which a stream's open chunk is cut (compressed and given its token filter). Smaller chunks use less memory per stream and let needle searches skip more finely.")
	f.DurationVar(&c.MaxChunkAge, "ingester.logs.max-chunk-age", time.Hour, "Oldest an open chunk may get before it is cut, however small.")
	f.DurationVar(&c.ChunkIdlePeriod, "ingester.logs.chunk-idle-period", 30*time.Minute, "A stream that received nothing for this long has its open chunk cut.")
	f.DurationVar(&c.ShipInterval, "ingester.logs.ship-interval", time.Minute, "How often cut chunks are uploaded to the bucket, one block per tenant. 0 disables shipping: logs then live in the ingester only, until its WAL is lost.")
	f.IntVar(&c.ShipThreshold, "ingester.logs.ship-threshold-bytes", 32<<20, "Bytes of cut chunks waiting for the bucket at which they are shipped before the next -ingester.logs.ship-interval, bounding the memory they hold under heavy ingestion.")
	f.DurationVar(&c.RetainShipped, "ingester.logs.retain-shipped-for", 15*time.Second, "How long chunks stay in memory after they are in the bucket, so that queriers that have not yet read the tenant's new list of blocks (every 10s) still find them; keep it above 10s.")
	f.DurationVar(&c.CheckpointPeriod, "ingester.logs.checkpoint-period", 5*time.Minute, "How often the WAL is checkpointed: what the ingester holds is written out compactly and the older WAL segments are deleted.")
	f.BoolVar(&c.FlushOnShutdown, "ingester.logs.flush-on-shutdown", true, "On shutdown, after leaving the ring, cut every open chunk and upload everything not yet in the bucket.")
	f.IntVar(&c.SelectBatchBytes, "ingester.logs.select-batch-bytes", 1<<20, "Most raw line bytes in one batch an ingester streams to a querier.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Ring.Validate(); err != nil {
		return err
	}
	if c.ChunkTargetSize < 1<<10 || c.ChunkTargetSize > 16<<20 {
		return errors.New("-ingester.logs.chunk-target-size must be between 1KiB and 16MiB")
	}
	if c.MaxChunkAge <= 0 || c.ChunkIdlePeriod <= 0 || c.CheckpointPeriod <= 0 {
		return errors.New("-ingester.logs.max-chunk-age, -ingester.logs.chunk-idle-period and -ingester.logs.checkpoint-period must be positive")
	}
	if c.ShipThreshold < 1<<20 {
		return errors.New("-ingester.logs.ship-threshold-bytes must be at least 1MiB")
	}
	if c.RetainShipped < 10*time.Second {
		return errors.New("-ingester.logs.retain-shipped-for must be at least 10s: queriers read a tenant's list of blocks every 10s, and chunks dropped sooner could be found nowhere")
	}
	if c.ShipInterval < 0 {
		return errors.New("-ingester.logs.ship-interval must not be negative")
	}
	if c.SelectBatchBytes < 1<<10 {
		return errors.New("-ingester.logs.select-batch-bytes must be at least 1KiB")
	}
	return nil
}
