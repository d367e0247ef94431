package compactor

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks/blockstest"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*mockKV).loop"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// value is the sample of series i at time ts: every replica and every test
// derives it the same way, so merged data can be checked exactly.
func value(i int, ts int64) float64 { return float64(i*1000) + float64(ts/15_000) }

// uploadBlock writes a real block of n series sampled every 15s in
// [mint, maxt) and uploads it as an ingester would.
func uploadBlock(t *testing.T, bkt objstore.Bucket, tenant string, n int, mint, maxt int64, ingester string) layout.BlockRef {
	t.Helper()
	series := make([]blockstest.Series, 0, n)
	for i := range n {
		var ss []blockstest.Sample
		for ts := mint; ts < maxt; ts += 15_000 {
			ss = append(ss, blockstest.Sample{Ts: ts, V: value(i, ts)})
		}
		series = append(series, blockstest.Series{Labels: labels.FromStrings("__name__", "m", "i", string(rune('a'+i))), Samples: ss})
	}
	dir := blockstest.Create(t, t.TempDir(), series)
	m, err := metricsblocks.Upload(context.Background(), metricsblocks.TenantBucket(bkt, tenant), dir, metricsblocks.CanopyMeta{Tenant: tenant, Source: metricsblocks.SourceIngester, Ingester: ingester})
	require.NoError(t, err)
	return layout.BlockRef{ID: m.ULID, MinTime: m.MinTime, MaxTime: m.MaxTime}
}

func newTestCompactor(t *testing.T, bkt objstore.Bucket, limits validation.Limits, now *time.Time) *Compactor {
	t.Helper()
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.InstanceID = "compactor-" + t.Name()
	cfg.Ring.InstanceAddr = "127.0.0.1"
	cfg.Ring.HeartbeatPeriod = 100 * time.Millisecond
	require.NoError(t, cfg.Validate())
	c, err := New(cfg, t.TempDir(), ringconfig.Instance{ID: "compactor", Addr: "127.0.0.1", Port: 9095}, bkt, validation.NewStaticOverrides(limits, nil), testChunkTarget, nil, log.NewNopLogger(), nil)
	require.NoError(t, err)
	c.now = func() time.Time { return *now }
	// Start the ring parts only; tests drive passes with Run.
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), c.ring))
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), c.lifecycler))
	t.Cleanup(func() {
		require.NoError(t, services.StopAndAwaitTerminated(context.Background(), c.lifecycler))
		require.NoError(t, services.StopAndAwaitTerminated(context.Background(), c.ring))
	})
	require.Eventually(t, c.ringHasMe, 5*time.Second, 20*time.Millisecond)
	return c
}

func defaultLimits() validation.Limits {
	var l validation.Limits
	l.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	return l
}

// readAll reads every sample of every live (unmarked) block of a tenant.
func readAll(t *testing.T, bkt objstore.Bucket, tenant string) (map[string][]blockstest.Sample, []layout.BlockRef) {
	t.Helper()
	ctx := context.Background()
	tb := metricsblocks.TenantBucket(bkt, tenant)
	x, err := layout.ReadBucketIndex(ctx, tb)
	require.NoError(t, err)
	live := compactable(x)
	slices.SortFunc(live, func(a, b layout.BlockRef) int { return cmpInt(a.MinTime, b.MinTime) })
	out := map[string][]blockstest.Sample{}
	var dirs []string
	for _, b := range live {
		d := filepath.Join(t.TempDir(), b.ID.String())
		require.NoError(t, objstore.DownloadDir(ctx, log.NewNopLogger(), tb, b.ID.String(), b.ID.String(), d))
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		blk, err := tsdb.OpenBlock(nil, d, nil, nil)
		require.NoError(t, err)
		q, err := tsdb.NewBlockQuerier(blk, -1<<62, 1<<62)
		require.NoError(t, err)
		ss := q.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
		for ss.Next() {
			it := ss.At().Iterator(nil)
			k := ss.At().Labels().String()
			for it.Next() != chunkenc.ValNone {
				ts, v := it.At()
				out[k] = append(out[k], blockstest.Sample{Ts: ts, V: v})
			}
		}
		require.NoError(t, ss.Err())
		require.NoError(t, q.Close())
		require.NoError(t, blk.Close())
	}
	return out, live
}

