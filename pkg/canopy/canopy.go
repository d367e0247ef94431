// Package canopy wires a Canopy process: its configuration, its modules and
// their dependencies, and the operational HTTP endpoints.
package canopy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/runtimeconfig"
	"github.com/grafana/dskit/server"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/compactor"
	"github.com/canopy-observability/canopy/pkg/distributor"
	"github.com/canopy-observability/canopy/pkg/federation"
	"github.com/canopy-observability/canopy/pkg/frontend"
	"github.com/canopy-observability/canopy/pkg/ingester"
	"github.com/canopy-observability/canopy/pkg/ingester/client"
	logsingester "github.com/canopy-observability/canopy/pkg/ingester/logs"
	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	metricsingester "github.com/canopy-observability/canopy/pkg/ingester/metrics"
	tracesingester "github.com/canopy-observability/canopy/pkg/ingester/traces"
	"github.com/canopy-observability/canopy/pkg/ingester/tracesclient"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/remediator"
	"github.com/canopy-observability/canopy/pkg/ruler"
	"github.com/canopy-observability/canopy/pkg/storegateway"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// Canopy is one process. Fields are set by module init functions; those a
// module did not start stay nil.
type Canopy struct {
	cfg      Config
	logger   log.Logger
	reg      *prometheus.Registry
	resolver tenant.Resolver
	admin    api.AdminGuard

	Server        *server.Server
	API           *api.API // every HTTP route of the process
	memberlistKV  *memberlist.KVInitService
	runtimeConfig *runtimeconfig.Manager
	Overrides     *validation.Overrides
	IngesterRing  *ring.Ring
	ingesterPool  *client.Pool
	logsPool      *logsclient.Pool
	tracesPool    *tracesclient.Pool
	// logsGateway is the logs unit of the store-gateway of this process
	// (set when it runs one): the querier of the process reads it directly.
	logsGateway       *storegateway.Logs
	tracesGateway     *storegateway.Traces      // the same for traces
	Ingester          *ingester.Ingester        // hosts the signal units below
	MetricsIngester   *metricsingester.Ingester // the metrics unit, when hosted
	LogsIngester      *logsingester.Ingester    // the logs unit, when hosted
	LogsRing          *ring.Ring
	LogsDistributor   *distributor.Logs
	TracesIngester    *tracesingester.Ingester // the traces unit, when hosted
	TracesRing        *ring.Ring
	TracesDistributor *distributor.Traces
	LogQLEngine       *logql.Engine
	Distributor       *distributor.Distributor
	OTLP              *distributor.OTLPListeners
	Queryable         storage.Queryable
	Engine            *promql.Engine
	Bucket            objstore.InstrumentedBucket
	Compactor         *compactor.Compactor
	StoreGatewayRing  *ring.Ring
	Frontend          *frontend.Frontend
	Ruler             *ruler.Ruler
	RuleState         *ruler.RuleState // every ruler's rule state, for the querier's API
	Remediator        *remediator.Remediator

	querierAPI http.Handler // tenant-resolving Prometheus API of the querier
	// currentFederation is the federation config the federator runs.
	currentFederation federation.Config
	apiOnce           sync.Once

	mu       sync.Mutex
	manager  *services.Manager
	services map[string]services.Service
}

