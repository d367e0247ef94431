package client

import (
	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canopy-observability/canopy/pkg/rpc"
)

// Pool keeps one connection per ingester of the ring (see rpc.Pool: it drops
// ingesters that left the ring or fail health checks). It is a
// services.Service that must run for the dropping. Safe for concurrent use.
type Pool struct {
	*rpc.Pool
}

// NewPool returns a pool of the ingesters of r dialled as cfg says.
func NewPool(cfg rpc.ClientConfig, r ring.ReadRing, logger log.Logger, reg prometheus.Registerer) *Pool {
	return &Pool{rpc.NewPool("ingester", cfg, r, logger, reg)}
}

// Client returns the client of the ingester at addr, dialling it on first
// use. gRPC reconnects by itself, so a client stays valid across ingester
// restarts.
func (p *Pool) Client(addr string) (*Client, error) {
	conn, err := p.Conn(addr)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}
