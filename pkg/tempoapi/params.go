package tempoapi

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Parameters as Tempo reads them (its API documentation is the reference):
//
//   - times (start, end) are Unix seconds, which is what Grafana sends;
//     as for Tempo's metrics endpoints, Unix nanoseconds (a number above
//     10^10), float seconds and RFC3339 are read too, on every endpoint.
//     Empty and "0" mean not given.
//   - durations (minDuration, maxDuration, since, step) are Go or
//     Prometheus durations ("100ms", "1m30s", "1d"); step may also be
//     float seconds ("15", "0.5").
//   - counts (limit, spss, exemplars) are decimal integers.
//
// Every error names the parameter and what is wrong with it.

const (
	defaultSpansPerSpanSet = 3
	// defaultSince is the range of a metrics query without a start.
	defaultSince = time.Hour
	// maxPoints bounds the samples per series of a metrics range query.
	maxPoints = 11000
	// secondsBound: a number up to this is seconds, above it nanoseconds.
	secondsBound = 1e10
	// maxSeconds is the last Unix second whose nanoseconds fit in int64
	// (in 2262).
	maxSeconds = math.MaxInt64 / int64(time.Second)
	// traceIDHexLen is the hex length of a 16-byte trace ID.
	traceIDHexLen = 32
)

// badRequest is an error in the request's parameters: 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{msg: fmt.Sprintf(format, args...)} }

// badParam is the error of a parameter that cannot be read.
func badParam(name string, err error) error {
	return badf("invalid parameter %q: %v", name, err)
}

// parseTime reads a timestamp: RFC3339, Unix seconds (integer or float up
// to 10^10) or Unix nanoseconds (above). "" and "0" are the zero time.
// Times before 1970 are refused: no trace is older.
func parseTime(s string) (time.Time, error) {
	if s == "" || s == "0" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if t.Before(time.Unix(0, 0)) || t.Year() > 2261 {
			return time.Time{}, fmt.Errorf("%q is outside the years 1970 to 2261", s)
		}
		return t, nil
	}
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return time.Time{}, fmt.Errorf("cannot parse %q as a time (Unix seconds, Unix nanoseconds or RFC3339)", s)
		}
		if f < 0 {
			return time.Time{}, fmt.Errorf("%q is before 1970", s)
		}
		if f > secondsBound {
			if f >= math.MaxInt64 {
				return time.Time{}, fmt.Errorf("%q is out of range", s)
			}
			return time.Unix(0, int64(f)), nil // nanoseconds
		}
		whole, frac := math.Modf(f)
		if int64(whole) >= maxSeconds {
			return time.Time{}, fmt.Errorf("%q is out of range (after 2262)", s)
		}
		return time.Unix(int64(whole), int64(math.Round(frac*1e9))), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q as a time (Unix seconds, Unix nanoseconds or RFC3339)", s)
	}
	switch {
	case n < 0:
		return time.Time{}, fmt.Errorf("%q is before 1970", s)
	case n > secondsBound:
		return time.Unix(0, n), nil
	case n >= maxSeconds:
		return time.Time{}, fmt.Errorf("%q is out of range (after 2262)", s)
	}
	return time.Unix(n, 0), nil
}

// parseDuration reads a Go or Prometheus duration.
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a duration (e.g. 100ms, 15s, 1m30s, 1h, 1d)", s)
	}
	return time.Duration(d), nil
}

// parseStep reads a step: a duration or float seconds.
func parseStep(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return time.Duration(ns), nil
	}
	return parseDuration(s)
}

// timeParam reads a time parameter.
func timeParam(r *http.Request, name string) (time.Time, error) {
	t, err := parseTime(r.Form.Get(name))
	if err != nil {
		return time.Time{}, badParam(name, err)
	}
	return t, nil
}

