package storegateway

import (
	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canopy-observability/canopy/pkg/rpc"
)

// Pool keeps one connection per store-gateway of the ring, apart from the
// ingesters' (see rpc.Pool: it drops store-gateways that left the ring or
// fail health checks). It is a services.Service that must run for the
// dropping. Safe for concurrent use.
type Pool struct {
	*rpc.Pool
}

// NewPool returns a pool of the store-gateways of r dialled as cfg says.
func NewPool(cfg rpc.ClientConfig, r ring.ReadRing, logger log.Logger, reg prometheus.Registerer) *Pool {
	return &Pool{rpc.NewPool("store-gateway", cfg, r, logger, reg)}
}

// Client returns the client of the store-gateway at addr, dialling it on
// first use.
func (p *Pool) Client(addr string) (*Client, error) {
	conn, err := p.Conn(addr)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}
