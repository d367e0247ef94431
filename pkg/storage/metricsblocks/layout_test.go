package metricsblocks

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks/blockstest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// createTestBlock writes a real Prometheus block of n series with one sample
// per minute in [mint, maxt) into dir and returns its directory.
func createTestBlock(t testing.TB, dir string, n int, mint, maxt int64) string {
	t.Helper()
	series := make([]blockstest.Series, 0, n)
	for i := range n {
		var s []blockstest.Sample
		for ts := mint; ts < maxt; ts += 60_000 {
			s = append(s, blockstest.Sample{Ts: ts, V: float64(i) + float64(ts)/1000})
		}
		series = append(series, blockstest.Series{Labels: labels.FromStrings("__name__", "up", "job", "j", "instance", string(rune('a'+i%26))+strings.Repeat("x", i/26)), Samples: s})
	}
	return blockstest.Create(t, dir, series)
}

func TestLayoutGolden(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	fs, err := filesystem.NewBucket(filepath.Join(root, "bucket"))
	require.NoError(t, err)
	tb := TenantBucket(fs, "team-a")

	b1 := createTestBlock(t, filepath.Join(root, "local"), 10, 0, 2*3600_000)
	m, err := Upload(ctx, tb, b1, CanopyMeta{Tenant: "team-a", Source: SourceIngester, Ingester: "ingester-1"})
	require.NoError(t, err)
	require.NoError(t, layout.WriteMark(ctx, tb, m.ULID, layout.DeletionMarkFilename, "compacted", time.Unix(1700000000, 0)))
	require.NoError(t, layout.WriteMark(ctx, tb, m.ULID, layout.NoCompactMarkFilename, "test", time.Unix(1700000000, 0)))
	x, res, err := UpdateBucketIndex(ctx, tb, nil, time.Unix(1700000000, 0))
	require.NoError(t, err)
	require.Empty(t, res.Partial)
	require.Empty(t, res.Corrupt)
	require.NoError(t, layout.WriteBucketIndex(ctx, tb, x))

	var names []string
	require.NoError(t, fs.Iter(ctx, "", func(n string) error { names = append(names, n); return nil }, objstore.WithRecursiveIter()))
	sort.Strings(names)
	ulidRe := regexp.MustCompile(`[0-9A-HJKMNP-TV-Z]{26}`)
	got := ulidRe.ReplaceAllString(strings.Join(names, "\n")+"\n", "<ULID>")

	metaJSON, err := os.ReadFile(filepath.Join(root, "bucket", "team-a", "metrics", m.ULID.String(), MetaFilename))
	require.NoError(t, err)
	got += "\n# meta.json\n" + ulidRe.ReplaceAllString(string(metaJSON), "<ULID>")

	golden := filepath.Join("testdata", "layout.txt")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), got, "object layout changed: update README.md and run go test ./pkg/storage/metricsblocks -run TestLayoutGolden -update")

	// The index round-trips.
	back, err := layout.ReadBucketIndex(ctx, tb)
	require.NoError(t, err)
	require.Equal(t, x, back)
	require.Len(t, back.Blocks, 1)
	require.Equal(t, layout.BlockRef{ID: m.ULID, MinTime: 0, MaxTime: 2*3600_000 - 60_000 + 1, UploadedAt: 1700000000, Level: 1, Source: SourceIngester, Series: 10, Samples: 1200}, back.Blocks[0])
}

func TestUpdateBucketIndexPartialAndCorrupt(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	fs, err := filesystem.NewBucket(root)
	require.NoError(t, err)
	tb := TenantBucket(fs, "t")

	good := createTestBlock(t, filepath.Join(t.TempDir()), 3, 0, 3600_000)
	gm, err := Upload(ctx, tb, good, CanopyMeta{Tenant: "t", Source: SourceIngester})
	require.NoError(t, err)

	partial := ulid.MustNew(1, nil)
	require.NoError(t, tb.Upload(ctx, partial.String()+"/index", strings.NewReader("x")))
	corrupt := ulid.MustNew(2, nil)
	require.NoError(t, tb.Upload(ctx, corrupt.String()+"/meta.json", strings.NewReader("{not json")))

	x, res, err := UpdateBucketIndex(ctx, tb, nil, time.Now())
	require.NoError(t, err)
	require.Len(t, x.Blocks, 1)
	require.Equal(t, gm.ULID, x.Blocks[0].ID)
	require.Equal(t, []ulid.ULID{partial}, res.Partial)
	require.Contains(t, res.Corrupt, corrupt)

	// Delete leaves nothing of the block, and a second delete is harmless.
	require.NoError(t, layout.WriteMark(ctx, tb, gm.ULID, layout.DeletionMarkFilename, "test", time.Now()))
	require.NoError(t, Delete(ctx, tb, gm.ULID))
	require.NoError(t, Delete(ctx, tb, gm.ULID))
	x, _, err = UpdateBucketIndex(ctx, tb, x, time.Now())
	require.NoError(t, err)
	require.Empty(t, x.Blocks)
	require.Empty(t, x.DeletionMarks)
}

func TestReadBucketIndexMissing(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	_, err = layout.ReadBucketIndex(context.Background(), TenantBucket(fs, "nobody"))
	require.ErrorIs(t, err, layout.ErrNoBucketIndex)
}

func TestUpdateBucketIndexReusesKnownMarks(t *testing.T) {
	ctx := context.Background()
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	tb := TenantBucket(fs, "t")
	m, err := Upload(ctx, tb, createTestBlock(t, t.TempDir(), 1, 0, 3600_000), CanopyMeta{Tenant: "t", Source: SourceIngester})
	require.NoError(t, err)
	require.NoError(t, layout.WriteMark(ctx, tb, m.ULID, layout.DeletionMarkFilename, "test", time.Unix(1700000000, 0)))
	x, _, err := UpdateBucketIndex(ctx, tb, nil, time.Now())
	require.NoError(t, err)
	require.Len(t, x.DeletionMarks, 1)

	// Damage the global marker: an index that knows it does not read it again,
	// a fresh scan does (and says which object is bad).
	require.NoError(t, tb.Upload(ctx, layout.MarkersDirname+"/"+m.ULID.String()+"-"+layout.DeletionMarkFilename, strings.NewReader("{bad")))
	again, _, err := UpdateBucketIndex(ctx, tb, x, time.Now())
	require.NoError(t, err)
	require.Equal(t, x.DeletionMarks, again.DeletionMarks)
	_, _, err = UpdateBucketIndex(ctx, tb, nil, time.Now())
	require.ErrorContains(t, err, m.ULID.String()+"-"+layout.DeletionMarkFilename)
}
