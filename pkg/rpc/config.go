package rpc

import (
	"context"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/dskit/grpcclient"
	"github.com/grafana/dskit/middleware"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// DefaultMaxMessageSize is the default largest message a client sends or
// receives.
const DefaultMaxMessageSize = 256 << 20

// ClientConfig configures the clients of one kind of peer (ingesters,
// store-gateways): dskit's gRPC client settings (TLS, message sizes,
// compression, backoff) and how the pool keeps its clients.
type ClientConfig struct {
	GRPC grpcclient.Config `yaml:",inline"`

	HealthCheck        bool          `yaml:"health_check_enabled"`
	HealthCheckTimeout time.Duration `yaml:"health_check_timeout"`
	CheckInterval      time.Duration `yaml:"pool_check_interval"`

	prefix string // of the flags, for errors
}

// RegisterFlagsWithPrefix registers the flags under prefix (e.g.
// "ingester.client"). The defaults keep what Canopy did before the flags:
// 256MiB messages, no TLS.
func (c *ClientConfig) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.prefix = prefix
	c.GRPC.RegisterFlagsWithPrefix(prefix, f)
	// dskit's default is 100MiB: raise it, in the help text too.
	for _, name := range []string{".grpc-max-recv-msg-size", ".grpc-max-send-msg-size"} {
		fl := f.Lookup(prefix + name)
		_ = fl.Value.Set(strconv.Itoa(DefaultMaxMessageSize))
		fl.DefValue = fl.Value.String()
	}
	f.BoolVar(&c.HealthCheck, prefix+".health-check-enabled", true, "Health-check every pooled client each -"+prefix+".pool-check-interval and drop one that fails (a new one is dialled on the next call).")
	f.DurationVar(&c.HealthCheckTimeout, prefix+".health-check-timeout", time.Second, "Timeout of one health check.")
	f.DurationVar(&c.CheckInterval, prefix+".pool-check-interval", 15*time.Second, "How often the client pool drops the clients of instances that left the ring and, when enabled, health-checks the others.")
}

// Validate checks the configuration; prefix names the flags in errors.
func (c *ClientConfig) Validate(prefix string) error {
	if err := c.GRPC.Validate(); err != nil {
		return fmt.Errorf("-%s.grpc-compression: %w", prefix, err)
	}
	t := c.GRPC.TLS
	if !c.GRPC.TLSEnabled && (t.CAPath != "" || t.CertPath != "" || t.KeyPath != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		return fmt.Errorf("-%s.tls-* flags are set but -%s.tls-enabled is not: the client would dial without TLS", prefix, prefix)
	}
	if c.CheckInterval <= 0 || c.HealthCheckTimeout <= 0 {
		return fmt.Errorf("-%s.pool-check-interval and -%s.health-check-timeout must be positive", prefix, prefix)
	}
	return nil
}

// noKeepalive undoes the keepalive pings grpcclient's options send every 20s
// even without calls: Canopy's servers keep dskit's defaults
// (-server.grpc.keepalive.min-time-between-pings=5m, no pings without
// streams) and would close such connections as too many pings. Connections
// keep gRPC's default: no keepalive pings. A later option wins.
var noKeepalive = grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Duration(math.MaxInt64), Timeout: 20 * time.Second})

// Dial returns a connection to addr configured by c: TLS, message sizes and
// backoff from the flags, Canopy's codec forced on every call, and the
// tenant propagated in the gRPC metadata. Connecting is lazy: an unreachable
// address fails the first call, not Dial.
func (c *ClientConfig) Dial(addr string) (*grpc.ClientConn, error) {
	opts, err := c.GRPC.DialOption(
		[]grpc.UnaryClientInterceptor{c.explainUnary, middleware.ClientUserHeaderInterceptor},
		[]grpc.StreamClientInterceptor{c.explainStream, middleware.StreamClientUserHeaderInterceptor},
		nil)
	if err != nil {
		return nil, fmt.Errorf("client TLS (-%s.tls-*): %w", c.prefix, err)
	}
	opts = append(opts, grpc.WithDefaultCallOptions(CallOption()), noKeepalive)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", addr, err)
	}
	return conn, nil
}

// DefaultClientConfig returns the flags' defaults, for tests and tools.
func DefaultClientConfig() ClientConfig {
	var c ClientConfig
	c.RegisterFlagsWithPrefix("client", flag.NewFlagSet("", flag.PanicOnError))
	return c
}

// explain names the flag to check when a connection fails for a TLS
// mismatch, keeping the error's code (Unavailable: another replica may
// answer).
func (c *ClientConfig) explain(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return err
	}
	msg := st.Message()
	switch {
	case !c.GRPC.TLSEnabled && strings.Contains(msg, "server preface"):
		return status.Errorf(codes.Unavailable, "%s (does the server require TLS? see -%s.tls-enabled)", msg, c.prefix)
	case c.GRPC.TLSEnabled && (strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:")):
		return status.Errorf(codes.Unavailable, "%s (TLS handshake: see -%s.tls-ca-path, -%s.tls-server-name and the server's -server.grpc-tls-* flags)", msg, c.prefix, c.prefix)
	}
	return err
}

func (c *ClientConfig) explainUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return c.explain(invoker(ctx, method, req, reply, cc, opts...))
}

func (c *ClientConfig) explainStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	return s, c.explain(err)
}
