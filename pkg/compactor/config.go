package compactor

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// Config configures the compactor.
type Config struct {
	Ring ringconfig.Config `yaml:"ring"`

	BlockRanges               DurationList  `yaml:"block_ranges"`
	CompactionInterval        time.Duration `yaml:"compaction_interval"`
	CleanupInterval           time.Duration `yaml:"cleanup_interval"`
	DeletionDelay             time.Duration `yaml:"deletion_delay"`
	PartialBlockDeletionDelay time.Duration `yaml:"partial_block_deletion_delay"`
	TenantConcurrency         int           `yaml:"tenant_concurrency"`

	LogsMergeWindows       DurationList  `yaml:"logs_merge_windows"`
	LogsDeleteCancelPeriod time.Duration `yaml:"logs_delete_request_cancel_period"`

	TracesMergeWindows DurationList `yaml:"traces_merge_windows"`
}

// RegisterFlags registers the -compactor.* flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Ring.RegisterFlags("compactor.", f)
	c.BlockRanges = DurationList{2 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	f.Var(&c.BlockRanges, "compactor.block-ranges", "Comma-separated block ranges the compactor builds, smallest first: the first is the range ingesters cut (-ingester.tsdb.block-range); each later one is made of whole blocks of the one before.")
	f.DurationVar(&c.CompactionInterval, "compactor.compaction-interval", time.Hour, "How often each owned tenant is compacted.")
	f.DurationVar(&c.CleanupInterval, "compactor.cleanup-interval", 15*time.Minute, "How often each owned tenant's bucket index is rebuilt and retention, deletion and partial-upload cleanup run.")
	f.DurationVar(&c.DeletionDelay, "compactor.deletion-delay", 12*time.Hour, "How long a block (metrics, logs or traces) marked for deletion stays readable before it is deleted; must exceed how often queriers and store-gateways reload the bucket index or list log and trace blocks (every 10s).")
	f.DurationVar(&c.PartialBlockDeletionDelay, "compactor.partial-block-deletion-delay", 24*time.Hour, "A block directory without meta.json (an abandoned upload) untouched for this long is deleted.")
	f.IntVar(&c.TenantConcurrency, "compactor.tenant-concurrency", 1, "Tenants compacted in parallel by one compactor.")
	c.LogsMergeWindows = DurationList{2 * time.Hour, 24 * time.Hour}
	f.Var(&c.LogsMergeWindows, "compactor.logs.merge-windows", "Comma-separated windows of shipping time, smallest first, each a multiple of the one before: once a window is over, the log blocks shipped in it (every ingester's, replicas' included) are merged into one, their replicated entries kept once.")
	f.DurationVar(&c.LogsDeleteCancelPeriod, "compactor.logs.delete-request-cancel-period", 24*time.Hour, "How long a log deletion request (/loki/api/v1/delete) may be canceled; the compactor applies it once it is older.")
	c.TracesMergeWindows = DurationList{2 * time.Hour, 24 * time.Hour}
	f.Var(&c.TracesMergeWindows, "compactor.traces.merge-windows", "Comma-separated windows of shipping time, smallest first, each a multiple of the one before: once a window is over, the trace blocks shipped in it (every ingester's, replicas' included) are merged into one, each span kept once.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Ring.Validate(); err != nil {
		return fmt.Errorf("compactor ring: %w", err)
	}
	if len(c.BlockRanges) == 0 {
		return errors.New("-compactor.block-ranges must list at least one range")
	}
	for i, r := range c.BlockRanges {
		if r <= 0 || r%time.Minute != 0 {
			return fmt.Errorf("-compactor.block-ranges: %s is not a positive whole number of minutes", r)
		}
		if i > 0 && r%c.BlockRanges[i-1] != 0 {
			return fmt.Errorf("-compactor.block-ranges: %s is not a multiple of %s", r, c.BlockRanges[i-1])
		}
	}
	if c.CompactionInterval <= 0 || c.CleanupInterval <= 0 {
		return errors.New("-compactor.compaction-interval and -compactor.cleanup-interval must be positive")
	}
	if c.TenantConcurrency < 1 {
		return errors.New("-compactor.tenant-concurrency must be at least 1")
	}
	if err := validateWindows("-compactor.logs.merge-windows", c.LogsMergeWindows); err != nil {
		return err
	}
	if err := validateWindows("-compactor.traces.merge-windows", c.TracesMergeWindows); err != nil {
		return err
	}
	if c.LogsDeleteCancelPeriod < 0 {
		return errors.New("-compactor.logs.delete-request-cancel-period must not be negative")
	}
	return nil
}

// validateWindows checks the merge windows of a signal's blocks, named by
// their flag.
func validateWindows(flag string, ws DurationList) error {
	if len(ws) == 0 {
		return fmt.Errorf("%s must list at least one window", flag)
	}
	for i, w := range ws {
		if w <= 0 || w%time.Minute != 0 {
			return fmt.Errorf("%s: %s is not a positive whole number of minutes", flag, w)
		}
		if i > 0 && w%ws[i-1] != 0 {
			return fmt.Errorf("%s: %s is not a multiple of %s", flag, w, ws[i-1])
		}
	}
	return nil
}

// DurationList is a comma-separated list of durations (flag and YAML list).
type DurationList []time.Duration

func (d *DurationList) String() string {
	parts := make([]string, len(*d))
	for i, v := range *d {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

// Set parses a comma-separated list.
func (d *DurationList) Set(s string) error {
	var out DurationList
	for _, p := range strings.Split(s, ",") {
		v, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	*d = out
	return nil
}

// Millis returns the ranges in milliseconds.
func (d DurationList) Millis() []int64 {
	out := make([]int64, len(d))
	for i, v := range d {
		out[i] = v.Milliseconds()
	}
	return out
}
