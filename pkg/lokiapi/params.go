package lokiapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Parameters as Loki reads them (its documentation is the reference):
// times are RFC3339(Nano), integers (seconds up to 10^10, nanoseconds
// above) or floats (seconds with millisecond precision up to 10^10,
// nanoseconds above); durations are Prometheus durations or float seconds.

const (
	defaultLimit = 100
	defaultSince = time.Hour
	// maxPoints bounds the steps of a metric range query.
	maxPoints = 11000
	// secondsBound: a number up to this is seconds, above it nanoseconds.
	secondsBound = 1e10
)

// badRequest is an error in the request's parameters: 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{msg: fmt.Sprintf(format, args...)} }

// parseTime reads a timestamp as Unix nanoseconds; def when s is empty.
func parseTime(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		// UnixNano is defined only for years 1678 to 2262.
		if t.Year() < 1678 || t.Year() > 2261 {
			return 0, fmt.Errorf("%q is outside the years 1678 to 2261", s)
		}
		return t.UnixNano(), nil
	}
	if strings.Contains(s, ".") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("cannot parse %q as a timestamp (RFC3339, Unix seconds or nanoseconds)", s)
		}
		whole, frac := math.Modf(f)
		if whole > secondsBound || whole < -secondsBound {
			if whole >= math.MaxInt64 || whole < math.MinInt64 {
				return 0, fmt.Errorf("%q is out of range", s)
			}
			return int64(whole), nil // nanoseconds; the fraction is below 1ns
		}
		ms := math.Round(frac * 1000) // Loki keeps milliseconds
		return secondsToNanos(int64(whole), int64(ms)*1e6, s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a timestamp (RFC3339, Unix seconds or nanoseconds)", s)
	}
	if n > secondsBound || n < -secondsBound {
		return n, nil
	}
	return secondsToNanos(n, 0, s)
}

// secondsToNanos returns sec seconds and ns nanoseconds in nanoseconds,
// refusing what int64 cannot hold.
func secondsToNanos(sec, ns int64, s string) (int64, error) {
	const maxSec = math.MaxInt64 / int64(1e9)
	if sec > maxSec-1 || sec < -maxSec+1 {
		return 0, fmt.Errorf("%q is out of range (nanoseconds must fit in 64 bits)", s)
	}
	return sec*1e9 + ns, nil
}

// parseDuration reads a duration: float seconds, or a Prometheus duration
// ("1000ms", "1m", "1h30m"; Go's "1.5s" too).
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("cannot parse %q as a duration", s)
		}
		ns := f * float64(time.Second)
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		return time.Duration(ns), nil
	}
	d, err := logql.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a duration (e.g. 15s, 1000ms, 1m, or float seconds)", s)
	}
	return d, nil
}

// defaultStep is Loki's step for a range without one: a 250th of it in
// whole seconds, at least one second.
func defaultStep(start, end int64) time.Duration {
	s := math.Floor(float64(end-start) / 1e9 / 250)
	return time.Duration(math.Max(s, 1)) * time.Second
}

// form parses the request's parameters (query string and, for POST, the
// form body).
func form(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return badf("reading the request's parameters: %v", err)
	}
	return nil
}

// bounds reads start, end and since: end defaults to now, start to since
// (default an hour) before the end, or before now if the end is later.
func bounds(r *http.Request, now time.Time) (start, end int64, err error) {
	since := defaultSince
	if s := r.Form.Get("since"); s != "" {
		d, err := model.ParseDuration(s)
		if err != nil {
			return 0, 0, badf("invalid parameter \"since\": %v", err)
		}
		since = time.Duration(d)
	}
	end, err = parseTime(r.Form.Get("end"), now.UnixNano())
	if err != nil {
		return 0, 0, badf("invalid parameter \"end\": %v", err)
	}
	endOrNow := min(end, now.UnixNano())
	start, err = parseTime(r.Form.Get("start"), endOrNow-int64(since))
	if err != nil {
		return 0, 0, badf("invalid parameter \"start\": %v", err)
	}
	return start, end, nil
}

// positiveInt reads an integer parameter that must be positive.
func positiveInt(r *http.Request, name string, def int) (int, error) {
	s := r.Form.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, badf("invalid parameter %q: %q is not a positive integer", name, s)
	}
	return n, nil
}

// direction reads forward or backward (default).
func direction(r *http.Request) (logql.Direction, error) {
	switch strings.ToLower(r.Form.Get("direction")) {
	case "", "backward":
		return logql.Backward, nil
	case "forward":
		return logql.Forward, nil
	}
	return 0, badf("invalid parameter \"direction\": %q is neither forward nor backward", r.Form.Get("direction"))
}

// RangeParams are the parameters of a query_range request as the API reads
// them: times in Unix nanoseconds (entries in [Start, End), evaluations at
// Start, Start+Step, … ≤ End).
type RangeParams struct {
	Start, End int64
	Step       time.Duration
	// Interval, when positive, keeps one entry per Interval of a stream.
	Interval  time.Duration
	Limit     int
	Direction logql.Direction
}

