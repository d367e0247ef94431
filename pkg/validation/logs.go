package validation

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logpush"
	"github.com/canopy-observability/canopy/pkg/logql"
)

// LogsLimits bound a tenant's logs: what the distributor accepts (bytes per
// second, line and label sizes, timestamps), what its ingesters hold
// (streams, out-of-order window) and how long the bucket keeps it. Their
// YAML keys start with logs_ so that they sit beside the metrics limits in
// one flat overrides map.
type LogsLimits struct {
	// Write path.
	LogsIngestionRateMB         float64        `yaml:"logs_ingestion_rate_mb"`
	LogsIngestionBurstSizeMB    float64        `yaml:"logs_ingestion_burst_size_mb"`
	LogsMaxLineSize             int            `yaml:"logs_max_line_size"`
	LogsMaxLabelNamesPerStream  int            `yaml:"logs_max_label_names_per_stream"`
	LogsMaxLabelNameLength      int            `yaml:"logs_max_label_name_length"`
	LogsMaxLabelValueLength     int            `yaml:"logs_max_label_value_length"`
	LogsMaxMetadataSize         int            `yaml:"logs_max_structured_metadata_size"`
	LogsRejectOldSamplesMaxAge  model.Duration `yaml:"logs_reject_old_samples_max_age"`
	LogsCreationGracePeriod     model.Duration `yaml:"logs_creation_grace_period"`
	LogsMaxGlobalStreamsPerUser int            `yaml:"logs_max_global_streams_per_tenant"`
	LogsOutOfOrderWindow        model.Duration `yaml:"logs_out_of_order_window"`

	// LogsOTLP maps OTLP resource attributes to index labels (the zero
	// value is Loki's default mapping); runtime overrides file only.
	LogsOTLP logpush.OTLPConfig `yaml:"logs_otlp_config"`

	// Storage.
	LogsRetentionPeriod model.Duration `yaml:"logs_retention_period"`
	// LogsRetentionStream are per-stream retention rules (RetentionFor);
	// config file and runtime overrides file only.
	LogsRetentionStream []StreamRetention `yaml:"logs_retention_stream,omitempty"`
}

// StreamRetention is one logs_retention_stream rule, as Loki's
// retention_stream: the streams its selector matches are kept for Period
// (0: forever) instead of logs_retention_period.
type StreamRetention struct {
	// Selector is a LogQL stream selector, such as {namespace="dev"}.
	Selector string         `yaml:"selector"`
	Priority int            `yaml:"priority"`
	Period   model.Duration `yaml:"period"`
}

// Matchers parses the rule's selector: a LogQL stream selector, without a
// pipeline.
func (r StreamRetention) Matchers() ([]*labels.Matcher, error) {
	e, err := logql.Parse(r.Selector)
	if err != nil {
		return nil, err
	}
	le, ok := e.(*logql.LogExpr)
	if !ok || len(le.Pipeline) > 0 {
		return nil, fmt.Errorf("%q is not a stream selector such as {namespace=\"dev\"}", r.Selector)
	}
	return le.Matchers, nil
}

// RetentionFor returns how long a stream with labels ls is kept, given its
// tenant's limits: the period of the logs_retention_stream rule of highest
// priority among those that match it (of several with that priority, the
// shortest period: Loki's rule), else logs_retention_period; 0 keeps it
// forever. matchers are the rules' parsed selectors (RetentionMatchers),
// in the order of LogsRetentionStream.
func (l *LogsLimits) RetentionFor(ls labels.Labels, matchers [][]*labels.Matcher) time.Duration {
	found := -1
rules:
	for i, r := range l.LogsRetentionStream {
		for _, m := range matchers[i] {
			if !m.Matches(ls.Get(m.Name)) {
				continue rules
			}
		}
		if found >= 0 {
			best := l.LogsRetentionStream[found]
			if best.Priority > r.Priority || best.Priority == r.Priority && best.Period <= r.Period {
				continue
			}
		}
		found = i
	}
	if found >= 0 {
		return time.Duration(l.LogsRetentionStream[found].Period)
	}
	return time.Duration(l.LogsRetentionPeriod)
}

// RetentionMatchers parses the selectors of every logs_retention_stream
// rule (validated limits always parse).
func (l *LogsLimits) RetentionMatchers() ([][]*labels.Matcher, error) {
	out := make([][]*labels.Matcher, len(l.LogsRetentionStream))
	for i, r := range l.LogsRetentionStream {
		ms, err := r.Matchers()
		if err != nil {
			return nil, fmt.Errorf("logs_retention_stream[%d]: selector: %w", i, err)
		}
		out[i] = ms
	}
	return out, nil
}

