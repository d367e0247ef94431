// Package frontend is the query-frontend: it sits in front of the queriers'
// query APIs (PromQL's, LogQL's and TraceQL's), splits long range queries
// into aligned parts that run in parallel and are cached separately, shards
// what can be sharded, queues every query fairly per tenant and applies the
// per-tenant query limits.
// What is particular to a signal's query API is its Codec (codec.go); the
// stages around it are shared (README.md).
package frontend

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
	"github.com/canopy-observability/canopy/pkg/tempoapi"
	"github.com/canopy-observability/canopy/pkg/util/querylimit"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Frontend is a services.Service and the http.Handler of the query APIs:
// the Prometheus API's /api/v1/ paths, Loki's /loki/api/v1/ paths and
// Tempo's /tempo/api/ paths. It is safe for concurrent use. Requests must
// carry the tenant in their context.
type Frontend struct {
	services.Service
	*stages

	cfg Config
	wg  sync.WaitGroup

	promRange, promInstant http.Handler
	lokiRange, lokiInstant http.Handler
	tempoSearch            http.Handler
	tempoRange             http.Handler
	tempoInstant           http.Handler
}

// New returns a query-frontend sending work to down. p parses PromQL as the
// queriers do; logs are the queriers' Loki API limits (-querier.logs.*),
// which the frontend holds a whole LogQL query to; traces are the queriers'
// Tempo API configuration (-querier.traces.*), whose search limits the
// frontend reads searches with.
func New(cfg Config, limits validation.TenantLimits, down Downstream, p parser.Parser, logs lokiapi.Config, traces tempoapi.Config, logger log.Logger, reg prometheus.Registerer) (*Frontend, error) {
	c, err := newResultsCache(cfg.ResultsCache, logger, reg)
	if err != nil {
		return nil, err
	}
	f := &Frontend{cfg: cfg}
	f.stages = &stages{
		limits:            limits,
		splitInterval:     cfg.SplitInterval,
		maxShardedQueries: cfg.MaxShardedQueries,
		admission:         newAdmission(limits),
		queue:             newQueue(),
		down:              tempoDownstream{down},
		cache:             c,
		estimates:         newSeriesEstimates(maxEstimates),
		now:               time.Now,
		logger:            log.With(logger, "component", "query-frontend"),
		metrics:           newMetrics(reg),
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:     promslog.NewNopLogger(),
		MaxSamples: 50_000_000,
		Timeout:    2 * time.Minute,
		// The partial results hold a sample at every step, so the
		// lookback never reaches back.
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		EnableDelayedNameRemoval: true,
		Parser:                   p,
	})
	// The clock is read through f, so a test can set it after New.
	now := func() time.Time { return f.now() }
	f.promRange = newPipeline[[]byte](f.stages, &promCodec{parser: p, engine: engine, now: now}, "range")
	f.promInstant = newPipeline[[]byte](f.stages, &promCodec{instant: true, parser: p, engine: engine, now: now}, "instant")
	f.lokiRange = newPipeline[*logql.Result](f.stages, &lokiCodec{limits: logs, now: now}, "logql_range")
	f.lokiInstant = newPipeline[*logql.Result](f.stages, &lokiCodec{instant: true, limits: logs, now: now}, "logql_instant")
	f.tempoSearch = &searchPipeline{stages: f.stages, codec: &tempoSearchCodec{cfg: traces}, window: cfg.Parallelism}
	f.tempoRange = newPipeline[*tempoRangeAnswer](f.stages, &tempoRangeCodec{now: now}, "traceql_range")
	f.tempoInstant = newPipeline[[]byte](f.stages, &tempoInstantCodec{now: now}, "traceql_instant")
	f.Service = services.NewIdleService(f.start, f.stop)
	return f, nil
}

func (f *Frontend) start(context.Context) error {
	for range f.cfg.Parallelism {
		f.wg.Add(1)
		go f.worker()
	}
	return nil
}

