package tempoapi

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// TraceQL metrics: /api/metrics/query_range and /api/metrics/query. q (or
// query) is the query; start and end default to the hour before now
// (since sets another length); query_range takes step (default about 240
// samples) and exemplars. Grafana decodes the range answer as
// tempopb.QueryRangeResponse and the instant one, strictly, as
// tempopb.QueryInstantResponse.

// serveQueryRange is /api/metrics/query_range.
func (a *API) serveQueryRange(w http.ResponseWriter, r *http.Request, tenant string) error {
	req, err := a.parseMetrics(r)
	if err != nil {
		return err
	}
	req.Step = defaultStep(req.Start, req.End)
	if s := r.Form.Get("step"); s != "" {
		if req.Step, err = parseStep(s); err != nil {
			return badParam("step", err)
		}
		if req.Step <= 0 {
			return badf("invalid parameter \"step\": it must be positive")
		}
	}
	if n := req.End.Sub(req.Start) / req.Step; n > maxPoints {
		return badf("invalid parameter \"step\": the query would have %d samples per series, more than %d: raise step (now %s) or shorten the range", n, maxPoints, req.Step)
	}
	if req.Exemplars, err = intParam(r, "exemplars", 0); err != nil {
		return err
	}
	res, err := a.b.MetricsQueryRange(r.Context(), tenant, req)
	if err != nil {
		return err
	}
	for _, s := range res.Series {
		slices.SortStableFunc(s.Samples, func(x, y Sample) int { return cmp.Compare(x.TimestampMs, y.TimestampMs) })
		slices.SortStableFunc(s.Exemplars, func(x, y Exemplar) int { return cmp.Compare(x.TimestampMs, y.TimestampMs) })
	}
	slices.SortStableFunc(res.Series, func(x, y TimeSeries) int { return compareLabels(x.Labels, y.Labels) })
	return writeJSON(w, encodeQueryRange(res))
}

// serveQueryInstant is /api/metrics/query: one value per series over the
// whole range.
func (a *API) serveQueryInstant(w http.ResponseWriter, r *http.Request, tenant string) error {
	req, err := a.parseMetrics(r)
	if err != nil {
		return err
	}
	res, err := a.b.MetricsQueryInstant(r.Context(), tenant, req)
	if err != nil {
		return err
	}
	slices.SortStableFunc(res.Series, func(x, y InstantSeries) int { return compareLabels(x.Labels, y.Labels) })
	return writeJSON(w, encodeQueryInstant(res))
}

// parseMetrics reads q (or query), start, end and since.
func (a *API) parseMetrics(r *http.Request) (MetricsRequest, error) {
	var req MetricsRequest
	req.Query = r.Form.Get("q")
	if req.Query == "" {
		req.Query = r.Form.Get("query")
	}
	if strings.TrimSpace(req.Query) == "" {
		return req, badf("missing parameter \"q\": a TraceQL metrics query, e.g. {} | rate()")
	}
	var err error
	req.Start, req.End, err = metricsRange(r, a.now())
	return req, err
}

// compareLabels orders label sets pair by pair: by key, then by value
// (its type, then the value), a shorter set first when it is a prefix.
func compareLabels(x, y []KeyValue) int {
	for i := 0; i < len(x) && i < len(y); i++ {
		if c := cmp.Compare(x[i].Key, y[i].Key); c != 0 {
			return c
		}
		if c := compareValues(x[i].Value, y[i].Value); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(x), len(y))
}

// compareValues orders values by type, then value (numbers as numbers,
// false before true).
func compareValues(x, y Value) int {
	if c := cmp.Compare(x.Type, y.Type); c != 0 {
		return c
	}
	switch x.Type {
	case ValueString:
		return cmp.Compare(x.Str, y.Str)
	case ValueInt:
		return cmp.Compare(x.Int, y.Int)
	case ValueDouble:
		return cmp.Compare(x.Double, y.Double)
	case ValueBool:
		return cmp.Compare(strconv.FormatBool(x.Bool), strconv.FormatBool(y.Bool))
	}
	return 0
}
