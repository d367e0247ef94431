package storegateway

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"hash/crc32"
	"path"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
)

// Page sizes. Index reads are small and scattered (series entries, postings
// lists), chunk reads are mostly sequential (series are read in index order
// and their chunks were written in that order), so chunk pages are larger and
// a miss fetches several at once.
const (
	indexPageSize      = 32 << 10
	indexReadAhead     = 1
	chunksPageSize     = 256 << 10
	chunksReadAhead    = 4
	maxChunkHeaderSize = binary.MaxVarintLen32 + chunks.ChunkEncodingSize
	// maxChunkBytes bounds a chunk's length field: real chunks are a few
	// kilobytes; a larger value is damage, not a chunk to read.
	maxChunkBytes = 16 << 20
)

// bucketBlock is a TSDB block read from the bucket: its index and chunks are
// byte ranges fetched on demand through the page cache. Nothing of the block
// is on local disk. It is shared by the queries that read it, each through
// its own reader (see reader).
type bucketBlock struct {
	meta   *metricsblocks.Meta
	tenant string
	index  *indexHeader
	chunks *chunkReader
	names  map[string]struct{} // every label name of the block
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// openBlock reads the block's meta.json and the parts of its index every
// query needs (table of contents, symbol offsets, postings offset table),
// with ctx. bkt is the tenant's metrics bucket.
func openBlock(ctx context.Context, bkt objstore.BucketReader, tenant string, id ulid.ULID, cache *pageCache) (_ *bucketBlock, err error) {
	defer recoverRead(&err)
	meta, err := metricsblocks.ReadMeta(ctx, bkt, id)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("block %s of tenant %s: no meta.json in the bucket", id, tenant)
		}
		return nil, fmt.Errorf("block %s of tenant %s: %w", id, tenant, err)
	}
	indexName := path.Join(id.String(), metricsblocks.IndexFilename)
	attrs, err := bkt.Attributes(ctx, indexName)
	if err != nil {
		return nil, fmt.Errorf("block %s of tenant %s: index: %w", id, tenant, err)
	}
	ir := &objectReader{bkt: bkt, name: indexName, size: attrs.Size, pageSize: indexPageSize, readAhead: indexReadAhead, cache: cache}
	ir.key = tenant + "/" + indexName
	toc, err := index.NewTOCFromByteSlice(ir.with(ctx))
	if err != nil {
		return nil, fmt.Errorf("block %s of tenant %s: index: %w", id, tenant, err)
	}
	// The postings offset table ends where the TOC (6 offsets, a CRC) begins.
	if err := ir.pinSection(ctx, int64(toc.PostingsTable), attrs.Size-(6*8+4)); err != nil {
		return nil, fmt.Errorf("block %s of tenant %s: index postings offset table: %w", id, tenant, err)
	}
	// Prometheus's reader keeps the bytes it is given, read with ctx: it
	// is used only for what the pinned postings offset table answers.
	idx, err := index.NewReader(ir.with(ctx), index.DecodePostingsRaw)
	if err != nil {
		return nil, fmt.Errorf("block %s of tenant %s: index: %w", id, tenant, err)
	}
	if idx.Version() == index.FormatV1 {
		return nil, fmt.Errorf("block %s of tenant %s: index format 1 (Prometheus 1.x) is not supported", id, tenant)
	}
	syms, err := newSymbolTable(ctx, ir, int64(toc.Symbols))
	if err != nil {
		return nil, fmt.Errorf("block %s of tenant %s: index symbols: %w", id, tenant, err)
	}
	postings, err := newPostingsTable(ctx, ir, int64(toc.PostingsTable))
	if err != nil {
		return nil, fmt.Errorf("block %s of tenant %s: index postings offset table: %w", id, tenant, err)
	}
	names, err := idx.LabelNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("block %s of tenant %s: label names: %w", id, tenant, err)
	}
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	return &bucketBlock{
		meta: meta, tenant: tenant, names: set,
		index:  &indexHeader{Reader: idx, bytes: ir, syms: syms, postings: postings},
		chunks: &chunkReader{bkt: bkt, tenant: tenant, id: id, cache: cache, pool: chunkenc.NewPool()},
	}, nil
}

// reader returns the block as one query reads it: every bucket read made
// through it uses ctx, so it stops when the query ends. Reads panic with
// readError on failure where the tsdb package's interfaces cannot return an
// error: its callers recover them (recoverRead).
func (b *bucketBlock) reader(ctx context.Context) tsdb.BlockReader {
	return blockReader{b: b, ctx: ctx}
}

type blockReader struct {
	b   *bucketBlock
	ctx context.Context
}

// Index implements tsdb.BlockReader.
func (r blockReader) Index() (tsdb.IndexReader, error) { return r.b.index.reader(r.ctx), nil }

// Chunks implements tsdb.BlockReader.
func (r blockReader) Chunks() (tsdb.ChunkReader, error) {
	return blockChunks{r: r.b.chunks, ctx: r.ctx}, nil
}

// Tombstones implements tsdb.BlockReader: stored blocks have none (deletes
// happen by retention, a whole block at a time).
func (blockReader) Tombstones() (tombstones.Reader, error) {
	return tombstones.NewMemTombstones(), nil
}

