package unit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*mockKV).loop"),
		goleak.IgnoreAnyFunction("github.com/grafana/dskit/kv/consul.(*Client).cas"),
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*Client).WatchKey"),
	)
}

// toy is the instance of a toy signal: values pushed, cut (every value at
// once) and shipped as one object per tenant.
type toy struct {
	tenant string

	mu      sync.Mutex
	open    []string
	cut     []string
	shipped bool
}

// encode is a toy WAL record: tenant, NUL, value.
func encode(tenant, v string) []byte { return []byte(tenant + "\x00" + v) }

type toyUnit struct {
	*Base[*toy]
	failShip bool
}

func newToy(t *testing.T, dir string, bkt objstore.Bucket, flushOnShutdown bool) *toyUnit {
	t.Helper()
	u := buildToy(t, dir, bkt, flushOnShutdown)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), u))
	return u
}

func buildToy(t *testing.T, dir string, bkt objstore.Bucket, flushOnShutdown bool) *toyUnit {
	t.Helper()
	var ring ringconfig.Config
	ring.RegisterFlags("toy.", flag.NewFlagSet("", flag.PanicOnError))
	ring.Store = ringconfig.StoreInMemory
	ring.HeartbeatPeriod = 100 * time.Millisecond
	ring.HeartbeatTimeout = time.Minute
	u := &toyUnit{}
	reg := prometheus.NewRegistry()
	b, err := New(Config{
		Signal:           "toy",
		Ring:             ring,
		Lifecycler:       ringconfig.Lifecycler{Name: "toy-ingester", Key: "toy-ingester", Self: ringconfig.Instance{ID: "toy-test", Addr: "127.0.0.1", Port: 9095}, TokensFile: dir + ".tokens"},
		Dir:              dir,
		Bucket:           bkt,
		Settings:         Settings{ShipInterval: time.Hour, ShipThreshold: 1 << 20, CheckpointPeriod: time.Hour, FlushOnShutdown: flushOnShutdown},
		CutCheckInterval: time.Hour,
		ReplayedItems:    "values",
		ShipMsg:          "shipping toys",
		ShippingOff:      "toy shipping is off",
		Block:            "toy",
	}, Hooks[*toy]{
		NewInstance: func(tenant string) *toy { return &toy{tenant: tenant} },
		Replay: func(rec []byte, instanceOf func(string) *toy) (int, error) {
			tenant, v, ok := bytes.Cut(rec, []byte{0})
			if !ok {
				return 0, errors.New("no tenant")
			}
			in := instanceOf(string(tenant))
			in.mu.Lock()
			defer in.mu.Unlock()
			in.open = append(in.open, string(v))
			return 1, nil
		},
		Cut: func(bool) {
			for _, in := range u.Instances() {
				in.mu.Lock()
				u.AddUnshipped(len(in.open))
				in.cut, in.open = append(in.cut, in.open...), nil
				in.mu.Unlock()
			}
		},
		DropShipped: func(*toy, time.Time, time.Duration) {},
		Ship: func(ctx context.Context, in *toy) (bool, error) {
			if u.failShip {
				return false, errors.New("bucket down")
			}
			in.mu.Lock()
			defer in.mu.Unlock()
			if len(in.cut) == 0 {
				return false, nil
			}
			in.shipped = true
			return true, u.Bucket().Upload(ctx, in.tenant, strings.NewReader(strings.Join(in.cut, ",")))
		},
		Snapshot: func(in *toy) Records {
			in.mu.Lock()
			vs := slices.Concat(in.cut, in.open)
			in.mu.Unlock()
			if in.shipped || len(vs) == 0 {
				return nil
			}
			return func(emit func([]byte) error) error {
				for _, v := range vs {
					if err := emit(encode(in.tenant, v)); err != nil {
						return err
					}
				}
				return nil
			}
		},
	}, log.NewNopLogger(), reg)
	require.NoError(t, err)
	u.Base = b
	return u
}

func (u *toyUnit) push(tenant, v string) error {
	return u.Append(tenant, func(in *toy) ([][]byte, error) {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.open = append(in.open, v)
		return [][]byte{encode(tenant, v)}, nil
	})
}

func (u *toyUnit) values(tenant string) []string {
	in, ok := u.Instance(tenant)
	if !ok {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := slices.Concat(in.cut, in.open)
	slices.Sort(out)
	return out
}

func stop(t *testing.T, u *toyUnit) {
	t.Helper()
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), u))
}

// TestCheckpointKeepsEveryAcknowledgedPush: pushes racing checkpoints each
// end up in memory and in the WAL on the same side of the checkpoint's
// segment, so a restart finds every push acknowledged, once.
func TestCheckpointKeepsEveryAcknowledgedPush(t *testing.T) {
	dir := t.TempDir()
	u := newToy(t, dir, nil, false)
	var (
		wg   sync.WaitGroup
		want []string
	)
	for w := range 4 {
		for k := range 200 {
			want = append(want, fmt.Sprintf("%d-%03d", w, k))
		}
		wg.Go(func() {
			for k := range 200 {
				require.NoError(t, u.push("t", fmt.Sprintf("%d-%03d", w, k)))
			}
		})
	}
	for range 5 {
		require.NoError(t, u.Checkpoint())
	}
	wg.Wait()
	slices.Sort(want)
	require.Equal(t, want, u.values("t"))
	stop(t, u)
	require.ErrorContains(t, u.push("t", "late"), "toy ingester is stopping")

	u = newToy(t, dir, nil, false)
	require.Equal(t, want, u.values("t"))
	require.NoError(t, u.Checkpoint())
	require.Equal(t, 1.0, testutil.ToFloat64(u.metrics.checkpoints))
	stop(t, u)
	u = newToy(t, dir, nil, false)
	defer stop(t, u)
	require.Equal(t, want, u.values("t"))
}

func TestFlushAndShip(t *testing.T) {
	u := newToy(t, t.TempDir(), nil, true)
	require.NoError(t, u.push("a", "1"))
	tenants, shipped, err := u.FlushAndShip(context.Background())
	require.EqualError(t, err, "toy shipping is off")
	require.Equal(t, 1, tenants)
	require.Zero(t, shipped)
	stop(t, u)

	bkt := objstore.NewInMemBucket()
	u = newToy(t, t.TempDir(), bkt, true)
	require.NoError(t, u.push("a", "1"))
	require.NoError(t, u.push("b", "2"))
	u.failShip = true
	_, shipped, err = u.FlushAndShip(context.Background())
	require.ErrorContains(t, err, "tenant a: bucket down")
	require.ErrorContains(t, err, "tenant b: bucket down")
	require.Zero(t, shipped)
	require.Equal(t, 2.0, testutil.ToFloat64(u.metrics.shipFailures))
	u.failShip = false
	require.NoError(t, u.push("a", "3"))
	// Leaving the ring flushes: every tenant's values in one object.
	stop(t, u)
	require.Equal(t, map[string][]byte{"a": []byte("1,3"), "b": []byte("2")}, bkt.Objects())
}

func TestEvery(t *testing.T) {
	u := buildToy(t, t.TempDir(), nil, false)
	ticks := make(chan struct{})
	u.Every(time.Millisecond, func(ctx context.Context) {
		select {
		case ticks <- struct{}{}:
		case <-ctx.Done():
		}
	})
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), u))
	defer stop(t, u)
	for range 3 {
		<-ticks
	}
}
