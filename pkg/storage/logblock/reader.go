package logblock

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
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
	Meta   Meta
	tenant string
	bkt    objstore.BucketReader
	index  *index.Reader
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
	return &Block{Meta: m, tenant: tenant, bkt: bkt, index: ir}, nil
}

// Close releases the block's index.
func (b *Block) Close() error { return b.index.Close() }

// Stats count what a Select read.
type SelectStats struct {
	Chunks, ChunksSkipped int
	Bytes                 int64 // compressed bytes fetched
}

// Select calls fn for each stream matching ms with its entries in
// [start, end) in timestamp order, reading only chunks that overlap the
// range and whose token filter admits every needle. fn owns what it is
// given.
func (b *Block) Select(ctx context.Context, ms []*labels.Matcher, start, end int64, needles []string, fn func(ls labels.Labels, es []logchunk.Entry) error) (SelectStats, error) {
	var st SelectStats
	if b.Meta.MaxTime < start || b.Meta.MinTime >= end {
		return st, nil
	}
	p, err := tsdb.PostingsForMatchers(ctx, b.index, ms...)
	if err != nil {
		return st, err
	}
	var (
		sb    labels.ScratchBuilder
		metas []chunks.Meta
	)
	for p.Next() {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := b.index.Series(p.At(), &sb, &metas); err != nil {
			return st, err
		}
		var out []logchunk.Entry
		sorted := true
		for _, cm := range metas {
			if cm.MaxTime < start || cm.MinTime >= end {
				continue
			}
			off, n := unpackRef(cm.Ref)
			data, err := b.getRange(ctx, off, n)
			if err != nil {
				return st, err
			}
			st.Bytes += int64(n)
			c, err := logchunk.Open(data)
			if err != nil {
				return st, fmt.Errorf("chunk at %d of log block %s: %w", off, b.Meta.ULID, err)
			}
			if !admits(c, needles) {
				st.ChunksSkipped++
				continue
			}
			st.Chunks++
			if len(out) > 0 && c.MinTime() < out[len(out)-1].Timestamp {
				sorted = false
			}
			err = c.Iterate(start, end, true, func(e logchunk.Entry) bool {
				out = append(out, logchunk.Entry{Timestamp: e.Timestamp, Line: string([]byte(e.Line)), Metadata: e.Metadata.Copy()})
				return true
			})
			if err != nil {
				return st, err
			}
		}
		if len(out) == 0 {
			continue
		}
		if !sorted {
			slices.SortStableFunc(out, func(a, b logchunk.Entry) int {
				switch {
				case a.Timestamp < b.Timestamp:
					return -1
				case a.Timestamp > b.Timestamp:
					return 1
				}
				return 0
			})
		}
		if err := fn(sb.Labels(), out); err != nil {
			return st, err
		}
	}
	return st, p.Err()
}

func admits(c *logchunk.Chunk, needles []string) bool {
	for _, n := range needles {
		if !c.MayContain(n) {
			return false
		}
	}
	return true
}

func (b *Block) getRange(ctx context.Context, off, n uint64) ([]byte, error) {
	r, err := b.bkt.GetRange(ctx, path.Join(Dir(b.tenant, b.Meta.ULID), ChunksFile), int64(off), int64(n))
	if err != nil {
		return nil, fmt.Errorf("reading a chunk of log block %s: %w", b.Meta.ULID, err)
	}
	defer r.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading a chunk of log block %s: %w", b.Meta.ULID, err)
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
