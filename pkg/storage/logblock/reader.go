package logblock

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"sync"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// Block reads one block in the bucket: its index is held in memory, its
// chunks are read by byte range as a query needs them. Safe for concurrent
// use; Close releases the index.
type Block struct {
	Meta    Meta
	tenant  string
	bkt     objstore.BucketReader
	index   *index.Reader
	filters *filterIndex // nil for a version 1 block, whose chunks hold their filters

	// hashes are the streams' labels.StableHash by series reference, in
	// reference order, worked out on the first sharded read: the other
	// shards' streams are then passed over without decoding them.
	hashesOnce sync.Once
	hashes     []refHash
	hashesErr  error
}

type refHash struct {
	ref  storage.SeriesRef
	hash uint64
}

// streamHashes returns hashes, working them out on first use (from the
// index in memory: no request's context may end it half-way, as its
// outcome stays).
func (b *Block) streamHashes() ([]refHash, error) {
	b.hashesOnce.Do(func() {
		k, v := index.AllPostingsKey()
		p, err := b.index.Postings(context.Background(), k, v)
		if err != nil {
			b.hashesErr = err
			return
		}
		var (
			sb    labels.ScratchBuilder
			metas []chunks.Meta
		)
		for p.Next() {
			if err := b.index.Series(p.At(), &sb, &metas); err != nil {
				b.hashesErr = err
				return
			}
			b.hashes = append(b.hashes, refHash{p.At(), labels.StableHash(sb.Labels())})
		}
		b.hashesErr = p.Err()
	})
	return b.hashes, b.hashesErr
}

// inShard reports whether the stream ref is in shard (true when unknown).
func (b *Block) inShard(ref storage.SeriesRef, shard Shard) bool {
	i := sort.Search(len(b.hashes), func(i int) bool { return b.hashes[i].ref >= ref })
	if i == len(b.hashes) || b.hashes[i].ref != ref {
		return true
	}
	return b.hashes[i].hash%shard.Count == shard.Index
}

// OpenBlock reads the index of a tenant's block.
func OpenBlock(ctx context.Context, bkt objstore.BucketReader, tenant string, m Meta) (*Block, error) {
	b, err := readAll(ctx, bkt, path.Join(Dir(tenant, m.ULID), IndexFile))
	if err != nil {
		return nil, fmt.Errorf("reading the index of log block %s: %w", m.ULID, err)
	}
	ir, err := index.NewReader(byteSlice(b), index.DecodePostingsRaw)
	if err != nil {
		return nil, fmt.Errorf("opening the index of log block %s: %w", m.ULID, err)
	}
	blk := &Block{Meta: m, tenant: tenant, bkt: bkt, index: ir}
	if m.Version >= 2 {
		if blk.filters, err = readFilterIndex(blk.reader(ctx, FiltersFile)); err != nil {
			ir.Close()
			return nil, fmt.Errorf("reading the filters of log block %s: %w", m.ULID, err)
		}
	}
	return blk, nil
}

// Close releases the block's index.
func (b *Block) Close() error { return b.index.Close() }

// SelectStats count what a Select read.
type SelectStats struct {
	Chunks, ChunksSkipped int
	Bytes                 int64 // compressed bytes fetched
	// SkippedLines and SkippedBytes are the entries in the range of the
	// chunks read that lacked a needle, and their line bytes: read and
	// searched, not handed over.
	SkippedLines, SkippedBytes int64
}

// StreamIterator walks the streams of a block matching a selection, in
// label order, each with its entries in the range in timestamp order.
type StreamIterator struct {
	b              *Block
	ctx            context.Context
	p              index.Postings
	start, end     int64
	needles        []string
	pass           *filterPass // from the filters file, for needles
	shard          Shard
	sb             labels.ScratchBuilder
	metas          []chunks.Meta
	labels         labels.Labels
	entries        []logchunk.Entry
	lines          []byte // the current stream's lines, reused
	buf            []byte // the chunk being read, reused
	err            error
	Stats          SelectStats
	done, outRange bool
}

// Shard is one shard of the streams: those whose labels.StableHash modulo
// Count is Index. The zero Shard (Count 0 or 1) is every stream.
type Shard struct{ Index, Count uint64 }

func (s Shard) has(ls labels.Labels) bool {
	return s.Count <= 1 || labels.StableHash(ls)%s.Count == s.Index
}

