package canopy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/grafana/dskit/dns"
	"github.com/grafana/dskit/kv/codec"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/middleware"
	"github.com/grafana/dskit/modules"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/runtimeconfig"
	"github.com/grafana/dskit/server"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/compactor"
	"github.com/canopy-observability/canopy/pkg/distributor"
	"github.com/canopy-observability/canopy/pkg/frontend"
	"github.com/canopy-observability/canopy/pkg/ingester"
	"github.com/canopy-observability/canopy/pkg/ingester/client"
	logsingester "github.com/canopy-observability/canopy/pkg/ingester/logs"
	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	metricsingester "github.com/canopy-observability/canopy/pkg/ingester/metrics"
	tracesingester "github.com/canopy-observability/canopy/pkg/ingester/traces"
	"github.com/canopy-observability/canopy/pkg/ingester/tracesclient"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/storage/bucket"
	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
	"github.com/canopy-observability/canopy/pkg/storegateway"
	"github.com/canopy-observability/canopy/pkg/tempoapi"
	"github.com/canopy-observability/canopy/pkg/tracegen"
	"github.com/canopy-observability/canopy/pkg/util/logging"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Module names.
const (
	Server        = "server"
	MemberlistKV  = "memberlist-kv"
	RuntimeConfig = "runtime-config"
	Overrides     = "overrides"
	IngesterRing  = "ingester-ring"
	IngesterPool  = "ingester-client-pool"
	LogsRing      = "logs-ingester-ring"
	LogsPool      = "logs-ingester-client-pool"
	LogsWrite     = "logs-distributor"
	TracesRing    = "traces-ingester-ring"
	TracesPool    = "traces-ingester-client-pool"
	TracesWrite   = "traces-distributor"
	Ingester      = "ingester"
	Distributor   = "distributor"
	Querier       = "querier"
	API           = "api"
	Bucket        = "bucket"
	Compactor     = "compactor"
	Federator     = "federator"
	Ruler         = "ruler"
	Remediator    = "remediator"
	StoreGateway  = "store-gateway"
	StoreGWRing   = "store-gateway-ring"
	RulerState    = "ruler-state"
	QueryFrontend = "query-frontend"
	OTLPReceivers = "otlp-receivers"
	Backend       = "backend"
	All           = "all"
	Write         = "write"
	Read          = "read"
)

// targets are the user-visible -target values and the modules they start.
var targets = map[string][]string{
	All:           {Distributor, LogsWrite, TracesWrite, OTLPReceivers, Ingester, QueryFrontend, Querier, StoreGateway, Compactor, Ruler, Remediator},
	Write:         {Distributor, LogsWrite, TracesWrite, OTLPReceivers, Ingester},
	Read:          {QueryFrontend, Querier},
	Backend:       {StoreGateway, Compactor, Ruler, Remediator},
	Distributor:   {Distributor, LogsWrite, TracesWrite, OTLPReceivers},
	Ingester:      {Ingester},
	QueryFrontend: {QueryFrontend},
	Querier:       {Querier},
	StoreGateway:  {StoreGateway},
	Compactor:     {Compactor},
	Federator:     {Federator},
	Ruler:         {Ruler},
	Remediator:    {Remediator},
}

