package storegateway

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/encoding"
	"github.com/prometheus/prometheus/tsdb/index"
)

// Prometheus's index reader assumes its bytes are memory-mapped: a symbol
// lookup takes a slice of the whole file, and a postings lookup a slice of
// the whole postings offset table. Over the page cache, such a slice is a
// copy of the whole range, for every lookup. So a bucket block's index
// reads series through its own symbol table (below), whose lookups touch
// only the few bytes of one symbol group, and keeps its postings offset
// table — read by every postings and label-values lookup, a small part of
// the index — in memory (objectReader.pin).

// symbolFactor is the sampling of Prometheus's symbol table: the position
// of every 32nd symbol is kept; a lookup walks from the one before.
const symbolFactor = 32

// maxSymbolCacheSlots bounds a block's cache of looked-up symbols: at most
// about a megabyte per open block when full.
const maxSymbolCacheSlots = 1 << 14

// symbolTable looks symbols of a V2+ index up through the page cache.
// Recently looked-up symbols are kept in a direct-mapped cache: every series
// repeats its label names, and a query decodes the same values again and
// again (once per shard of a sharded query).
type symbolTable struct {
	r       *objectReader
	end     int64   // end of the symbols, before the section's CRC
	offsets []int64 // position of every symbolFactor-th symbol
	count   int
	cache   []atomic.Pointer[symbolEntry] // length a power of two
}

type symbolEntry struct {
	ref uint32
	sym string
}

// newSymbolTable reads the symbol section at off: a 4-byte length, a 4-byte
// symbol count, the symbols (uvarint length, bytes), a CRC32.
func newSymbolTable(r *objectReader, off int64) (*symbolTable, error) {
	if off+8 > r.size {
		return nil, fmt.Errorf("symbol table at %d is past the end of the index (%d bytes)", off, r.size)
	}
	h := r.Range(int(off), int(off+8))
	length := int64(binary.BigEndian.Uint32(h))
	count := int(binary.BigEndian.Uint32(h[4:]))
	end := off + 4 + length
	if end+4 > r.size || int64(count) > length {
		return nil, fmt.Errorf("symbol table at %d: %d symbols in %d bytes do not fit the index (%d bytes)", off, count, length, r.size)
	}
	slots := 1
	for slots < count && slots < maxSymbolCacheSlots {
		slots <<= 1
	}
	s := &symbolTable{r: r, end: end, count: count, offsets: make([]int64, 0, count/symbolFactor+1), cache: make([]atomic.Pointer[symbolEntry], slots)}
	pos := off + 8
	for i := range count {
		if i%symbolFactor == 0 {
			s.offsets = append(s.offsets, pos)
		}
		l, n, err := s.uvarint(pos)
		if err != nil {
			return nil, fmt.Errorf("symbol %d: %w", i, err)
		}
		pos += int64(n) + int64(l)
		if pos > end {
			return nil, fmt.Errorf("symbol %d runs past the symbol table's end", i)
		}
	}
	return s, nil
}

func (s *symbolTable) uvarint(pos int64) (uint64, int, error) {
	b := s.r.Range(int(pos), int(min(pos+binary.MaxVarintLen32, s.end)))
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, fmt.Errorf("bad symbol length at %d", pos)
	}
	return v, n, nil
}

// lookup returns symbol o (its sequence number, as V2 indexes refer to
// symbols).
func (s *symbolTable) lookup(_ context.Context, o uint32) (string, error) {
	if int(o) >= s.count {
		return "", fmt.Errorf("unknown symbol %d (the index has %d)", o, s.count)
	}
	slot := &s.cache[int(o)&(len(s.cache)-1)]
	if e := slot.Load(); e != nil && e.ref == o {
		return e.sym, nil
	}
	g := int(o) / symbolFactor
	stop := s.end
	if g+1 < len(s.offsets) {
		stop = s.offsets[g+1]
	}
	d := encoding.Decbuf{B: s.r.Range(int(s.offsets[g]), int(stop))}
	for i := int(o) % symbolFactor; i > 0; i-- {
		d.UvarintBytes()
	}
	sym := d.UvarintStr()
	if d.Err() != nil {
		return "", fmt.Errorf("symbol %d: %w", o, d.Err())
	}
	slot.Store(&symbolEntry{ref: o, sym: sym})
	return sym, nil
}

// blockIndex is the tsdb.IndexReader of a bucket block. It keeps the shared
// index reader open when a querier closes, decodes series through the
// block's symbol table, and adds label lookups under matchers, which the
// index package leaves to its callers.
type blockIndex struct {
	*index.Reader
	bytes *objectReader
	dec   *index.Decoder
}

func (blockIndex) Close() error { return nil }

// Series implements tsdb.IndexReader.
func (r blockIndex) Series(id storage.SeriesRef, builder *labels.ScratchBuilder, chks *[]chunks.Meta) error {
	// V2+ series are 16-byte aligned; the reference is the position / 16.
	d := encoding.NewDecbufUvarintAt(r.bytes, int(id*16), castagnoli)
	if d.Err() != nil {
		return fmt.Errorf("series %d: %w", id, d.Err())
	}
	builder.Reset()
	if err := r.dec.Series(d.Get(), builder, chks); err != nil {
		return fmt.Errorf("read series: %w", err)
	}
	return nil
}

// ShardedPostings implements tsdb.IndexReader: the series of p whose label
// hash falls in the shard, as Prometheus computes it.
func (r blockIndex) ShardedPostings(p index.Postings, shardIndex, shardCount uint64) index.Postings {
	var (
		out []storage.SeriesRef
		b   labels.ScratchBuilder
	)
	for p.Next() {
		if err := r.Series(p.At(), &b, nil); err != nil {
			return index.ErrPostings(err)
		}
		if labels.StableHash(b.Labels())%shardCount == shardIndex {
			out = append(out, p.At())
		}
	}
	if p.Err() != nil {
		return index.ErrPostings(p.Err())
	}
	return index.NewListPostings(out)
}
