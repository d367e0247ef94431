package rpc

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	ringclient "github.com/grafana/dskit/ring/client"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// Pool keeps one connection per instance of a ring, on dskit's
// ring/client.Pool. It is a services.Service: while it runs, it drops the
// connections of instances that left the ring (or stopped heartbeating) and,
// when enabled, those failing a health check, each pool-check-interval; the
// next call to a dropped address dials again. Stopping it closes every
// connection. Safe for concurrent use.
type Pool struct {
	services.Service
	pool *ringclient.Pool

	mu    sync.Mutex
	conns map[*conn]struct{} // every open connection, for Close
}

// conn is a pooled connection: the health client the pool checks and the
// connection the service clients wrap. Close is idempotent.
type conn struct {
	grpc_health_v1.HealthClient
	cc   *grpc.ClientConn
	pool *Pool
	once sync.Once
	err  error
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.err = c.cc.Close()
		c.pool.mu.Lock()
		delete(c.pool.conns, c)
		c.pool.mu.Unlock()
	})
	return c.err
}

// NewPool returns a pool of connections to the instances of r dialled as cfg
// says; a nil r never drops instances. name ("ingester", "store-gateway")
// names the pool in logs, its service and the pool label of
// canopy_rpc_clients.
func NewPool(name string, cfg ClientConfig, r ring.ReadRing, logger log.Logger, reg prometheus.Registerer) *Pool {
	p := &Pool{conns: map[*conn]struct{}{}}
	clients := promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name:        "canopy_rpc_clients",
		Help:        "Open connections of a gRPC client pool.",
		ConstLabels: prometheus.Labels{"pool": name},
	})
	factory := ringclient.PoolAddrFunc(func(addr string) (ringclient.PoolClient, error) {
		cc, err := cfg.Dial(addr)
		if err != nil {
			return nil, err
		}
		c := &conn{HealthClient: grpc_health_v1.NewHealthClient(cc), cc: cc, pool: p}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		return c, nil
	})
	var discovery ringclient.PoolServiceDiscovery
	if r != nil {
		discovery = ringclient.NewRingServiceDiscovery(r)
	}
	p.pool = ringclient.NewPool(name, ringclient.PoolConfig{
		CheckInterval:      cfg.CheckInterval,
		HealthCheckEnabled: cfg.HealthCheck,
		HealthCheckTimeout: cfg.HealthCheckTimeout,
	}, discovery, factory, clients, log.With(logger, "component", name+"-client-pool"))
	p.Service = services.NewIdleService(
		func(ctx context.Context) error { return services.StartAndAwaitRunning(ctx, p.pool) },
		func(error) error {
			err := services.StopAndAwaitTerminated(context.Background(), p.pool)
			p.Close()
			return err
		}).WithName(name + " client pool")
	return p
}

// Conn returns the connection to addr, dialling it on first use. gRPC
// reconnects by itself, so a connection stays valid across restarts of the
// instance.
func (p *Pool) Conn(addr string) (*grpc.ClientConn, error) {
	c, err := p.pool.GetClientFor(addr)
	if err != nil {
		return nil, err
	}
	cc, ok := c.(*conn)
	if !ok {
		return nil, fmt.Errorf("client pool holds a %T", c)
	}
	return cc.cc, nil
}

// Addresses returns the addresses the pool holds a connection to.
func (p *Pool) Addresses() []string { return p.pool.RegisteredAddresses() }

// Close forgets and closes every connection. The pool stays usable: the next
// call dials again. Stopping the service closes them too.
func (p *Pool) Close() {
	for _, addr := range p.pool.RegisteredAddresses() {
		p.pool.RemoveClientFor(addr) // closes in the background
	}
	p.mu.Lock()
	open := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		open = append(open, c)
	}
	p.mu.Unlock()
	for _, c := range open {
		_ = c.Close() // and now, so none outlives Close
	}
}