// TargetNames lists the valid -target values.
func TargetNames() []string {
	out := make([]string, 0, len(targets))
	for t := range targets {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// deps is the one dependency map of the process.
var deps = map[string][]string{
	MemberlistKV:  {Server},
	RuntimeConfig: {Server},
	Overrides:     {RuntimeConfig},
	IngesterRing:  {MemberlistKV},
	IngesterPool:  {Server, IngesterRing},
	Ingester:      {Server, MemberlistKV, Overrides, Bucket},
	Distributor:   {IngesterRing, IngesterPool, Overrides, API},
	LogsRing:      {MemberlistKV},
	LogsPool:      {Server, LogsRing},
	LogsWrite:     {Distributor, LogsRing, LogsPool},
	TracesRing:    {MemberlistKV},
	TracesPool:    {Server, TracesRing},
	TracesWrite:   {Distributor, TracesRing, TracesPool},
	OTLPReceivers: {Distributor, LogsWrite, TracesWrite},
	Querier:       {IngesterRing, IngesterPool, LogsRing, LogsPool, TracesRing, TracesPool, StoreGWRing, RulerState, Bucket, Overrides, API},
	RulerState:    {MemberlistKV},
	StoreGWRing:   {MemberlistKV},
	StoreGateway:  {Server, MemberlistKV, StoreGWRing, Bucket},
	QueryFrontend: {Server, Overrides, API},
	API:           {Server},
	Bucket:        {Server},
	Compactor:     {Server, MemberlistKV, Overrides, Bucket},
	Federator:     {Server, API},
	Ruler:         {Server, MemberlistKV, Overrides, Bucket, API, Distributor},
	Remediator:    {Server, API, LogsWrite},
}

func (c *Canopy) setupModules() (*modules.Manager, error) {
	mm := modules.NewManager(c.logger)
	mm.RegisterModule(Server, c.initServer, modules.UserInvisibleModule)
	mm.RegisterModule(MemberlistKV, c.initMemberlistKV, modules.UserInvisibleModule)
	mm.RegisterModule(RuntimeConfig, c.initRuntimeConfig, modules.UserInvisibleModule)
	mm.RegisterModule(Overrides, c.initOverrides, modules.UserInvisibleModule)
	mm.RegisterModule(IngesterRing, c.initIngesterRing, modules.UserInvisibleModule)
	mm.RegisterModule(IngesterPool, c.initIngesterPool, modules.UserInvisibleModule)
	mm.RegisterModule(API, c.initAPI, modules.UserInvisibleModule)
	mm.RegisterModule(Bucket, c.initBucket, modules.UserInvisibleModule)
	mm.RegisterModule(Ingester, c.initIngester)
	mm.RegisterModule(Distributor, c.initDistributor)
	mm.RegisterModule(LogsRing, c.initLogsRing, modules.UserInvisibleModule)
	mm.RegisterModule(LogsPool, c.initLogsPool, modules.UserInvisibleModule)
	mm.RegisterModule(LogsWrite, c.initLogsDistributor, modules.UserInvisibleModule)
	mm.RegisterModule(TracesRing, c.initTracesRing, modules.UserInvisibleModule)
	mm.RegisterModule(TracesPool, c.initTracesPool, modules.UserInvisibleModule)
	mm.RegisterModule(TracesWrite, c.initTracesDistributor, modules.UserInvisibleModule)
	mm.RegisterModule(OTLPReceivers, c.initOTLPReceivers, modules.UserInvisibleModule)
	mm.RegisterModule(Querier, c.initQuerier)
	mm.RegisterModule(Compactor, c.initCompactor)
	mm.RegisterModule(Federator, c.initFederator)
	mm.RegisterModule(Ruler, c.initRuler)
	mm.RegisterModule(Remediator, c.initRemediator)
	mm.RegisterModule(StoreGWRing, c.initStoreGatewayRing, modules.UserInvisibleModule)
	mm.RegisterModule(RulerState, c.initRulerState, modules.UserInvisibleModule)
	mm.RegisterModule(StoreGateway, c.initStoreGateway)
	mm.RegisterModule(QueryFrontend, c.initQueryFrontend)
	for mod, ds := range deps {
		if err := mm.AddDependency(mod, ds...); err != nil {
			return nil, err
		}
	}
	return mm, nil
}

func (c *Canopy) initServer() (services.Service, error) {
	cfg := c.cfg.Server
	cfg.Log = c.logger
	cfg.Registerer = c.reg
	cfg.Gatherer = c.reg
	cfg.GRPCOptions = append(cfg.GRPCOptions, rpc.ServerOption())
	cfg.HTTPMiddleware = append(cfg.HTTPMiddleware, c.admin)
	cfg.GRPCMiddleware = append(cfg.GRPCMiddleware, middleware.ServerUserHeaderInterceptor)
	cfg.GRPCStreamMiddleware = append(cfg.GRPCStreamMiddleware, middleware.StreamServerUserHeaderInterceptor)
	srv, err := server.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting servers: %w", err)
	}
	c.Server = srv
	// Client pools health-check the processes they call.
	grpc_health_v1.RegisterHealthServer(srv.GRPC, health.NewServer())
	c.API = api.New(srv.HTTP, c.resolver)
	return newServerService(srv, c.servicesToWaitFor), nil
}

// self is this process's identity in every ring and in memberlist: the
// configured one with the address and port the flags left empty filled in
// from the gRPC server's listen address and bound port.
func (c *Canopy) self() ringconfig.Instance {
	port := c.cfg.Server.GRPCListenPort
	if c.Server != nil {
		if a, ok := c.Server.GRPCListenAddr().(*net.TCPAddr); ok {
			port = a.Port
		}
	}
	return c.cfg.Instance.Resolve(c.cfg.Server.GRPCListenAddress, port, c.logger)
}

func (c *Canopy) initMemberlistKV() (services.Service, error) {
	cfg := memberlistConfig(c.cfg.MemberlistKV, c.self())
	cfg.Codecs = []codec.Codec{ring.GetCodec()}
	cfg.MetricsNamespace = "canopy"
	dnsProvider := dns.NewProvider(dns.GolangResolverType, 0, c.logger, prometheus.WrapRegistererWithPrefix("canopy_", c.reg))
	c.memberlistKV = memberlist.NewKVInitService(&cfg, c.logger, dnsProvider, c.reg)
	c.API.Register(api.Route{Path: api.PathMemberlist, Component: "memberlist", Help: "the memberlist cluster"}, c.memberlistKV)
	return c.memberlistKV, nil
}

func (c *Canopy) memberlistGetter() func() (*memberlist.KV, error) {
	return func() (*memberlist.KV, error) {
		if c.memberlistKV == nil {
			return nil, fmt.Errorf("memberlist is not running in this process")
		}
		return c.memberlistKV.GetMemberlistKV()
	}
}

func (c *Canopy) initRuntimeConfig() (services.Service, error) {
	if c.cfg.RuntimeConfig.File == "" {
		return nil, nil
	}
	mgr, err := runtimeconfig.New(runtimeconfig.Config{
		ReloadPeriod: c.cfg.RuntimeConfig.ReloadPeriod,
		LoadPath:     []string{c.cfg.RuntimeConfig.File},
		Loader:       validation.NewLoader(c.cfg.Limits),
	}, "canopy", prometheus.WrapRegistererWithPrefix("canopy_", c.reg), c.logger)
	if err != nil {
		return nil, fmt.Errorf("runtime config (-runtime-config.file): %w", err)
	}
	c.runtimeConfig = mgr
	return mgr, nil
}

func (c *Canopy) initOverrides() (services.Service, error) {
	c.Overrides = validation.NewOverrides(c.cfg.Limits, c.runtimeConfig)
	return nil, nil
}

func (c *Canopy) initIngesterRing() (services.Service, error) {
	r, err := c.cfg.Ingester.Metrics.Ring.NewRing(metricsingester.RingName, metricsingester.RingKey, c.memberlistGetter(), nil, c.logger, prometheus.WrapRegistererWithPrefix("canopy_", c.reg))
	if err != nil {
		return nil, err
	}
	c.IngesterRing = r
	c.API.RegisterRing("ingester", "distributor, querier", r)
	return r, nil
}

func (c *Canopy) initIngesterPool() (services.Service, error) {
	c.ingesterPool = client.NewPool(c.cfg.Ingester.Client, c.IngesterRing, c.logger, c.reg)
	return c.ingesterPool, nil
}

func (c *Canopy) initIngester() (services.Service, error) {
	dir := filepath.Join(c.cfg.DataDir, "ingester")
	var units []ingester.Unit
	if c.cfg.Ingester.Hosts(metricsingester.Signal) {
		m, err := metricsingester.New(c.cfg.Ingester.Metrics, ingester.Dir(dir, metricsingester.Signal), ingester.TokensFile(dir, metricsingester.Signal),
			c.self(), c.Overrides, c.Bucket, c.memberlistGetter(), c.logger, c.reg)
		if err != nil {
			return nil, err
		}
		c.MetricsIngester = m
		client.RegisterIngesterServer(c.Server.GRPC, m)
		units = append(units, m)
	}
	if c.cfg.Ingester.Hosts(logsingester.Signal) {
		l, err := logsingester.New(c.cfg.Ingester.Logs, ingester.Dir(dir, logsingester.Signal), ingester.TokensFile(dir, logsingester.Signal),
			c.self(), c.Overrides, c.Bucket, c.memberlistGetter(), c.logger, c.reg)
		if err != nil {
			return nil, err
		}
		c.LogsIngester = l
		logsclient.Register(c.Server.GRPC, l)
		units = append(units, l)
	}
	if c.cfg.Ingester.Hosts(tracesingester.Signal) {
		t, err := tracesingester.New(c.cfg.Ingester.Traces, ingester.Dir(dir, tracesingester.Signal), ingester.TokensFile(dir, tracesingester.Signal),
			c.self(), c.Overrides, c.Bucket, c.memberlistGetter(), c.logger, c.reg)
		if err != nil {
			return nil, err
		}
		c.TracesIngester = t
		if gc := c.cfg.Ingester.Traces.Generator; gc.Enabled {
			gen := tracegen.New(tracegen.Config{MaxSeriesPerTenant: gc.MaxSeriesPerTenant, StaleAfter: gc.StaleAfter}, c.appendGenerated)
			t.UseGenerator(gen, c.firstTracesReplica)
		}
		tracesclient.Register(c.Server.GRPC, t)
		units = append(units, t)
	}
	c.Ingester = ingester.New(dir, units, c.logger)
	var status http.Handler
	if c.MetricsIngester != nil {
		status = c.MetricsIngester.RingStatus()
	}
	c.API.RegisterIngester(http.HandlerFunc(c.Ingester.FlushHandler), status)
	return c.Ingester, nil
}

func (c *Canopy) initDistributor() (services.Service, error) {
	// The ingester module may be initialised after this one (or not at all):
	// look it up on each push.
	local := func() (distributor.IngesterPusher, string) {
		if c.MetricsIngester == nil {
			return nil, ""
		}
		return c.MetricsIngester, c.MetricsIngester.ID()
	}
	dcfg := c.cfg.Distributor
	dcfg.ZoneAwareRing = c.cfg.Ingester.Metrics.Ring.ZoneAwarenessEnabled
	d := distributor.New(dcfg, c.Overrides, c.IngesterRing, distributor.PoolPushers{Pool: c.ingesterPool}, local, c.logger, c.reg)
	c.Distributor = d
	if c.cfg.runs(Distributor) {
		// A ruler without a distributor target writes through one of its
		// own, which takes no pushes from outside.
		c.API.RegisterDistributor(d.RemoteWriteHandler(c.resolver), d.OTLPHandler(c.resolver))
	}
	return d, nil
}

func (c *Canopy) initLogsRing() (services.Service, error) {
	r, err := c.cfg.Ingester.Logs.Ring.NewRing(logsingester.RingName, logsingester.RingKey, c.memberlistGetter(), nil, c.logger, prometheus.WrapRegistererWithPrefix("canopy_logs_", c.reg))
	if err != nil {
		return nil, err
	}
	c.LogsRing = r
	c.API.RegisterRing(logsingester.RingName, "distributor, querier", r)
	return r, nil
}

func (c *Canopy) initLogsPool() (services.Service, error) {
	c.logsPool = logsclient.NewPool(c.cfg.Ingester.Client, c.LogsRing, c.logger, c.reg)
	return c.logsPool, nil
}

// initLogsDistributor runs the logs write path beside the metrics one, with
// the same body limits and in-flight budget.
func (c *Canopy) initLogsDistributor() (services.Service, error) {
	local := func() (distributor.LogsPusher, string) {
		if c.LogsIngester == nil {
			return nil, ""
		}
		return c.LogsIngester, c.LogsIngester.Lifecycler().ID
	}
	l := distributor.NewLogs(c.Distributor, c.LogsRing, distributor.LogsPoolPushers{Pool: c.logsPool}, local, c.logger, c.reg)
	c.LogsDistributor = l
	if c.cfg.runs(LogsWrite) {
		// A remediator without a distributor target writes its audit
		// lines through one of its own, which takes no pushes.
		c.API.RegisterLogsDistributor(l.PushHandler(c.resolver), l.OTLPHandler(c.resolver))
	}
	return l, nil
}

// appendGenerated writes the span metrics and service graph series of a
// tenant through this process's distributor: in process, no remote write.
func (c *Canopy) appendGenerated(ctx context.Context, tenant string, build func(storage.AppenderV2) error) error {
	d := c.Distributor
	if d == nil {
		return errors.New("this process runs no distributor (-target=all or write runs one): span metrics are not written")
	}
	b := distributor.NewRequestBuilder()
	if err := build(b); err != nil {
		return err
	}
	_, err := d.Push(ctx, tenant, b.Request())
	return err
}

// firstTracesReplica says whether this process's traces ingester is the
// first of trace id's replicas in the traces ring: the one that counts it
// in the generated metrics. Without a ring client in the process, every
// replica counts.
func (c *Canopy) firstTracesReplica(tenant string, id [16]byte) bool {
	r, t := c.TracesRing, c.TracesIngester
	if r == nil || t == nil {
		return true
	}
	rs, err := r.Get(tracesclient.TraceKey(tenant, id), ring.WriteNoExtend, nil, nil, nil)
	if err != nil || len(rs.Instances) == 0 {
		return true
	}
	return rs.Instances[0].Id == t.Lifecycler().ID
}

func (c *Canopy) initTracesRing() (services.Service, error) {
	r, err := c.cfg.Ingester.Traces.Ring.NewRing(tracesingester.RingName, tracesingester.RingKey, c.memberlistGetter(), nil, c.logger, prometheus.WrapRegistererWithPrefix("canopy_traces_", c.reg))
	if err != nil {
		return nil, err
	}
	c.TracesRing = r
	c.API.RegisterRing(tracesingester.RingName, "distributor, querier", r)
	return r, nil
}

func (c *Canopy) initTracesPool() (services.Service, error) {
	c.tracesPool = tracesclient.NewPool(c.cfg.Ingester.Client, c.TracesRing, c.logger, c.reg)
	return c.tracesPool, nil
}

// initTracesDistributor runs the traces write path beside the others, with
// the same body limits and in-flight budget.
func (c *Canopy) initTracesDistributor() (services.Service, error) {
	local := func() (distributor.TracesPusher, string) {
		if c.TracesIngester == nil {
			return nil, ""
		}
		return c.TracesIngester, c.TracesIngester.Lifecycler().ID
	}
	t := distributor.NewTraces(c.Distributor, c.TracesRing, distributor.TracesPoolPushers{Pool: c.tracesPool}, local, c.logger, c.reg)
	c.TracesDistributor = t
	c.API.RegisterTracesDistributor(t.OTLPHandler(c.resolver), t.ZipkinHandler(c.resolver))
	return t, nil
}

// initOTLPReceivers runs the OTLP listeners on their own ports as a module
// of their own: one that fails to listen or serve fails the process.
func (c *Canopy) initOTLPReceivers() (services.Service, error) {
	c.OTLP = distributor.NewOTLPListeners(c.cfg.Distributor, c.Distributor, c.LogsDistributor, c.TracesDistributor, c.resolver, c.logger)
	return c.OTLP, nil
}

func (c *Canopy) initQuerier() (services.Service, error) {
	cfg := c.cfg.Querier
	ing := querier.NewIngesterQueryable(c.IngesterRing, c.ingesterPool, cfg.MaxQueryStreamFrameBytes)
	gateways := storegateway.NewPool(c.cfg.StoreGateway.Client, c.StoreGatewayRing, c.logger, c.reg)
	blocks := querier.NewBlocksQueryable(c.Bucket, c.StoreGatewayRing, gateways, cfg.MaxQueryStreamFrameBytes, cfg.BucketIndexTTL)
	q := querier.NewLimitedQueryable(querier.NewExternalLabelsQueryable(querier.NewQueryable(ing, blocks, cfg.QueryIngestersWithin, cfg.QueryStoreAfter), cfg.ExternalLabels.Labels()), c.Overrides)
	c.Queryable = q
	slogger := logging.Slog(c.logger)
	c.Engine = querier.NewEngine(cfg, slogger, c.reg)
	qapi := querier.NewAPI(cfg, c.Engine, q, ing, ing, c.Overrides, slogger, c.reg, c.reg)
	qapi.UseRules(rulesOfProcess{c})
	qapi.UseRuleState(c.RuleState)
	c.API.Register(api.Route{Path: api.PathFederate, Methods: []string{http.MethodGet, http.MethodPost}, Component: "querier", Tenant: true, Help: "Prometheus federation: the latest sample of the series of each match[] selector, with -cluster.external-labels"},
		querier.FederateHandler(q, parser.NewParser(querier.ParserOptions(cfg)), cfg.LookbackDelta, time.Now))

	logs := querier.NewLogs(c.LogsRing, c.logsPool, c.Bucket, cfg.QueryIngestersWithin, logsBlockListTTL)
	logs.UseDeleteRequests(logdelete.NewStore(c.Bucket), logsBlockListTTL)
	logs.UseStoreGateways(&querier.LogsGateways{Ring: c.StoreGatewayRing, Client: func(addr string) (*logsclient.Client, error) {
		conn, err := gateways.Conn(addr)
		if err != nil {
			return nil, err
		}
		return logsclient.NewStoreGatewayClient(conn), nil
	}, Local: func(id string) *storegateway.Logs {
		if id != c.self().ID {
			return nil
		}
		return c.logsGateway // nil unless this process runs a store-gateway
	}})
	c.LogQLEngine = logql.NewEngine(slogger, prometheus.WrapRegistererWithPrefix("canopy_logql_", c.reg))
	traces := querier.NewTraces(c.TracesRing, func(addr string) (querier.TracesIngester, error) {
		return c.tracesPool.Client(addr)
	}, c.Bucket, tracesBlockListTTL)
	traces.UseStoreGateways(&querier.TracesGateways{Ring: c.StoreGatewayRing, Client: func(addr string) (*tracesclient.Client, error) {
		conn, err := gateways.Conn(addr)
		if err != nil {
			return nil, err
		}
		return tracesclient.NewStoreGatewayClient(conn), nil
	}, Local: func(id string) *storegateway.Traces {
		if id != c.self().ID {
			return nil
		}
		return c.tracesGateway // nil unless this process runs a store-gateway
	}})
	c.querierAPI = c.resolver.Wrap(queryAPIs{prometheus: qapi, loki: lokiapi.NewHandler(cfg.Logs, c.LogQLEngine, logs, slogger),
		tempo: tempoapi.NewHandler(cfg.Traces, traces, slogger)})
	c.registerQueryAPIs()
	return gateways, nil // the store-gateway client pool runs as the querier
}

// queryAPIs are the querier's query APIs at their paths: Loki's under
// lokiapi.PathPrefix, Prometheus's under api.PrefixPrometheusV1. The
// query-frontend of the process calls them as its downstream.
type queryAPIs struct{ prometheus, loki, tempo http.Handler }

func (q queryAPIs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, lokiapi.PathPrefix) {
		q.loki.ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, tempoapi.PathPrefix) {
		q.tempo.ServeHTTP(w, r)
		return
	}
	q.prometheus.ServeHTTP(w, r)
}

