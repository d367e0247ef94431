package compactor

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
)

// A merge job downloads its blocks' data.parquet and bloom files into the
// compactor's directory (one GET each, instead of thousands of ranged
// reads), then walks them side by side in trace ID order (a k-way merge of
// traceblock.TraceIterators) and gives each trace's rows from every block
// to one traceblock.Writer.AddFrom, which keeps replicas' copies of a span
// once. A job holds, besides the blocks' footers, one trace and a few
// pages of each block and the row group being written: memory does not
// grow with the blocks, only with the number merged at once, which
// tracesMaxMergeBlocks bounds.

// tracesMaxMergeBlocks is the most blocks one job merges. A merge window
// of more blocks (ingesters ship every -ingester.traces.ship-interval, 30s:
// a 2h window of three replicas holds 720) is merged in several jobs of
// about equal size, and their blocks, still in the window, by a job of the
// next round.
const tracesMaxMergeBlocks = 32

// tracesMaxRounds bounds the merge rounds of one tenant in one pass.
const tracesMaxRounds = 8

// planTraces returns the merge jobs of a tenant's blocks (none marked for
// deletion or no-compact): the groups of mergeWindowGroups, cut into jobs
// of at most tracesMaxMergeBlocks blocks.
func planTraces(bs []traceblock.Meta, windows []time.Duration, now time.Time) [][]traceblock.Meta {
	var jobs [][]traceblock.Meta
	for _, g := range mergeWindowGroups(bs, func(m traceblock.Meta) ulid.ULID { return m.ULID }, windows, now) {
		n := (len(g) + tracesMaxMergeBlocks - 1) / tracesMaxMergeBlocks
		for i := range n {
			jobs = append(jobs, g[i*len(g)/n:(i+1)*len(g)/n])
		}
	}
	return jobs
}

// traceBlockError is an error reading one block of a job: the block is
// damaged.
type traceBlockError struct {
	id  ulid.ULID
	err error
}

func (e *traceBlockError) Error() string { return fmt.Sprintf("trace block %s: %v", e.id, e.err) }
func (e *traceBlockError) Unwrap() error { return e.err }

// tracesCompact merges the tenant's blocks of the merge windows that are
// over, round after round until each window is one block. A damaged block
// is marked no-compact and left out. It returns the blocks written.
func (c *Compactor) tracesCompact(ctx context.Context, t *tracesTenant, cands []traceblock.Meta) (int, error) {
	written := 0
	for range tracesMaxRounds {
		jobs := planTraces(cands, c.cfg.TracesMergeWindows, t.now)
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			m, err := c.runTracesJob(ctx, t, j)
			var be *traceBlockError
			if errors.As(err, &be) {
				level.Error(c.logger).Log("msg", "trace block is corrupt: marked no-compact and skipped; queries still read it where they can", "tenant", t.id, "block", be.id, "err", be.err)
				if merr := layout.WriteMark(ctx, t.tb, be.id, layout.NoCompactMarkFilename, "corrupt: "+be.err.Error(), t.now); merr != nil {
					return written, merr
				}
				cands = slices.DeleteFunc(cands, func(m traceblock.Meta) bool { return m.ULID == be.id })
				continue
			}
			if err != nil {
				return written, err
			}
			cands = slices.DeleteFunc(cands, func(x traceblock.Meta) bool {
				return slices.ContainsFunc(j, func(s traceblock.Meta) bool { return s.ULID == x.ULID })
			})
			if m.Stats.Traces > 0 {
				cands = append(cands, m)
				written++
			}
		}
	}
	return written, nil
}

