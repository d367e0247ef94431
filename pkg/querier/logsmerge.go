package querier

import (
	"container/heap"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
)

// A logs query reads several sources — each ingester replica's answer and
// each block of the bucket — that all give their streams in label order,
// each stream's entries in timestamp order. The querier merges them
// stream by stream: it holds one stream of each source at a time, never
// the whole answer, and drops the entries two sources both hold (same
// stream, timestamp and line).

// streamSource is one source's streams, in label order.
type streamSource interface {
	// next moves to the source's next stream; false at the end or on an
	// error. The previous stream's entries may be overwritten.
	next() bool
	labels() labels.Labels
	entries() []logql.Entry
	err() error
}

// blockSource adapts a block's stream iterator.
type blockSource struct {
	it     *logblock.StreamIterator
	es     []logql.Entry
	primed bool // the first next found a stream
}

func (s *blockSource) next() bool {
	if !s.it.Next() {
		return false
	}
	in := s.it.Entries()
	s.es = s.es[:0] // the merge has done with the previous stream
	for _, e := range in {
		s.es = append(s.es, logql.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: e.Metadata})
	}
	return true
}
func (s *blockSource) labels() labels.Labels  { return s.it.Labels() }
func (s *blockSource) entries() []logql.Entry { return s.es }
func (s *blockSource) err() error             { return s.it.Err() }

// ingesterSource reads one ingester's select stream, whose batches may cut
// a stream in pieces: consecutive pieces of one stream are joined.
type ingesterSource struct {
	recv    func() (*logspb.SelectBatch, error)
	pending []*logspb.Stream // pieces received, not yet consumed
	sb      labels.ScratchBuilder
	cur     labels.Labels
	es      []logql.Entry
	e       error
	eof     bool
}

// piece returns the next stream piece, receiving a batch when needed.
func (s *ingesterSource) piece() (*logspb.Stream, bool) {
	for len(s.pending) == 0 {
		if s.eof || s.e != nil {
			return nil, false
		}
		b, err := s.recv()
		if errors.Is(err, io.EOF) {
			s.eof = true
			return nil, false
		}
		if err != nil {
			s.e = err
			return nil, false
		}
		s.pending = b.Streams
	}
	return s.pending[0], true
}

func (s *ingesterSource) next() bool {
	p, ok := s.piece()
	if !ok {
		return false
	}
	s.cur = logsclient.ToLabels(p.Labels, &s.sb)
	s.es = nil
	for {
		p, ok := s.piece()
		if !ok || !samePairs(p.Labels, s.cur) {
			break
		}
		s.es = append(s.es, logsclient.ToEntries(p.Entries, &s.sb)...)
		s.pending = s.pending[1:]
	}
	return s.e == nil
}

// samePairs says whether wire pairs (sorted) are ls.
func samePairs(ps []*logspb.LabelPair, ls labels.Labels) bool {
	if len(ps) != ls.Len() {
		return false
	}
	i, same := 0, true
	ls.Range(func(l labels.Label) {
		if same && (ps[i].Name != l.Name || ps[i].Value != l.Value) {
			same = false
		}
		i++
	})
	return same
}

func (s *ingesterSource) labels() labels.Labels  { return s.cur }
func (s *ingesterSource) entries() []logql.Entry { return s.es }
func (s *ingesterSource) err() error             { return s.e }

// mergeIterator is the logql.StreamIterator over sources: one batch per
// stream, its entries from every source merged in time order without
// duplicates.
type mergeIterator struct {
	h       sourceHeap
	blocks  []*blockSource // every block read, for Skipped
	cur     labels.Labels
	es      []logql.Entry
	merged  []logql.Entry // reused when several sources hold a stream
	merged2 []logql.Entry
	e       error
	closers []func()
	// consumed are the sources whose current stream the last batch was
	// made of: they move on at the next call, not before, as the batch may
	// be their memory.
	consumed []streamSource
}

// newMergeIterator merges primed sources: each already moved to its first
// stream.
func newMergeIterator(primed []streamSource, closers []func()) *mergeIterator {
	it := &mergeIterator{h: primed, closers: closers}
	heap.Init(&it.h)
	return it
}

