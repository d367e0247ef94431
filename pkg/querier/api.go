package querier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/features"
	"github.com/prometheus/prometheus/util/notifications"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	httpapi "github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/util/querylimit"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Version is reported by /api/v1/status/buildinfo.
var Version = "0.1.0-dev"

// ParserOptions returns the PromQL parser options for cfg.
func ParserOptions(cfg Config) parser.Options {
	return parser.Options{
		EnableExperimentalFunctions:  cfg.ExperimentalFunctions,
		ExperimentalDurationExpr:     cfg.ExperimentalFunctions,
		EnableExtendedRangeSelectors: cfg.ExperimentalFunctions,
		EnableBinopFillModifiers:     cfg.ExperimentalFunctions,
	}
}

// NewEngine returns the Prometheus PromQL engine configured as Canopy runs it.
func NewEngine(cfg Config, logger *slog.Logger, reg prometheus.Registerer) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		Logger:                   logger,
		Reg:                      reg,
		MaxSamples:               cfg.MaxSamples,
		Timeout:                  cfg.Timeout,
		LookbackDelta:            cfg.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return cfg.DefaultEvaluationInterval.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		EnablePerStepStats:       true,
		EnableDelayedNameRemoval: true,
		UseStartTimestamps:       true,
		Parser:                   parser.NewParser(ParserOptions(cfg)),
	})
}

// metadataJSON is one metadata entry as Prometheus's API renders it.
type metadataJSON struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// sampleAndChunk adds a chunk querier (for remote read) to a Queryable.
type sampleAndChunk struct {
	storage.Queryable
}

func (s sampleAndChunk) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := s.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return chunkQuerier{q}, nil
}

type chunkQuerier struct{ storage.Querier }

func (c chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(c.Querier.Select(ctx, sortSeries, hints, matchers...))
}

// API is the Prometheus HTTP API over a Queryable.
type API struct {
	handler   http.Handler
	rules     atomic.Pointer[RuleSource]
	ruleState atomic.Pointer[http.Handler]
}

// UseRuleState makes /api/v1/rules and /api/v1/alerts answered by h (the
// rule state of every ruler) instead of this process's RuleSource.
func (a *API) UseRuleState(h http.Handler) { a.ruleState.Store(&h) }

// RuleSource is what /api/v1/rules, /api/v1/alerts and
// /api/v1/alertmanagers read: the ruler of the request's tenant (nil
// retrievers: none).
type RuleSource interface {
	Rules(ctx context.Context) v1.RulesRetriever
	Alertmanagers(ctx context.Context) v1.AlertmanagerRetriever
	// ServesRulerConfigAPI says whether the Mimir ruler config API
	// (/prometheus/config/v1/rules) is served beside this API: buildinfo
	// then advertises it.
	ServesRulerConfigAPI() bool
}

// UseRules makes the API answer rule state from src.
func (a *API) UseRules(src RuleSource) { a.rules.Store(&src) }

func (a *API) rulesOf(ctx context.Context) v1.RulesRetriever {
	if src := a.rules.Load(); src != nil {
		if r := (*src).Rules(ctx); r != nil {
			return r
		}
	}
	return noRules{}
}

func (a *API) servesRulerConfigAPI() bool {
	src := a.rules.Load()
	return src != nil && (*src).ServesRulerConfigAPI()
}

// serveRulerBuildInfo is buildinfo with the features a Mimir-compatible
// ruler advertises. Grafana 12 enables its editor of data-source-managed
// rules only for an application named "Grafana Mimir" whose features say
// ruler_config_api "true", so that is the name given here: it names the
// API Canopy speaks, as a browser's "Mozilla/5.0" does.
func serveRulerBuildInfo(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{
		"application": "Grafana Mimir",
		"version":     Version, "revision": "", "branch": "main", "buildUser": "", "buildDate": "", "goVersion": runtime.Version(),
		"features": map[string]string{
			"ruler_config_api":        "true",
			"alertmanager_config_api": "false",
			"query_sharding":          "true",
			"federated_rules":         "false",
		},
	}})
}

func (a *API) alertmanagersOf(ctx context.Context) v1.AlertmanagerRetriever {
	if src := a.rules.Load(); src != nil {
		if r := (*src).Alertmanagers(ctx); r != nil {
			return r
		}
	}
	return noAlertmanagers{}
}

