package blocks

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

// Fixed block IDs, so that the golden files hold real ULIDs.
var (
	goldenBlock1 = ulid.MustParse("01HF7Y3C7Z5Q7W9N4D2T8G6R1A")
	goldenBlock2 = ulid.MustParse("01HF80AR0Y3J6X8K2M4P9S7V5B")
)

// goldenTime is when the golden bucket index and markers were written.
var goldenTime = time.Unix(1700000000, 0)

// putMeta writes a block's meta.json (and nothing else of it: the bucket
// index reads no more).
func putMeta(t *testing.T, bkt objstore.Bucket, id ulid.ULID, mint, maxt int64, level int, series, samples uint64, canopy CanopyMeta) {
	t.Helper()
	m := &Meta{BlockMeta: tsdb.BlockMeta{
		ULID: id, MinTime: mint, MaxTime: maxt, Version: metaVersion1,
		Stats:      tsdb.BlockStats{NumSeries: series, NumSamples: samples, NumChunks: series},
		Compaction: tsdb.BlockMetaCompaction{Level: level, Sources: []ulid.ULID{id}},
	}, Canopy: canopy}
	b, err := m.Encode()
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(context.Background(), path.Join(id.String(), MetaFilename), bytes.NewReader(b)))
}

// checkGolden compares the JSON object got with testdata/<name>: the object
// must be exactly the golden file made compact, followed by suffix. The
// golden file is indented to be read; -update rewrites it from got.
func checkGolden(t *testing.T, name string, got []byte, suffix string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		var out bytes.Buffer
		require.NoError(t, json.Indent(&out, bytes.TrimSuffix(got, []byte(suffix)), "", "  "))
		out.WriteByte('\n')
		require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, want))
	compact.WriteString(suffix)
	require.Equal(t, compact.String(), string(got), "the stored format changed: update README.md and run go test ./pkg/storage/blocks -run %s -update", t.Name())
}

func readObject(t *testing.T, bkt objstore.BucketReader, name string) []byte {
	t.Helper()
	r, err := bkt.Get(context.Background(), name)
	require.NoError(t, err)
	defer r.Close() //nolint:errcheck // read-only
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// TestBucketIndexGolden pins the JSON of bucket-index.json.gz as the
// compactor writes it (UpdateBucketIndex, then WriteBucketIndex), and
// checks that the golden file reads back as the index that was written.
func TestBucketIndexGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		golden string
		fill   func(t *testing.T, bkt objstore.Bucket)
	}{
		{
			name:   "blocks and markers",
			golden: "bucket-index.json",
			fill: func(t *testing.T, bkt objstore.Bucket) {
				ctx := context.Background()
				putMeta(t, bkt, goldenBlock1, 1699992000000, 1699999200000, 1, 10, 1200, CanopyMeta{Tenant: "team-a", Source: SourceIngester, Ingester: "ingester-1"})
				putMeta(t, bkt, goldenBlock2, 1699999200000, 1700006400000, 2, 12, 2880, CanopyMeta{Tenant: "team-a", Source: SourceCompactor})
				require.NoError(t, WriteMark(ctx, bkt, goldenBlock1, DeletionMarkFilename, "compacted", goldenTime))
				require.NoError(t, WriteMark(ctx, bkt, goldenBlock2, NoCompactMarkFilename, "corrupt index", goldenTime))
			},
		},
		{
			name:   "no blocks",
			golden: "bucket-index-empty.json",
			fill:   func(*testing.T, objstore.Bucket) {},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			bkt := objstore.NewInMemBucket()
			tc.fill(t, bkt)
			x, res, err := UpdateBucketIndex(ctx, bkt, nil, goldenTime)
			require.NoError(t, err)
			require.Empty(t, res.Partial)
			require.Empty(t, res.Corrupt)
			require.NoError(t, WriteBucketIndex(ctx, bkt, x))

			gz, err := gzip.NewReader(bytes.NewReader(readObject(t, bkt, BucketIndexFilename)))
			require.NoError(t, err, "the bucket index is gzip")
			got, err := io.ReadAll(gz)
			require.NoError(t, err)
			checkGolden(t, tc.golden, got, "\n")

			// The golden file, as another version would have written it,
			// reads back as this index.
			want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
			require.NoError(t, err)
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			_, err = w.Write(want)
			require.NoError(t, err)
			require.NoError(t, w.Close())
			other := objstore.NewInMemBucket()
			require.NoError(t, other.Upload(ctx, BucketIndexFilename, &buf))
			back, err := ReadBucketIndex(ctx, other)
			require.NoError(t, err)
			require.Equal(t, x, back)
		})
	}
}

// TestMarkerGolden pins the JSON of each marker kind, written in the
// block's directory and in markers/, and checks that the golden file reads
// back as the marker that was written.
func TestMarkerGolden(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		reason string
	}{
		{kind: DeletionMarkFilename, reason: "compacted"},
		{kind: NoCompactMarkFilename, reason: "corrupt index"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			ctx := context.Background()
			bkt := objstore.NewInMemBucket()
			require.NoError(t, WriteMark(ctx, bkt, goldenBlock1, tc.kind, tc.reason, goldenTime))
			inBlock := readObject(t, bkt, path.Join(goldenBlock1.String(), tc.kind))
			checkGolden(t, tc.kind, inBlock, "")
			require.Equal(t, string(inBlock), string(readObject(t, bkt, globalMarkerName(goldenBlock1, tc.kind))), "both copies of the marker are the same")

			want, err := os.ReadFile(filepath.Join("testdata", tc.kind))
			require.NoError(t, err)
			other := objstore.NewInMemBucket()
			require.NoError(t, other.Upload(ctx, globalMarkerName(goldenBlock1, tc.kind), bytes.NewReader(want)))
			marks, err := ListMarks(ctx, other, tc.kind, nil)
			require.NoError(t, err)
			require.Equal(t, map[ulid.ULID]Mark{goldenBlock1: {ID: goldenBlock1, Time: goldenTime.Unix(), Reason: tc.reason, Version: 1}}, marks)
		})
	}
}
