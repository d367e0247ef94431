// Package frontend is the query-frontend: it sits in front of the queriers'
// Prometheus API, splits long range queries into aligned parts that run in
// parallel and are cached separately, queues every query fairly per tenant
// and applies the per-tenant query limits.
package frontend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Frontend is a services.Service and the http.Handler of the Prometheus
// API's /api/v1/ paths. Requests must carry the tenant in their context.
type Frontend struct {
	services.Service

	cfg    Config
	limits validation.TenantLimits
	down   Downstream
	cache  resultsCache
	queue  *queue
	parser parser.Parser
	engine *promql.Engine // evaluates what is left of sharded queries
	logger log.Logger
	now    func() time.Time
	wg     sync.WaitGroup

	mu          sync.Mutex
	outstanding map[string]int // queries per tenant, queued or running

	queries     *prometheus.CounterVec
	parts       prometheus.Counter
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	rejected    *prometheus.CounterVec

	shardedParts   prometheus.Counter
	shardFallbacks prometheus.Counter
}

// New returns a query-frontend sending work to down.
func New(cfg Config, limits validation.TenantLimits, down Downstream, p parser.Parser, logger log.Logger, reg prometheus.Registerer) (*Frontend, error) {
	c, err := newResultsCache(cfg.ResultsCache, logger, reg)
	if err != nil {
		return nil, err
	}
	f := &Frontend{
		cfg: cfg, limits: limits, down: down, cache: c, queue: newQueue(), parser: p,
		outstanding: map[string]int{},
		engine: promql.NewEngine(promql.EngineOpts{
			Logger:     promslog.NewNopLogger(),
			MaxSamples: 50_000_000,
			Timeout:    2 * time.Minute,
			// The partial results hold a sample at every step, so the
			// lookback never reaches back.
			EnableAtModifier:         true,
			EnableNegativeOffset:     true,
			EnableDelayedNameRemoval: true,
			Parser:                   p,
		}),
		logger: log.With(logger, "component", "query-frontend"),
		now:    time.Now,
		queries: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_query_frontend_queries_total", Help: "Queries received by the query-frontend, by kind.",
		}, []string{"kind"}),
		parts: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_split_parts_total", Help: "Parts range queries were split into.",
		}),
		cacheHits: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_results_cache_hits_total", Help: "Query parts answered from the results cache.",
		}),
		cacheMisses: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "canopy_query_frontend_results_cache_misses_total", Help: "Cacheable query parts not in the results cache.",
		}),
		rejected: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_query_frontend_rejected_queries_total", Help: "Queries rejected by the query-frontend, by limit.",
		}, []string{"reason"}),
	}
	f.shardedParts = promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "canopy_query_frontend_sharded_queries_total", Help: "Queries (or parts of split queries) run sharded.",
	})
	f.shardFallbacks = promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "canopy_query_frontend_sharding_fallbacks_total", Help: "Sharded queries run again unsharded because their partial results could not be merged exactly (native histograms, or one label set from two shards).",
	})
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

// ServeHTTP implements http.Handler.
func (f *Frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := tenant.ID(r.Context())
	if err != nil {
		writeError(w, http.StatusUnauthorized, "bad_data", err.Error())
		return
	}
	rangeQuery := strings.HasSuffix(r.URL.Path, "/api/v1/query_range")
	if !rangeQuery && !strings.HasSuffix(r.URL.Path, "/api/v1/query") {
		f.down.Proxy(w, r)
		return
	}
	// A query counts once however many parts it is split into.
	if err := f.admit(id); err != nil {
		f.fail(w, err)
		return
	}
	defer f.release(id)
	if rangeQuery {
		f.queries.WithLabelValues("range").Inc()
		f.queryRange(w, r, id)
		return
	}
	f.queries.WithLabelValues("instant").Inc()
	f.instant(w, r, id)
}

// errTooManyOutstanding is returned when a tenant has its maximum of queries outstanding.
type errTooManyOutstanding struct{ limit int }