// NewAPI returns the Prometheus HTTP API (Prometheus's own implementation,
// so shapes, error types and status codes are exactly Prometheus's) served
// under httpapi.PrefixPrometheusV1. Query expressions are bounded by the
// tenant's limits before Prometheus's parser sees them (limits nil: not).
func NewAPI(cfg Config, engine promql.QueryEngine, q storage.Queryable, eq storage.ExemplarQueryable, md MetadataSource, limits validation.TenantLimits, logger *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer) *API {
	start := time.Now()
	a := &API{}
	api := v1.NewAPI(
		engine, sampleAndChunk{q}, nil, nil, eq,
		func(context.Context) v1.ScrapePoolsRetriever { return noTargets{} },
		func(context.Context) v1.TargetRetriever { return noTargets{} },
		a.alertmanagersOf,
		func() config.Config { return config.DefaultConfig },
		map[string]string{},
		v1.GlobalURLOptions{},
		func(f http.HandlerFunc) http.HandlerFunc { return f },
		noTSDB{},
		"",
		false, // admin
		false, // search
		0,
		logger,
		a.rulesOf,
		0, 1, 1<<20,
		false,
		regexp.MustCompile("^$"),
		func() (v1.RuntimeInfo, error) {
			cwd, _ := os.Getwd()
			host, _ := os.Hostname()
			return v1.RuntimeInfo{StartTime: start, CWD: cwd, Hostname: host, ServerTime: time.Now(), ReloadConfigSuccess: true, GoroutineCount: runtime.NumGoroutine(), GOMAXPROCS: runtime.GOMAXPROCS(0), GOGC: os.Getenv("GOGC"), GODEBUG: os.Getenv("GODEBUG")}, nil
		},
		&v1.PrometheusVersion{Version: Version, Branch: "main", GoVersion: runtime.Version()},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		gatherer, reg,
		nil,
		false, nil,
		false, false, false,
		false,
		cfg.LookbackDelta,
		false, false,
		nil,
		features.NewRegistry(),
		v1.OpenAPIOptions{},
		parser.NewParser(ParserOptions(cfg)),
	)
	router := route.New()
	api.Register(router.WithPrefix(httpapi.PrefixPrometheus + "/api/v1"))
	sem := make(chan struct{}, cfg.MaxConcurrent)
	metadataPath := httpapi.PrefixPrometheusV1 + "metadata"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == metadataPath:
			serveMetadata(w, r, md)
			return
		case (r.URL.Path == httpapi.PrefixPrometheusV1+"rules" || r.URL.Path == httpapi.PrefixPrometheusV1+"alerts") && a.ruleState.Load() != nil:
			(*a.ruleState.Load()).ServeHTTP(w, r)
			return
		case r.URL.Path == httpapi.PrefixPrometheusV1+"status/buildinfo" && a.servesRulerConfigAPI():
			serveRulerBuildInfo(w)
			return
		case strings.HasPrefix(r.URL.Path, httpapi.PrefixPrometheusV1+"status/tsdb") || strings.HasPrefix(r.URL.Path, httpapi.PrefixPrometheusV1+"admin/tsdb/"):
			// Prometheus's handlers would answer 500 "not supported": say
			// plainly that Canopy has no such endpoint (yet).
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotImplemented)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "unavailable", "error": r.URL.Path + " is not implemented by Canopy: a tenant's TSDB lives on several ingesters and in the bucket, so Prometheus's single-TSDB status and admin endpoints do not apply"})
			return
		case strings.HasPrefix(r.URL.Path, httpapi.PrefixPrometheusV1+"query"):
			isQuery := strings.HasSuffix(r.URL.Path, "/query") || strings.HasSuffix(r.URL.Path, "/query_range")
			if isQuery && limits != nil && !querylimit.CheckRequest(w, r, limits) {
				return
			}
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-r.Context().Done():
				return
			}
			ctx, f := withFetched(r.Context())
			r, w = r.WithContext(ctx), &fetchedWriter{ResponseWriter: w, f: f}
		}
		router.ServeHTTP(w, r)
	})
	a.handler = h
	return a
}

// ServeHTTP serves the API. The tenant must be in the request context.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// MetadataSource answers /api/v1/metadata: the ingesters, or a
// federator's children.
type MetadataSource interface {
	Metadata(ctx context.Context, req *client.MetadataRequest) (map[string][]metadata.Metadata, error)
}

func serveMetadata(w http.ResponseWriter, r *http.Request, md MetadataSource) {
	w.Header().Set("Content-Type", "application/json")
	if md == nil {
		_, _ = w.Write([]byte(`{"status":"success","data":{}}`))
		return
	}
	fail := func(code int, typ string, err error) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": typ, "error": err.Error()})
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "bad_data", err)
		return
	}
	req := &client.MetadataRequest{Metric: r.Form.Get("metric")}
	var err error
	if req.Limit, err = intParam(r.Form, "limit"); err != nil {
		fail(http.StatusBadRequest, "bad_data", err)
		return
	}
	if req.LimitPerMetric, err = intParam(r.Form, "limit_per_metric"); err != nil {
		fail(http.StatusBadRequest, "bad_data", err)
		return
	}
	res, err := md.Metadata(r.Context(), req)
	if err != nil {
		fail(http.StatusInternalServerError, "internal", err)
		return
	}
	data := map[string][]metadataJSON{}
	for name, list := range res {
		if req.Limit > 0 && len(data) >= req.Limit {
			break
		}
		for i, m := range list {
			if req.LimitPerMetric > 0 && i >= req.LimitPerMetric {
				break
			}
			data[name] = append(data[name], metadataJSON{Type: string(m.Type), Help: m.Help, Unit: m.Unit})
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func intParam(form url.Values, name string) (int, error) {
	s := form.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: %w", name, s, err)
	}
	return n, nil
}

type noTargets struct{}

func (noTargets) ScrapePools() []string                                 { return nil }
func (noTargets) TargetsActive() map[string][]*scrape.Target            { return nil }
func (noTargets) TargetsDropped() map[string][]*scrape.Target           { return nil }
func (noTargets) TargetsDroppedCounts() map[string]int                  { return nil }
func (noTargets) ScrapePoolConfig(string) (*config.ScrapeConfig, error) { return nil, errNotSupported }

type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }

type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }

var errNotSupported = errors.New("not supported by Canopy's querier")

type noTSDB struct{}

func (noTSDB) CleanTombstones() error                                         { return errNotSupported }
func (noTSDB) Delete(context.Context, int64, int64, ...*labels.Matcher) error { return errNotSupported }
func (noTSDB) Snapshot(string, bool) error                                    { return errNotSupported }
func (noTSDB) Stats(string, int) (*tsdb.Stats, error)                         { return nil, errNotSupported }
func (noTSDB) WALReplayStatus() (tsdb.WALReplayStatus, error)                 { return tsdb.WALReplayStatus{}, nil }
func (noTSDB) BlockMetas() ([]tsdb.BlockMeta, error)                          { return nil, nil }