// Meta implements tsdb.BlockReader.
func (r blockReader) Meta() tsdb.BlockMeta { return r.b.meta.BlockMeta }

// Size implements tsdb.BlockReader.
func (blockReader) Size() int64 { return 0 }

// LabelValues implements tsdb.IndexReader.
func (r blockIndex) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		return r.Reader.LabelValues(ctx, name, hints)
	}
	// Values ruled out by matchers on the label itself need no postings.
	values, err := r.Reader.LabelValues(ctx, name, nil)
	if err != nil {
		return nil, err
	}
	others := false
	for _, m := range ms {
		if m.Name != name {
			others = true
			continue
		}
		values = slices.DeleteFunc(values, func(v string) bool { return !m.Matches(v) })
	}
	if others && len(values) > 0 {
		p, err := tsdb.PostingsForMatchers(ctx, r, ms...)
		if err != nil {
			return nil, err
		}
		each := make([]index.Postings, len(values))
		for i, v := range values {
			if each[i], err = r.Postings(ctx, name, v); err != nil {
				return nil, err
			}
		}
		hit, err := index.FindIntersectingPostings(p, each)
		if err != nil {
			return nil, err
		}
		found := make([]string, 0, len(hit))
		for _, i := range hit {
			found = append(found, values[i])
		}
		values = found
	}
	if hints != nil && hints.Limit > 0 && len(values) > hints.Limit {
		values = values[:hints.Limit]
	}
	return values, nil
}

// SortedLabelValues implements tsdb.IndexReader.
func (r blockIndex) SortedLabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		return r.Reader.SortedLabelValues(ctx, name, hints)
	}
	out, err := r.LabelValues(ctx, name, hints, ms...)
	slices.Sort(out)
	return out, err
}

// LabelNames implements tsdb.IndexReader.
func (r blockIndex) LabelNames(ctx context.Context, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		return r.Reader.LabelNames(ctx)
	}
	p, err := tsdb.PostingsForMatchers(ctx, r, ms...)
	if err != nil {
		return nil, err
	}
	return r.LabelNamesFor(ctx, p)
}

// chunkReader reads chunks from the block's segment files, chunks/000001…,
// by their references: segment number in the upper 32 bits, byte offset in
// the lower. At the offset: uvarint data length, encoding byte, data, CRC32
// (Castagnoli) of encoding and data. It is shared by the block's queries.
type chunkReader struct {
	bkt    objstore.BucketReader
	tenant string
	id     ulid.ULID
	cache  *pageCache
	pool   chunkenc.Pool

	mu       sync.Mutex
	segments map[int]*objectReader
}

func (r *chunkReader) segment(n int) *objectReader {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.segments[n]; ok {
		return s
	}
	if r.segments == nil {
		r.segments = map[int]*objectReader{}
	}
	name := path.Join(r.id.String(), metricsblocks.ChunksDirname, fmt.Sprintf("%06d", n+1))
	s := &objectReader{bkt: r.bkt, name: name, key: r.tenant + "/" + name, size: -1, pageSize: chunksPageSize, readAhead: chunksReadAhead, cache: r.cache}
	r.segments[n] = s
	return s
}

// chunk reads the chunk of meta, with ctx.
func (r *chunkReader) chunk(ctx context.Context, meta chunks.Meta) (chunkenc.Chunk, error) {
	seg, off := chunks.BlockChunkRef(meta.Ref).Unpack()
	s := r.segment(seg)
	head, err := s.read(ctx, int64(off), int64(off+maxChunkHeaderSize))
	if err != nil {
		return nil, err
	}
	length, n := binary.Uvarint(head)
	if n <= 0 || len(head) < n+chunks.ChunkEncodingSize || length > maxChunkBytes {
		return nil, fmt.Errorf("block %s: chunk %d in segment %s: bad length field", r.id, off, s.name)
	}
	start := int64(off + n)
	end := start + chunks.ChunkEncodingSize + int64(length) + crc32.Size
	b, err := s.read(ctx, start, end)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != end-start {
		return nil, fmt.Errorf("block %s: chunk %d in segment %s runs past the end of the segment", r.id, off, s.name)
	}
	body, sum := b[:len(b)-crc32.Size], b[len(b)-crc32.Size:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return nil, fmt.Errorf("block %s: chunk %d in segment %s: checksum mismatch", r.id, off, s.name)
	}
	return r.pool.Get(chunkenc.Encoding(body[0]), body[chunks.ChunkEncodingSize:])
}

// blockChunks is the tsdb.ChunkReader of one query: it reads with the
// query's context.
type blockChunks struct {
	r   *chunkReader
	ctx context.Context
}

// ChunkOrIterable implements tsdb.ChunkReader.
func (c blockChunks) ChunkOrIterable(meta chunks.Meta) (chunkenc.Chunk, chunkenc.Iterable, error) {
	chk, err := c.r.chunk(c.ctx, meta)
	return chk, nil, err
}

// Close implements tsdb.ChunkReader. The reader is shared by queries.
func (blockChunks) Close() error { return nil }