// New validates cfg and returns a process ready to Run.
func New(cfg Config, logger log.Logger) (*Canopy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating -data-dir: %w", err)
	}
	guard := api.AdminGuard{Open: len(cfg.Target) == 1 && cfg.Target[0] == All}
	if cfg.AdminTokenFile != "" {
		b, err := os.ReadFile(cfg.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading -auth.admin-token-file: %w", err)
		}
		if guard.Token = strings.TrimSpace(string(b)); guard.Token == "" {
			return nil, fmt.Errorf("-auth.admin-token-file %s is empty", cfg.AdminTokenFile)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Canopy{
		cfg:      cfg,
		logger:   logger,
		reg:      reg,
		resolver: tenant.Resolver{Enabled: cfg.MultitenancyEnabled},
		admin:    guard,
	}, nil
}

// Registry is the process's metrics registry.
func (c *Canopy) Registry() *prometheus.Registry { return c.reg }

// Start initialises the modules of the configured targets and starts them;
// it returns once every service is running. The services run until ctx is
// cancelled or Stop is called: pass a context that outlives the process's
// work, not a start-up timeout.
func (c *Canopy) Start(ctx context.Context) error {
	mm, err := c.setupModules()
	if err != nil {
		return err
	}
	mods := []string{API} // every process serves the operational routes
	for _, t := range c.cfg.Target {
		mods = append(mods, targets[t]...)
	}
	svcs, err := mm.InitModuleServices(mods...)
	if err != nil {
		return err
	}
	list := make([]services.Service, 0, len(svcs))
	for _, s := range svcs {
		list = append(list, s)
	}
	m, err := services.NewManager(list...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.manager, c.services = m, svcs
	c.mu.Unlock()
	m.AddListener(services.NewManagerListener(nil, nil, func(s services.Service) {
		for name, svc := range svcs {
			if svc == s && !errors.Is(s.FailureCase(), ErrSignal) {
				level.Error(c.logger).Log("msg", "module failed", "module", name, "err", s.FailureCase())
			}
		}
		m.StopAsync()
	}))
	if err := m.StartAsync(ctx); err != nil {
		return err
	}
	if err := m.AwaitHealthy(ctx); err != nil {
		m.StopAsync()
		_ = m.AwaitStopped(context.Background())
		return fmt.Errorf("starting modules: %w", firstFailure(m, err))
	}
	level.Info(c.logger).Log("msg", "Canopy started", "targets", fmt.Sprint(c.cfg.Target), "http", c.Server.HTTPListenAddr(), "grpc", c.Server.GRPCListenAddr())
	return nil
}

func firstFailure(m *services.Manager, err error) error {
	for _, s := range m.ServicesByState()[services.Failed] {
		return s.FailureCase()
	}
	return err
}

// Wait blocks until every service has stopped and returns the first failure.
func (c *Canopy) Wait() error {
	_ = c.manager.AwaitStopped(context.Background())
	for _, s := range c.manager.ServicesByState()[services.Failed] {
		return s.FailureCase()
	}
	return nil
}

// Stop stops every service and waits for them.
func (c *Canopy) Stop() error {
	c.mu.Lock()
	m := c.manager
	c.mu.Unlock()
	if m == nil {
		return nil
	}
	m.StopAsync()
	return c.Wait()
}

// Run starts Canopy and blocks until it stops (SIGTERM/SIGINT or a failure).
func (c *Canopy) Run() error {
	if err := c.Start(context.Background()); err != nil {
		return err
	}
	return c.Wait()
}

// servicesToWaitFor lists the services the server must outlive on shutdown.
func (c *Canopy) servicesToWaitFor() []services.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []services.Service
	for name, s := range c.services {
		if name != Server {
			out = append(out, s)
		}
	}
	return out
}

// serverService runs the dskit server. When the server stops (a signal), the
// service ends and the manager stops everything else; on shutdown it waits
// for the other services first, so they can still serve while draining.
type serverService struct {
	services.Service
	srv    *server.Server
	others func() []services.Service
}

func newServerService(srv *server.Server, others func() []services.Service) services.Service {
	s := &serverService{srv: srv, others: others}
	s.Service = services.NewBasicService(nil, s.running, s.stopping)
	return s
}

func (s *serverService) running(ctx context.Context) error {
	errCh := make(chan error, 1)
	go func() { errCh <- s.srv.Run() }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errCh:
		if err == nil {
			// A signal stopped the server: stop the process.
			return ErrSignal
		}
		return err
	}
}

// ErrSignal is what Run returns after SIGTERM or SIGINT stopped the process.
var ErrSignal = errors.New("stopped by signal")

func (s *serverService) stopping(_ error) error {
	// After a signal nothing else has asked the other modules to stop yet.
	others := s.others()
	for _, o := range others {
		o.StopAsync()
	}
	for _, o := range others {
		_ = o.AwaitTerminated(context.Background())
	}
	s.srv.Shutdown()
	return nil
}
