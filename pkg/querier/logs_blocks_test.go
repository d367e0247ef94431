package querier

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// TestLogsForgetsReplacedBlocks: a block the compactor marked for deletion
// is no longer read once the tenant's list is read again, and its index
// leaves memory.
func TestLogsForgetsReplacedBlocks(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	upload := func(ts int64) ulid.ULID {
		return uploadLogBlock(t, bkt, "t", map[string][]logchunk.Entry{"a": {{Timestamp: ts, Line: "x"}}})
	}
	a, b := upload(1), upload(2)
	now := time.Unix(1000, 0)
	l := NewLogs(nil, nil, bkt, 0, 10*time.Second)
	l.now = func() time.Time { return now }
	blocks, err := l.openBlocksOf(ctx, "t", 0, 10)
	require.NoError(t, err)
	require.Len(t, blocks, 2)

	require.NoError(t, layout.WriteMark(ctx, layout.TenantBucket(bkt, "t", logblock.Signal), a, layout.DeletionMarkFilename, "compacted", now))
	blocks, err = l.openBlocksOf(ctx, "t", 0, 10)
	require.NoError(t, err)
	require.Len(t, blocks, 2, "the list is read at most every 10s")
	now = now.Add(11 * time.Second)
	blocks, err = l.openBlocksOf(ctx, "t", 0, 10)
	require.NoError(t, err)
	require.Len(t, blocks, 1)
	require.Equal(t, b, blocks[0].Meta.ULID)
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Len(t, l.blocks, 1)
}

// openBlocksOf opens the blocks of tenantID overlapping [start, end).
func (l *Logs) openBlocksOf(ctx context.Context, tenantID string, start, end int64) ([]*logblock.Block, error) {
	metas, err := l.blockMetas(ctx, tenantID, start, end)
	if err != nil {
		return nil, err
	}
	return l.openBlocks(ctx, tenantID, metas)
}

// uploadLogBlock writes a block of tenant's streams, {app=<key>} each
// with its entries in one chunk, into bkt and returns its ID.
func uploadLogBlock(t *testing.T, bkt objstore.Bucket, tenant string, streams map[string][]logchunk.Entry) ulid.ULID {
	t.Helper()
	var ss []logblock.Stream
	for app, es := range streams {
		c, err := logchunk.Encode(nil, es)
		require.NoError(t, err)
		ss = append(ss, logblock.Stream{Labels: labels.FromStrings("app", app), Chunks: [][]byte{c}})
	}
	id := ulid.MustNew(ulid.Now(), rand.Reader)
	dir := t.TempDir()
	_, err := logblock.Write(dir, id, ss, "ingester", "i")
	require.NoError(t, err)
	require.NoError(t, logblock.Upload(context.Background(), bkt, tenant, dir, id))
	return id
}
