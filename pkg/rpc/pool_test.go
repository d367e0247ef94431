package rpc_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/canopy-observability/canopy/pkg/rpc"
)

// membersRing is a ring whose healthy instances the test sets.
type membersRing struct {
	ring.ReadRing // nil: only GetAllHealthy is called

	mu    sync.Mutex
	addrs []string
}

func (r *membersRing) set(addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = addrs
}

func (r *membersRing) GetAllHealthy(ring.Operation) (ring.ReplicationSet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rs ring.ReplicationSet
	for _, a := range r.addrs {
		rs.Instances = append(rs.Instances, ring.InstanceDesc{Addr: a})
	}
	return rs, nil
}

// serveHealth serves only the gRPC health service, as every Canopy process
// does, and returns its address and health server.
func serveHealth(t *testing.T) (string, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(rpc.ServerOption())
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), hs
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// TestPoolDropsDepartedAndUnhealthy: the pool drops the connection of an
// instance that left the ring and of one failing its health check, keeps
// the others, dials a dropped address again when asked, and closes
// everything when stopped.
func TestPoolDropsDepartedAndUnhealthy(t *testing.T) {
	a, healthA := serveHealth(t)
	b, _ := serveHealth(t)
	c, _ := serveHealth(t)
	r := &membersRing{}
	r.set(a, b, c)

	cfg := rpc.DefaultClientConfig()
	cfg.CheckInterval = 10 * time.Millisecond
	cfg.HealthCheckTimeout = time.Second
	reg := prometheus.NewRegistry()
	p := rpc.NewPool("ingester", cfg, r, log.NewNopLogger(), reg)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), p))

	for _, addr := range []string{a, b, c} {
		_, err := p.Conn(addr)
		require.NoError(t, err)
	}
	require.Equal(t, sorted([]string{a, b, c}), sorted(p.Addresses()))
	requireClients(t, reg, 3)

	// b leaves the ring.
	r.set(a, c)
	require.Eventually(t, func() bool { return len(p.Addresses()) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, sorted([]string{a, c}), sorted(p.Addresses()))

	// a stays in the ring but fails its health check.
	healthA.SetServingStatus("", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	require.Eventually(t, func() bool { return len(p.Addresses()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{c}, p.Addresses())
	requireClients(t, reg, 1)

	// A call to an address dropped once dials again (b rejoined the ring).
	r.set(b, c)
	_, err := p.Conn(b)
	require.NoError(t, err)
	require.Equal(t, sorted([]string{b, c}), sorted(p.Addresses()))

	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), p))
	require.Empty(t, p.Addresses())
	requireClients(t, reg, 0)
}

func requireClients(t *testing.T, reg *prometheus.Registry, n int) {
	t.Helper()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP canopy_rpc_clients Open connections of a gRPC client pool.
# TYPE canopy_rpc_clients gauge
canopy_rpc_clients{pool="ingester"} %d
`, n)), "canopy_rpc_clients"))
}
