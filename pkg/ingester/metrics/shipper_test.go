package metrics

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks/blockstest"
)

// flakyBucket fails every upload while down is set: a bucket outage.
type flakyBucket struct {
	objstore.Bucket
	down    atomic.Bool
	uploads atomic.Int64
}

func (b *flakyBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	if b.down.Load() {
		return errors.New("bucket unavailable (test outage)")
	}
	b.uploads.Add(1)
	return b.Bucket.Upload(ctx, name, r, opts...)
}

func bucketBlocks(t *testing.T, bkt objstore.Bucket, tenant string) []layout.BlockRef {
	t.Helper()
	x, res, err := metricsblocks.UpdateBucketIndex(context.Background(), metricsblocks.TenantBucket(bkt, tenant), nil, time.Now())
	require.NoError(t, err)
	require.Empty(t, res.Corrupt)
	return x.Blocks
}

func TestFlushShipsAndOutageLosesNothing(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	bkt := &flakyBucket{Bucket: fs}
	dir := t.TempDir()
	i := newShippingIngester(t, dir, defaultLimits(), bkt)
	ctx := user.InjectOrgID(context.Background(), "team-a")
	// Inside one 2h block window whatever the wall clock says.
	now := time.Now().UnixMilli()/7200_000*7200_000 - 30*60_000
	for k := range int64(5) {
		_, err := i.Push(ctx, request(now-(4-k)*60_000, "a_one", "a_two"))
		require.NoError(t, err)
	}
	before := query(t, i, "team-a")
	require.Len(t, before["a_one"], 5)

	// Outage: the flush cuts blocks but cannot upload them; they stay.
	bkt.down.Store(true)
	_, _, err = i.FlushAndShip(context.Background())
	require.ErrorContains(t, err, "test outage")
	require.Empty(t, bucketBlocks(t, fs, "team-a"))
	require.Equal(t, before, query(t, i, "team-a"), "data cut into a local block is still served")

	// A restart while the bucket is still down loses nothing either.
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))
	i = newShippingIngester(t, dir, defaultLimits(), bkt)
	require.Equal(t, before, query(t, i, "team-a"))

	// The bucket is back: the next sync (the periodic one started with the
	// ingester, or this one) ships the waiting block.
	bkt.down.Store(false)
	_, _, err = i.FlushAndShip(context.Background())
	require.NoError(t, err)
	got := bucketBlocks(t, fs, "team-a")
	require.Len(t, got, 1)
	require.Equal(t, uint64(2), got[0].Series)
	require.Equal(t, uint64(10), got[0].Samples)
	require.Equal(t, metricsblocks.SourceIngester, got[0].Source)

	// Shipping again uploads nothing: the shipped set survives a restart.
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))
	n := bkt.uploads.Load()
	i = newShippingIngester(t, dir, defaultLimits(), bkt)
	_, shipped, err := i.FlushAndShip(context.Background())
	require.NoError(t, err)
	require.Zero(t, shipped)
	require.Equal(t, n, bkt.uploads.Load())
	b, err := os.ReadFile(filepath.Join(dir, "team-a", shipperFilename))
	require.NoError(t, err)
	require.True(t, strings.Contains(string(b), got[0].ID.String()))
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))
}

func TestFlushOnShutdown(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	i := newShippingIngester(t, t.TempDir(), defaultLimits(), fs)
	_, err = i.Push(user.InjectOrgID(context.Background(), "team-b"), request(time.Now().UnixMilli(), "b_one"))
	require.NoError(t, err)
	require.Empty(t, bucketBlocks(t, fs, "team-b"))
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))
	got := bucketBlocks(t, fs, "team-b")
	require.Len(t, got, 1)
	require.Equal(t, uint64(1), got[0].Samples)
}

func TestBlocksToDeleteKeepsUnshipped(t *testing.T) {
	dir := t.TempDir()
	var bs []*tsdb.Block
	for k := int64(0); k < 3; k++ {
		d := blockstest.Create(t, dir, []blockstest.Series{{
			Labels:  labels.FromStrings("__name__", "m"),
			Samples: []blockstest.Sample{{Ts: k * 7200_000, V: 1}},
		}})
		b, err := tsdb.OpenBlock(nil, d, nil, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		bs = append(bs, b)
	}
	s := &shipper{shipped: map[ulid.ULID]struct{}{bs[0].Meta().ULID: {}, bs[2].Meta().ULID: {}}}
	// Blocks 0 and 1 are past retention; only the shipped one may go.
	now := func() time.Time { return time.UnixMilli(2*7200_000 + 30*60_000) }
	got := blocksToDelete(s, time.Hour, now)(bs)
	require.Equal(t, map[ulid.ULID]struct{}{bs[0].Meta().ULID: {}}, got)
	// Shipping off: retention alone decides.
	got = blocksToDelete(nil, time.Hour, now)(bs)
	require.Len(t, got, 2)
	require.Contains(t, got, bs[1].Meta().ULID)

	// save keeps every shipped block still on disk, wherever it sorts, and
	// forgets only those gone from disk.
	gone := ulid.MustNew(1, nil)
	s.dir = t.TempDir()
	s.shipped[gone] = struct{}{}
	require.True(t, s.hasStale(bs))
	require.NoError(t, s.save(bs))
	require.False(t, s.hasStale(bs))
	require.True(t, s.isShipped(bs[0].Meta().ULID))
	require.True(t, s.isShipped(bs[2].Meta().ULID))
	require.False(t, s.isShipped(gone))
	b, err := os.ReadFile(filepath.Join(s.dir, shipperFilename))
	require.NoError(t, err)
	require.Contains(t, string(b), bs[2].Meta().ULID.String())
	require.NotContains(t, string(b), gone.String())
}
