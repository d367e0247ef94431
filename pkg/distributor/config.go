package distributor

import (
	"errors"
	"flag"
	"time"

	"github.com/grafana/dskit/flagext"
)

// Config configures a distributor.
type Config struct {
	MaxRecvMsgSize          int                    `yaml:"max_recv_msg_size"`
	MaxDecompressedSize     int                    `yaml:"max_decompressed_size"`
	RemoteTimeout           time.Duration          `yaml:"remote_timeout"`
	OTLPGRPCListenAddress   string                 `yaml:"otlp_grpc_listen_address"`
	OTLPHTTPListenAddress   string                 `yaml:"otlp_http_listen_address"`
	OTLPPromoteResourceAttr flagext.StringSliceCSV `yaml:"otlp_promote_resource_attributes"`
	OTLPKeepIdentifyingAttr bool                   `yaml:"otlp_keep_identifying_resource_attributes"`
	OTLPDisableTargetInfo   bool                   `yaml:"otlp_disable_target_info"`
	IdleTenantTimeout       time.Duration          `yaml:"idle_tenant_timeout"`
	MaxInflightPushRequests int                    `yaml:"max_inflight_push_requests"`
	MaxInflightPushBytes    int                    `yaml:"max_inflight_push_requests_bytes"`

	// ZoneAwareRing is the ingester ring's -ingester.ring.zone-awareness-enabled,
	// set by whoever builds the distributor: with it, a ring of no more
	// instances than the replication factor may still place a key on some
	// of them only.
	ZoneAwareRing bool `yaml:"-"`
}

// RegisterFlags registers the distributor flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&c.MaxRecvMsgSize, "distributor.max-recv-msg-size", 100<<20, "Largest push request body accepted, in bytes, as sent (compressed).")
	f.IntVar(&c.MaxDecompressedSize, "distributor.max-decompressed-size", 200<<20, "Largest push request accepted after decompression, in bytes (protects against decompression bombs).")
	f.DurationVar(&c.RemoteTimeout, "distributor.remote-timeout", 5*time.Second, "Timeout of a push from a distributor to an ingester.")
	f.StringVar(&c.OTLPGRPCListenAddress, "distributor.otlp.grpc-listen-address", ":4317", "Address of the OTLP gRPC receiver. Empty disables it.")
	f.StringVar(&c.OTLPHTTPListenAddress, "distributor.otlp.http-listen-address", ":4318", "Address of the OTLP HTTP receiver (/v1/metrics). Empty disables it; /otlp/v1/metrics on the main HTTP port stays.")
	f.Var(&c.OTLPPromoteResourceAttr, "distributor.otlp.promote-resource-attributes", "Comma-separated OTel resource attributes copied onto every series as labels (as Prometheus's promote_resource_attributes).")
	f.BoolVar(&c.OTLPKeepIdentifyingAttr, "distributor.otlp.keep-identifying-resource-attributes", false, "Also keep service.name, service.namespace and service.instance.id as labels on target_info.")
	f.IntVar(&c.MaxInflightPushRequests, "distributor.instance-limits.max-inflight-push-requests", 2000, "Most push requests (remote write, OTLP over HTTP) this distributor handles at once; beyond it pushes are answered 503 with Retry-After. 0 is unlimited.")
	f.IntVar(&c.MaxInflightPushBytes, "distributor.instance-limits.max-inflight-push-requests-bytes", 512<<20, "Most bytes of push request bodies, as received and decompressed, this distributor holds at once, counted as they arrive (never from a declared length); beyond it pushes are answered 503 with Retry-After. 0 is unlimited.")
	f.DurationVar(&c.IdleTenantTimeout, "distributor.idle-tenant-timeout", 20*time.Minute, "A tenant that has pushed nothing to this distributor for this long has its rate limiter and per-tenant metric series dropped.")
	f.BoolVar(&c.OTLPDisableTargetInfo, "distributor.otlp.disable-target-info", false, "Do not write the target_info series carrying resource attributes.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxRecvMsgSize <= 0 || c.MaxDecompressedSize <= 0 {
		return errors.New("distributor message size limits must be positive")
	}
	if c.MaxInflightPushRequests < 0 || c.MaxInflightPushBytes < 0 {
		return errors.New("-distributor.instance-limits.* must not be negative")
	}
	if c.IdleTenantTimeout <= 0 {
		return errors.New("-distributor.idle-tenant-timeout must be positive")
	}
	if c.RemoteTimeout <= 0 {
		return errors.New("distributor remote timeout must be positive")
	}
	return nil
}
