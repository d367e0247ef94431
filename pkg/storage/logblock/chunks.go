package logblock

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// ChunkRef is one chunk of a stream in a block: its time range (Unix ns,
// both included) and where it is in the chunks file.
type ChunkRef struct {
	MinTime, MaxTime int64
	ref              chunks.ChunkRef
}

// RefIterator walks every stream of a block in label order with its
// chunks' references, reading only the index (the compactor's view: it
// reads the chunks one at a time with ReadChunk).
type RefIterator struct {
	b      *Block
	ctx    context.Context
	p      index.Postings
	sb     labels.ScratchBuilder
	metas  []chunks.Meta
	refs   []ChunkRef
	labels labels.Labels
	err    error
}

// Refs returns an iterator over every stream of the block.
func (b *Block) Refs(ctx context.Context) (*RefIterator, error) {
	k, v := index.AllPostingsKey()
	p, err := b.index.Postings(ctx, k, v)
	if err != nil {
		return nil, fmt.Errorf("log block %s: %w", b.Meta.ULID, err)
	}
	return &RefIterator{b: b, ctx: ctx, p: p}, nil
}

// Next moves to the next stream; false at the end or on an error (Err).
func (it *RefIterator) Next() bool {
	if it.err != nil {
		return false
	}
	for it.p.Next() {
		if it.err = it.ctx.Err(); it.err != nil {
			return false
		}
		if it.err = it.b.index.Series(it.p.At(), &it.sb, &it.metas); it.err != nil {
			it.err = fmt.Errorf("log block %s: %w", it.b.Meta.ULID, it.err)
			return false
		}
		if len(it.metas) == 0 {
			continue
		}
		it.refs = it.refs[:0]
		for _, m := range it.metas {
			it.refs = append(it.refs, ChunkRef{MinTime: m.MinTime, MaxTime: m.MaxTime, ref: m.Ref})
		}
		it.labels = it.sb.Labels()
		return true
	}
	it.err = it.p.Err()
	return false
}

// Labels are the current stream's labels, valid until the next call to
// Next.
func (it *RefIterator) Labels() labels.Labels { return it.labels }

// Chunks are the current stream's chunks in time order (they never
// overlap), valid until the next call to Next.
func (it *RefIterator) Chunks() []ChunkRef { return it.refs }

// Err is the error that ended the iteration, if any.
func (it *RefIterator) Err() error { return it.err }

// ReadChunk reads and checks one chunk of the block. The chunk has no
// token filter (the block keeps them apart): it answers MayContain true.
func (b *Block) ReadChunk(ctx context.Context, c ChunkRef) (*logchunk.Chunk, error) {
	off, n := unpackRef(c.ref)
	data, err := b.getRange(ctx, off, n)
	if err != nil {
		return nil, err
	}
	ch, err := logchunk.Open(data)
	if err != nil {
		return nil, fmt.Errorf("chunk at %d of log block %s: %w", off, b.Meta.ULID, err)
	}
	return ch, nil
}
