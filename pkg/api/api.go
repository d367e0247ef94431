// Package api is the one place that says which HTTP paths a Canopy process
// serves and which component serves each. Modules register their handlers
// through it (never on the router directly), so the table of routes below,
// the index page and the route tests cannot drift apart. The ruler and
// remediation APIs register here as they land.
package api

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gorilla/mux"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Paths and prefixes served on the HTTP port.
const (
	PathPush         = "/api/v1/push"
	PathOTLPMetrics  = "/otlp/v1/metrics"
	PathOTLPLogs     = "/otlp/v1/logs"
	PathOTLPTraces   = "/otlp/v1/traces"
	PathZipkinSpans  = "/api/v2/spans"
	PrefixTempo      = "/tempo/api/"
	PathLokiPush     = "/loki/api/v1/push"
	PathLokiDelete   = "/loki/api/v1/delete"
	PrefixLokiV1     = "/loki/api/v1/"
	PrefixPrometheus = "/prometheus"
	// PathRulerConfig is Mimir's ruler config API, beside the Prometheus
	// API as Grafana expects it.
	PathRulerConfig = PrefixPrometheus + "/config/v1/rules"
	// PathLokiRules and PathLokiRulesLegacy are Loki's ruler config API
	// (the legacy path is the one Grafana's rule editor calls for a Loki
	// data source).
	PathLokiRules       = PrefixLokiV1 + "rules"
	PathLokiRulesLegacy = "/api/prom/rules"
	PrefixPrometheusV1  = PrefixPrometheus + "/api/v1/"
	PathIngesterFlush   = "/ingester/flush"
	PathIngesterStatus  = "/ingester/ring-status"
	PathCompactorRun    = "/compactor/run"
	PrefixRing          = "/ring/"
	PathReady           = "/ready"
	PathServices        = "/services"
	PathConfig          = "/config"
	PathMemberlist      = "/memberlist"
	PathIndex           = "/"

	PathFederate           = "/federate"
	PathFederationChildren = "/federation/children"
	PathFederationReload   = "/federation/reload"
)

// Route is one registered path.
type Route struct {
	Path      string // exact path, or a prefix when Prefix is set
	Prefix    bool
	Except    []string // with Prefix: paths under it that others serve (a path ending in / and all under it)
	Methods   []string // empty: any
	Component string   // who serves it: distributor, ingester, querier, …
	Tenant    bool     // the handler sees the request's tenant (X-Scope-OrgID)
	Help      string
}

// API registers the routes of one process. Safe for concurrent use.
type API struct {
	router   *mux.Router
	resolver tenant.Resolver

	mu     sync.Mutex
	routes []Route
}

// New returns an API registering on router; handlers registered with a
// tenant see the tenant resolver resolves.
func New(router *mux.Router, resolver tenant.Resolver) *API {
	return &API{router: router, resolver: resolver}
}

// Register serves r with h. Routes registered with Tenant get the request's
// tenant in their context and answer 401 when it cannot be resolved.
func (a *API) Register(r Route, h http.Handler) {
	if r.Tenant {
		h = a.resolver.Wrap(h)
	}
	var route *mux.Route
	if r.Prefix {
		route = a.router.PathPrefix(r.Path)
	} else {
		route = a.router.Path(r.Path)
	}
	if len(r.Methods) > 0 {
		route = route.Methods(r.Methods...)
	}
	if len(r.Except) > 0 {
		except := r.Except
		route = route.MatcherFunc(func(req *http.Request, _ *mux.RouteMatch) bool {
			return !slices.ContainsFunc(except, func(e string) bool {
				return e == req.URL.Path || strings.HasSuffix(e, "/") && strings.HasPrefix(req.URL.Path, e)
			})
		})
	}
	route.Handler(h)
	a.mu.Lock()
	a.routes = append(a.routes, r)
	a.mu.Unlock()
}