// RegisterFlags registers the defaults of the logs limits.
func (l *LogsLimits) RegisterFlags(f *flag.FlagSet) {
	f.Float64Var(&l.LogsIngestionRateMB, "distributor.logs.ingestion-rate-limit-mb", 16, "Per-tenant log ingestion rate in MB (10^6 bytes of lines and structured metadata) per second, enforced by each distributor.")
	f.Float64Var(&l.LogsIngestionBurstSizeMB, "distributor.logs.ingestion-burst-size-mb", 64, "Per-tenant MB of logs a distributor accepts in a burst above the ingestion rate; also the largest push it can accept at once.")
	f.IntVar(&l.LogsMaxLineSize, "validation.logs.max-line-size", 256<<10, "Longest log line accepted, in bytes; longer lines are rejected with 400. 0 is unlimited.")
	f.IntVar(&l.LogsMaxLabelNamesPerStream, "validation.logs.max-label-names-per-stream", 15, "Most index labels a log stream may have.")
	f.IntVar(&l.LogsMaxLabelNameLength, "validation.logs.max-length-label-name", 1024, "Longest label name of a log stream, in bytes.")
	f.IntVar(&l.LogsMaxLabelValueLength, "validation.logs.max-length-label-value", 2048, "Longest label value of a log stream, in bytes.")
	f.IntVar(&l.LogsMaxMetadataSize, "validation.logs.max-structured-metadata-size", 64<<10, "Most bytes of structured metadata (names and values) one log entry may carry. 0 is unlimited.")
	l.LogsRejectOldSamplesMaxAge = model.Duration(7 * 24 * time.Hour)
	f.Var(&l.LogsRejectOldSamplesMaxAge, "validation.logs.reject-old-samples-max-age", "Log entries older than this are rejected with 400. 0 accepts any age.")
	l.LogsCreationGracePeriod = model.Duration(10 * time.Minute)
	f.Var(&l.LogsCreationGracePeriod, "validation.logs.create-grace-period", "Log entries more than this far in the future are rejected with 400.")
	f.IntVar(&l.LogsMaxGlobalStreamsPerUser, "ingester.logs.max-global-streams-per-tenant", 5000, "Most active log streams a tenant may have across the cluster (counted before replication). 0 is unlimited.")
	l.LogsOutOfOrderWindow = model.Duration(time.Hour)
	f.Var(&l.LogsOutOfOrderWindow, "ingester.logs.out-of-order-window", "How far behind a log stream's newest entry an entry may be and still be accepted.")
	f.Var(&l.LogsRetentionPeriod, "compactor.logs.retention-period", "How long a tenant's logs are kept in the bucket. 0 keeps them forever. The per-tenant logs_retention_stream rules (config and overrides files) set it per stream selector.")
}

// Validate checks the logs limits are coherent.
func (l *LogsLimits) Validate() error {
	if !(l.LogsIngestionRateMB > 0) || !(l.LogsIngestionBurstSizeMB > 0) {
		return errors.New("logs_ingestion_rate_mb and logs_ingestion_burst_size_mb (-distributor.logs.*) must be positive")
	}
	if l.LogsMaxLineSize < 0 || l.LogsMaxMetadataSize < 0 || l.LogsMaxGlobalStreamsPerUser < 0 {
		return errors.New("logs_max_line_size, logs_max_structured_metadata_size and logs_max_global_streams_per_tenant must not be negative")
	}
	if l.LogsMaxLabelNamesPerStream <= 0 || l.LogsMaxLabelNameLength <= 0 || l.LogsMaxLabelValueLength <= 0 {
		return errors.New("logs_max_label_names_per_stream, logs_max_label_name_length and logs_max_label_value_length must be positive")
	}
	if l.LogsOutOfOrderWindow < 0 || l.LogsRejectOldSamplesMaxAge < 0 || l.LogsCreationGracePeriod < 0 || l.LogsRetentionPeriod < 0 {
		return errors.New("logs_out_of_order_window, logs_reject_old_samples_max_age, logs_creation_grace_period and logs_retention_period must not be negative")
	}
	if err := l.LogsOTLP.Validate(); err != nil {
		return fmt.Errorf("logs_otlp_config: %w", err)
	}
	if _, err := l.RetentionMatchers(); err != nil {
		return err
	}
	return nil
}
