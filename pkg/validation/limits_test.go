package validation

import (
	"strings"
	"testing"

	"github.com/grafana/dskit/flagext"
	"github.com/stretchr/testify/require"
)

func TestLoaderKeepsDefaults(t *testing.T) {
	var defaults Limits
	flagext.DefaultValues(&defaults)
	load := NewLoader(defaults)

	v, err := load(strings.NewReader("overrides:\n  team-a:\n    ingestion_rate: 10\n"))
	require.NoError(t, err)
	o := NewStaticOverrides(defaults, v.(*RuntimeConfig).Overrides)
	require.Equal(t, 10.0, o.ByTenant("team-a").IngestionRate)
	require.Equal(t, defaults.MaxLabelNamesPerSeries, o.ByTenant("team-a").MaxLabelNamesPerSeries)
	require.Equal(t, defaults.IngestionRate, o.ByTenant("team-b").IngestionRate)
}

func TestLoaderRejects(t *testing.T) {
	var defaults Limits
	flagext.DefaultValues(&defaults)
	load := NewLoader(defaults)
	for name, body := range map[string]string{
		"unknown field":  "overrides:\n  a:\n    no_such_limit: 1\n",
		"negative rate":  "overrides:\n  a:\n    ingestion_rate: -1\n",
		"not yaml":       "overrides: [",
		"unknown toplvl": "something: 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(strings.NewReader(body))
			require.Error(t, err)
		})
	}
	_, err := load(strings.NewReader(""))
	require.NoError(t, err, "an empty file means no overrides")
}
