package logmerge

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// sliceSource is a Source over streams given in label order.
type sliceSource struct {
	streams []logql.Stream
	i       int
}

func (s *sliceSource) Next() bool             { s.i++; return s.i < len(s.streams) }
func (s *sliceSource) Labels() labels.Labels  { return s.streams[s.i].Labels }
func (s *sliceSource) Entries() []logql.Entry { return s.streams[s.i].Entries }
func (s *sliceSource) Err() error             { return nil }

func source(streams ...logql.Stream) *sliceSource { return &sliceSource{streams: streams, i: -1} }

func stream(name string, ts ...int64) logql.Stream {
	s := logql.Stream{Labels: labels.FromStrings("app", name)}
	for _, t := range ts {
		s.Entries = append(s.Entries, logql.Entry{Timestamp: t, Line: fmt.Sprintf("%s %d", name, t)})
	}
	return s
}

// TestMergeIterator: replicas and blocks holding parts of the same streams
// merge into one batch per stream, in label order, each entry once.
func TestMergeIterator(t *testing.T) {
	replica1 := source(stream("a", 1, 2, 3), stream("c", 5))
	replica2 := source(stream("a", 2, 3, 4), stream("b", 1))
	block := source(stream("a", 0, 1), stream("c", 4, 5, 6))
	var primed []Source
	for _, s := range []*sliceSource{replica1, replica2, block, source()} {
		if s.Next() {
			primed = append(primed, s)
		}
	}
	it := New(primed, nil)
	var got []string
	for it.Next() {
		line := it.Labels().String() + ":"
		for _, e := range it.Entries() {
			line += fmt.Sprintf(" %d", e.Timestamp)
		}
		got = append(got, line)
	}
	require.NoError(t, it.Err())
	require.Equal(t, []string{`{app="a"}: 0 1 2 3 4`, `{app="b"}: 1`, `{app="c"}: 4 5 6`}, got)
	require.NoError(t, it.Close())
}

// TestMergeKeepsDistinctLinesAtOneTime: two different lines at the same
// nanosecond are both kept; only exact repeats go.
func TestMergeKeepsDistinctLinesAtOneTime(t *testing.T) {
	a := logql.Stream{Labels: labels.FromStrings("app", "x"), Entries: []logql.Entry{{Timestamp: 1, Line: "b"}, {Timestamp: 1, Line: "a"}}}
	b := logql.Stream{Labels: labels.FromStrings("app", "x"), Entries: []logql.Entry{{Timestamp: 1, Line: "a"}}}
	s1, s2 := source(a), source(b)
	s1.Next()
	s2.Next()
	it := New([]Source{s1, s2}, nil)
	require.True(t, it.Next())
	require.Equal(t, []logql.Entry{{Timestamp: 1, Line: "a"}, {Timestamp: 1, Line: "b"}}, it.Entries())
	require.False(t, it.Next())
}

// reusingSource is a sliceSource that hands out one buffer, overwritten at
// each next, as block sources do.
type reusingSource struct {
	sliceSource
	buf []logql.Entry
}

func (s *reusingSource) Next() bool {
	if !s.sliceSource.Next() {
		return false
	}
	s.buf = append(s.buf[:0], s.sliceSource.Entries()...)
	return true
}
func (s *reusingSource) Entries() []logql.Entry { return s.buf }

// TestMergeReadsSourcesBeforeMovingThem: a batch made of a source's memory
// stays intact until the next call (a source moved at once would have put
// stream b's entries in its buffer).
func TestMergeReadsSourcesBeforeMovingThem(t *testing.T) {
	src := &reusingSource{sliceSource: sliceSource{streams: []logql.Stream{stream("a", 1, 2), stream("b", 3)}, i: -1}}
	require.True(t, src.Next())
	it := New([]Source{src}, nil)
	require.True(t, it.Next())
	first := it.Entries()
	require.Equal(t, "a 1", first[0].Line)
	require.True(t, it.Next())
	require.Equal(t, "b 3", it.Entries()[0].Line)
	require.False(t, it.Next())
}

// TestMergeDisjointBlocks: sources holding successive times of a stream
// (blocks shipped one after another), in any order, come out in time order.
func TestMergeDisjointBlocks(t *testing.T) {
	var primed []Source
	for _, s := range []*sliceSource{source(stream("a", 7, 8)), source(stream("a", 1, 2)), source(stream("a", 4, 5))} {
		require.True(t, s.Next())
		primed = append(primed, s)
	}
	it := New(primed, nil)
	require.True(t, it.Next())
	var ts []int64
	for _, e := range it.Entries() {
		ts = append(ts, e.Timestamp)
	}
	require.Equal(t, []int64{1, 2, 4, 5, 7, 8}, ts)
	require.False(t, it.Next())
}
