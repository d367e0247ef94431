package traceblock

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/thanos-io/objstore"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/sync/errgroup"
)

// Block is an open block in the bucket: its meta and bloom filter in
// memory, data.parquet's footer and page index read on the first lookup
// that needs them. Safe for concurrent use.
type Block struct {
	meta  Meta
	bkt   objstore.BucketReader
	name  string // data.parquet's object name
	bloom *Bloom

	mu   sync.Mutex
	file *parquet.File
}

// OpenBlock reads block m's bloom filter.
func OpenBlock(ctx context.Context, bkt objstore.BucketReader, tenant string, m Meta) (*Block, error) {
	dir := Dir(tenant, m.ULID)
	r, err := bkt.Get(ctx, path.Join(dir, BloomFile))
	if err != nil {
		return nil, fmt.Errorf("reading the bloom filter of trace block %s: %w", m.ULID, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 16+8*maxBloomWords))
	if err != nil {
		return nil, fmt.Errorf("reading the bloom filter of trace block %s: %w", m.ULID, err)
	}
	bl, err := parseBloom(b)
	if err != nil {
		return nil, fmt.Errorf("trace block %s: %w", m.ULID, err)
	}
	return &Block{meta: m, bkt: bkt, name: path.Join(dir, DataFile), bloom: bl}, nil
}

// Meta returns the block's meta.
func (b *Block) Meta() Meta { return b.meta }

// MayHold reports whether the block may hold trace id, from its ID range
// and bloom filter, without reading data.parquet: false is certain.
func (b *Block) MayHold(id [16]byte) bool {
	h := fmt.Sprintf("%x", id[:])
	if h < b.meta.MinTraceID || h > b.meta.MaxTraceID {
		return false
	}
	return b.bloom.MayHold(id)
}

// parquetFile opens data.parquet (footer and page index) once.
func (b *Block) parquetFile(ctx context.Context) (*parquet.File, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.file != nil {
		return b.file, nil
	}
	ra := newCachedReaderAt(&bucketReaderAt{bkt: b.bkt, name: b.name}, b.meta.Stats.DataBytes)
	f, err := guard(func() (*parquet.File, error) {
		return parquet.OpenFile(ra, b.meta.Stats.DataBytes, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(pageBufferBytes))
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s of trace block %s: %w", DataFile, b.meta.ULID, err)
	}
	b.file = f
	return f, nil
}

// FindTrace returns the spans of trace id the block holds, and whether it
// holds any. It reads the bloom filter, then one page of each column of
// the row group that holds the trace, found by the trace ID column's page
// index.
func (b *Block) FindTrace(ctx context.Context, id [16]byte) (ptrace.Traces, bool, error) {
	if !b.MayHold(id) {
		return ptrace.Traces{}, false, nil
	}
	f, err := b.parquetFile(ctx)
	if err != nil {
		return ptrace.Traces{}, false, err
	}
	rows, err := guard(func() ([]spanRow, error) { return findRows(f, id) })
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("reading trace %x from trace block %s: %w", id, b.meta.ULID, err)
	}
	if len(rows) == 0 {
		return ptrace.Traces{}, false, nil
	}
	td, err := tracesOf(rows)
	if err != nil {
		return ptrace.Traces{}, false, fmt.Errorf("trace %x in trace block %s: %w", id, b.meta.ULID, err)
	}
	return td, true, nil
}

// traceIDColumn is the leaf index of trace_id, the first column.
const traceIDColumn = 0