// logsBlockListTTL is how long a querier uses a tenant's list of log
// blocks; ingesters keep shipped chunks longer (-ingester.logs.retain-shipped-for).
const logsBlockListTTL = 10 * time.Second

// tracesBlockListTTL is the same for trace blocks
// (-ingester.traces.retain-shipped-for is longer).
const tracesBlockListTTL = 10 * time.Second

func (c *Canopy) initQueryFrontend() (services.Service, error) {
	var down frontend.Downstream = frontend.HandlerDownstream{
		Handler: func() http.Handler { return c.querierAPI },
	}
	if u := c.cfg.Frontend.DownstreamURL; u != "" {
		d, err := frontend.NewHTTPDownstream(u)
		if err != nil {
			return nil, err
		}
		down = d
	}
	// LogQL queries are held to the queriers' -querier.logs.* limits as
	// a whole; Tempo searches are read with their -querier.traces.* ones.
	f, err := frontend.New(c.cfg.Frontend, c.Overrides, down, parser.NewParser(querier.ParserOptions(c.cfg.Querier)), c.cfg.Querier.Logs, c.cfg.Querier.Traces, c.logger, c.reg)
	if err != nil {
		return nil, err
	}
	c.Frontend = f
	c.registerQueryAPIs()
	return f, nil
}

