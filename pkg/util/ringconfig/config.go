// Package ringconfig is the one ring configuration every Canopy ring uses
// (ingesters today; store-gateways, compactors and rulers later). It keeps the
// flag surface small and maps onto dskit's ring and lifecycler configs.
package ringconfig

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/netutil"
	"github.com/grafana/dskit/ring"
)

// Store names accepted by -<prefix>ring.store.
const (
	StoreMemberlist = "memberlist"
	StoreInMemory   = "inmemory"
)

// Config is the shared ring configuration. The zero value is not useful: call
// RegisterFlags (or flagext.DefaultValues) first.
type Config struct {
	Store             string        `yaml:"store"`
	HeartbeatPeriod   time.Duration `yaml:"heartbeat_period"`
	HeartbeatTimeout  time.Duration `yaml:"heartbeat_timeout"`
	ReplicationFactor int           `yaml:"replication_factor"`
	NumTokens         int           `yaml:"num_tokens"`
	InstanceID        string        `yaml:"instance_id"`
	InstanceAddr      string        `yaml:"instance_addr"`
	InstancePort      int           `yaml:"instance_port"`
	InstanceZone      string        `yaml:"instance_availability_zone"`
	FinalSleep        time.Duration `yaml:"final_sleep"`
	MinReadyDuration  time.Duration `yaml:"min_ready_duration"`
}

// RegisterFlags registers the ring flags under prefix, e.g. "ingester.".
// The replication factor flag is <prefix>replication-factor.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	f.StringVar(&c.Store, prefix+"ring.store", StoreMemberlist, "Where the ring is kept: memberlist (gossip between Canopy processes, see -memberlist.join) or inmemory (this process only).")
	f.DurationVar(&c.HeartbeatPeriod, prefix+"ring.heartbeat-period", 5*time.Second, "How often an instance refreshes its heartbeat in the ring.")
	f.DurationVar(&c.HeartbeatTimeout, prefix+"ring.heartbeat-timeout", time.Minute, "An instance whose last heartbeat is older than this is unhealthy and skipped.")
	f.IntVar(&c.ReplicationFactor, prefix+"replication-factor", 1, "How many instances hold each series. 1 suits a single process; 3 is the setting for a cluster (writes need a quorum of 2).")
	f.IntVar(&c.NumTokens, prefix+"ring.num-tokens", 128, "Tokens each instance owns in the ring.")
	f.StringVar(&c.InstanceID, prefix+"ring.instance-id", host, "This instance's ID in the ring; must be unique and stable across restarts.")
	f.StringVar(&c.InstanceAddr, prefix+"ring.instance-addr", "", "Address other processes reach this instance's gRPC server on. Empty: the first private network interface, else loopback.")
	f.IntVar(&c.InstancePort, prefix+"ring.instance-port", 0, "Port advertised in the ring. 0: -server.grpc-listen-port.")
	f.StringVar(&c.InstanceZone, prefix+"ring.instance-availability-zone", "", "Availability zone of this instance, for zone-aware replication.")
	f.DurationVar(&c.FinalSleep, prefix+"ring.final-sleep", 0, "How long to wait after leaving the ring before exiting.")
	f.DurationVar(&c.MinReadyDuration, prefix+"ring.min-ready-duration", 0, "How long an instance waits after becoming ACTIVE before /ready succeeds.")
}

// Validate checks the ring configuration.
func (c *Config) Validate() error {
	if c.Store != StoreMemberlist && c.Store != StoreInMemory {
		return fmt.Errorf("ring store %q: must be %s or %s", c.Store, StoreMemberlist, StoreInMemory)
	}
	if c.ReplicationFactor < 1 {
		return errors.New("replication factor must be at least 1")
	}
	if c.NumTokens < 1 {
		return errors.New("ring num tokens must be at least 1")
	}
	if c.HeartbeatPeriod <= 0 || c.HeartbeatTimeout <= c.HeartbeatPeriod {
		return errors.New("ring heartbeat timeout must be longer than the heartbeat period")
	}
	return nil
}

// KVConfig returns the dskit KV configuration. memberlistKV is called lazily
// when the store is memberlist.
func (c *Config) KVConfig(memberlistKV func() (*memberlist.KV, error)) kv.Config {
	cfg := kv.Config{Store: c.Store}
	cfg.MemberlistKV = memberlistKV
	return cfg
}

// RingConfig returns the read-side dskit ring configuration.
func (c *Config) RingConfig(memberlistKV func() (*memberlist.KV, error)) ring.Config {
	return ring.Config{
		KVStore:              c.KVConfig(memberlistKV),
		HeartbeatTimeout:     c.HeartbeatTimeout,
		ReplicationFactor:    c.ReplicationFactor,
		ZoneAwarenessEnabled: c.InstanceZone != "",
	}
}

// LifecyclerConfig returns the dskit lifecycler configuration for an instance
// listening for gRPC on grpcPort. tokensFile may be empty.
func (c *Config) LifecyclerConfig(memberlistKV func() (*memberlist.KV, error), grpcPort int, tokensFile string, logger log.Logger) (ring.LifecyclerConfig, error) {
	addr := c.InstanceAddr
	if addr == "" {
		a, err := netutil.GetFirstAddressOf(netutil.PrivateNetworkInterfacesWithFallback([]string{"eth0", "en0", "lo"}, logger), logger, false)
		if err != nil {
			a = "127.0.0.1"
		}
		addr = a
	}
	if ip := net.ParseIP(addr); ip == nil {
		if _, err := net.LookupHost(addr); err != nil {
			return ring.LifecyclerConfig{}, fmt.Errorf("ring instance address %q: %w", addr, err)
		}
	}
	port := c.InstancePort
	if port == 0 {
		port = grpcPort
	}
	return ring.LifecyclerConfig{
		RingConfig:               c.RingConfig(memberlistKV),
		NumTokens:                c.NumTokens,
		HeartbeatPeriod:          c.HeartbeatPeriod,
		HeartbeatTimeout:         c.HeartbeatTimeout,
		MinReadyDuration:         c.MinReadyDuration,
		FinalSleep:               c.FinalSleep,
		TokensFilePath:           tokensFile,
		Zone:                     c.InstanceZone,
		UnregisterOnShutdown:     true,
		ReadinessCheckRingHealth: false,
		Addr:                     addr,
		Port:                     port,
		ID:                       c.InstanceID,
		ListenPort:               port,
	}, nil
}