type sourceHeap []streamSource

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return labels.Compare(h[i].labels(), h[j].labels()) < 0 }
func (h sourceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sourceHeap) Push(x any)        { *h = append(*h, x.(streamSource)) }
func (h *sourceHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (it *mergeIterator) Next() bool {
	if it.e != nil {
		return false
	}
	for _, s := range it.consumed {
		if s.next() {
			heap.Push(&it.h, s)
		} else if err := s.err(); err != nil {
			it.e = err
			return false
		}
	}
	it.consumed = it.consumed[:0]
	if len(it.h) == 0 {
		return false
	}
	it.cur = it.h[0].labels()
	for len(it.h) > 0 && labels.Equal(it.h[0].labels(), it.cur) {
		it.consumed = append(it.consumed, heap.Pop(&it.h).(streamSource))
	}
	if len(it.consumed) == 1 {
		it.es = dedupeSorted(it.consumed[0].entries())
		return true
	}
	// Each source's entries are in time order. Blocks shipped one after
	// another hold a stream's successive times: put the sources in order of
	// their first entry and, when none overlaps the next, the merge is one
	// copy. Otherwise merge them pairwise, into two buffers in turn.
	slices.SortFunc(it.consumed, func(a, b streamSource) int {
		return cmpFirst(a.entries(), b.entries())
	})
	if disjoint(it.consumed) {
		it.merged = it.merged[:0]
		for _, s := range it.consumed {
			it.merged = append(it.merged, s.entries()...)
		}
		it.es = dedupeSorted(it.merged)
		return true
	}
	it.es = it.consumed[0].entries()
	for k, s := range it.consumed[1:] {
		buf := &it.merged
		if k%2 == 1 {
			buf = &it.merged2
		}
		*buf = mergeTwo((*buf)[:0], it.es, s.entries())
		it.es = *buf
	}
	it.es = dedupeSorted(it.es)
	return true
}

// Skipped is what the sources left out for lacking a needle
// (logql.SkipCounter).
func (it *mergeIterator) Skipped() (lines, bytes int64) {
	for _, b := range it.blocks {
		lines += b.it.Stats.SkippedLines
		bytes += b.it.Stats.SkippedBytes
	}
	return lines, bytes
}

// cmpFirst orders entry lists by their first timestamp (empty ones first).
func cmpFirst(a, b []logql.Entry) int {
	switch {
	case len(a) == 0 || len(b) == 0:
		return len(a) - len(b)
	case a[0].Timestamp < b[0].Timestamp:
		return -1
	case a[0].Timestamp > b[0].Timestamp:
		return 1
	}
	return 0
}

// disjoint says whether sources in order of their first entry hold times
// that do not overlap: each starts after the one before ends.
func disjoint(srcs []streamSource) bool {
	var last int64
	started := false
	for _, s := range srcs {
		es := s.entries()
		if len(es) == 0 {
			continue
		}
		if started && es[0].Timestamp <= last {
			return false
		}
		last, started = es[len(es)-1].Timestamp, true
	}
	return true
}

// mergeTwo appends the merge of two entry lists in time (then line) order
// to dst.
func mergeTwo(dst, a, b []logql.Entry) []logql.Entry {
	for len(a) > 0 && len(b) > 0 {
		if a[0].Timestamp < b[0].Timestamp || a[0].Timestamp == b[0].Timestamp && a[0].Line <= b[0].Line {
			dst = append(dst, a[0])
			a = a[1:]
		} else {
			dst = append(dst, b[0])
			b = b[1:]
		}
	}
	dst = append(dst, a...)
	return append(dst, b...)
}

// dedupeSorted drops exact repeats (the same timestamp and line) from
// entries in time order. Lines of one timestamp come in no set order: a run
// of them is sorted by line first, so that repeats are neighbours.
func dedupeSorted(es []logql.Entry) []logql.Entry {
	out := es[:0]
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].Timestamp == es[i].Timestamp {
			j++
		}
		run := es[i:j]
		if len(run) > 1 {
			slices.SortStableFunc(run, func(a, b logql.Entry) int { return strings.Compare(a.Line, b.Line) })
		}
		for k, e := range run {
			if k > 0 && e.Line == run[k-1].Line {
				continue
			}
			out = append(out, e)
		}
		i = j
	}
	return out
}

func (it *mergeIterator) Labels() labels.Labels  { return it.cur }
func (it *mergeIterator) Entries() []logql.Entry { return it.es }
func (it *mergeIterator) Err() error             { return it.e }
func (it *mergeIterator) Close() error {
	for _, c := range it.closers {
		c()
	}
	it.closers = nil
	return nil
}
