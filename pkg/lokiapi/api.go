package lokiapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// PathPrefix is where the API is served: Grafana's Loki datasource URL is
// the host itself. The push endpoint under the same prefix
// (/loki/api/v1/push) is the distributor's, not this API's.
const PathPrefix = "/loki/api/v1/"

// API serves Loki's query API over a Backend. It is safe for concurrent
// use; requests must carry their tenant in the context (pkg/util/tenant).
type API struct {
	cfg    Config
	eng    *logql.Engine
	b      Backend
	logger *slog.Logger
	mux    *http.ServeMux
	now    func() time.Time
}

// NewHandler returns the Loki query API; the caller registers it under
// PathPrefix with the tenant resolved. cfg must have been validated.
func NewHandler(cfg Config, eng *logql.Engine, b Backend, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, eng: eng, b: b, logger: logger, mux: http.NewServeMux(), now: time.Now}
	both := func(path string, h func(http.ResponseWriter, *http.Request) error) {
		a.handle("GET "+PathPrefix+path, h)
		a.handle("POST "+PathPrefix+path, h)
	}
	get := func(path string, h func(http.ResponseWriter, *http.Request) error) {
		a.handle("GET "+PathPrefix+path, h)
	}
	both("query", a.serveQuery)
	both("query_range", a.serveQueryRange)
	both("labels", a.serveLabels)
	both("label", a.serveLabels)
	both("label/{name}/values", a.serveLabelValues)
	both("series", a.serveSeries)
	both("index/stats", a.serveIndexStats)
	both("index/volume", a.serveVolume)
	both("index/volume_range", a.serveVolumeRange)
	both("detected_labels", a.serveDetectedLabels)
	both("detected_fields", a.serveDetectedFields)
	both("detected_field/{name}/values", a.serveDetectedFieldValues)
	both("patterns", a.servePatterns)
	both("format_query", a.serveFormatQuery)
	get("status/buildinfo", a.serveBuildInfo)
	get("drilldown-limits", a.serveDrilldownLimits)
	a.mux.HandleFunc("GET "+PathPrefix+"tail", a.serveTail)
	return a
}

// handle serves pattern with h, answering h's error, within the query
// timeout.
func (a *API) handle(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.QueryTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), a.cfg.QueryTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if err := form(r); err != nil {
			a.writeError(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// exec evaluates a query over the tenant's logs with the configured
// limits.
func (a *API) exec(ctx context.Context, query string, expr logql.Expr, p logql.Params) (*logql.Result, error) {
	p.Limits = a.cfg.limits()
	return a.eng.Exec(ctx, a.source(query), expr, p)
}

// parseQuery parses the query parameter.
func parseQuery(r *http.Request) (string, logql.Expr, error) {
	q := r.Form.Get("query")
	e, err := logql.Parse(q)
	if err != nil {
		return q, nil, err
	}
	return q, e, nil
}

// categorize says whether the request asks for categorized labels.
func categorize(r *http.Request) bool {
	for _, v := range r.Header.Values("X-Loki-Response-Encoding-Flags") {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == flagCategorizeLabels {
				return true
			}
		}
	}
	return false
}

// serveQuery is /query: an instant metric query at time (default now).
// A log query is refused with 400, as Loki does.
func (a *API) serveQuery(w http.ResponseWriter, r *http.Request) error {
	q, expr, err := parseQuery(r)
	if err != nil {
		return err
	}
	t, err := parseTime(r.Form.Get("time"), a.now().UnixNano())
	if err != nil {
		return badf("invalid parameter \"time\": %v", err)
	}
	limit, err := a.limit(r)
	if err != nil {
		return err
	}
	dir, err := direction(r)
	if err != nil {
		return err
	}
	cat := categorize(r)
	res, err := a.exec(r.Context(), q, expr, logql.Params{Start: t, End: t, Instant: true, Limit: limit, Direction: dir, Categorize: cat})
	if err != nil {
		return err
	}
	writeJSON(w, encodeQueryResult(res, cat, dir))
	return nil
}

// serveQueryRange is /query_range: a log query's entries in [start, end),
// or a metric query at start, start+step, … ≤ end.
func (a *API) serveQueryRange(w http.ResponseWriter, r *http.Request) error {
	q, expr, err := parseQuery(r)
	if err != nil {
		return err
	}
	p, err := a.parseRange(r)
	if err != nil {
		return err
	}
	cat := categorize(r)
	res, err := a.exec(r.Context(), q, expr, logql.Params{
		Start: p.start, End: p.end, Step: p.step, Interval: p.interval,
		Limit: p.limit, Direction: p.dir, Categorize: cat,
	})
	if err != nil {
		return err
	}
	writeJSON(w, encodeQueryResult(res, cat, p.dir))
	return nil
}
