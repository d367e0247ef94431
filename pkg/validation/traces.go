package validation

import (
	"errors"
	"flag"

	"github.com/prometheus/common/model"
)

// TracesLimits bound a tenant's traces: what the distributor accepts (bytes
// per second, attribute sizes), what its ingesters hold (live traces,
// bytes per trace) and how long the bucket keeps it. Their YAML keys start
// with traces_ so that they sit beside the other signals' limits in one
// flat overrides map.
type TracesLimits struct {
	// Write path.
	TracesIngestionRateMB       float64 `yaml:"traces_ingestion_rate_mb"`
	TracesIngestionBurstSizeMB  float64 `yaml:"traces_ingestion_burst_size_mb"`
	TracesMaxAttributeKeyBytes  int     `yaml:"traces_max_attribute_key_bytes"`
	TracesMaxAttributeValueByte int     `yaml:"traces_max_attribute_value_bytes"`

	// Ingester.
	TracesMaxBytesPerTrace       int `yaml:"traces_max_bytes_per_trace"`
	TracesMaxLiveTracesPerTenant int `yaml:"traces_max_live_traces_per_tenant"`

	// Storage.
	TracesRetentionPeriod model.Duration `yaml:"traces_retention_period"`
}

// RegisterFlags registers the defaults of the traces limits.
func (l *TracesLimits) RegisterFlags(f *flag.FlagSet) {
	f.Float64Var(&l.TracesIngestionRateMB, "distributor.traces.ingestion-rate-limit-mb", 15, "Per-tenant ingestion rate of spans in MB per second (their OTLP protobuf size), enforced by each distributor; pushes above it are rejected with 429.")
	f.Float64Var(&l.TracesIngestionBurstSizeMB, "distributor.traces.ingestion-burst-size-mb", 30, "Per-tenant MB of spans a distributor accepts in a burst above the ingestion rate; a single push larger than this is rejected with 429.")
	f.IntVar(&l.TracesMaxAttributeKeyBytes, "validation.traces.max-attribute-key-bytes", 1024, "Longest attribute key accepted on a span, its resource, scope, events or links, in bytes; a span with a longer one is rejected with 400. 0 is unlimited.")
	f.IntVar(&l.TracesMaxAttributeValueByte, "validation.traces.max-attribute-value-bytes", 64<<10, "Longest string or bytes attribute value accepted, in bytes; a span with a longer one is rejected with 400. 0 is unlimited.")
	f.IntVar(&l.TracesMaxBytesPerTrace, "ingester.traces.max-bytes-per-trace", 5_000_000, "Most bytes (OTLP protobuf) of spans one trace may gather in an ingester; spans beyond it are rejected with 400 naming the trace. 0 is unlimited.")
	f.IntVar(&l.TracesMaxLiveTracesPerTenant, "ingester.traces.max-live-traces-per-tenant", 100_000, "Most traces a tenant may have live (receiving spans, not yet idle) in one ingester; spans of new traces beyond it are rejected with 429. 0 is unlimited.")
	f.Var(&l.TracesRetentionPeriod, "compactor.traces.retention-period", "How long a tenant's traces are kept in the bucket: blocks whose newest span is older are deleted. 0 keeps them forever.")
}

// Validate checks the traces limits are coherent.
func (l *TracesLimits) Validate() error {
	if l.TracesIngestionRateMB <= 0 || l.TracesIngestionBurstSizeMB <= 0 {
		return errors.New("-distributor.traces.ingestion-rate-limit-mb and -distributor.traces.ingestion-burst-size-mb must be positive")
	}
	if l.TracesMaxAttributeKeyBytes < 0 || l.TracesMaxAttributeValueByte < 0 || l.TracesMaxBytesPerTrace < 0 || l.TracesMaxLiveTracesPerTenant < 0 {
		return errors.New("the traces size and count limits must not be negative (0 is unlimited)")
	}
	if l.TracesRetentionPeriod < 0 {
		return errors.New("-compactor.traces.retention-period must not be negative")
	}
	return nil
}