// registerQueryAPIs serves the query APIs, the Prometheus HTTP API and
// Loki's: through the query-frontend when this process runs one (it
// passes what is not a query on to the queriers), else from the querier.
func (c *Canopy) registerQueryAPIs() {
	c.apiOnce.Do(func() {
		component := "querier"
		if c.cfg.runs(QueryFrontend) {
			component = "query-frontend"
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case c.Frontend != nil:
				c.Frontend.ServeHTTP(w, r)
			case c.querierAPI != nil:
				c.querierAPI.ServeHTTP(w, r)
			default:
				http.NotFound(w, r)
			}
		})
		c.API.RegisterPrometheusAPI(component, h)
		c.API.RegisterLokiAPI(component, h)
		c.API.RegisterTempoAPI(component, h)
	})
}

func (c *Canopy) initCompactor() (services.Service, error) {
	comp, err := compactor.New(c.cfg.Compactor, filepath.Join(c.cfg.DataDir, "compactor"), c.self(), c.Bucket, c.Overrides, c.cfg.Ingester.Logs.ChunkTargetSize, c.memberlistGetter(), c.logger, c.reg)
	if err != nil {
		return nil, err
	}
	c.Compactor = comp
	c.API.RegisterRing("compactor", "compactor", comp.Ring())
	c.API.RegisterCompactor(http.HandlerFunc(comp.RunHandler))
	c.API.RegisterLokiDelete(lokiapi.NewDeleteHandler(logdelete.NewStore(c.Bucket), c.cfg.Compactor.LogsDeleteCancelPeriod, logging.Slog(c.logger)))
	return comp, nil
}

