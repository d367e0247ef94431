package metrics

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/util/promtest"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// TestIdleTenantIsFlushedThenClosed: a tenant that stopped pushing has its
// head cut and shipped after -ingester.idle-tenant-timeout, and once the
// local retention deleted its last block its TSDB, directory and metric
// series are gone; a later push opens it again. Another tenant is untouched.
func TestIdleTenantIsFlushedThenClosed(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.HeartbeatPeriod = 100 * time.Millisecond
	cfg.Retention = 2 * time.Hour
	cfg.ShipInterval = time.Hour // shipping only when the test flushes
	require.NoError(t, cfg.Validate())
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	i, err := New(cfg, dir, dir+".tokens", ringconfig.Instance{ID: "idle-test", Addr: "127.0.0.1", Port: 9095},
		validation.NewStaticOverrides(defaultLimits(), nil), fs, nil, log.NewNopLogger(), reg)
	require.NoError(t, err)
	var mu sync.Mutex
	clock := time.Now()
	i.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), i))
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()

	old := time.Now().Add(-10 * time.Hour).UnixMilli() // past the 2h retention once in a block
	a := user.InjectOrgID(context.Background(), "team-a")
	_, err = i.Push(a, request(old, "a_total"))
	require.NoError(t, err)
	advance(30 * time.Minute)
	_, err = i.Push(user.InjectOrgID(context.Background(), "team-b"), request(time.Now().UnixMilli(), "b_total"))
	require.NoError(t, err)
	appended := func(tenant string) int { return promtest.SeriesWithLabel(reg, "tenant", tenant) }
	require.Positive(t, appended("team-a"))

	// 45 minutes: nobody is idle yet.
	advance(15 * time.Minute)
	i.handleIdle(context.Background())
	require.Equal(t, uint64(1), i.getTSDB("team-a").Head().NumSeries())

	// 75 minutes after its push, team-a is idle: its head is cut and shipped.
	advance(30 * time.Minute)
	i.handleIdle(context.Background())
	require.Zero(t, i.getTSDB("team-a").Head().NumSeries())
	require.Len(t, bucketBlocks(t, fs, "team-a"), 1)
	require.Equal(t, uint64(1), i.getTSDB("team-b").Head().NumSeries(), "team-b pushed 45 minutes ago")

	// Its block is local until the TSDB's block reload (every second)
	// applies the retention to it; meanwhile the tenant stays open.
	if len(i.getTSDB("team-a").Blocks()) > 0 {
		i.handleIdle(context.Background())
		require.NotNil(t, i.getTSDB("team-a"))
	}
	require.Eventually(t, func() bool { return len(i.getTSDB("team-a").Blocks()) == 0 }, 30*time.Second, 50*time.Millisecond,
		"the shipped block past retention is deleted locally")
	i.handleIdle(context.Background())
	require.Nil(t, i.getTSDB("team-a"), "closed")
	_, err = os.Stat(filepath.Join(dir, "team-a"))
	require.True(t, os.IsNotExist(err), "directory removed")
	require.Zero(t, appended("team-a"), "per-tenant metric series dropped")
	require.NotNil(t, i.getTSDB("team-b"))

	// A new push opens the tenant again; its old data is in the bucket.
	_, err = i.Push(a, request(time.Now().UnixMilli(), "a_total"))
	require.NoError(t, err)
	require.Len(t, query(t, i, "team-a")["a_total"], 1)
}
