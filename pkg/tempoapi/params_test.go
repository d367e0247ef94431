package tempoapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: ""},
		{in: "0"},
		{in: "1700000000", want: t0},          // seconds, what Grafana sends
		{in: "1700000000000000000", want: t0}, // nanoseconds
		{in: "10000000001", want: time.Unix(0, 10_000_000_001)}, // above 10^10: nanoseconds
		{in: "10000000000", wantErr: `"10000000000" is out of range (after 2262)`},
		{in: "9223372035", want: time.Unix(9223372035, 0)},          // the last whole second in 2262
		{in: "1700000000.25", want: t0.Add(250 * time.Millisecond)}, // float seconds
		{in: "1.7e9", want: t0},
		{in: "1700000000000000000.0", want: t0},                      // float nanoseconds
		{in: "2023-11-14T22:13:20Z", want: t0},                       // RFC3339
		{in: "2023-11-14T23:13:20.000000001+01:00", want: t0.Add(1)}, // RFC3339Nano with a zone
		{in: "9223372036", wantErr: `"9223372036" is out of range (after 2262)`},
		{in: "9223372036.5", wantErr: `"9223372036.5" is out of range (after 2262)`},
		{in: "9223372036854775808", wantErr: `cannot parse "9223372036854775808" as a time (Unix seconds, Unix nanoseconds or RFC3339)`},
		{in: "1e19", wantErr: `"1e19" is out of range`},
		{in: "-1", wantErr: `"-1" is before 1970`},
		{in: "-0.5", wantErr: `"-0.5" is before 1970`},
		{in: "1969-12-31T23:59:59Z", wantErr: `"1969-12-31T23:59:59Z" is outside the years 1970 to 2261`},
		{in: "2300-01-01T00:00:00Z", wantErr: `"2300-01-01T00:00:00Z" is outside the years 1970 to 2261`},
		{in: "NaN", wantErr: `cannot parse "NaN" as a time (Unix seconds, Unix nanoseconds or RFC3339)`},
		{in: "Inf.", wantErr: `cannot parse "Inf." as a time (Unix seconds, Unix nanoseconds or RFC3339)`},
		{in: "now", wantErr: `cannot parse "now" as a time (Unix seconds, Unix nanoseconds or RFC3339)`},
		{in: "2023-11-14", wantErr: `cannot parse "2023-11-14" as a time (Unix seconds, Unix nanoseconds or RFC3339)`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTime(tc.in)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.True(t, tc.want.Equal(got), "%s, want %s", got, tc.want)
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond}, // Go
		{in: "1m30s", want: 90 * time.Second},
		{in: "1d", want: 24 * time.Hour}, // Prometheus
		{in: "1w", want: 7 * 24 * time.Hour},
		{in: "0", want: 0},
		{in: "-1s", want: -time.Second}, // refused by the callers
		{in: "15", wantErr: true},       // a number is a step's, not a duration
		{in: "fast", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseDuration(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseStep(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "15s", want: 15 * time.Second},
		{in: "15", want: 15 * time.Second},
		{in: "0.05", want: 50 * time.Millisecond},
		{in: "1e300", wantErr: true},
		{in: "-Inf", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "often", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseStep(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{name: "defaults", change: func(*Config) {}},
		{name: "negative timeout", change: func(c *Config) { c.QueryTimeout = -1 }, wantErr: "-querier.traces.query-timeout must not be negative"},
		{name: "no default limit", change: func(c *Config) { c.DefaultResultLimit = 0 }, wantErr: "-querier.traces.search.default-result-limit must be positive"},
		{name: "negative max", change: func(c *Config) { c.MaxResultLimit = -1 }, wantErr: "-querier.traces.search.max-result-limit and -querier.traces.search.max-spans-per-span-set must not be negative"},
		{name: "default above max", change: func(c *Config) { c.MaxResultLimit = 10 }, wantErr: "-querier.traces.search.default-result-limit must not be above -querier.traces.search.max-result-limit"},
		{name: "max spss below the default", change: func(c *Config) { c.MaxSpansPerSpanSet = 2 }, wantErr: "-querier.traces.search.max-spans-per-span-set must be at least 3, the default spss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

func timeFromNanos(ns int64) time.Time { return time.Unix(0, ns) }