func (c *Canopy) initStoreGatewayRing() (services.Service, error) {
	r, err := storegateway.NewRing(c.cfg.StoreGateway, c.memberlistGetter(), c.logger, prometheus.WrapRegistererWithPrefix("canopy_", c.reg))
	if err != nil {
		return nil, fmt.Errorf("store-gateway ring: %w", err)
	}
	c.StoreGatewayRing = r
	c.API.RegisterRing("store-gateway", "querier, store-gateway", r)
	return r, nil
}

func (c *Canopy) initStoreGateway() (services.Service, error) {
	g, err := storegateway.New(c.cfg.StoreGateway, c.self(), c.Bucket, c.StoreGatewayRing, c.memberlistGetter(), c.logger, c.reg)
	if err != nil {
		return nil, err
	}
	storegateway.RegisterServer(c.Server.GRPC, g)
	c.logsGateway = storegateway.NewLogs(c.Bucket, c.cfg.StoreGateway.IdleBlockTimeout, c.reg)
	logsclient.RegisterStoreGateway(c.Server.GRPC, c.logsGateway)
	c.tracesGateway = storegateway.NewTraces(c.Bucket, c.cfg.StoreGateway.IdleBlockTimeout, c.reg)
	tracesclient.RegisterStoreGateway(c.Server.GRPC, c.tracesGateway)
	return g, nil
}

// initBucket creates the one bucket client every component shares.
func (c *Canopy) initBucket() (services.Service, error) {
	bkt, err := bucket.NewClient(context.Background(), c.cfg.Bucket, c.cfg.DataDir, "canopy", c.logger, c.reg)
	if err != nil {
		return nil, err
	}
	c.Bucket = bkt
	return services.NewIdleService(nil, func(error) error { return bkt.Close() }), nil
}

func (c *Canopy) initAPI() (services.Service, error) {
	c.registerOperationalRoutes()
	return nil, nil
}