// optionalRange reads start and end where both or neither are given
// (search, tags, trace by ID): zero times when neither.
func optionalRange(r *http.Request) (start, end time.Time, err error) {
	if start, err = timeParam(r, "start"); err != nil {
		return start, end, err
	}
	if end, err = timeParam(r, "end"); err != nil {
		return start, end, err
	}
	switch {
	case start.IsZero() && end.IsZero():
		return start, end, nil
	case start.IsZero():
		return start, end, badf("invalid parameter \"start\": give both start and end, or neither")
	case end.IsZero():
		return start, end, badf("invalid parameter \"end\": give both start and end, or neither")
	case !start.Before(end):
		return start, end, badf("invalid parameters \"start\" and \"end\": start (%s) must be before end (%s)", fmtTime(start), fmtTime(end))
	}
	return start, end, nil
}

// metricsRange reads start, end and since of a metrics query: end
// defaults to now, start to since (default an hour) before end.
func metricsRange(r *http.Request, now time.Time) (start, end time.Time, err error) {
	since := defaultSince
	if s := r.Form.Get("since"); s != "" {
		if since, err = parseDuration(s); err != nil {
			return start, end, badParam("since", err)
		}
		if since <= 0 {
			return start, end, badf("invalid parameter \"since\": it must be positive")
		}
	}
	if end, err = timeParam(r, "end"); err != nil {
		return start, end, err
	}
	if end.IsZero() {
		end = now
	}
	if start, err = timeParam(r, "start"); err != nil {
		return start, end, err
	}
	if start.IsZero() {
		start = end.Add(-since)
	}
	if !start.Before(end) {
		return start, end, badf("invalid parameters \"start\" and \"end\": start (%s) must be before end (%s)", fmtTime(start), fmtTime(end))
	}
	return start, end, nil
}

// fmtTime writes a time in errors.
func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// intParam reads a non-negative integer; def when absent.
func intParam(r *http.Request, name string, def int) (int, error) {
	s := r.Form.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badf("invalid parameter %q: %q is not a non-negative integer", name, s)
	}
	return n, nil
}

// durationParam reads a non-negative duration; 0 when absent.
func durationParam(r *http.Request, name string) (time.Duration, error) {
	s := r.Form.Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, badParam(name, err)
	}
	if d < 0 {
		return 0, badf("invalid parameter %q: it must not be negative", name)
	}
	return d, nil
}

// defaultStep is the step of a range query without one: about 240
// samples. A 240th of the range is rounded down to a whole number of the
// largest of 1h, 5m, 1m, 15s, 5s and 1s that it reaches (at least 1s);
// ranges under a minute get 50ms multiples (at least 50ms).
func defaultStep(start, end time.Time) time.Duration {
	rng := end.Sub(start)
	base := rng / 240
	if rng < time.Minute {
		return max(base.Truncate(50*time.Millisecond), 50*time.Millisecond)
	}
	for _, unit := range []time.Duration{time.Hour, 5 * time.Minute, time.Minute, 15 * time.Second, 5 * time.Second, time.Second} {
		if base >= unit {
			return base.Truncate(unit)
		}
	}
	return time.Second
}

// parseTraceID reads a trace ID: 1 to 32 hex digits, left-padded with
// zeros to 16 bytes (64-bit IDs of Jaeger and Zipkin are the low half).
func parseTraceID(s string) ([]byte, error) {
	if s == "" || len(s) > traceIDHexLen {
		return nil, badf("invalid trace ID %q: it must be 1 to %d hex digits", s, traceIDHexLen)
	}
	padded := strings.Repeat("0", traceIDHexLen-len(s)) + s
	id, err := hex.DecodeString(padded)
	if err != nil {
		return nil, badf("invalid trace ID %q: it must be 1 to %d hex digits", s, traceIDHexLen)
	}
	return id, nil
}

// traceIDString writes a trace ID as Tempo's search results do: hex
// without leading zeros ("0" for an all-zero ID).
func traceIDString(id []byte) string {
	s := strings.TrimLeft(hex.EncodeToString(id), "0")
	if s == "" {
		return "0"
	}
	return s
}