// findRows reads the rows of trace id from f.
func findRows(f *parquet.File, id [16]byte) ([]spanRow, error) {
	var out []spanRow
	for _, rg := range f.RowGroups() {
		cc := rg.ColumnChunks()[traceIDColumn]
		ci, err := cc.ColumnIndex()
		if err != nil {
			return nil, err
		}
		oi, err := cc.OffsetIndex()
		if err != nil {
			return nil, err
		}
		np := ci.NumPages()
		if np == 0 || np != oi.NumPages() {
			return nil, errors.New("trace ID column without a page index")
		}
		if bytes.Compare(ci.MinValue(0).ByteArray(), id[:]) > 0 {
			break // row groups are in ID order: no later one holds it
		}
		if bytes.Compare(ci.MaxValue(np-1).ByteArray(), id[:]) < 0 {
			continue
		}
		p := 0
		for p < np && bytes.Compare(ci.MaxValue(p).ByteArray(), id[:]) < 0 {
			p++
		}
		if bytes.Compare(ci.MinValue(p).ByteArray(), id[:]) > 0 {
			return out, nil
		}
		r := parquet.NewGenericRowGroupReader[spanRow](rg)
		if err := r.SeekToRow(oi.FirstRowIndex(p)); err != nil {
			r.Close()
			return nil, err
		}
		buf := make([]spanRow, 16)
		done := false
		for !done {
			n, err := r.Read(buf)
			for _, row := range buf[:n] {
				switch c := bytes.Compare(row.TraceID[:], id[:]); {
				case c == 0:
					out = append(out, row)
				case c > 0:
					done = true
				}
				if done {
					break
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return nil, err
			}
		}
		if err := r.Close(); err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	return out, nil
}

// tracesOf builds the OTLP spans of rows, one ResourceSpans per distinct
// resource and one ScopeSpans per distinct scope in it, in row order.
func tracesOf(rows []spanRow) (ptrace.Traces, error) {
	td := ptrace.NewTraces()
	resources := map[string]ptrace.ResourceSpans{}
	scopes := map[string]ptrace.ScopeSpans{}
	var key strings.Builder
	for i := range rows {
		r := &rows[i]
		key.Reset()
		writeKey(&key, r.ServiceName, r.ResourceSchema, r.ResourceDropped, r.ResourceAttrs)
		rk := key.String()
		rs, ok := resources[rk]
		if !ok {
			rs = td.ResourceSpans().AppendEmpty()
			rs.SetSchemaUrl(r.ResourceSchema)
			if err := putResource(rs.Resource(), r); err != nil {
				return td, fmt.Errorf("resource: %w", err)
			}
			resources[rk] = rs
		}
		writeKey(&key, r.ScopeName+"\x00"+r.ScopeVersion, r.ScopeSchema, r.ScopeDropped, r.ScopeAttrs)
		sk := key.String()
		ss, ok := scopes[sk]
		if !ok {
			ss = rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl(r.ScopeSchema)
			if err := putScope(ss.Scope(), r); err != nil {
				return td, fmt.Errorf("scope: %w", err)
			}
			scopes[sk] = ss
		}
		if err := putSpan(ss.Spans().AppendEmpty(), r); err != nil {
			return td, fmt.Errorf("span %x: %w", r.SpanID, err)
		}
	}
	return td, nil
}

// writeKey writes an identity of a resource or scope: equal keys, equal
// resources (attributes in stored order).
func writeKey(w *strings.Builder, name, schema string, dropped uint32, attrs []attrRow) {
	var n [8]byte
	put := func(s string) {
		w.Write(binary.AppendUvarint(n[:0], uint64(len(s))))
		w.WriteString(s)
	}
	put(name)
	put(schema)
	w.Write(binary.AppendUvarint(n[:0], uint64(dropped)))
	for _, a := range attrs {
		put(a.Key)
		w.Write(binary.AppendUvarint(n[:0], uint64(a.Type)))
		put(a.Str)
		w.Write(binary.LittleEndian.AppendUint64(n[:0], uint64(a.Int)))
		w.Write(binary.LittleEndian.AppendUint64(n[:0], math.Float64bits(a.Double)))
		if a.Bool {
			w.WriteByte(1)
		} else {
			w.WriteByte(0)
		}
		put(string(a.Any))
	}
}

// bucketReaderAt reads an object by ranges. Reads are bounded by the
// bucket client's own timeouts; a lookup's context does not reach them,
// since the parquet file they serve outlives it.
type bucketReaderAt struct {
	bkt  objstore.BucketReader
	name string
}

func (r *bucketReaderAt) ReadAt(p []byte, off int64) (int, error) {
	rc, err := r.bkt.GetRange(context.Background(), r.name, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// cachedReaderAt serves the small reads of a lookup (page headers are read
// a few bytes at a time, pages a few KiB) from aligned pieces of
// cacheBlockBytes it keeps, the cacheBlocks most recently read: a lookup
// then makes a few range requests of the bucket instead of hundreds.
// Reads of more than a piece go to the bucket as they are. Safe for
// concurrent use.
type cachedReaderAt struct {
	r    io.ReaderAt
	size int64

	mu     sync.Mutex
	blocks map[int64][]byte // piece index → bytes
	order  []int64          // oldest first
}

const (
	cacheBlockBytes = 64 << 10
	cacheBlocks     = 16 // 1 MiB per block whose data.parquet a lookup opened
)

func newCachedReaderAt(r io.ReaderAt, size int64) *cachedReaderAt {
	return &cachedReaderAt{r: r, size: size, blocks: map[int64][]byte{}}
}

func (c *cachedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) > cacheBlockBytes {
		return c.r.ReadAt(p, off)
	}
	n := 0
	for n < len(p) {
		if off+int64(n) >= c.size {
			return n, io.EOF
		}
		idx := (off + int64(n)) / cacheBlockBytes
		b, err := c.piece(idx)
		if err != nil {
			return n, err
		}
		from := off + int64(n) - idx*cacheBlockBytes
		if from >= int64(len(b)) {
			return n, io.EOF
		}
		n += copy(p[n:], b[from:])
	}
	return n, nil
}

// piece returns piece idx, reading it on a miss.
func (c *cachedReaderAt) piece(idx int64) ([]byte, error) {
	c.mu.Lock()
	b, ok := c.blocks[idx]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	start := idx * cacheBlockBytes
	b = make([]byte, min(cacheBlockBytes, c.size-start))
	if _, err := c.r.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.blocks[idx]; !ok {
		c.blocks[idx] = b
		c.order = append(c.order, idx)
		if len(c.order) > cacheBlocks {
			delete(c.blocks, c.order[0])
			c.order = c.order[1:]
		}
	}
	return b, nil
}

// guard runs fn, turning a panic of the parquet library on corrupt input
// into an error: a bad block fails its query, never the process.
func guard[T any](fn func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt %s: %v", DataFile, p)
		}
	}()
	return fn()
}

// Scan calls fn with every trace of the block that has a span in [start,
// end] (Unix ns; both 0: every trace) and, when flt is not nil, a span
// that passes its tests, until fn returns false. It reads the trace ID
// and time columns and those of flt's tests first, and the other columns
// only for the traces that remain. Parts of the block are read in
// parallel: traces come in trace ID order within each part, the parts'
// traces interleaved; fn is called on one goroutine at a time.
func (b *Block) Scan(ctx context.Context, start, end int64, flt *Filter, fn func(id [16]byte, td ptrace.Traces) bool) error {
	if start != 0 || end != 0 {
		if b.meta.MaxTime < start || b.meta.MinTime > end {
			return nil
		}
	}
	f, err := b.parquetFile(ctx)
	if err != nil {
		return err
	}
	_, err = guard(func() (struct{}, error) { return struct{}{}, scanRows(ctx, f, start, end, flt, fn) })
	if err != nil {
		return fmt.Errorf("scanning trace block %s: %w", b.meta.ULID, err)
	}
	return nil
}

// scanRows scans f's row groups in parts, one a processor, each reading
// and decoding its traces on its own goroutine; fn is called on this one.
func scanRows(ctx context.Context, f *parquet.File, start, end int64, flt *Filter, fn func(id [16]byte, td ptrace.Traces) bool) error {
	groups := len(f.RowGroups())
	parts := min(runtime.GOMAXPROCS(0), groups)
	if parts <= 1 {
		return scanPart(ctx, f, 0, groups, start, end, flt, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type found struct {
		id [16]byte
		td ptrace.Traces
	}
	traces := make(chan found, 64)
	errs := make(chan error, parts)
	for k := range parts {
		go func() {
			errs <- scanPart(ctx, f, k*groups/parts, (k+1)*groups/parts, start, end, flt, func(id [16]byte, td ptrace.Traces) bool {
				select {
				case traces <- found{id, td}:
					return true
				case <-ctx.Done():
					return false
				}
			})
		}()
	}
	var (
		err     error
		stopped bool
	)
	take := func(t found) {
		if !stopped && !fn(t.id, t.td) {
			stopped = true
			cancel()
		}
	}
	for left := parts; left > 0; {
		select {
		case t := <-traces:
			take(t)
		case e := <-errs:
			left--
			if e != nil && err == nil && !stopped {
				err = e
				cancel()
			}
		}
	}
	for {
		select {
		case t := <-traces:
			take(t)
		default:
			return err
		}
	}
}

// rowSchema is data.parquet's schema, for reconstructing spanRows.
var rowSchema = parquet.SchemaOf(spanRow{})

// pickBatchRows bounds the rows scanPart picks at once.
const pickBatchRows = 4096

// ScanNewest calls match with the traces of the block that have a span
// in [start, end] (Unix ns; both 0: any) and, when flt is not nil, a span
// that passes its tests, newest first (by their earliest span in the
// block), until match has returned true for limit of them. Only the
// traces match is called with are read whole.
func (b *Block) ScanNewest(ctx context.Context, start, end int64, flt *Filter, limit int, match func(id [16]byte, td ptrace.Traces) bool) error {
	if start != 0 || end != 0 {
		if b.meta.MaxTime < start || b.meta.MinTime > end {
			return nil
		}
	}
	f, err := b.parquetFile(ctx)
	if err != nil {
		return err
	}
	_, err = guard(func() (struct{}, error) { return struct{}{}, scanNewest(ctx, f, start, end, flt, limit, match) })
	if err != nil {
		return fmt.Errorf("scanning trace block %s: %w", b.meta.ULID, err)
	}
	return nil
}

func scanNewest(ctx context.Context, f *parquet.File, start, end int64, flt *Filter, limit int, match func(id [16]byte, td ptrace.Traces) bool) error {
	groups := len(f.RowGroups())
	parts := max(1, min(runtime.GOMAXPROCS(0), groups))
	found := make([][]rowRange, parts)
	g, gctx := errgroup.WithContext(ctx)
	for k := range parts {
		g.Go(func() error {
			var err error
			found[k], err = candidates(gctx, f, k*groups/parts, (k+1)*groups/parts, start, end, flt)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	all := slices.Concat(found...)
	slices.SortFunc(all, func(a, b rowRange) int { return cmp.Or(cmp.Compare(b.start, a.start), cmp.Compare(a.first, b.first)) })
	matched := 0
	for len(all) > 0 && matched < limit {
		// The next newest, as many as matches are missing (and a few more
		// when the filter leaves out little), read in row order.
		batch := all[:min(len(all), max(limit-matched, 16))]
		all = all[len(batch):]
		slices.SortFunc(batch, func(a, b rowRange) int { return cmp.Compare(a.first, b.first) })
		err := readTraces(ctx, f, batch, func(id [16]byte, td ptrace.Traces) bool {
			if match(id, td) {
				matched++
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scanPart calls fn with the traces of candidates(f, g0, g1, ...).
func scanPart(ctx context.Context, f *parquet.File, g0, g1 int, start, end int64, flt *Filter, fn func(id [16]byte, td ptrace.Traces) bool) error {
	ranges, err := candidates(ctx, f, g0, g1, start, end, flt)
	if err != nil {
		return err
	}
	return readTraces(ctx, f, ranges, fn)
}

// readTraces calls fn with the traces in ranges (in increasing row order)
// until it returns false.
func readTraces(ctx context.Context, f *parquet.File, ranges []rowRange, fn func(id [16]byte, td ptrace.Traces) bool) error {
	p, err := newPicker(f)
	if err != nil {
		return err
	}
	defer p.close()
	var trace []spanRow
	for len(ranges) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, n := 0, int64(0)
		for k < len(ranges) && (k == 0 || n+ranges[k].n <= pickBatchRows) {
			n += ranges[k].n
			k++
		}
		rows, err := p.pick(ranges[:k])
		if err != nil {
			return err
		}
		for _, want := range ranges[:k] {
			trace = trace[:0]
			for _, row := range rows[:want.n] {
				var sr spanRow
				if err := rowSchema.Reconstruct(&sr, row); err != nil {
					return err
				}
				trace = append(trace, sr)
			}
			rows = rows[want.n:]
			td, err := tracesOf(trace)
			if err != nil {
				return fmt.Errorf("trace %x: %w", trace[0].TraceID, err)
			}
			if !fn(trace[0].TraceID, td) {
				return nil
			}
		}
		ranges = ranges[k:]
	}
	return nil
}
