package metricsblocks

import (
	"bytes"
	"context"
	"path"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// goldenBlock1 is a fixed block ID, so that seeds hold a real ULID.
var goldenBlock1 = ulid.MustParse("01HF7Y3C7Z5Q7W9N4D2T8G6R1A")

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

// TestBucketIndexFromMeta: a metrics block's bucket index entry is what its
// meta.json says (the index format itself is pinned in package layout).
func TestBucketIndexFromMeta(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	putMeta(t, bkt, goldenBlock1, 1699992000000, 1699999200000, 3, 10, 1200, CanopyMeta{Tenant: "team-a", Source: SourceCompactor})
	now := time.Unix(1700000000, 0)
	x, res, err := UpdateBucketIndex(context.Background(), bkt, nil, now)
	require.NoError(t, err)
	require.Empty(t, res.Partial)
	require.Empty(t, res.Corrupt)
	require.Equal(t, []layout.BlockRef{{
		ID: goldenBlock1, MinTime: 1699992000000, MaxTime: 1699999200000, UploadedAt: now.Unix(),
		Level: 3, Source: SourceCompactor, Series: 10, Samples: 1200,
	}}, x.Blocks)
}
