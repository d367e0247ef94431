package compactor

import (
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
)

// A job's blocks are merged stream by stream: each block's streams come
// in label order (a k-way merge), and each stream's entries from every
// block in time order, read one chunk of each block at a time. So a job
// holds, besides the blocks' indexes, one chunk of each block and the
// chunk being written, whatever the blocks' sizes.

// mergeStats count what a merge left out.
type mergeStats struct {
	entries    int64 // written
	duplicates int64 // equal entries (replicas) kept once
	deleted    int64 // by ripe deletion requests
	expired    int64 // past their stream's retention
	// expiredChunks are chunks wholly past retention, left out unread.
	expiredChunks int
}

func (s mergeStats) changed() bool {
	return s.duplicates+s.deleted+s.expired > 0 || s.expiredChunks > 0
}

// blockError is an error reading one block of a job.
type blockError struct {
	id  ulid.ULID
	err error
}

func (e *blockError) Error() string { return fmt.Sprintf("log block %s: %v", e.id, e.err) }
func (e *blockError) Unwrap() error { return e.err }

// runLogsJob writes a job's blocks as one block (none when no entry is
// left), uploads it (meta.json last) and marks the job's blocks for
// deletion. A rewrite that would leave out nothing writes nothing. It
// returns the blocks written; errCorruptBlock when a block is damaged (it
// is then marked no-compact).
func (c *Compactor) runLogsJob(ctx context.Context, t *logsTenant, j logsJob) (int, error) {
	if err := os.MkdirAll(c.tenantDir(t.id), 0o750); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp(c.tenantDir(t.id), "logs-job-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // scratch space, also wiped at start

	var (
		blocks  []*logblock.Block
		sources []ulid.ULID
		oldest  = uint64(math.MaxUint64)
	)
	defer func() {
		for _, b := range blocks {
			_ = b.Close()
		}
	}()
	for _, m := range j.blocks {
		b, err := logblock.OpenBlock(ctx, c.bkt, t.id, m)
		if err != nil {
			return 0, err
		}
		blocks = append(blocks, b)
		sources = append(sources, m.ULID)
		oldest = min(oldest, m.ULID.Time())
	}
	slices.SortFunc(sources, func(a, b ulid.ULID) int { return a.Compare(b) })
	id := ulid.MustNew(oldest, rand.Reader)
	w, err := logblock.NewWriter(dir, logblock.Meta{ULID: id, Source: "compactor", Sources: sources})
	if err != nil {
		return 0, err
	}
	defer w.Close() //nolint:errcheck // closed below on success

	st, err := c.mergeLogBlocks(ctx, t, blocks, w)
	var be *blockError
	if errors.As(err, &be) && (errors.Is(err, logchunk.ErrCorrupt) || errors.Is(err, logchunk.ErrUnsupported)) {
		level.Error(c.logger).Log("msg", "log block is corrupt: marked no-compact and skipped; queries still read it where they can", "tenant", t.id, "block", be.id, "err", be.err)
		if merr := layout.WriteMark(ctx, t.tb, be.id, layout.NoCompactMarkFilename, "corrupt: "+be.err.Error(), t.now); merr != nil {
			return 0, merr
		}
		return 0, errCorruptBlock
	}
	if err != nil {
		return 0, fmt.Errorf("merging log blocks %v: %w", sources, err)
	}
	c.metrics.logEntriesDropped.WithLabelValues("duplicate").Add(float64(st.duplicates))
	c.metrics.logEntriesDropped.WithLabelValues("deleted").Add(float64(st.deleted))
	c.metrics.logEntriesDropped.WithLabelValues("retention").Add(float64(st.expired))
	if j.kind == "rewrite" && !st.changed() {
		level.Debug(c.logger).Log("msg", "log block rewrite left nothing out; kept as is", "tenant", t.id, "block", sources[0])
		return 0, nil
	}
	var written []ulid.ULID
	if w.Chunks() > 0 {
		if _, err := w.Finish(); err != nil {
			return 0, err
		}
		if err := w.Close(); err != nil {
			return 0, err
		}
		if err := logblock.Upload(ctx, c.bkt, t.id, dir, id); err != nil {
			return 0, err
		}
		written = append(written, id)
	}
	reason := fmt.Sprintf("compacted into %v", written)
	if len(written) == 0 {
		reason = "compacted into nothing: every entry deleted or past retention"
	}
	for _, s := range sources {
		if err := layout.WriteMark(ctx, t.tb, s, layout.DeletionMarkFilename, reason, t.now); err != nil {
			return len(written), err
		}
		c.metrics.blocksMarked.WithLabelValues("compacted").Inc()
	}
	c.metrics.compactions.WithLabelValues("logs_" + j.kind).Add(float64(len(written)))
	level.Info(c.logger).Log("msg", "compacted log blocks", "tenant", t.id, "kind", j.kind, "sources", fmt.Sprint(sources), "block", fmt.Sprint(written),
		"entries", st.entries, "duplicates", st.duplicates, "deleted", st.deleted, "expired", st.expired, "expired_chunks", st.expiredChunks)
	return len(written), nil
}

// refSource is one block's streams, for the k-way merge by labels.
type refSource struct {
	b  *logblock.Block
	it *logblock.RefIterator
}

type refHeap []*refSource

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return labels.Compare(h[i].it.Labels(), h[j].it.Labels()) < 0 }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeap) Push(x any)        { *h = append(*h, x.(*refSource)) }
func (h *refHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeLogBlocks writes the streams of blocks into w, each stream's
// entries from every block merged.
func (c *Compactor) mergeLogBlocks(ctx context.Context, t *logsTenant, blocks []*logblock.Block, w *logblock.Writer) (mergeStats, error) {
	var (
		st mergeStats
		h  refHeap
	)
	for _, b := range blocks {
		it, err := b.Refs(ctx)
		if err != nil {
			return st, &blockError{b.Meta.ULID, err}
		}
		s := &refSource{b: b, it: it}
		if s.it.Next() {
			h = append(h, s)
		} else if err := s.it.Err(); err != nil {
			return st, &blockError{b.Meta.ULID, err}
		}
	}
	heap.Init(&h)
	out := &chunkOut{w: w, target: c.logsChunkTarget}
	var group []*refSource
	for len(h) > 0 {
		ls := h[0].it.Labels().Copy()
		group = group[:0]
		for len(h) > 0 && labels.Equal(h[0].it.Labels(), ls) {
			group = append(group, heap.Pop(&h).(*refSource))
		}
		cursors := make([]*chunkCursor, len(group))
		for i, s := range group {
			cursors[i] = &chunkCursor{b: s.b, refs: slices.Clone(s.it.Chunks())}
		}
		if err := mergeStream(ctx, t, ls, cursors, out, &st); err != nil {
			return st, err
		}
		for _, s := range group {
			if s.it.Next() {
				heap.Push(&h, s)
			} else if err := s.it.Err(); err != nil {
				return st, &blockError{s.b.Meta.ULID, err}
			}
		}
	}
	return st, nil
}

// chunkCursor walks one block's entries of a stream, one chunk at a time.
type chunkCursor struct {
	b     *logblock.Block
	refs  []logblock.ChunkRef
	next  int // the next chunk to read
	es    []logchunk.Entry
	pos   int
	lines []byte // the lines of es
}

// fill reads chunks until the cursor has an entry at or after cutoff, or
// none is left; chunks wholly before cutoff are left unread.
func (cc *chunkCursor) fill(ctx context.Context, cutoff int64, st *mergeStats) (bool, error) {
	for cc.pos == len(cc.es) {
		if cc.next == len(cc.refs) {
			return false, nil
		}
		ref := cc.refs[cc.next]
		cc.next++
		if ref.MaxTime < cutoff {
			st.expiredChunks++
			continue
		}
		ch, err := cc.b.ReadChunk(ctx, ref)
		if err != nil {
			return false, &blockError{cc.b.Meta.ULID, err}
		}
		cc.es, cc.pos = cc.es[:0], 0
		if need := int(ch.RawBytes()); cap(cc.lines) < need {
			cc.lines = make([]byte, 0, need)
		}
		cc.lines = cc.lines[:0]
		n := 0
		err = ch.Iterate(math.MinInt64, math.MaxInt64, true, func(e logchunk.Entry) bool {
			n++
			if e.Timestamp < cutoff {
				return true
			}
			md := e.Metadata
			if !md.IsEmpty() {
				md = md.Copy()
			}
			// The lines array never grows past the chunk's raw bytes, so
			// lines kept in it stay where they are.
			off := len(cc.lines)
			cc.lines = append(cc.lines, e.Line...)
			cc.es = append(cc.es, logchunk.Entry{Timestamp: e.Timestamp, Line: bytesString(cc.lines[off:]), Metadata: md})
			return true
		})
		if err != nil {
			return false, &blockError{cc.b.Meta.ULID, err}
		}
		st.expired += int64(n - len(cc.es))
	}
	return true, nil
}

func (cc *chunkCursor) head() logchunk.Entry { return cc.es[cc.pos] }

// mergeStream merges one stream's entries from cursors (one per block
// holding it) into out: in time order, equal entries (same timestamp,
// line and structured metadata) once, without those past the stream's
// retention or deleted by a ripe request.
func mergeStream(ctx context.Context, t *logsTenant, ls labels.Labels, cursors []*chunkCursor, out *chunkOut, st *mergeStats) error {
	cutoff := t.cutoff(ls)
	var dels []*logdelete.StreamFilter
	for _, f := range t.filters {
		if f.Selects(ls) {
			dels = append(dels, f.ForStream(ls))
		}
	}
	live := cursors[:0:0]
	for _, cc := range cursors {
		ok, err := cc.fill(ctx, cutoff, st)
		if err != nil {
			return err
		}
		if ok {
			live = append(live, cc)
		}
	}
	out.start(ls)
	var run []logchunk.Entry
	for len(live) > 0 {
		ts := int64(math.MaxInt64)
		for _, cc := range live {
			ts = min(ts, cc.head().Timestamp)
		}
		// The run of entries at ts from every block: replicas' copies of
		// an entry are neighbours once sorted. A run never goes on into a
		// block's next chunk (a stream's chunks in a block do not
		// overlap), so the cursors read on only once it is written out.
		run = run[:0]
		for _, cc := range live {
			for cc.pos < len(cc.es) && cc.head().Timestamp == ts {
				run = append(run, cc.head())
				cc.pos++
			}
		}
		if len(run) > 1 {
			slices.SortFunc(run, compareEntries)
		}
		for i, e := range run {
			if i > 0 && compareEntries(run[i-1], e) == 0 {
				st.duplicates++
				continue
			}
			if deleted(dels, e) {
				st.deleted++
				continue
			}
			out.add(e)
			st.entries++
		}
		// Cut only between timestamps: a stream's chunks in a block must
		// not overlap.
		if out.full() {
			if err := out.flush(); err != nil {
				return err
			}
		}
		kept := live[:0]
		for _, cc := range live {
			ok, err := cc.fill(ctx, cutoff, st)
			if err != nil {
				return err
			}
			if ok {
				kept = append(kept, cc)
			}
		}
		live = kept
	}
	return out.flush()
}

// bytesString is b as a string, without a copy: b must not change while
// the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func deleted(dels []*logdelete.StreamFilter, e logchunk.Entry) bool {
	for _, d := range dels {
		if d.Deletes(e.Timestamp, e.Line, e.Metadata) {
			return true
		}
	}
	return false
}

