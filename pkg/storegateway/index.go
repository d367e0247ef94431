package storegateway

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"unsafe"

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
// the index — in memory (objectReader.pinSection).
//
// Prometheus's reader also reads through the bytes it was opened with, so
// with the context of the block's opening. Every read a query makes from
// the bucket must stop when the query ends: series, postings lists and
// symbols are read by blockIndex, with the query's context, and
// Prometheus's reader answers only what the pinned table holds (label names
// and values).

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

// newSymbolTable reads the symbol section at off with ctx: a 4-byte
// length, a 4-byte symbol count, the symbols (uvarint length, bytes), a
// CRC32.
func newSymbolTable(ctx context.Context, r *objectReader, off int64) (*symbolTable, error) {
	if off+8 > r.size {
		return nil, fmt.Errorf("symbol table at %d is past the end of the index (%d bytes)", off, r.size)
	}
	h, err := r.read(ctx, off, off+8)
	if err != nil {
		return nil, err
	}
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
		l, n, err := s.uvarint(ctx, pos)
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

func (s *symbolTable) uvarint(ctx context.Context, pos int64) (uint64, int, error) {
	b, err := s.r.read(ctx, pos, min(pos+binary.MaxVarintLen32, s.end))
	if err != nil {
		return 0, 0, err
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, fmt.Errorf("bad symbol length at %d", pos)
	}
	return v, n, nil
}

// lookup returns symbol o (its sequence number, as V2 indexes refer to
// symbols), reading with ctx.
func (s *symbolTable) lookup(ctx context.Context, o uint32) (string, error) {
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
	b, err := s.r.read(ctx, s.offsets[g], stop)
	if err != nil {
		return "", err
	}
	d := encoding.Decbuf{B: b}
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

// indexHeader is what a bucket block keeps of its index between queries.
type indexHeader struct {
	// Reader is Prometheus's reader, over bytes read with the context of
	// the block's opening: only its methods that read the pinned postings
	// offset table (label names and values without matchers) are used.
	*index.Reader
	bytes    *objectReader
	syms     *symbolTable
	postings *postingsTable
}

// reader returns the tsdb.IndexReader of one query, reading with ctx.
func (h *indexHeader) reader(ctx context.Context) blockIndex {
	lookup := func(_ context.Context, o uint32) (string, error) { return h.syms.lookup(ctx, o) }
	return blockIndex{
		indexHeader: h,
		bytes:       h.bytes.with(ctx),
		// The decoder looks symbols up with context.TODO: it gets ctx here.
		dec: &index.Decoder{LookupSymbol: lookup, DecodePostings: index.DecodePostingsRaw},
	}
}

// blockIndex is the tsdb.IndexReader of one query over a bucket block. It
// keeps the shared index reader open when a querier closes, reads series,
// postings lists and symbols with the query's context, and adds label
// lookups under matchers, which the index package leaves to its callers.
type blockIndex struct {
	*indexHeader
	// bytes is the index read with the query's context, for the methods
	// that are given none (Series).
	bytes *byteSlice
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

// Postings implements tsdb.IndexReader.
func (r blockIndex) Postings(ctx context.Context, name string, values ...string) (index.Postings, error) {
	if !slices.IsSorted(values) {
		values = slices.Sorted(slices.Values(values))
	}
	var lists []index.Postings
	err := r.postings.find(name, values, func(off uint64) error {
		p, err := r.postingsAt(ctx, off)
		if err != nil {
			return err
		}
		lists = append(lists, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return index.Merge(ctx, lists...), nil
}

// PostingsForLabelMatching implements tsdb.IndexReader.
func (r blockIndex) PostingsForLabelMatching(ctx context.Context, name string, match func(string) bool) index.Postings {
	var lists []index.Postings
	err := r.postings.each(name, func(value string, off uint64) error {
		if match != nil && !match(value) {
			return nil
		}
		p, err := r.postingsAt(ctx, off)
		if err != nil {
			return err
		}
		lists = append(lists, p)
		return nil
	})
	if err != nil {
		return index.ErrPostings(err)
	}
	return index.Merge(ctx, lists...)
}

// PostingsForAllLabelValues implements tsdb.IndexReader.
func (r blockIndex) PostingsForAllLabelValues(ctx context.Context, name string) index.Postings {
	return r.PostingsForLabelMatching(ctx, name, nil)
}

// postingsAt reads the postings list at off (a 4-byte length, the list, a
// CRC32), with ctx.
func (r blockIndex) postingsAt(ctx context.Context, off uint64) (index.Postings, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	d := encoding.NewDecbufAt(r.bytes.o.with(ctx), int(off), castagnoli)
	_, p, err := index.DecodePostingsRaw(d)
	if err != nil {
		return nil, fmt.Errorf("postings list at %d: %w", off, err)
	}
	return p, nil
}

// LabelNamesFor implements tsdb.IndexReader: the sorted label names of the
// series of postings.
func (r blockIndex) LabelNamesFor(ctx context.Context, postings index.Postings) ([]string, error) {
	bytes := r.bytes.o.with(ctx)
	refs := map[uint32]struct{}{}
	for i := 0; postings.Next(); i++ {
		if i%128 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d := encoding.NewDecbufUvarintAt(bytes, int(postings.At()*16), castagnoli)
		if d.Err() != nil {
			return nil, fmt.Errorf("series %d: %w", postings.At(), d.Err())
		}
		offs, err := r.dec.LabelNamesOffsetsFor(d.Get())
		if err != nil {
			return nil, fmt.Errorf("series %d: %w", postings.At(), err)
		}
		for _, o := range offs {
			refs[o] = struct{}{}
		}
	}
	if postings.Err() != nil {
		return nil, postings.Err()
	}
	names := make([]string, 0, len(refs))
	for o := range refs {
		name, err := r.syms.lookup(ctx, o)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// postingsTable finds label values' postings lists in the postings offset
// table pinned in memory, as Prometheus's index reader does in its own
// sample of that table (which it reads only through its own bytes). Entries
// are: uvarint key count (2), uvarint-prefixed label name and value, uvarint
// offset of the postings list; sorted by name, then value.
type postingsTable struct {
	b []byte // the table after its length: entry count, entries
	// samples holds, per label name, the position in b of every
	// symbolFactor-th entry of the name and of its last.
	samples map[string][]uint32
}

// newPostingsTable samples the postings offset table at off, which must be
// the section pinned in o.
func newPostingsTable(ctx context.Context, o *objectReader, off int64) (*postingsTable, error) {
	sec := o.pinned
	if off != o.pinnedStart || len(sec) < 8 {
		return nil, fmt.Errorf("postings offset table at %d is not held in memory", off)
	}
	// Positions count from after the table's length, as
	// ReadPostingsOffsetTable reports them.
	t := &postingsTable{b: sec[4 : len(sec)-4], samples: map[string][]uint32{}}
	var (
		name    string
		started bool
		n       int
		last    uint32
	)
	done := func() {
		if started && (n-1)%symbolFactor != 0 {
			t.samples[name] = append(t.samples[name], last)
		}
	}
	err := index.ReadPostingsOffsetTable(o.with(ctx), uint64(off), func(nm, _ []byte, _ uint64, pos int) error {
		if !started || string(nm) != name {
			if started && string(nm) < name {
				return fmt.Errorf("label name %q after %q: the postings offset table is not sorted", nm, name)
			}
			done()
			name, started, n = string(nm), true, 0
		}
		if n%symbolFactor == 0 {
			t.samples[name] = append(t.samples[name], uint32(pos))
		}
		last = uint32(pos)
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	done()
	return t, nil
}

// entry decodes the entry at pos: its label value (pointing into b), its
// postings list's offset, and where the next entry starts.
func (t *postingsTable) entry(pos uint32) (string, uint64, uint32, error) {
	if int(pos) >= len(t.b) {
		return "", 0, 0, fmt.Errorf("postings offset table entry at %d is past its end", pos)
	}
	d := encoding.Decbuf{B: t.b[pos:]}
	d.Uvarint()      // key count
	d.UvarintBytes() // label name
	v := d.UvarintBytes()
	off := d.Uvarint64()
	if d.Err() != nil {
		return "", 0, 0, fmt.Errorf("postings offset table entry at %d: %w", pos, d.Err())
	}
	return unsafe.String(unsafe.SliceData(v), len(v)), off, uint32(len(t.b) - d.Len()), nil
}

// find calls f with the postings list offset of each of values (sorted)
// that name has, in order.
func (t *postingsTable) find(name string, values []string, f func(off uint64) error) error {
	s := t.samples[name]
	if len(s) == 0 {
		return nil
	}
	for i, v := range values {
		if i > 0 && v == values[i-1] {
			continue
		}
		// The last sample at or before v, then entries up to v.
		var err error
		j := sort.Search(len(s), func(j int) bool {
			val, _, _, e := t.entry(s[j])
			if e != nil {
				err = e
			}
			return val > v
		})
		if err != nil {
			return err
		}
		if j == 0 {
			continue // before the name's first value
		}
		for pos, end := s[j-1], s[len(s)-1]; pos <= end; {
			val, off, next, err := t.entry(pos)
			if err != nil {
				return err
			}
			if val == v {
				if err := f(off); err != nil {
					return err
				}
			}
			if val >= v {
				break
			}
			pos = next
		}
	}
	return nil
}

// each calls f with every value of name and its postings list's offset, in
// order. value shares the table's memory.
func (t *postingsTable) each(name string, f func(value string, off uint64) error) error {
	s := t.samples[name]
	if len(s) == 0 {
		return nil
	}
	for pos, end := s[0], s[len(s)-1]; pos <= end; {
		val, off, next, err := t.entry(pos)
		if err != nil {
			return err
		}
		if err := f(val, off); err != nil {
			return err
		}
		pos = next
	}
	return nil
}
