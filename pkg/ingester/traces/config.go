package traces

import (
	"errors"
	"flag"
	"time"

	"github.com/canopy-observability/canopy/pkg/ingester/unit"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// Config configures the traces unit of an ingester.
type Config struct {
	Ring ringconfig.Config `yaml:"ring"`

	TraceIdlePeriod time.Duration `yaml:"trace_idle_period"`
	MaxTraceLive    time.Duration `yaml:"max_trace_live"`
	// Shipping, checkpoints and flush on shutdown (-ingester.traces.ship-interval, …).
	unit.Settings `yaml:",inline"`

	Generator GeneratorConfig `yaml:"metrics_generator"`
}

// GeneratorConfig configures the span metrics and service graph the unit
// derives from the traces it cuts (pkg/tracegen).
type GeneratorConfig struct {
	Enabled            bool          `yaml:"enabled"`
	FlushInterval      time.Duration `yaml:"flush_interval"`
	MaxSeriesPerTenant int           `yaml:"max_series_per_tenant"`
	StaleAfter         time.Duration `yaml:"stale_after"`
}

// RegisterFlags registers the flags of the traces unit (-ingester.traces.*).
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Ring.RegisterFlags("ingester.traces.", f)
	f.DurationVar(&c.TraceIdlePeriod, "ingester.traces.trace-idle-period", 10*time.Second, "A trace that received no span for this long is complete: it goes into the next block. Spans arriving later are kept as a new piece of the trace, merged with the rest at query time.")
	f.DurationVar(&c.MaxTraceLive, "ingester.traces.max-trace-live", 5*time.Minute, "Longest a trace stays live however often it receives spans; it is then cut into the next block as it is.")
	f.DurationVar(&c.ShipInterval, "ingester.traces.ship-interval", 30*time.Second, "How often complete traces are uploaded to the bucket, one block per tenant. 0 disables shipping: traces then live in the ingester only, until its WAL is lost.")
	f.IntVar(&c.ShipThreshold, "ingester.traces.ship-threshold-bytes", 64<<20, "Bytes of complete traces waiting for the bucket at which they are shipped before the next -ingester.traces.ship-interval, bounding the memory they hold under heavy ingestion.")
	f.DurationVar(&c.RetainShipped, "ingester.traces.retain-shipped-for", 15*time.Second, "How long traces stay in memory after they are in the bucket, so that queriers that have not yet read the tenant's new list of blocks (every 10s) still find them; keep it above 10s.")
	f.DurationVar(&c.CheckpointPeriod, "ingester.traces.checkpoint-period", 5*time.Minute, "How often the WAL is checkpointed: what the ingester holds is written out compactly and the older WAL segments are deleted.")
	f.BoolVar(&c.FlushOnShutdown, "ingester.traces.flush-on-shutdown", true, "On shutdown, after leaving the ring, upload every trace not yet in the bucket.")
	f.BoolVar(&c.Generator.Enabled, "ingester.traces.metrics-generator.enabled", true, "Derive span metrics (traces_spanmetrics_*) and service graph metrics (traces_service_graph_*) from the traces this ingester cuts, and append them to the tenant's metrics through this process's distributor (a process without one, e.g. -target=ingester, generates none). Of a trace's replicas, the first in the traces-ingester ring counts it.")
	f.DurationVar(&c.Generator.FlushInterval, "ingester.traces.metrics-generator.flush-interval", 15*time.Second, "How often the generated series' values are appended to the metrics store (their scrape interval).")
	f.IntVar(&c.Generator.MaxSeriesPerTenant, "ingester.traces.metrics-generator.max-series-per-tenant", 10000, "Most generated series a tenant may have in one ingester; spans of new series beyond it are counted in one series per metric with metric_overflow=\"true\". 0 is unlimited.")
	f.DurationVar(&c.Generator.StaleAfter, "ingester.traces.metrics-generator.stale-after", 15*time.Minute, "A generated series no span updated for this long is no longer appended.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Ring.Validate(); err != nil {
		return err
	}
	if c.TraceIdlePeriod <= 0 || c.MaxTraceLive <= 0 || c.CheckpointPeriod <= 0 {
		return errors.New("-ingester.traces.trace-idle-period, -ingester.traces.max-trace-live and -ingester.traces.checkpoint-period must be positive")
	}
	if c.ShipThreshold < 1<<20 {
		return errors.New("-ingester.traces.ship-threshold-bytes must be at least 1MiB")
	}
	if c.RetainShipped < 10*time.Second {
		return errors.New("-ingester.traces.retain-shipped-for must be at least 10s: queriers read a tenant's list of blocks every 10s, and traces dropped sooner could be found nowhere")
	}
	if c.ShipInterval < 0 {
		return errors.New("-ingester.traces.ship-interval must not be negative")
	}
	if c.Generator.Enabled && (c.Generator.FlushInterval <= 0 || c.Generator.StaleAfter <= 0 || c.Generator.MaxSeriesPerTenant < 0) {
		return errors.New("-ingester.traces.metrics-generator.flush-interval and -ingester.traces.metrics-generator.stale-after must be positive, -ingester.traces.metrics-generator.max-series-per-tenant not negative")
	}
	return nil
}
