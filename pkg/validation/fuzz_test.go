package validation

import (
	"bytes"
	"strings"
	"testing"

	"github.com/grafana/dskit/flagext"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// FuzzLoader loads arbitrary runtime config files. What loads is written
// back as YAML and loads again to the same limits; what does not is an
// error saying where (the runtime config, or which tenant's overrides).
func FuzzLoader(f *testing.F) {
	for _, s := range []string{
		// The example of README.md.
		"overrides:\n  team-a:\n    ingestion_rate: 50000\n    max_global_series_per_tenant: 200000\n",
		"overrides:\n  a:\n    max_query_lookback: 30d\n    out_of_order_time_window: 1h30m\n    ingestion_burst_size: 0x10\n  b: {}\n  c: null\n",
		"",
		"overrides:\n  a:\n    no_such_limit: 1\n",
		"overrides:\n  a:\n    ingestion_rate: -1\n",
		"overrides:\n  a:\n    creation_grace_period: 5\n",
		"overrides:\n  a: &x\n    ingestion_rate: 5\n  b: *x\n  c:\n    <<: *x\n    ingestion_burst_size: &n 7\n    max_fetched_series_per_query: *n\n",
		"overrides: [",
		"something: 1\n",
	} {
		f.Add([]byte(s))
	}
	var defaults Limits
	flagext.DefaultValues(&defaults)
	load := NewLoader(defaults)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := load(bytes.NewReader(data))
		if err != nil {
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, "parsing runtime config: ") || strings.HasPrefix(msg, "overrides of tenant "), "the error says where: %s", msg)
			return
		}
		rc := v.(*RuntimeConfig)
		out, err := yaml.Marshal(rc)
		require.NoError(t, err)
		again, err := load(bytes.NewReader(out))
		require.NoError(t, err, "written back:\n%s", out)
		require.Equal(t, rc, again.(*RuntimeConfig), "written back:\n%s", out)
	})
}