func (f *Frontend) stop(error) error {
	for _, j := range f.queue.close() {
		close(j.done)
	}
	f.wg.Wait()
	if f.cache != nil {
		f.cache.stop()
	}
	return nil
}

func (f *Frontend) worker() {
	defer f.wg.Done()
	for {
		j := f.queue.dequeue()
		if j == nil {
			return
		}
		if j.ctx.Err() == nil {
			j.run(j.ctx)
		}
		close(j.done)
	}
}

// ServeHTTP implements http.Handler: queries go through their signal's
// pipeline, any other API call straight to the queriers.
func (f *Frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, lokiapi.PathPrefix) {
		f.serveLoki(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, tempoapi.PathPrefix) {
		f.serveTempo(w, r)
		return
	}
	if _, err := tenant.ID(r.Context()); err != nil {
		writeError(w, http.StatusUnauthorized, "bad_data", err.Error())
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/api/v1/query_range"):
		if querylimit.CheckRequest(w, r, f.limits) {
			f.promRange.ServeHTTP(w, r)
		}
	case strings.HasSuffix(r.URL.Path, "/api/v1/query"):
		if querylimit.CheckRequest(w, r, f.limits) {
			f.promInstant.ServeHTTP(w, r)
		}
	default:
		f.down.Proxy(w, r)
	}
}

// serveLoki serves the Loki API's paths: query_range and query (GET or
// POST) through their pipelines, anything else straight to the queriers.
func (f *Frontend) serveLoki(w http.ResponseWriter, r *http.Request) {
	id, err := tenant.ID(r.Context())
	if err != nil {
		writeResponse(w, lokiError(http.StatusUnauthorized, "bad_data", err.Error()))
		return
	}
	var h http.Handler
	switch strings.TrimPrefix(r.URL.Path, lokiapi.PathPrefix) {
	case "query_range":
		h = f.lokiRange
	case "query":
		h = f.lokiInstant
	}
	if h == nil || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
		f.down.Proxy(w, r)
		return
	}
	// The tenant's bounds on a query expression hold for LogQL as for
	// PromQL: the parser recurses on nesting.
	l := f.limits.ByTenant(id)
	err = querylimit.ParseForm(w, r, l.MaxQueryExpressionBytes)
	if err == nil {
		err = querylimit.Check(r.Form.Get("query"), l.MaxQueryExpressionBytes, l.MaxQueryExpressionDepth)
	}
	if err != nil {
		writeResponse(w, lokiError(http.StatusBadRequest, "bad_data", err.Error()))
		return
	}
	h.ServeHTTP(w, r)
}

// serveTempo serves the Tempo API's paths: search and the metrics queries
// (GET, the only method the API serves) through their pipelines, anything
// else straight to the queriers.
func (f *Frontend) serveTempo(w http.ResponseWriter, r *http.Request) {
	id, err := tenant.ID(r.Context())
	if err != nil {
		writeResponse(w, tempoError(http.StatusUnauthorized, "bad_data", err.Error()))
		return
	}
	var h http.Handler
	switch strings.TrimPrefix(r.URL.Path, tempoapi.PathPrefix) {
	case "search":
		h = f.tempoSearch
	case "metrics/query_range":
		h = f.tempoRange
	case "metrics/query":
		h = f.tempoInstant
	}
	if h == nil || r.Method != http.MethodGet {
		f.down.Proxy(w, r)
		return
	}
	// The tenant's bounds on a query expression hold for TraceQL as for
	// PromQL: the parser recurses on nesting.
	l := f.limits.ByTenant(id)
	err = querylimit.ParseForm(w, r, l.MaxQueryExpressionBytes)
	for _, k := range []string{"q", "query"} {
		if err == nil {
			err = querylimit.Check(r.Form.Get(k), l.MaxQueryExpressionBytes, l.MaxQueryExpressionDepth)
		}
	}
	if err != nil {
		writeResponse(w, tempoError(http.StatusBadRequest, "bad_data", err.Error()))
		return
	}
	h.ServeHTTP(w, r)
}
