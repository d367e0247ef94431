package ingester

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/grafana/dskit/flagext"

	"github.com/canopy-observability/canopy/pkg/ingester/logs"
	"github.com/canopy-observability/canopy/pkg/ingester/metrics"
	"github.com/canopy-observability/canopy/pkg/ingester/traces"
	"github.com/canopy-observability/canopy/pkg/rpc"
)

// KnownSignals are the units an ingester can host, in start order.
var KnownSignals = []string{metrics.Signal, logs.Signal, traces.Signal}

// Config configures an ingester: which signals it hosts and each unit's
// settings. The metrics unit's keys stay at the top level (ingester.ring,
// ingester.tsdb_…), as before ingesters hosted several signals; the logs
// unit's are under ingester.logs.
type Config struct {
	Signals flagext.StringSliceCSV `yaml:"signals"`
	Metrics metrics.Config         `yaml:",inline"`
	Logs    logs.Config            `yaml:"logs"`
	Traces  traces.Config          `yaml:"traces"`

	// Client is how distributors and queriers reach ingesters.
	Client rpc.ClientConfig `yaml:"client"`
}

// RegisterFlags registers the ingester flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Signals = []string{metrics.Signal, logs.Signal, traces.Signal}
	f.Var(&c.Signals, "ingester.signals", "Comma-separated signals this ingester hosts, each a unit with its own ring, per-tenant stores, WAL, flush and shipping, under <data-dir>/ingester/<signal>/. Known: "+strings.Join(KnownSignals, ", ")+".")
	c.Metrics.RegisterFlags(f)
	c.Logs.RegisterFlags(f)
	c.Traces.RegisterFlags(f)
	c.Client.RegisterFlagsWithPrefix("ingester.client", f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.Signals) == 0 {
		return fmt.Errorf("-ingester.signals is empty: name at least one of %s", strings.Join(KnownSignals, ", "))
	}
	for _, s := range c.Signals {
		if !slices.Contains(KnownSignals, s) {
			return fmt.Errorf("-ingester.signals: unknown signal %q: known signals are %s", s, strings.Join(KnownSignals, ", "))
		}
	}
	if err := c.Client.Validate("ingester.client"); err != nil {
		return err
	}
	if err := c.Traces.Validate(); err != nil {
		return err
	}
	if err := c.Logs.Validate(); err != nil {
		return err
	}
	return c.Metrics.Validate()
}

// Hosts reports whether the ingester hosts signal.
func (c *Config) Hosts(signal string) bool { return slices.Contains(c.Signals, signal) }