func (e errTooManyOutstanding) Error() string {
	return fmt.Sprintf("too many outstanding requests: the tenant already has %d queries waiting or running, its limit max_outstanding_requests_per_tenant (-query-frontend.max-outstanding-requests-per-tenant)", e.limit)
}

// admit counts a query of the tenant as outstanding, unless the tenant is at
// its max_outstanding_requests_per_tenant.
func (f *Frontend) admit(id string) error {
	limit := f.limits.ByTenant(id).MaxOutstandingPerTenant
	f.mu.Lock()
	defer f.mu.Unlock()
	if limit > 0 && f.outstanding[id] >= limit {
		return errTooManyOutstanding{limit}
	}
	f.outstanding[id]++
	return nil
}

func (f *Frontend) release(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outstanding[id]--; f.outstanding[id] <= 0 {
		delete(f.outstanding, id)
	}
}

// run queues call for tenant and waits for its answer.
func (f *Frontend) run(ctx context.Context, id, path string, form url.Values) (*Response, error) {
	var (
		resp *Response
		err  = errors.New("query-frontend is shutting down")
	)
	j := &job{ctx: ctx, done: make(chan struct{}), run: func(ctx context.Context) {
		resp, err = f.down.Do(ctx, id, path, form)
	}}
	if qerr := f.queue.enqueue(id, j); qerr != nil {
		return nil, qerr
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		// The worker skips or abandons it; its result is not read.
		return nil, ctx.Err()
	}
	if err == nil && resp == nil {
		err = ctx.Err()
	}
	return resp, err
}

func (f *Frontend) fail(w http.ResponseWriter, err error) {
	var tooMany errTooManyOutstanding
	switch {
	case errors.As(err, &tooMany):
		f.rejected.WithLabelValues("max_outstanding_requests_per_tenant").Inc()
		writeError(w, http.StatusTooManyRequests, "unavailable", err.Error())
	case errors.Is(err, context.Canceled):
		writeError(w, 499, "canceled", "the request was canceled by the client")
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "timeout", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (f *Frontend) instant(w http.ResponseWriter, r *http.Request, id string) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("invalid form: %v", err))
		return
	}
	form := cloneForm(r.Form)
	var (
		plan   *shardPlan
		ts     int64
		shards int
	)
	if expr, err := f.parser.ParseExpr(form.Get("query")); err == nil && form.Get("stats") == "" {
		var terr error
		if form.Get("time") == "" {
			// Every shard must evaluate the same instant.
			ts = f.now().UnixMilli()
			form.Set("time", formatTime(ts))
		} else {
			ts, terr = parseTime(form.Get("time"))
		}
		if terr == nil {
			plan = planSharding(expr, f.parser)
			shards = f.shards(id, plan)
		}
	}
	resp, err := f.execute(r.Context(), id, "query", form, plan, shards, ts, ts, 0)
	if err != nil {
		f.fail(w, err)
		return
	}
	writeResponse(w, resp)
}

