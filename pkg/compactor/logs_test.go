package compactor

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// uploadLogBlock ships a log block whose one entry is at ts.
func uploadLogBlock(t *testing.T, bkt *filesystem.Bucket, tenant string, ts time.Time) ulid.ULID {
	t.Helper()
	chunk, err := logchunk.Encode(nil, []logchunk.Entry{{Timestamp: ts.UnixNano(), Line: "a line"}})
	require.NoError(t, err)
	id := ulid.MustNew(ulid.Timestamp(ts), rand.Reader)
	dir := t.TempDir()
	_, err = logblock.Write(dir, id, []logblock.Stream{{Labels: labels.FromStrings("app", "a"), Chunks: [][]byte{chunk}}}, "ingester", "i")
	require.NoError(t, err)
	require.NoError(t, logblock.Upload(context.Background(), bkt, tenant, dir, id))
	return id
}

// TestLogsRetention: a log block whose newest entry is past the tenant's
// logs retention is deleted, whole; newer blocks and tenants without a
// retention keep theirs.
func TestLogsRetention(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old := uploadLogBlock(t, fs, "team-l", now.Add(-49*time.Hour))
	recent := uploadLogBlock(t, fs, "team-l", now.Add(-47*time.Hour))
	uploadLogBlock(t, fs, "team-forever", now.Add(-1000*time.Hour))

	limits := defaultLimits()
	limits.LogsRetentionPeriod = model.Duration(48 * time.Hour)
	forever := limits
	forever.LogsRetentionPeriod = 0
	c := newTestCompactor(t, fs, limits, &now)
	c.limits = validation.NewStaticOverrides(limits, map[string]*validation.Limits{"team-forever": &forever})
	res := c.Run(ctx, false)
	require.Empty(t, res.Errors)

	metas, err := logblock.ListBlocks(ctx, fs, "team-l")
	require.NoError(t, err)
	require.Len(t, metas, 1)
	require.Equal(t, recent, metas[0].ULID)
	var left []string
	require.NoError(t, fs.Iter(ctx, "team-l/logs/"+old.String()+"/", func(n string) error { left = append(left, n); return nil }))
	require.Empty(t, left, "every object of the expired block is gone")
	metas, err = logblock.ListBlocks(ctx, fs, "team-forever")
	require.NoError(t, err)
	require.Len(t, metas, 1, "no retention: kept")
}
