package tempoapi

import (
	"net/http"
	"time"
)

// The query-frontend (pkg/frontend) splits searches and metrics range
// queries by time and merges the answers: it reads their requests with the
// API's own rules, so that a request the queriers would refuse is refused
// before any call, with the API's message.

// ParseSearchRequest reads the parameters of a search (/api/search) from
// r.Form, which the caller has parsed, as the API does with cfg's limits.
// Every error is the request's fault: the API answers it 400 with the
// error's message.
func ParseSearchRequest(r *http.Request, cfg Config) (SearchRequest, error) {
	return (&API{cfg: cfg}).parseSearch(r)
}

// ParseMetricsRequest reads the parameters of a metrics query from r.Form,
// which the caller has parsed: q (or query), start, end and since as both
// metrics endpoints do (the range defaults to the hour before now), and,
// for a range query (/api/metrics/query_range), step and exemplars as
// serveQueryRange does. Every error is the request's fault: the API
// answers it 400 with the error's message.
func ParseMetricsRequest(r *http.Request, now time.Time, rangeQuery bool) (MetricsRequest, error) {
	req, err := (&API{now: func() time.Time { return now }}).parseMetrics(r)
	if err != nil || !rangeQuery {
		return req, err
	}
	// The rules of serveQueryRange.
	req.Step = defaultStep(req.Start, req.End)
	if s := r.Form.Get("step"); s != "" {
		if req.Step, err = parseStep(s); err != nil {
			return req, badParam("step", err)
		}
		if req.Step <= 0 {
			return req, badf("invalid parameter \"step\": it must be positive")
		}
	}
	if n := req.End.Sub(req.Start) / req.Step; n > maxPoints {
		return req, badf("invalid parameter \"step\": the query would have %d samples per series, more than %d: raise step (now %s) or shorten the range", n, maxPoints, req.Step)
	}
	req.Exemplars, err = intParam(r, "exemplars", 0)
	return req, err
}