func (f *Frontend) queryRange(w http.ResponseWriter, r *http.Request, id string) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("invalid form: %v", err))
		return
	}
	form := r.Form
	start, err1 := parseTime(form.Get("start"))
	end, err2 := parseTime(form.Get("end"))
	step, err3 := parseStep(form.Get("step"))
	expr, err4 := f.parser.ParseExpr(form.Get("query"))
	if err := errors.Join(err1, err2, err3, err4); err != nil || end < start || step <= 0 || (end-start)/step > 11_000 {
		// The querier answers malformed requests with Prometheus's own
		// messages.
		resp, err := f.run(r.Context(), id, "query_range", form)
		if err != nil {
			f.fail(w, err)
			return
		}
		writeResponse(w, resp)
		return
	}
	lim := f.limits.ByTenant(id)
	if max := time.Duration(lim.MaxQueryLength); max > 0 && time.Duration(end-start)*time.Millisecond > max {
		f.rejected.WithLabelValues("max_query_length").Inc()
		writeError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("the query time range exceeds the limit (query length: %s, limit: %s): max_query_length (-query-frontend.max-query-length)", model.Duration(time.Duration(end-start)*time.Millisecond), lim.MaxQueryLength))
		return
	}
	var plan *shardPlan
	if form.Get("stats") == "" {
		// Statistics are those of the one query the querier runs.
		plan = planSharding(expr, f.parser)
	}
	shards := f.shards(id, plan)
	parts := []part{{start, end}}
	if f.cfg.SplitInterval > 0 && !usesStartOrEnd(expr) {
		parts = splitRange(start, end, step, f.cfg.SplitInterval.Milliseconds())
	}
	f.parts.Add(float64(len(parts)))

	// Parts entirely older than the freshness window are cached; a request
	// for statistics runs every part, so the statistics are whole.
	// Every parameter but the range is part of the key (lookback_delta,
	// limit, …): they change the answer.
	rest := cloneForm(form)
	for _, k := range []string{"query", "start", "end", "step", "stats"} {
		rest.Del(k)
	}
	query, otherParams := form.Get("query"), rest.Encode()
	freshFrom := f.now().Add(-time.Duration(lim.ResultsCacheMaxFreshness)).UnixMilli()
	keys := make([]string, len(parts))
	var cacheable []string
	if f.cache != nil && form.Get("stats") == "" {
		for i, p := range parts {
			if p.end < freshFrom {
				keys[i] = cacheKey(id, query+"\x00"+otherParams, p.start, p.end, step)
				cacheable = append(cacheable, keys[i])
			}
		}
	}
	bodies := make([][]byte, len(parts))
	if len(cacheable) > 0 {
		hits := f.cache.get(r.Context(), cacheable)
		for i, k := range keys {
			if b, ok := hits[k]; ok && k != "" {
				bodies[i] = b
			}
		}
		f.cacheHits.Add(float64(len(hits)))
		f.cacheMisses.Add(float64(len(cacheable) - len(hits)))
	}

	responses := make([]*Response, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		if bodies[i] != nil {
			continue
		}
		sub := cloneForm(form)
		sub.Set("start", formatTime(p.start))
		sub.Set("end", formatTime(p.end))
		wg.Add(1)
		go func() {
			defer wg.Done()
			responses[i], errs[i] = f.execute(r.Context(), id, "query_range", sub, plan, shards, p.start, p.end, step)
		}()
	}
	wg.Wait()
	store := map[string][]byte{}
	for i := range parts {
		if bodies[i] != nil {
			continue
		}
		if errs[i] != nil {
			f.fail(w, errs[i])
			return
		}
		if responses[i].Status != http.StatusOK {
			writeResponse(w, responses[i])
			return
		}
		bodies[i] = responses[i].Body
		if keys[i] != "" {
			store[keys[i]] = bodies[i]
		}
	}
	merged, err := mergeRange(bodies)
	if err != nil {
		level.Error(f.logger).Log("msg", "merging query parts", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	if len(store) > 0 {
		f.cache.set(store)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(merged)
}

// usesStartOrEnd reports whether expr uses @ start() or @ end(), whose
// meaning changes when the query is split.
func usesStartOrEnd(expr parser.Expr) bool {
	found := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			found = found || n.StartOrEnd != 0
		case *parser.SubqueryExpr:
			found = found || n.StartOrEnd != 0
		}
		return nil
	})
	return found
}

func cloneForm(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// parseTime parses a Prometheus API time (Unix seconds, possibly
// fractional, or RFC 3339) into milliseconds.
func parseTime(s string) (int64, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(t) || math.IsInf(t, 0) || math.Abs(t) > 1e15 {
			return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		return int64(math.Round(t * 1000)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseStep parses a step (seconds or a Prometheus duration) into
// milliseconds.
func parseStep(s string) (int64, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(d) || math.IsInf(d, 0) || d*1000 > math.MaxInt64/2 {
			return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
		}
		return int64(math.Round(d * 1000)), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return time.Duration(d).Milliseconds(), nil
}

func formatTime(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}
