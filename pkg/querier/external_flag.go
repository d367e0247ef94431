package querier

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// ExternalLabels is a cluster's external labels as a flag
// (cluster=eu-1,region=eu) and in YAML (a map).
type ExternalLabels map[string]string

func (e ExternalLabels) String() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + e[k]
	}
	return strings.Join(parts, ",")
}

// Set parses name=value pairs separated by commas.
func (e *ExternalLabels) Set(s string) error {
	m := ExternalLabels{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || v == "" {
			return fmt.Errorf("%q is not name=value", part)
		}
		m[k] = v
	}
	if err := m.Validate(); err != nil {
		return err
	}
	*e = m
	return nil
}

// Validate checks the names and values.
func (e ExternalLabels) Validate() error {
	for k, v := range e {
		if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
			return fmt.Errorf("external label %q: not a valid label name (or reserved, starting with __)", k)
		}
		if v == "" {
			return fmt.Errorf("external label %q: empty value", k)
		}
	}
	return nil
}

// Labels returns e as labels.
func (e ExternalLabels) Labels() labels.Labels { return labels.FromMap(e) }