func TestCompactReplicasAndLevels(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	// 14h of data: three replicas of every 2h block, as RF=3 ingesters ship.
	for w := int64(0); w < 7; w++ {
		for _, ing := range []string{"ingester-1", "ingester-2", "ingester-3"} {
			uploadBlock(t, fs, "team-a", 4, w*2*h, (w+1)*2*h, ing)
		}
	}
	now := time.UnixMilli(14 * h)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, []string{"team-a"}, res.Tenants)

	got, live := readAll(t, fs, "team-a")
	// The first 12h window is one block; the last 2h stays a (deduplicated) 2h block.
	require.Len(t, live, 2)
	require.Equal(t, int64(0), live[0].MinTime)
	require.Equal(t, 12*h-15_000+1, live[0].MaxTime)
	require.Equal(t, metricsblocks.SourceCompactor, live[0].Source)
	require.Equal(t, uint64(4*12*240), live[0].Samples, "replicas deduplicated: each sample once")
	require.Equal(t, 12*h, live[1].MinTime)
	require.Len(t, got, 4)
	for i := range 4 {
		s := got[labels.FromStrings("__name__", "m", "i", string(rune('a'+i))).String()]
		require.Len(t, s, 14*240)
		for k, smp := range s {
			require.Equal(t, int64(k)*15_000, smp.Ts)
			require.Equal(t, value(i, smp.Ts), smp.V)
		}
	}

	// Sources are only marked; they go after the deletion delay.
	x, err := layout.ReadBucketIndex(ctx, metricsblocks.TenantBucket(fs, "team-a"))
	require.NoError(t, err)
	require.Len(t, x.DeletionMarks, 21+6, "21 ingester blocks, and the six deduplicated 2h blocks the 12h block was made of")
	now = now.Add(12*time.Hour + time.Minute)
	res = c.Run(ctx, false)
	require.Empty(t, res.Errors)
	x, err = layout.ReadBucketIndex(ctx, metricsblocks.TenantBucket(fs, "team-a"))
	require.NoError(t, err)
	require.Len(t, x.Blocks, 2)
	require.Empty(t, x.DeletionMarks)

	// A later block completes the day: 12h + 12h → 24h.
	uploadBlock(t, fs, "team-a", 4, 14*h, 24*h, "ingester-1")
	uploadBlock(t, fs, "team-a", 4, 24*h, 26*h, "ingester-1")
	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	got, live = readAll(t, fs, "team-a")
	require.Len(t, live, 2)
	require.Equal(t, int64(0), live[0].MinTime)
	require.Equal(t, 4, readLevel(t, fs, live[0]), "ingester 1, replicas merged 2, 12h 3, 24h 4")
	require.Len(t, got[labels.FromStrings("__name__", "m", "i", "a").String()], 26*240)
}

func readLevel(t *testing.T, bkt objstore.Bucket, b layout.BlockRef) int {
	m, err := metricsblocks.ReadMeta(context.Background(), metricsblocks.TenantBucket(bkt, "team-a"), b.ID)
	require.NoError(t, err)
	return m.Compaction.Level
}

func TestRetentionDeletesExactlyExpiredBlocks(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	day := 24 * h
	var refs []layout.BlockRef
	for d := int64(0); d < 5; d++ { // five daily blocks, already compacted size
		refs = append(refs, uploadBlock(t, fs, "team-r", 2, d*day, (d+1)*day, "x"))
	}
	limits := defaultLimits()
	limits.CompactorBlocksRetentionPeriod = model.Duration(48 * time.Hour)
	// Now is day 5 + 1h: blocks whose newest sample is older than day 3 + 1h
	// (days 0, 1, 2) expire; day 3's block still has samples inside retention.
	now := time.UnixMilli(5*day + h)
	c := newTestCompactor(t, fs, limits, &now)
	res := c.Run(ctx, false)
	require.Empty(t, res.Errors)
	x, err := layout.ReadBucketIndex(ctx, metricsblocks.TenantBucket(fs, "team-r"))
	require.NoError(t, err)
	marked := x.DeletionMarked()
	for i, r := range refs {
		_, ok := marked[r.ID]
		require.Equal(t, i < 3, ok, "block of day %d", i)
	}
	now = now.Add(13 * time.Hour)
	require.Empty(t, c.Run(ctx, false).Errors)
	x, err = layout.ReadBucketIndex(ctx, metricsblocks.TenantBucket(fs, "team-r"))
	require.NoError(t, err)
	require.Len(t, x.Blocks, 2)
	require.Equal(t, refs[3].ID, x.Blocks[0].ID)
	require.Equal(t, refs[4].ID, x.Blocks[1].ID)
}

func TestCorruptBlockIsSkippedAndPartialsCleaned(t *testing.T) {
	root := t.TempDir()
	fs, err := filesystem.NewBucket(root)
	require.NoError(t, err)
	ctx := context.Background()
	a := uploadBlock(t, fs, "team-c", 3, 0, 2*h, "ingester-1")
	b := uploadBlock(t, fs, "team-c", 3, 0, 2*h, "ingester-2")
	// Damage b's only chunk segment.
	seg := filepath.Join(root, "team-c", "metrics", b.ID.String(), "chunks", "000001")
	raw, err := os.ReadFile(seg)
	require.NoError(t, err)
	for i := 8; i < len(raw); i++ {
		raw[i] = 0xff
	}
	require.NoError(t, os.WriteFile(seg, raw, 0o644))
	// And leave an abandoned partial upload.
	partial := "01J00000000000000000000000"
	tb := metricsblocks.TenantBucket(fs, "team-c")
	require.NoError(t, tb.Upload(ctx, partial+"/index", strings.NewReader("half")))

	now := time.Now().Add(25 * time.Hour)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors, "a corrupt block never fails the tenant")
	x, err := layout.ReadBucketIndex(ctx, tb)
	require.NoError(t, err)
	require.Len(t, x.NoCompactMarks, 1)
	require.Equal(t, b.ID, x.NoCompactMarks[0].ID)
	require.True(t, strings.HasPrefix(x.NoCompactMarks[0].Reason, "corrupt"), x.NoCompactMarks[0].Reason)
	require.Empty(t, x.DeletionMarks, "a's merge partner is corrupt: a stays as it is")
	ids := []string{}
	for _, blk := range x.Blocks {
		ids = append(ids, blk.ID.String())
	}
	require.ElementsMatch(t, []string{a.ID.String(), b.ID.String()}, ids)
	ok, err := tb.Exists(ctx, partial+"/index")
	require.NoError(t, err)
	require.False(t, ok, "partial upload older than the delay is deleted")
	// A second pass does not try the corrupt block again.
	require.Empty(t, c.Run(ctx, true).Errors)
}
