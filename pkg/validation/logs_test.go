package validation

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestRetentionFor: the rule of highest priority among those matching a
// stream wins, of equal priorities the shortest period; no match is the
// tenant's logs_retention_period. The rules are Loki's documented example
// for its tenant "29", plus a tie.
func TestRetentionFor(t *testing.T) {
	var defaults Limits
	flagext.DefaultValues(&defaults)
	v, err := NewLoader(defaults)(strings.NewReader(`
overrides:
  t:
    logs_retention_period: 168h
    logs_retention_stream:
    - selector: '{namespace="prod"}'
      priority: 2
      period: 336h
    - selector: '{container="loki"}'
      priority: 1
      period: 72h
    - selector: '{container=~"lo.*", team="x"}'
      priority: 1
      period: 24h
    - selector: '{namespace="audit"}'
      priority: 5
      period: 0s
`))
	require.NoError(t, err)
	l := v.(*RuntimeConfig).Overrides["t"]
	ms, err := l.RetentionMatchers()
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		labels labels.Labels
		want   time.Duration
	}{
		{"no rule matches", labels.FromStrings("namespace", "dev"), 168 * time.Hour},
		{"one rule", labels.FromStrings("container", "loki"), 72 * time.Hour},
		{"higher priority wins over shorter period", labels.FromStrings("namespace", "prod", "container", "loki"), 336 * time.Hour},
		{"equal priority: shortest period", labels.FromStrings("container", "loki", "team", "x"), 24 * time.Hour},
		{"period 0 keeps forever", labels.FromStrings("namespace", "audit", "container", "loki"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, l.RetentionFor(tc.labels, ms))
		})
	}
}

func TestRetentionStreamRejected(t *testing.T) {
	var defaults Limits
	flagext.DefaultValues(&defaults)
	load := NewLoader(defaults)
	for name, tc := range map[string]struct{ body, err string }{
		"bad selector":   {"overrides:\n  a:\n    logs_retention_stream:\n    - selector: '{app='\n      period: 24h\n", `tenant "a": logs_retention_stream[0]: selector:`},
		"pipeline":       {"overrides:\n  a:\n    logs_retention_stream:\n    - selector: '{app=\"x\"} |= \"y\"'\n      period: 24h\n", `logs_retention_stream[0]: selector: "{app=\"x\"} |= \"y\"" is not a stream selector`},
		"metric query":   {"overrides:\n  a:\n    logs_retention_stream:\n    - selector: 'rate({app=\"x\"}[1m])'\n", `logs_retention_stream[0]: selector:`},
		"empty selector": {"overrides:\n  a:\n    logs_retention_stream:\n    - period: 24h\n", `logs_retention_stream[0]: selector:`},
		"unknown field":  {"overrides:\n  a:\n    logs_retention_stream:\n    - selecter: '{app=\"x\"}'\n", "field selecter not found"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(strings.NewReader(tc.body))
			require.ErrorContains(t, err, tc.err)
		})
	}
}
