package client

import (
	"sync"

	"google.golang.org/grpc"
)

// Dialer opens a gRPC connection to an address.
type Dialer func(addr string) (*grpc.ClientConn, error)

// Pool keeps one client per ingester address. Safe for concurrent use.
type Pool struct {
	dial    Dialer
	mu      sync.Mutex
	clients map[string]*Client
}

// NewPool returns a pool dialling with dial.
func NewPool(dial Dialer) *Pool {
	return &Pool{dial: dial, clients: map[string]*Client{}}
}

// Client returns the client for addr, dialling on first use. gRPC reconnects
// by itself, so a client stays valid across ingester restarts.
func (p *Pool) Client(addr string) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[addr]; ok {
		return c, nil
	}
	conn, err := p.dial(addr)
	if err != nil {
		return nil, err
	}
	c := NewClient(conn)
	p.clients[addr] = c
	return c, nil
}

// Close closes every client.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.clients {
		_ = c.Close()
		delete(p.clients, addr)
	}
	return nil
}
