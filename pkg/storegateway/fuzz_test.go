package storegateway

import (
	"bytes"
	"context"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/thanos-io/objstore"
)

// FuzzChunkReader decodes chunks from arbitrary segment bytes at arbitrary
// references: a damaged segment in the bucket is an error, never a panic.
func FuzzChunkReader(f *testing.F) {
	f.Add([]byte{0x03, 0x01, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00}, uint64(0))
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint64(8))
	f.Fuzz(func(t *testing.T, segment []byte, ref uint64) {
		bkt := objstore.NewInMemBucket()
		id := ulid.MustNew(1, nil)
		if err := bkt.Upload(context.Background(), id.String()+"/chunks/000001", bytes.NewReader(segment)); err != nil {
			t.Fatal(err)
		}
		r := &chunkReader{ctx: context.Background(), bkt: bkt, tenant: "t", id: id, cache: newPageCache(1<<20, prometheus.NewRegistry()), pool: chunkenc.NewPool()}
		c, _, err := r.ChunkOrIterable(chunks.Meta{Ref: chunks.ChunkRef(ref % (1 << 33))})
		if err == nil {
			it := c.Iterator(nil)
			for it.Next() != chunkenc.ValNone {
			}
		}
	})
}
