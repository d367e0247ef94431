package layout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Fixed block IDs, so that the golden files hold real ULIDs.
var (
	goldenBlock1 = ulid.MustParse("01HF7Y3C7Z5Q7W9N4D2T8G6R1A")
	goldenBlock2 = ulid.MustParse("01HF80AR0Y3J6X8K2M4P9S7V5B")
)

// goldenTime is when the golden bucket index and markers were written.
var goldenTime = time.Unix(1700000000, 0)

// testMeta is the metadata object of the test blocks: the JSON of their
// BlockRef. readTestRef is its ReadRef.
const testMeta = "test-meta.json"

func putRef(t *testing.T, bkt objstore.Bucket, ref BlockRef) {
	t.Helper()
	b, err := json.Marshal(ref)
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(context.Background(), path.Join(ref.ID.String(), testMeta), bytes.NewReader(b)))
}

func readTestRef(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (BlockRef, error) {
	r, err := bkt.Get(ctx, path.Join(id.String(), testMeta))
	if err != nil {
		return BlockRef{}, err
	}
	defer r.Close() //nolint:errcheck // read-only
	var ref BlockRef
	err = json.NewDecoder(r).Decode(&ref)
	return ref, err
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
	require.Equal(t, compact.String(), string(got), "the stored format changed: update README.md and run go test ./pkg/storage/layout -run %s -update", t.Name())
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
				putRef(t, bkt, BlockRef{ID: goldenBlock1, MinTime: 1699992000000, MaxTime: 1699999200000, Level: 1, Source: "ingester", Series: 10, Samples: 1200})
				putRef(t, bkt, BlockRef{ID: goldenBlock2, MinTime: 1699999200000, MaxTime: 1700006400000, Level: 2, Source: "compactor", Series: 12, Samples: 2880})
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
			x, res, err := UpdateBucketIndex(ctx, bkt, nil, goldenTime, readTestRef)
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
