// Package logmerge merges the streams of the sources of a logs query.
// A logs query reads several sources — each ingester replica's answer,
// each store-gateway's answer and each block of the bucket — that all give
// their streams in label order, each stream's entries in timestamp order.
// The querier (and a store-gateway, over its blocks) merges them stream by
// stream: it holds one stream of each source at a time, never the whole
// answer, and drops the entries two sources both hold (same stream,
// timestamp and line).
package logmerge

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

// Source is one source's streams, in label order.
type Source interface {
	// Next moves to the source's next stream; false at the end or on an
	// error. The previous stream's entries may be overwritten.
	Next() bool
	Labels() labels.Labels
	Entries() []logql.Entry
	Err() error
}

// BlockSource adapts a block's stream iterator.
type BlockSource struct {
	it *logblock.StreamIterator
	es []logql.Entry
}

// NewBlockSource returns the source of a block's streams.
func NewBlockSource(it *logblock.StreamIterator) *BlockSource { return &BlockSource{it: it} }

// Skipped are the lines the block left out for lacking a needle, and their
// bytes (logql.SkipCounter).
func (s *BlockSource) Skipped() (lines, bytes int64) {
	return s.it.Stats.SkippedLines, s.it.Stats.SkippedBytes
}

func (s *BlockSource) Next() bool {
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
func (s *BlockSource) Labels() labels.Labels  { return s.it.Labels() }
func (s *BlockSource) Entries() []logql.Entry { return s.es }
func (s *BlockSource) Err() error             { return s.it.Err() }

// RemoteSource reads one ingester's or store-gateway's select stream,
// whose batches may cut a stream in pieces: consecutive pieces of one
// stream are joined.
type RemoteSource struct {
	recv func() (*logspb.SelectBatch, error)
	// skipped are the counts of the last batch (running totals).
	skippedLines, skippedBytes int64
	pending                    []*logspb.Stream // pieces received, not yet consumed
	sb                         labels.ScratchBuilder
	cur                        labels.Labels
	es                         []logql.Entry
	e                          error
	eof                        bool
}

// piece returns the next stream piece, receiving a batch when needed.
func (s *RemoteSource) piece() (*logspb.Stream, bool) {
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
		s.skippedLines, s.skippedBytes = b.SkippedLines, b.SkippedBytes
	}
	return s.pending[0], true
}

// NewRemoteSource returns the source of a select stream; recv returns its
// next batch, io.EOF at the end.
func NewRemoteSource(recv func() (*logspb.SelectBatch, error)) *RemoteSource {
	return &RemoteSource{recv: recv}
}

// Skipped are the lines the remote side left out for lacking a needle, as
// its last batch so far says (logql.SkipCounter).
func (s *RemoteSource) Skipped() (lines, bytes int64) { return s.skippedLines, s.skippedBytes }

func (s *RemoteSource) Next() bool {
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

func (s *RemoteSource) Labels() labels.Labels  { return s.cur }
func (s *RemoteSource) Entries() []logql.Entry { return s.es }
func (s *RemoteSource) Err() error             { return s.e }

// Iterator is the logql.StreamIterator over sources: one batch per
// stream, its entries from every source merged in time order without
// duplicates.
type Iterator struct {
	h       sourceHeap
	counted []logql.SkipCounter // every source that counts what it left out
	cur     labels.Labels
	es      []logql.Entry
	merged  []logql.Entry // reused when several sources hold a stream
	merged2 []logql.Entry
	e       error
	closers []func()
	// consumed are the sources whose current stream the last batch was
	// made of: they move on at the next call, not before, as the batch may
	// be their memory.
	consumed []Source
}

// New merges primed sources: each already moved to its first
// stream.
func New(primed []Source, closers []func()) *Iterator {
	it := &Iterator{h: primed, closers: closers}
	heap.Init(&it.h)
	return it
}

type sourceHeap []Source

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return labels.Compare(h[i].Labels(), h[j].Labels()) < 0 }
func (h sourceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sourceHeap) Push(x any)        { *h = append(*h, x.(Source)) }
func (h *sourceHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (it *Iterator) Next() bool {
	if it.e != nil {
		return false
	}
	for _, s := range it.consumed {
		if s.Next() {
			heap.Push(&it.h, s)
		} else if err := s.Err(); err != nil {
			it.e = err
			return false
		}
	}
	it.consumed = it.consumed[:0]
	if len(it.h) == 0 {
		return false
	}
	it.cur = it.h[0].Labels()
	for len(it.h) > 0 && labels.Equal(it.h[0].Labels(), it.cur) {
		it.consumed = append(it.consumed, heap.Pop(&it.h).(Source))
	}
	if len(it.consumed) == 1 {
		it.es = dedupeSorted(it.consumed[0].Entries())
		return true
	}
	// Each source's entries are in time order. Blocks shipped one after
	// another hold a stream's successive times: put the sources in order of
	// their first entry and, when none overlaps the next, the merge is one
	// copy. Otherwise merge them pairwise, into two buffers in turn.
	slices.SortFunc(it.consumed, func(a, b Source) int {
		return cmpFirst(a.Entries(), b.Entries())
	})
	if disjoint(it.consumed) {
		it.merged = it.merged[:0]
		for _, s := range it.consumed {
			it.merged = append(it.merged, s.Entries()...)
		}
		it.es = dedupeSorted(it.merged)
		return true
	}
	it.es = it.consumed[0].Entries()
	for k, s := range it.consumed[1:] {
		buf := &it.merged
		if k%2 == 1 {
			buf = &it.merged2
		}
		*buf = mergeTwo((*buf)[:0], it.es, s.Entries())
		it.es = *buf
	}
	it.es = dedupeSorted(it.es)
	return true
}

// Skipped is what the sources left out for lacking a needle
// (logql.SkipCounter).
func (it *Iterator) Skipped() (lines, bytes int64) {
	for _, c := range it.counted {
		l, b := c.Skipped()
		lines += l
		bytes += b
	}
	return lines, bytes
}

// Count adds sources whose Skipped counts the merge's Skipped sums: every
// source read, primed or not (a source with no stream may have left lines
// out).
func (it *Iterator) Count(srcs ...logql.SkipCounter) { it.counted = append(it.counted, srcs...) }

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
func disjoint(srcs []Source) bool {
	var last int64
	started := false
	for _, s := range srcs {
		es := s.Entries()
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

func (it *Iterator) Labels() labels.Labels  { return it.cur }
func (it *Iterator) Entries() []logql.Entry { return it.es }
func (it *Iterator) Err() error             { return it.e }
func (it *Iterator) Close() error {
	for _, c := range it.closers {
		c()
	}
	it.closers = nil
	return nil
}
