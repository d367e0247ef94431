package lokiapi

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTime(t *testing.T) {
	const def = int64(42)
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "", want: def},
		{in: "1700000000", want: t0},                           // seconds (up to 10^10)
		{in: "1700000000000000000", want: t0},                  // nanoseconds
		{in: "4000000000", want: 4_000_000_000 * 1e9},          // Grafana's health check time: seconds, as Loki reads it
		{in: "10000000001", want: 10_000_000_001},              // above 10^10: nanoseconds
		{in: "1700000000.5", want: t0 + 5e8},                   // float seconds
		{in: "1700000000.1234", want: t0 + 123e6},              // milliseconds kept, as Loki
		{in: "1700000000.9996", want: t0 + 1e9},                // rounded to the millisecond
		{in: "1700000000000000000.0", want: t0},                // float nanoseconds
		{in: "1.7e9", want: t0},                                // scientific notation, read as a float
		{in: "17e8", wantErr: true},                            // no '.': an integer or nothing
		{in: "2023-11-14T22:13:20Z", want: t0},                 // RFC3339
		{in: "2023-11-14T22:13:20.000000001Z", want: t0 + 1},   // RFC3339Nano
		{in: "2023-11-14T23:13:20+01:00", want: t0},            // with a zone
		{in: "-5", want: -5e9},                                 // before 1970
		{in: "-1.5", want: -1.5e9},                             // before 1970, float
		{in: "10000000000", wantErr: true},                     // 10^10 seconds do not fit in int64 nanoseconds
		{in: "9223372036854775807", want: 9223372036854775807}, // the largest
		{in: "9223372036854775808", wantErr: true},             // beyond int64
		{in: "1e400.5", wantErr: true},
		{in: "NaN.", wantErr: true},
		{in: "2300-01-01T00:00:00Z", wantErr: true}, // beyond int64 nanoseconds
		{in: "yesterday", wantErr: true},
		{in: "1.2.3", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTime(tc.in, def)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "1000ms", want: time.Second}, // what Grafana sends
		{in: "15000ms", want: 15 * time.Second},
		{in: "15s", want: 15 * time.Second},
		{in: "1m", want: time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1d", want: 24 * time.Hour},
		{in: "60", want: time.Minute}, // float seconds
		{in: "0.25", want: 250 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "-1", want: -time.Second}, // refused later as a step
		{in: "1e300", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "Inf", wantErr: true},
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

func TestDefaultStep(t *testing.T) {
	for _, tc := range []struct {
		rng, want time.Duration
	}{
		{time.Hour, 14 * time.Second}, // 3600/250 = 14.4
		{10 * time.Minute, 2 * time.Second},
		{time.Minute, time.Second}, // at least a second
		{0, time.Second},
		{24 * time.Hour, 345 * time.Second},
	} {
		require.Equal(t, tc.want, defaultStep(t0, t0+int64(tc.rng)), tc.rng)
	}
}

func TestBounds(t *testing.T) {
	now := time.Unix(0, at(10*time.Second))
	for _, tc := range []struct {
		name       string
		query      string
		start, end int64
	}{
		{name: "defaults: the last hour", start: at(10*time.Second) - int64(time.Hour), end: at(10 * time.Second)},
		{name: "since before the end", query: "since=5m&end=1700000000", start: t0 - int64(5*time.Minute), end: t0},
		{name: "since before now when the end is later", query: "since=1m&end=1800000000", start: at(10*time.Second) - int64(time.Minute), end: 1800000000 * 1e9},
		{name: "start wins over since", query: "since=1m&start=1700000000&end=1700000010", start: t0, end: at(10 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/?"+tc.query, nil)
			require.NoError(t, form(r))
			start, end, err := bounds(r, now)
			require.NoError(t, err)
			require.Equal(t, tc.start, start)
			require.Equal(t, tc.end, end)
		})
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "0", "1700000000", "1700000000000000000", "1700000000.123", "-1.5",
		"2023-11-14T22:13:20Z", "2023-11-14T22:13:20.123456789+01:00", "1e9", "NaN.", "9999999999.9999", "1.", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s, 7)
		if err != nil {
			return
		}
		if s == "" {
			require.Equal(t, int64(7), got)
			return
		}
		// An integer above 10^10 is nanoseconds, as is.
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > secondsBound {
			require.Equal(t, n, got)
		}
		// An integer up to 10^10 is seconds.
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n <= secondsBound && n >= -secondsBound {
			require.Equal(t, n*1e9, got)
		}
		// Seconds keep milliseconds: nothing below them.
		if f, err := strconv.ParseFloat(s, 64); err == nil && strings.Contains(s, ".") && f <= secondsBound && f >= -secondsBound {
			require.Zero(t, got%1e6, "%q gave %d", s, got)
		}
		// An RFC3339 time is the instant it names.
		if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
			require.Equal(t, tm.UnixNano(), got)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1000ms", "15s", "1m", "1h30m", "60", "0.25", "-1", "1e300", "NaN", "1d2h", "5y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		// Float seconds are exact to the nanosecond (or as near as a float is).
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			want := v * 1e9
			require.InDelta(t, want, float64(d), max(1, want*1e-9))
		}
	})
}
