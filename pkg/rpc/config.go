package rpc

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/grafana/dskit/grpcclient"
	"github.com/grafana/dskit/middleware"
	"google.golang.org/grpc"
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
}

// RegisterFlagsWithPrefix registers the flags under prefix (e.g.
// "ingester.client"). The defaults keep what Canopy did before the flags:
// 256MiB messages, no TLS.
func (c *ClientConfig) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
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
	if c.CheckInterval <= 0 || c.HealthCheckTimeout <= 0 {
		return fmt.Errorf("-%s.pool-check-interval and -%s.health-check-timeout must be positive", prefix, prefix)
	}
	return nil
}

// Dial returns a connection to addr configured by c: TLS, message sizes and
// backoff from the flags, Canopy's codec forced on every call, and the
// tenant propagated in the gRPC metadata. Connecting is lazy: an unreachable
// address fails the first call, not Dial.
func (c *ClientConfig) Dial(addr string) (*grpc.ClientConn, error) {
	opts, err := c.GRPC.DialOption(
		[]grpc.UnaryClientInterceptor{middleware.ClientUserHeaderInterceptor},
		[]grpc.StreamClientInterceptor{middleware.StreamClientUserHeaderInterceptor},
		nil)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	opts = append(opts, grpc.WithDefaultCallOptions(grpc.ForceCodec(Codec{})))
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