// runTracesJob merges blocks into one, uploads it (meta.json last) and
// marks the blocks for deletion. It returns the new block's meta (no
// traces and not uploaded when the blocks had none); a *traceBlockError
// when a block is damaged.
func (c *Compactor) runTracesJob(ctx context.Context, t *tracesTenant, blocks []traceblock.Meta) (traceblock.Meta, error) {
	if err := os.MkdirAll(c.tenantDir(t.id), 0o750); err != nil {
		return traceblock.Meta{}, err
	}
	dir, err := os.MkdirTemp(c.tenantDir(t.id), "traces-job-")
	if err != nil {
		return traceblock.Meta{}, err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // scratch space, also wiped at start

	in := filepath.Join(dir, "in")
	local, err := filesystem.NewBucket(in)
	if err != nil {
		return traceblock.Meta{}, err
	}
	var (
		sources []ulid.ULID
		spans   int64
		oldest  = uint64(math.MaxUint64)
		opened  []*traceblock.Block
	)
	for _, m := range blocks {
		b, err := c.fetchTraceBlock(ctx, t, in, local, m)
		if err != nil {
			return traceblock.Meta{}, err
		}
		opened = append(opened, b)
		sources = append(sources, m.ULID)
		spans += m.Stats.Spans
		oldest = min(oldest, m.ULID.Time())
	}
	slices.SortFunc(sources, func(a, b ulid.ULID) int { return a.Compare(b) })
	id := ulid.MustNew(oldest, rand.Reader)
	out := filepath.Join(dir, "out")
	w, err := traceblock.NewWriter(out, traceblock.Meta{ULID: id, Source: "compactor", Sources: sources})
	if err != nil {
		return traceblock.Meta{}, err
	}
	defer w.Close() //nolint:errcheck // closed below on success
	if err := mergeTraceBlocks(ctx, opened, w); err != nil {
		return traceblock.Meta{}, err
	}
	m, err := w.Finish()
	if err != nil {
		return traceblock.Meta{}, err
	}
	if err := w.Close(); err != nil {
		return traceblock.Meta{}, err
	}
	reason := fmt.Sprintf("compacted into [%s]", id)
	if m.Stats.Traces > 0 {
		if err := traceblock.Upload(ctx, c.bkt, t.id, out, id); err != nil {
			return traceblock.Meta{}, err
		}
		c.metrics.compactions.WithLabelValues("traces_merge").Inc()
	} else {
		reason = "compacted into nothing: no trace"
	}
	for _, s := range sources {
		if err := layout.WriteMark(ctx, t.tb, s, layout.DeletionMarkFilename, reason, t.now); err != nil {
			return m, err
		}
		c.metrics.blocksMarked.WithLabelValues("compacted").Inc()
	}
	c.tracesMetrics.spansDeduplicated.Add(float64(spans - m.Stats.Spans))
	level.Info(c.logger).Log("msg", "merged trace blocks", "tenant", t.id, "sources", fmt.Sprint(sources), "block", id,
		"traces", m.Stats.Traces, "spans", m.Stats.Spans, "duplicates", spans-m.Stats.Spans, "bytes", m.Stats.DataBytes)
	return m, nil
}

// fetchTraceBlock downloads block m's data and bloom files into local, a
// filesystem bucket in directory root, and opens the copy.
func (c *Compactor) fetchTraceBlock(ctx context.Context, t *tracesTenant, root string, local objstore.Bucket, m traceblock.Meta) (*traceblock.Block, error) {
	dst := filepath.Join(root, filepath.FromSlash(traceblock.Dir(t.id, m.ULID)))
	if err := os.MkdirAll(dst, 0o750); err != nil {
		return nil, err
	}
	for _, name := range []string{traceblock.DataFile, traceblock.BloomFile} {
		if err := c.download(ctx, path.Join(traceblock.Dir(t.id, m.ULID), name), filepath.Join(dst, name)); err != nil {
			if c.bkt.IsObjNotFoundErr(err) {
				return nil, &traceBlockError{m.ULID, fmt.Errorf("%s is missing", name)}
			}
			return nil, fmt.Errorf("downloading %s of trace block %s: %w", name, m.ULID, err)
		}
	}
	st, err := os.Stat(filepath.Join(dst, traceblock.DataFile))
	if err != nil {
		return nil, err
	}
	if st.Size() != m.Stats.DataBytes {
		return nil, &traceBlockError{m.ULID, fmt.Errorf("%s is %d bytes, meta.json says %d", traceblock.DataFile, st.Size(), m.Stats.DataBytes)}
	}
	b, err := traceblock.OpenBlock(ctx, local, t.id, m)
	if err != nil {
		return nil, &traceBlockError{m.ULID, err}
	}
	return b, nil
}

// download copies object name of the bucket into file dst.
func (c *Compactor) download(ctx context.Context, name, dst string) (err error) {
	r, err := c.bkt.Get(ctx, name)
	if err != nil {
		return err
	}
	defer r.Close() //nolint:errcheck // read-only
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	_, err = io.Copy(f, r)
	return err
}

// traceCursor is one block's traces, for the k-way merge by ID.
type traceCursor struct {
	id ulid.ULID
	it *traceblock.TraceIterator
}

type traceHeap []*traceCursor

func (h traceHeap) Len() int { return len(h) }
func (h traceHeap) Less(i, j int) bool {
	a, b := h[i].it.ID(), h[j].it.ID()
	return bytes.Compare(a[:], b[:]) < 0
}
func (h traceHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *traceHeap) Push(x any)   { *h = append(*h, x.(*traceCursor)) }
func (h *traceHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeTraceBlocks writes the traces of blocks into w in ID order, each
// trace's spans from every block holding it given to one AddFrom.
func mergeTraceBlocks(ctx context.Context, blocks []*traceblock.Block, w *traceblock.Writer) error {
	var h, all traceHeap
	defer func() {
		for _, cur := range all {
			_ = cur.it.Close()
		}
	}()
	// next moves cur to its next trace, and onto the heap if it has one.
	next := func(cur *traceCursor, after *[16]byte) error {
		if cur.it.Next() {
			if id := cur.it.ID(); after != nil && bytes.Compare(id[:], after[:]) <= 0 {
				return &traceBlockError{cur.id, fmt.Errorf("trace %x after %x: traces out of ID order", id, *after)}
			}
			heap.Push(&h, cur)
			return nil
		}
		if err := cur.it.Err(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &traceBlockError{cur.id, err}
		}
		return nil
	}
	for _, b := range blocks {
		it, err := b.Traces(ctx)
		if err != nil {
			return &traceBlockError{b.Meta().ULID, err}
		}
		cur := &traceCursor{id: b.Meta().ULID, it: it}
		all = append(all, cur)
		if err := next(cur, nil); err != nil {
			return err
		}
	}
	var (
		group   []*traceblock.TraceIterator
		cursors []*traceCursor
	)
	for len(h) > 0 {
		id := h[0].it.ID()
		group, cursors = group[:0], cursors[:0]
		for len(h) > 0 && h[0].it.ID() == id {
			cur := heap.Pop(&h).(*traceCursor)
			cursors = append(cursors, cur)
			group = append(group, cur.it)
		}
		if err := w.AddFrom(id, group...); err != nil {
			return err
		}
		for _, cur := range cursors {
			if err := next(cur, &id); err != nil {
				return err
			}
		}
	}
	return nil
}