// Routes returns the registered routes, sorted by path.
func (a *API) Routes() []Route {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := append([]Route(nil), a.routes...)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// RegisterDistributor serves the write endpoints of the distributor.
func (a *API) RegisterDistributor(remoteWrite, otlp http.Handler) {
	post := []string{http.MethodPost}
	a.Register(Route{Path: PathPush, Methods: post, Component: "distributor", Help: "Prometheus remote write 1.0 and 2.0"}, remoteWrite)
	a.Register(Route{Path: PathOTLPMetrics, Methods: post, Component: "distributor", Help: "OTLP metrics over HTTP"}, otlp)
}

// RegisterLogsDistributor serves the logs write endpoints.
func (a *API) RegisterLogsDistributor(push, otlp http.Handler) {
	post := []string{http.MethodPost}
	a.Register(Route{Path: PathLokiPush, Methods: post, Component: "distributor", Help: "Loki push (snappy protobuf, JSON; gzip, zstd)"}, push)
	a.Register(Route{Path: PathOTLPLogs, Methods: post, Component: "distributor", Help: "OTLP logs over HTTP"}, otlp)
}

// RegisterTracesDistributor serves the traces write endpoints; zipkin may
// be nil.
func (a *API) RegisterTracesDistributor(otlp, zipkin http.Handler) {
	post := []string{http.MethodPost}
	a.Register(Route{Path: PathOTLPTraces, Methods: post, Component: "distributor", Help: "OTLP traces over HTTP"}, otlp)
	if zipkin != nil {
		a.Register(Route{Path: PathZipkinSpans, Methods: post, Component: "distributor", Help: "Zipkin v2 JSON spans"}, zipkin)
	}
}

// RegisterTempoAPI serves the Tempo HTTP query API (the Grafana Tempo
// datasource URL is <host>/tempo).
func (a *API) RegisterTempoAPI(component string, h http.Handler) {
	a.Register(Route{Path: PrefixTempo, Prefix: true, Methods: []string{http.MethodGet}, Component: component, Tenant: true, Help: "Tempo HTTP API (trace by ID, TraceQL search, tags)"}, h)
}

// RegisterLokiAPI serves the Loki HTTP query API (the Grafana Loki
// datasource URL is <host>); the push path under it is the distributor's
// and the deletion path the compactor's, whichever registers first.
func (a *API) RegisterLokiAPI(component string, h http.Handler) {
	a.Register(Route{Path: PrefixLokiV1, Prefix: true, Except: []string{PathLokiPush, PathLokiDelete, PathLokiRules, PathLokiRules + "/"}, Component: component, Tenant: true, Help: "Loki HTTP API (LogQL)"}, h)
}

// RegisterLokiDelete serves Loki's log deletion API, as Loki's compactor
// does (the requests are kept in the bucket, which the compactor applies).
func (a *API) RegisterLokiDelete(h http.Handler) {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
	a.Register(Route{Path: PathLokiDelete, Methods: methods, Component: "compactor", Tenant: true, Help: "Loki log deletion requests: POST makes one, GET lists them, DELETE cancels one"}, h)
}

// RegisterIngester serves the ingester's flush and its ring instance page.
func (a *API) RegisterIngester(flush, ringStatus http.Handler) {
	a.Register(Route{Path: PathIngesterFlush, Component: "ingester", Help: "POST: cut and ship every tenant's data now"}, flush)
	if ringStatus != nil {
		a.Register(Route{Path: PathIngesterStatus, Component: "ingester", Help: "this ingester's metrics ring instance"}, ringStatus)
	}
}

// RegisterRing serves the status page of ring name at /ring/<name>.
func (a *API) RegisterRing(name, component string, h http.Handler) {
	a.Register(Route{Path: PrefixRing + name, Component: component, Help: "the " + name + " ring"}, h)
}

// RegisterPrometheusAPI serves the Prometheus HTTP API (the datasource URL
// is <host>/prometheus), by the query-frontend or else the querier.
func (a *API) RegisterPrometheusAPI(component string, h http.Handler) {
	a.Register(Route{Path: PrefixPrometheusV1, Prefix: true, Component: component, Tenant: true, Help: "Prometheus HTTP API"}, h)
}

// RegisterCompactor serves the compactor's run-now endpoint.
func (a *API) RegisterCompactor(run http.Handler) {
	a.Register(Route{Path: PathCompactorRun, Component: "compactor", Help: "POST: run a compaction pass now"}, run)
}
