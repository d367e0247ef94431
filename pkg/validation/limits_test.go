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

// TestLoaderOnePerTenantMap: a tenant's overrides of every part (metrics,
// query) are one flat map, as before the limits were split by signal.
func TestLoaderOnePerTenantMap(t *testing.T) {
	var defaults Limits
	flagext.DefaultValues(&defaults)
	v, err := NewLoader(defaults)(strings.NewReader("overrides:\n  team-a:\n    ingestion_rate: 10\n    max_query_length: 1h\n"))
	require.NoError(t, err)
	l := v.(*RuntimeConfig).Overrides["team-a"]
	require.Equal(t, 10.0, l.IngestionRate)
	require.Equal(t, "1h", l.MaxQueryLength.String())
	require.Equal(t, defaults.QueryShardingTotalShards, l.QueryShardingTotalShards)
}

func TestLoaderRejects(t *testing.T) {
	var defaults Limits
	flagext.DefaultValues(&defaults)
	load := NewLoader(defaults)
	for name, tc := range map[string]struct{ body, err string }{
		"unknown field":  {"overrides:\n  a:\n    no_such_limit: 1\n", "field no_such_limit not found"},
		"negative rate":  {"overrides:\n  a:\n    ingestion_rate: -1\n", `tenant "a": ingestion_rate (-distributor.ingestion-rate-limit) must be a positive number`},
		"NaN rate":       {"overrides:\n  a:\n    ingestion_rate: .nan\n", `tenant "a": ingestion_rate (-distributor.ingestion-rate-limit) must be a positive number`},
		"not yaml":       {"overrides: [", "parsing runtime config"},
		"unknown toplvl": {"something: 1\n", "field something not found"},
		"alias bomb": {
			"overrides:\n  a:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n    d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
			`tenant "a": more than 10000 YAML nodes once aliases are expanded`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(strings.NewReader(tc.body))
			require.ErrorContains(t, err, tc.err)
		})
	}
	_, err := load(strings.NewReader(""))
	require.NoError(t, err, "an empty file means no overrides")
}

// TestLoaderAnchors checks that tenants can share limits through YAML
// anchors, aliases and merge keys.
func TestLoaderAnchors(t *testing.T) {
	var defaults Limits
	flagext.DefaultValues(&defaults)
	v, err := NewLoader(defaults)(strings.NewReader(`
overrides:
  a: &shared
    ingestion_rate: 5
    max_fetched_series_per_query: &series 100
  b: *shared
  c:
    <<: *shared
    ingestion_burst_size: 7
  d:
    max_fetched_series_per_query: *series
`))
	require.NoError(t, err)
	o := NewStaticOverrides(defaults, v.(*RuntimeConfig).Overrides)
	for _, tc := range []struct {
		tenant       string
		rate         float64
		burst, limit int
	}{
		{tenant: "a", rate: 5, burst: defaults.IngestionBurstSize, limit: 100},
		{tenant: "b", rate: 5, burst: defaults.IngestionBurstSize, limit: 100},
		{tenant: "c", rate: 5, burst: 7, limit: 100},
		{tenant: "d", rate: defaults.IngestionRate, burst: defaults.IngestionBurstSize, limit: 100},
	} {
		t.Run(tc.tenant, func(t *testing.T) {
			l := o.ByTenant(tc.tenant)
			require.Equal(t, tc.rate, l.IngestionRate)
			require.Equal(t, tc.burst, l.IngestionBurstSize)
			require.Equal(t, tc.limit, l.MaxFetchedSeriesPerQuery)
		})
	}
}