// compareEntries orders entries of one timestamp: by line, then metadata.
func compareEntries(a, b logchunk.Entry) int {
	if c := strings.Compare(a.Line, b.Line); c != 0 {
		return c
	}
	return labels.Compare(a.Metadata, b.Metadata)
}

// chunkOut cuts a stream's merged entries into chunks of the target raw
// size and adds them to the writer.
type chunkOut struct {
	w      *logblock.Writer
	target int
	ls     labels.Labels
	es     []logchunk.Entry
	lines  []byte
	raw    int
	buf    []byte
}

func (o *chunkOut) start(ls labels.Labels) { o.ls = ls }

// add copies an entry into the chunk being built.
func (o *chunkOut) add(e logchunk.Entry) {
	if cap(o.lines)-len(o.lines) < len(e.Line) {
		// Lines kept so far stay in the array they are in.
		o.lines = make([]byte, 0, max(o.target+o.target/4, len(e.Line)))
	}
	off := len(o.lines)
	o.lines = append(o.lines, e.Line...)
	e.Line = bytesString(o.lines[off:])
	o.es = append(o.es, e)
	o.raw += len(e.Line)
}

func (o *chunkOut) full() bool { return o.raw >= o.target }

// flush encodes and writes the chunk being built, if any.
func (o *chunkOut) flush() error {
	if len(o.es) == 0 {
		return nil
	}
	var err error
	if o.buf, err = logchunk.Encode(o.buf[:0], o.es); err != nil {
		return fmt.Errorf("stream %s: %w", o.ls, err)
	}
	if err := o.w.Add(o.ls, o.buf); err != nil {
		return err
	}
	clear(o.es)
	o.es, o.raw = o.es[:0], 0
	o.lines = o.lines[:0]
	return nil
}