// ParseRangeParams reads the parameters of a query_range request whose
// form is parsed — start, end, since, step, limit, direction, interval — as
// the API does, now being the default end. A limit above maxEntries is
// refused, naming -querier.logs.max-entries-limit-per-query. Every error is
// the message the API answers with 400. The query-frontend reads the
// requests it splits with it.
func ParseRangeParams(r *http.Request, now time.Time, maxEntries int) (RangeParams, error) {
	var p RangeParams
	var err error
	if p.Start, p.End, p.Step, err = rangeStep(r, now); err != nil {
		return p, err
	}
	if p.Limit, err = entriesLimit(r, maxEntries); err != nil {
		return p, err
	}
	if p.Direction, err = direction(r); err != nil {
		return p, err
	}
	if s := r.Form.Get("interval"); s != "" {
		if p.Interval, err = parseDuration(s); err != nil {
			return p, badf("invalid parameter \"interval\": %v", err)
		}
		if p.Interval < 0 {
			return p, badf("invalid parameter \"interval\": it must not be negative")
		}
	}
	return p, nil
}

// InstantParams are the parameters of a query request: its evaluation
// time in Unix nanoseconds, and the limit and direction a log query would
// have.
type InstantParams struct {
	Time      int64
	Limit     int
	Direction logql.Direction
}

// ParseInstantParams reads the parameters of a query request whose form is
// parsed — time (default now), limit, direction — as ParseRangeParams does.
func ParseInstantParams(r *http.Request, now time.Time, maxEntries int) (InstantParams, error) {
	var p InstantParams
	var err error
	if p.Time, err = parseTime(r.Form.Get("time"), now.UnixNano()); err != nil {
		return p, badf("invalid parameter \"time\": %v", err)
	}
	if p.Limit, err = entriesLimit(r, maxEntries); err != nil {
		return p, err
	}
	if p.Direction, err = direction(r); err != nil {
		return p, err
	}
	return p, nil
}

// rangeStep reads start, end, since and step, checking that the range
// has at most maxPoints steps.
func (a *API) rangeStep(r *http.Request) (start, end int64, step time.Duration, err error) {
	return rangeStep(r, a.now())
}

func rangeStep(r *http.Request, now time.Time) (start, end int64, step time.Duration, err error) {
	if start, end, err = bounds(r, now); err != nil {
		return 0, 0, 0, err
	}
	if end < start {
		return 0, 0, 0, badf("the end of the query (%d) is before its start (%d)", end, start)
	}
	step = defaultStep(start, end)
	if s := r.Form.Get("step"); s != "" {
		if step, err = parseDuration(s); err != nil {
			return 0, 0, 0, badf("invalid parameter \"step\": %v", err)
		}
	}
	if step <= 0 {
		return 0, 0, 0, badf("invalid parameter \"step\": it must be positive")
	}
	if (end-start)/int64(step) > maxPoints {
		return 0, 0, 0, badf("the query would have more than %d points per series: increase step (now %s) or shorten the range", maxPoints, step)
	}
	return start, end, step, nil
}

// limit reads a log query's limit, bounded by the configuration.
func (a *API) limit(r *http.Request) (int, error) {
	return entriesLimit(r, a.cfg.MaxEntriesLimitPerQuery)
}

func entriesLimit(r *http.Request, maxEntries int) (int, error) {
	n, err := positiveInt(r, "limit", defaultLimit)
	if err != nil {
		return 0, err
	}
	if n > maxEntries {
		return 0, badf("max entries limit per query exceeded: limit %d > %d; ask for fewer lines or raise %s", n, maxEntries, FlagMaxEntriesLimitPerQuery)
	}
	return n, nil
}

var errNoSelector = errors.New("the query has no stream selector")

// selectorOf returns the matchers of the first stream selector in a query.
func selectorOf(e logql.Expr) ([]*labels.Matcher, error) {
	switch e := e.(type) {
	case *logql.LogExpr:
		return e.Matchers, nil
	case *logql.RangeAggregation:
		return e.Log.Matchers, nil
	case *logql.VectorAggregation:
		return selectorOf(e.Expr)
	case *logql.ParenExpr:
		return selectorOf(e.Expr)
	case *logql.UnaryExpr:
		return selectorOf(e.Expr)
	case *logql.LabelReplace:
		return selectorOf(e.Expr)
	case *logql.BinaryExpr:
		if ms, err := selectorOf(e.L); err == nil {
			return ms, nil
		}
		return selectorOf(e.R)
	}
	return nil, errNoSelector
}

// parseSelector reads a query parameter that must hold a stream selector
// (a log query's pipeline is allowed and ignored); empty gives nil.
func parseSelector(name, q string) ([]*labels.Matcher, error) {
	if strings.TrimSpace(q) == "" {
		return nil, nil
	}
	e, err := logql.Parse(q)
	if err != nil {
		return nil, badf("invalid parameter %q: %v", name, err)
	}
	ms, err := selectorOf(e)
	if err != nil {
		return nil, badf("invalid parameter %q: %v", name, err)
	}
	return ms, nil
}
