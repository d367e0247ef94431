package canopy

import (
	"context"
	"errors"
	"net/http"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/ruler"
	"github.com/canopy-observability/canopy/pkg/util/logging"
)

// initRuler runs the ruler: every tenant's rule groups, kept in the
// bucket and managed through Mimir's config API, evaluated through the
// query path of this process (or -ruler.query-frontend-url), their
// results pushed through the distributor, their alerts sent to
// -ruler.alertmanager-url.
func (c *Canopy) initRuler() (services.Service, error) {
	slogger := logging.Slog(c.logger)
	p := parser.NewParser(querier.ParserOptions(c.cfg.Querier))
	deps := ruler.Deps{
		Bucket:     c.Bucket,
		Query:      ruler.HTTPQuery(c.cfg.Ruler.QueryFrontendURL, http.DefaultClient, c.localQueryPath()),
		LogQLQuery: ruler.LokiQuery(c.cfg.Ruler.QueryFrontendURL, http.DefaultClient, c.localQueryPath()),
		Push: func(ctx context.Context, tenant string, req *writev2.Request) error {
			_, err := c.Distributor.Push(ctx, tenant, req)
			return err
		},
		Parser:       p,
		Self:         c.self(),
		MemberlistKV: c.memberlistGetter(),
		KitLogger:    c.logger,
	}
	if c.cfg.runs(Querier) {
		deps.Queryable = func() storage.Queryable { return c.Queryable }
	}
	r, err := ruler.New(c.cfg.Ruler, deps, slogger, prometheus.WrapRegistererWithPrefix("canopy_ruler_", c.reg))
	if err != nil {
		return nil, err
	}
	c.Ruler = r
	c.API.RegisterRing(ruler.RingName, "ruler", r.Ring())
	// The rule state of this ruler's groups, for the queriers (RuleState).
	local := querier.NewAPI(c.cfg.Querier, nil, nil, nil, nil, nil, slogger, prometheus.NewRegistry(), prometheus.NewRegistry())
	local.UseRules(rulesOfProcess{c})
	ruler.RegisterServer(c.Server.GRPC, local, api.PrefixPrometheusV1)
	cfgAPI := ruler.NewConfigAPI(r.Store(), api.PathRulerConfig, ruler.PromQLGroups(p), slogger)
	cfgAPI.OnChange(r.Sync)
	for _, base := range []string{api.PathLokiRules, api.PathLokiRulesLegacy} {
		lokiAPI := ruler.NewConfigAPI(r.LogQLStore(), base, ruler.ParseLogQLGroup, slogger)
		lokiAPI.OnChange(r.Sync)
		c.API.Register(api.Route{Path: base, Methods: []string{http.MethodGet}, Component: "ruler", Tenant: true, Help: "Loki's ruler API: every namespace's LogQL rule groups (YAML)"}, lokiAPI)
		c.API.Register(api.Route{Path: base + "/", Prefix: true, Component: "ruler", Tenant: true, Help: "Loki's ruler API: {namespace}[/{group}], GET, POST (a LogQL group, YAML), DELETE"}, lokiAPI)
	}
	c.API.Register(api.Route{Path: api.PathRulerConfig, Methods: []string{http.MethodGet}, Component: "ruler", Tenant: true, Help: "Mimir's ruler config API: every namespace's rule groups (YAML)"}, cfgAPI)
	c.API.Register(api.Route{Path: api.PathRulerConfig + "/", Prefix: true, Component: "ruler", Tenant: true, Help: "Mimir's ruler config API: {namespace}[/{group}], GET, POST (a group, YAML), DELETE"}, cfgAPI)
	return r, nil
}

// rulesOfProcess is the rule state the querier's Prometheus API answers:
// this process's ruler, when it runs one.
type rulesOfProcess struct{ c *Canopy }

func (r rulesOfProcess) Rules(ctx context.Context) v1.RulesRetriever {
	if r.c.Ruler == nil {
		return nil
	}
	return r.c.Ruler.Rules(ctx)
}

func (r rulesOfProcess) Alertmanagers(ctx context.Context) v1.AlertmanagerRetriever {
	if r.c.Ruler == nil {
		return nil
	}
	return r.c.Ruler.Alertmanagers(ctx)
}

func (r rulesOfProcess) ServesRulerConfigAPI() bool { return r.c.cfg.runs(Ruler) }

// localQueryPath returns the Prometheus API of this process's query path
// (its query-frontend, else its querier) with the tenant resolved, nil
// while there is none.
func (c *Canopy) localQueryPath() func() http.Handler {
	h := c.resolver.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case c.Frontend != nil:
			c.Frontend.ServeHTTP(w, r)
		case c.querierAPI != nil:
			c.querierAPI.ServeHTTP(w, r)
		default:
			http.Error(w, `{"status":"error","errorType":"unavailable","error":"no query path in this process"}`, http.StatusServiceUnavailable)
		}
	}))
	return func() http.Handler {
		if c.Frontend == nil && c.querierAPI == nil {
			return nil
		}
		return h
	}
}

// initRulerState reads the ruler ring and keeps a client per ruler, so
// that the querier's /api/v1/rules and /api/v1/alerts answer every
// ruler's groups, wherever they are evaluated.
func (c *Canopy) initRulerState() (services.Service, error) {
	r, err := c.cfg.Ruler.Ring.NewRing("ruler-state", ruler.RingKey, c.memberlistGetter(), nil, c.logger, prometheus.WrapRegistererWithPrefix("canopy_", c.reg))
	if err != nil {
		return nil, err
	}
	pool := rpc.NewPool("ruler", c.cfg.Ruler.Client, r, c.logger, c.reg)
	c.RuleState = ruler.NewRuleState(r, func(addr string) (grpc.ClientConnInterface, error) { return pool.Conn(addr) })
	return services.NewIdleService(
		func(ctx context.Context) error {
			if err := services.StartAndAwaitRunning(ctx, r); err != nil {
				return err
			}
			return services.StartAndAwaitRunning(ctx, pool)
		},
		func(error) error {
			return errors.Join(services.StopAndAwaitTerminated(context.Background(), pool), services.StopAndAwaitTerminated(context.Background(), r))
		}).WithName("ruler state"), nil
}
