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
		r := &chunkReader{bkt: bkt, tenant: "t", id: id, cache: newPageCache(1<<20, prometheus.NewRegistry()), pool: chunkenc.NewPool()}
		c, err := r.chunk(context.Background(), chunks.Meta{Ref: chunks.ChunkRef(ref % (1 << 33))})
		if err == nil {
			it := c.Iterator(nil)
			for it.Next() != chunkenc.ValNone {
			}
		}
	})
}

// FuzzSymbolTable reads a symbol table from arbitrary index bytes and looks
// every symbol up: a damaged index is an error, never a panic.
func FuzzSymbolTable(f *testing.F) {
	// Two symbols, "a" and "bc", and a CRC.
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 2, 1, 'a', 2, 'b', 'c', 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		bkt := objstore.NewInMemBucket()
		if err := bkt.Upload(context.Background(), "index", bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		r := &objectReader{bkt: bkt, name: "index", key: "t/index", size: int64(len(b)), pageSize: 8, readAhead: 1, cache: newPageCache(1<<20, prometheus.NewRegistry())}
		s, err := newSymbolTable(context.Background(), r, 0)
		if err != nil {
			return
		}
		for i := range min(s.count, 1000) {
			_, _ = s.lookup(context.Background(), uint32(i))
		}
		if err := r.pinSection(context.Background(), 0, r.size); err == nil && len(r.pinned) < 8 {
			t.Fatalf("pinned %d bytes of a section", len(r.pinned))
		}
	})
}