// Streams returns an iterator over the streams matching ms (of shard) with
// entries in [start, end), reading only chunks that overlap the range and
// whose token filter admits every needle, and handing over only the
// entries whose line holds every needle (Stats count the others). With
// needles, a version 2 block tests them against every chunk's filter first
// (a few rows of the filters file).
func (b *Block) Streams(ctx context.Context, ms []*labels.Matcher, start, end int64, needles []string, shard Shard) (*StreamIterator, error) {
	it := &StreamIterator{b: b, ctx: ctx, start: start, end: end, needles: needles, shard: shard}
	if b.Meta.MaxTime < start || b.Meta.MinTime >= end {
		it.outRange = true
		return it, nil
	}
	if b.filters != nil && len(needles) > 0 {
		var keys []uint64
		for _, nd := range needles {
			for _, k := range logchunk.NeedleKeys(nd) {
				if !slices.Contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
		pass, n, err := b.filters.test(keys, b.reader(ctx, FiltersFile))
		it.Stats.Bytes += n
		if err != nil {
			return nil, fmt.Errorf("log block %s: %w", b.Meta.ULID, err)
		}
		it.pass = pass
		if pass.none(b.Meta.Stats.Chunks) {
			// No stream to walk: a needle missing from the block costs its
			// filter rows alone.
			it.Stats.ChunksSkipped = b.Meta.Stats.Chunks
			it.outRange = true
			return it, nil
		}
	}
	if shard.Count > 1 {
		if _, err := b.streamHashes(); err != nil {
			return nil, fmt.Errorf("log block %s: %w", b.Meta.ULID, err)
		}
	}
	p, err := tsdb.PostingsForMatchers(ctx, b.index, ms...)
	if err != nil {
		return nil, err
	}
	it.p = p
	return it, nil
}

// Next moves to the next stream with entries; false at the end or on an
// error (Err).
func (it *StreamIterator) Next() bool {
	if it.outRange || it.done || it.err != nil {
		return false
	}
	for it.p.Next() {
		if it.err = it.ctx.Err(); it.err != nil {
			return false
		}
		if it.shard.Count > 1 && !it.b.inShard(it.p.At(), it.shard) {
			continue
		}
		if it.err = it.b.index.Series(it.p.At(), &it.sb, &it.metas); it.err != nil {
			return false
		}
		if !it.shard.has(it.sb.Labels()) {
			continue
		}
		// The previous stream's entries and lines were valid until this
		// call: their memory is reused.
		it.entries, it.lines = it.entries[:0], it.lines[:0]
		for _, cm := range it.metas {
			if cm.MaxTime < it.start || cm.MinTime >= it.end {
				continue
			}
			off, n := unpackRef(cm.Ref)
			data, skip, err := it.fetch(off, n)
			if err != nil {
				it.err = fmt.Errorf("chunk at %d of log block %s: %w", off, it.b.Meta.ULID, err)
				return false
			}
			if skip {
				it.Stats.ChunksSkipped++
				continue
			}
			c, err := logchunk.Open(data)
			if err != nil {
				it.err = fmt.Errorf("chunk at %d of log block %s: %w", off, it.b.Meta.ULID, err)
				return false
			}
			if free := cap(it.lines) - len(it.lines); free < int(c.RawBytes()) && len(it.needles) == 0 {
				// Lines already kept stay in the array they are in.
				it.lines = make([]byte, 0, max(int(c.RawBytes()), 2*cap(it.lines)))
			}
			it.Stats.Chunks++
			lines, bytes, err := c.IterateMatching(it.start, it.end, it.needles, true, func(e logchunk.Entry) bool {
				md := e.Metadata
				if !md.IsEmpty() {
					md = md.Copy()
				}
				it.entries = append(it.entries, logchunk.Entry{Timestamp: e.Timestamp, Line: it.keep(e.Line), Metadata: md})
				return true
			})
			it.Stats.SkippedLines += lines
			it.Stats.SkippedBytes += bytes
			if err != nil {
				it.err = err
				return false
			}
		}
		if len(it.entries) > 0 {
			it.labels = it.sb.Labels()
			return true
		}
	}
	it.err = it.p.Err()
	it.done = true
	return false
}

// filterPrefix is how much of a chunk a needle search reads first: the
// header and, mostly, the whole token filter.
const filterPrefix = 32 << 10

// fetch reads the chunk of n bytes at off. With needles, it reads the
// chunk's header and token filter first and says skip, reading no more,
// when the filter rules out a needle.
func (it *StreamIterator) fetch(off, n uint64) (data []byte, skip bool, err error) {
	if it.pass != nil && !it.pass.mayHold(off) {
		return nil, true, nil
	}
	if len(it.needles) == 0 || it.b.filters != nil {
		// Nothing keeps a chunk's bytes past the stream's walk over it
		// (lines and metadata are copied): one buffer serves every chunk.
		data, err = it.b.getRangeInto(it.ctx, off, n, it.buf)
		it.buf = data
		it.Stats.Bytes += int64(len(data))
		return data, false, err
	}
	head, err := it.b.getRange(it.ctx, off, min(n, filterPrefix))
	if err != nil {
		return nil, false, err
	}
	it.Stats.Bytes += int64(len(head))
	need, err := logchunk.FilterLen(head)
	if err != nil {
		return nil, false, err
	}
	if need > int(n) {
		return nil, false, fmt.Errorf("header and filter of %d bytes in a chunk of %d", need, n)
	}
	if need > len(head) {
		more, err := it.b.getRange(it.ctx, off+uint64(len(head)), uint64(need-len(head)))
		if err != nil {
			return nil, false, err
		}
		it.Stats.Bytes += int64(len(more))
		head = append(head, more...)
	}
	ok, err := logchunk.FilterMayContain(head[:need], it.needles)
	if err != nil || !ok {
		return nil, !ok, err
	}
	if len(head) == int(n) {
		return head, false, nil
	}
	rest, err := it.b.getRange(it.ctx, off+uint64(len(head)), n-uint64(len(head)))
	if err != nil {
		return nil, false, err
	}
	it.Stats.Bytes += int64(len(rest))
	return append(head, rest...), false, nil
}

// keep copies a line out of the chunk's reused buffer into the stream's
// array of lines: a line stays valid until the next stream.
func (it *StreamIterator) keep(line string) string {
	if len(line) == 0 {
		return ""
	}
	if cap(it.lines)-len(it.lines) < len(line) {
		it.lines = make([]byte, 0, max(2*cap(it.lines), len(line), 64<<10))
	}
	off := len(it.lines)
	it.lines = append(it.lines, line...)
	return unsafe.String(&it.lines[off], len(line))
}

// Labels are the current stream's labels.
func (it *StreamIterator) Labels() labels.Labels { return it.labels }

// Entries are the current stream's entries in the range, in timestamp
// order (a block's chunks of one stream never overlap), valid until the
// next call to Next.
func (it *StreamIterator) Entries() []logchunk.Entry { return it.entries }

// Err is the error that ended the iteration, if any.
func (it *StreamIterator) Err() error { return it.err }

// Select calls fn for each stream matching ms with its entries in
// [start, end) in timestamp order (see Streams); the entries and their
// strings are valid until fn returns.
func (b *Block) Select(ctx context.Context, ms []*labels.Matcher, start, end int64, needles []string, fn func(ls labels.Labels, es []logchunk.Entry) error) (SelectStats, error) {
	it, err := b.Streams(ctx, ms, start, end, needles, Shard{})
	if err != nil {
		return SelectStats{}, err
	}
	for it.Next() {
		if err := fn(it.Labels(), it.Entries()); err != nil {
			return it.Stats, err
		}
	}
	return it.Stats, it.Err()
}

func (b *Block) getRange(ctx context.Context, off, n uint64) ([]byte, error) {
	return b.getRangeInto(ctx, off, n, nil)
}

// getRangeInto reads n bytes of the chunks file at off into buf's storage
// when it has room for them.
func (b *Block) getRangeInto(ctx context.Context, off, n uint64, buf []byte) ([]byte, error) {
	buf, err := b.readInto(ctx, ChunksFile, int64(off), int64(n), buf)
	if err != nil {
		return nil, fmt.Errorf("reading a chunk of log block %s: %w", b.Meta.ULID, err)
	}
	return buf, nil
}

// reader returns a function reading n bytes at off of one of the block's
// files.
func (b *Block) reader(ctx context.Context, file string) func(off, n int64) ([]byte, error) {
	return func(off, n int64) ([]byte, error) { return b.readInto(ctx, file, off, n, nil) }
}

// readInto reads n bytes at off of one of the block's files into buf's
// storage when it has room for them.
func (b *Block) readInto(ctx context.Context, file string, off, n int64, buf []byte) ([]byte, error) {
	r, err := b.bkt.GetRange(ctx, path.Join(Dir(b.tenant, b.Meta.ULID), file), off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%s: %d bytes at %d: %w", file, n, off, err)
	}
	return buf, nil
}

// Series returns the label sets of the streams matching ms with chunks
// overlapping [start, end).
func (b *Block) Series(ctx context.Context, ms []*labels.Matcher, start, end int64) ([]labels.Labels, error) {
	if b.Meta.MaxTime < start || b.Meta.MinTime >= end {
		return nil, nil
	}
	p, err := tsdb.PostingsForMatchers(ctx, b.index, ms...)
	if err != nil {
		return nil, err
	}
	var (
		out   []labels.Labels
		sb    labels.ScratchBuilder
		metas []chunks.Meta
	)
	for p.Next() {
		if err := b.index.Series(p.At(), &sb, &metas); err != nil {
			return nil, err
		}
		for _, cm := range metas {
			if cm.MaxTime >= start && cm.MinTime < end {
				out = append(out, sb.Labels())
				break
			}
		}
	}
	return out, p.Err()
}

// byteSlice is an index held in memory.
type byteSlice []byte

func (b byteSlice) Len() int                    { return len(b) }
func (b byteSlice) Range(start, end int) []byte { return b[start:end] }
