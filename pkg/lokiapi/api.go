package lokiapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
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
	return a.execShard(ctx, query, expr, p, shard{})
}

// execShard evaluates a query over one shard of the tenant's streams (all
// of them for the zero shard).
func (a *API) execShard(ctx context.Context, query string, expr logql.Expr, p logql.Params, sh shard) (*logql.Result, error) {
	p.Limits = a.cfg.limits()
	return a.eng.Exec(ctx, sh.source(a.source(query)), expr, p)
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

// EncodingFlagsHeader is the request header of Loki's encoding flags; the
// flag categorize-labels asks query and query_range for categorized labels.
const EncodingFlagsHeader = "X-Loki-Response-Encoding-Flags"

// Categorize reports whether request headers h ask for categorized labels.
func Categorize(h http.Header) bool {
	for _, v := range h.Values(EncodingFlagsHeader) {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == flagCategorizeLabels {
				return true
			}
		}
	}
	return false
}

// categorize says whether the request asks for categorized labels.
func categorize(r *http.Request) bool { return Categorize(r.Header) }

// BytesReadHeader is the response header of query and query_range giving
// the bytes of log lines the query read (its stats' totalBytesProcessed),
// so that the query-frontend holds a query's parts and shards to
// -querier.logs.max-query-bytes-read together without decoding them.
const BytesReadHeader = "Canopy-Logs-Bytes-Read"

// serveQuery is /query: an instant metric query at time (default now).
// A log query is refused with 400, as Loki does.
func (a *API) serveQuery(w http.ResponseWriter, r *http.Request) error {
	q, expr, err := parseQuery(r)
	if err != nil {
		return err
	}
	p, err := ParseInstantParams(r, a.now(), a.cfg.MaxEntriesLimitPerQuery)
	if err != nil {
		return err
	}
	sh, err := parseShard(r)
	if err != nil {
		return err
	}
	cat := categorize(r)
	res, err := a.execShard(r.Context(), q, expr, logql.Params{Start: p.Time, End: p.Time, Instant: true, Limit: p.Limit, Direction: p.Direction, Categorize: cat}, sh)
	if err != nil {
		return err
	}
	w.Header().Set(BytesReadHeader, strconv.FormatInt(res.Stats.BytesProcessed, 10))
	writeJSON(w, EncodeQueryResult(res, cat, p.Direction))
	return nil
}

// serveQueryRange is /query_range: a log query's entries in [start, end),
// or a metric query at start, start+step, … ≤ end.
func (a *API) serveQueryRange(w http.ResponseWriter, r *http.Request) error {
	q, expr, err := parseQuery(r)
	if err != nil {
		return err
	}
	p, err := ParseRangeParams(r, a.now(), a.cfg.MaxEntriesLimitPerQuery)
	if err != nil {
		return err
	}
	sh, err := parseShard(r)
	if err != nil {
		return err
	}
	cat := categorize(r)
	res, err := a.execShard(r.Context(), q, expr, logql.Params{
		Start: p.Start, End: p.End, Step: p.Step, Interval: p.Interval,
		Limit: p.Limit, Direction: p.Direction, Categorize: cat,
	}, sh)
	if err != nil {
		return err
	}
	w.Header().Set(BytesReadHeader, strconv.FormatInt(res.Stats.BytesProcessed, 10))
	writeJSON(w, EncodeQueryResult(res, cat, p.Direction))
	return nil
}
