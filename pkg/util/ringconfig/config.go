// Package ringconfig is the one ring configuration every Canopy ring uses
// (ingesters, store-gateways, compactors; rulers later) and the process
// identity (Instance) their instances advertise. It keeps the
// flag surface small and maps onto dskit's ring and lifecycler configs.
package ringconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
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
	// ZoneAwarenessEnabled spreads a key's replicas over zones.
	ZoneAwarenessEnabled bool          `yaml:"zone_awareness_enabled"`
	FinalSleep           time.Duration `yaml:"final_sleep"`
	MinReadyDuration     time.Duration `yaml:"min_ready_duration"`
}

// RegisterFlags registers the ring flags under prefix, e.g. "ingester.".
// The replication factor flag is <prefix>replication-factor. The instance
// flags are overrides of the process identity (Instance) for this ring only.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Store, prefix+"ring.store", StoreMemberlist, "Where the ring is kept: memberlist (gossip between Canopy processes, see -memberlist.join) or inmemory (this process only).")
	f.DurationVar(&c.HeartbeatPeriod, prefix+"ring.heartbeat-period", 5*time.Second, "How often an instance refreshes its heartbeat in the ring.")
	f.DurationVar(&c.HeartbeatTimeout, prefix+"ring.heartbeat-timeout", time.Minute, "An instance whose last heartbeat is older than this is unhealthy and skipped.")
	f.IntVar(&c.ReplicationFactor, prefix+"replication-factor", 1, "How many instances hold each series. 1 suits a single process; 3 is the setting for a cluster (writes need a quorum of 2).")
	f.IntVar(&c.NumTokens, prefix+"ring.num-tokens", 128, "Tokens each instance owns in the ring.")
	f.StringVar(&c.InstanceID, prefix+"ring.instance-id", "", "This instance's ID in this ring only. Empty: -instance-id.")
	f.StringVar(&c.InstanceAddr, prefix+"ring.instance-addr", "", "Address advertised in this ring only. Empty: -instance-addr.")
	f.IntVar(&c.InstancePort, prefix+"ring.instance-port", 0, "Port advertised in this ring only. 0: -instance-port.")
	f.StringVar(&c.InstanceZone, prefix+"ring.instance-availability-zone", "", "Availability zone in this ring only. Empty: -instance-availability-zone.")
	f.BoolVar(&c.ZoneAwarenessEnabled, prefix+"ring.zone-awareness-enabled", false, "Place the replicas of each key in different availability zones (instances must set -instance-availability-zone).")
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
		ZoneAwarenessEnabled: c.ZoneAwarenessEnabled,
	}
}

// LifecyclerConfig returns the dskit lifecycler configuration of this
// process (self, resolved: see Instance.Resolve) in this ring. tokensFile may
// be empty.
func (c *Config) LifecyclerConfig(memberlistKV func() (*memberlist.KV, error), self Instance, tokensFile string) (ring.LifecyclerConfig, error) {
	me, err := c.merge(self)
	if err != nil {
		return ring.LifecyclerConfig{}, err
	}
	return ring.LifecyclerConfig{
		RingConfig:               c.RingConfig(memberlistKV),
		NumTokens:                c.NumTokens,
		HeartbeatPeriod:          c.HeartbeatPeriod,
		HeartbeatTimeout:         c.HeartbeatTimeout,
		MinReadyDuration:         c.MinReadyDuration,
		FinalSleep:               c.FinalSleep,
		TokensFilePath:           tokensFile,
		Zone:                     me.Zone,
		UnregisterOnShutdown:     true,
		ReadinessCheckRingHealth: false,
		Addr:                     me.Addr,
		Port:                     me.Port,
		ID:                       me.ID,
		ListenPort:               me.Port,
	}, nil
}

// Lifecycler is what NewLifecycler needs besides the ring's Config.
type Lifecycler struct {
	Name, Key       string // ring name (metrics, logs) and KV key
	Self            Instance
	MemberlistKV    func() (*memberlist.KV, error) // may be nil unless the store is memberlist
	TokensFile      string                         // empty: tokens are not kept across restarts
	Flusher         ring.FlushTransferer           // nil: nothing to flush when leaving
	FlushOnShutdown bool
}

// NewLifecycler builds the lifecycler of one instance in one ring: every
// Canopy ring's instances are built here, so they all advertise the process
// identity the same way. The caller must watch the returned service (a
// services.FailureWatcher) so a ring failure fails the component.
func (c *Config) NewLifecycler(l Lifecycler, logger log.Logger, reg prometheus.Registerer) (*ring.Lifecycler, error) {
	lcCfg, err := c.LifecyclerConfig(l.MemberlistKV, l.Self, l.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("%s ring: %w", l.Name, err)
	}
	flusher := l.Flusher
	if flusher == nil {
		flusher = ring.NewNoopFlushTransferer()
	}
	lc, err := ring.NewLifecycler(lcCfg, flusher, l.Name, l.Key, l.FlushOnShutdown, logger, reg)
	if err != nil {
		return nil, fmt.Errorf("creating %s lifecycler: %w", l.Name, err)
	}
	return lc, nil
}

// NewRing builds the read side of a ring (the client that watches it).
// strategy nil is dskit's default replication strategy.
func (c *Config) NewRing(name, key string, memberlistKV func() (*memberlist.KV, error), strategy ring.ReplicationStrategy, logger log.Logger, reg prometheus.Registerer) (*ring.Ring, error) {
	rc := c.RingConfig(memberlistKV)
	store, err := kv.NewClient(rc.KVStore, ring.GetCodec(), kv.RegistererWithKVName(reg, name+"-ring"), logger)
	if err != nil {
		return nil, fmt.Errorf("%s ring store: %w", name, err)
	}
	if strategy == nil {
		strategy = ring.NewDefaultReplicationStrategy()
	}
	r, err := ring.NewWithStoreClientAndStrategy(rc, name, key, store, strategy, reg, logger)
	if err != nil {
		return nil, fmt.Errorf("%s ring: %w", name, err)
	}
	return r, nil
}

// StopLifecycler stops a lifecycler (leaving the ring) and waits for it. A
// lifecycler stopped while it was still joining fails with the cancellation
// of its own context: that is a normal stop, not an error.
func StopLifecycler(lc *ring.Lifecycler) error {
	err := services.StopAndAwaitTerminated(context.Background(), lc)
	if isCancellation(err) {
		return nil
	}
	return err
}

// LifecyclerFailure is what a component's running loop returns when the
// failure watcher of its lifecycler reports err: nil when the component is
// stopping (ctx done) or the lifecycler failed only because it was being
// stopped, else err naming the ring.
func LifecyclerFailure(ctx context.Context, ring string, err error) error {
	if ctx.Err() != nil || isCancellation(err) {
		return nil
	}
	return fmt.Errorf("%s ring lifecycler: %w", ring, err)
}

// isCancellation reports whether err is a context cancellation. (The
// memberlist store formats the cause into its message, so errors.Is cannot
// always see it.)
func isCancellation(err error) bool {
	return err != nil && (errors.Is(err, context.Canceled) || strings.Contains(err.Error(), context.Canceled.Error()))
}

// LocalLimit converts a cluster-wide per-tenant limit into one instance's
// share: each key lives on rf of the n healthy instances.
func LocalLimit(global, rf, n int) int {
	if n <= 0 {
		n = 1
	}
	if rf > n {
		rf = n
	}
	local := (global*rf + n - 1) / n
	if local < 1 {
		local = 1
	}
	return local
}
