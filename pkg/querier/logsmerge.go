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
	// error.
	next() bool
	labels() labels.Labels
	entries() []logql.Entry
	err() error
}

// blockSource adapts a block's stream iterator.
type blockSource struct {
	it *logblock.StreamIterator
	es []logql.Entry
}

func (s *blockSource) next() bool {
	if !s.it.Next() {
		return false
	}
	in := s.it.Entries()
	s.es = make([]logql.Entry, len(in))
	for i, e := range in {
		s.es[i] = logql.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: e.Metadata}
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
	cur     labels.Labels
	es      []logql.Entry
	e       error
	closers []func()
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
	if it.e != nil || len(it.h) == 0 {
		return false
	}
	it.cur = it.h[0].labels()
	var parts [][]logql.Entry
	for len(it.h) > 0 && labels.Equal(it.h[0].labels(), it.cur) {
		s := it.h[0]
		parts = append(parts, s.entries())
		if s.next() {
			heap.Fix(&it.h, 0)
			continue
		}
		if err := s.err(); err != nil {
			it.e = err
			return false
		}
		heap.Pop(&it.h)
	}
	it.es = mergeEntries(parts)
	return true
}

// mergeEntries merges time-ordered entry lists, dropping exact repeats
// (the same timestamp and line).
func mergeEntries(parts [][]logql.Entry) []logql.Entry {
	if len(parts) == 1 {
		return dedupeSorted(parts[0])
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]logql.Entry, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	slices.SortStableFunc(out, func(a, b logql.Entry) int {
		if a.Timestamp != b.Timestamp {
			if a.Timestamp < b.Timestamp {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Line, b.Line)
	})
	return dedupeSorted(out)
}

// dedupeSorted drops the entries that repeat the one before (time order,
// lines of one timestamp sorted or not: only neighbours are compared, so
// repeats of one timestamp must be adjacent, which merging makes them).
func dedupeSorted(es []logql.Entry) []logql.Entry {
	out := es[:0]
	for i, e := range es {
		if i > 0 && e.Timestamp == es[i-1].Timestamp && e.Line == es[i-1].Line {
			continue
		}
		out = append(out, e)
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
