package traceblock

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A TraceIterator reads iterBatch rows at a time, through read buffers
// of iterReadBuffer bytes a column: the compactor walks tens of blocks side
// by side, each read from a local copy, so their buffers, not the reads,
// are what counts.
const (
	iterBatch      = 256
	iterReadBuffer = 4 << 10
)

// TraceIterator walks a block's traces in ID order, as Scan does, for a
// caller that walks several blocks side by side (the compactor's k-way
// merge). It reads data.parquet row group by row group, a page of each
// column at a time: it holds one trace's rows, a few hundred rows read
// ahead and a page and a 4 KiB read buffer a column (about 3 MB in all),
// whatever the block's size. The buffers are small because it is meant
// for blocks in a local filesystem bucket: from a remote bucket, each
// buffer is a ranged read. Not safe for concurrent use; Close releases it.
type TraceIterator struct {
	ctx context.Context
	b   *Block
	rgs []parquet.RowGroup
	rg  int                             // the next row group to open
	r   *parquet.GenericReader[spanRow] // of row group rg-1; nil between row groups
	buf []spanRow
	pos int // buf[pos:] are read and not yet taken
	cur []spanRow
	err error
}

// Traces returns an iterator over the block's traces, in trace ID order.
// It opens data.parquet (its footer) afresh, with the iterator's buffers.
func (b *Block) Traces(ctx context.Context) (*TraceIterator, error) {
	ra := &bucketReaderAt{bkt: b.bkt, name: b.name}
	f, err := guard(func() (*parquet.File, error) {
		return parquet.OpenFile(ra, b.meta.Stats.DataBytes, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true), parquet.ReadBufferSize(iterReadBuffer))
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s of trace block %s: %w", DataFile, b.meta.ULID, err)
	}
	return &TraceIterator{ctx: ctx, b: b, rgs: f.RowGroups()}, nil
}

// Next moves to the next trace and reports whether there is one; at the
// end, or on an error (Err), it returns false.
func (it *TraceIterator) Next() bool {
	clear(it.cur) // drop references to the previous trace's strings
	it.cur = it.cur[:0]
	if it.err != nil {
		return false
	}
	_, err := guard(func() (struct{}, error) { return struct{}{}, it.next() })
	if err != nil {
		it.err = fmt.Errorf("reading trace block %s: %w", it.b.meta.ULID, err)
		it.cur = it.cur[:0]
		return false
	}
	return len(it.cur) > 0
}

// next gathers the rows of the next trace into it.cur.
func (it *TraceIterator) next() error {
	for {
		if it.pos == len(it.buf) {
			more, err := it.fill()
			if err != nil || !more {
				return err
			}
		}
		for ; it.pos < len(it.buf); it.pos++ {
			row := &it.buf[it.pos]
			if len(it.cur) > 0 && row.TraceID != it.cur[0].TraceID {
				return nil
			}
			it.cur = append(it.cur, *row)
			*row = spanRow{}
		}
	}
}

// fill reads the next rows into buf, opening row groups as needed, and
// reports whether it read any.
func (it *TraceIterator) fill() (bool, error) {
	if it.buf == nil {
		it.buf = make([]spanRow, iterBatch)
	}
	for {
		if err := it.ctx.Err(); err != nil {
			return false, err
		}
		if it.r == nil {
			if it.rg == len(it.rgs) {
				it.buf, it.pos = it.buf[:0], 0
				return false, nil
			}
			it.r = parquet.NewGenericRowGroupReader[spanRow](it.rgs[it.rg])
			it.rg++
		}
		n, err := it.r.Read(it.buf[:cap(it.buf)])
		switch {
		case errors.Is(err, io.EOF):
			cerr := it.r.Close()
			it.r = nil
			if cerr != nil {
				return false, cerr
			}
		case err != nil:
			return false, err
		case n == 0:
			return false, io.ErrNoProgress
		}
		if n > 0 {
			it.buf, it.pos = it.buf[:n], 0
			return true, nil
		}
	}
}

// ID is the current trace's ID.
func (it *TraceIterator) ID() [16]byte {
	if len(it.cur) == 0 {
		return [16]byte{}
	}
	return it.cur[0].TraceID
}

// Spans is the number of spans of the current trace in the block.
func (it *TraceIterator) Spans() int { return len(it.cur) }

// At builds the current trace's spans, as Scan gives them.
func (it *TraceIterator) At() (ptrace.Traces, error) {
	td, err := tracesOf(it.cur)
	if err != nil {
		return td, fmt.Errorf("trace %x in trace block %s: %w", it.ID(), it.b.meta.ULID, err)
	}
	return td, nil
}

// Err is the error that ended the walk, if any.
func (it *TraceIterator) Err() error { return it.err }

// Close releases the iterator.
func (it *TraceIterator) Close() error {
	clear(it.cur)
	it.cur, it.buf = nil, nil
	if it.r == nil {
		return nil
	}
	err := it.r.Close()
	it.r = nil
	return err
}

// AddFrom writes trace id from iterators each positioned on it, as Add
// writes it from OTLP batches: spans with the same span ID and start are
// written once (replicas' copies), and the trace columns are computed
// anew. The stored rows are copied as they are, never built into OTLP
// spans. Iterators on another trace are an error.
func (w *Writer) AddFrom(id [16]byte, its ...*TraceIterator) error {
	rows := w.rows[:0]
	for _, it := range its {
		if len(it.cur) == 0 || it.cur[0].TraceID != id {
			return fmt.Errorf("trace %x: an iterator of block %s is not on it", id, it.b.meta.ULID)
		}
		rows = append(rows, it.cur...)
	}
	w.rows = rows
	return w.writeTrace(id, rows)
}
