package traceblock

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// threeSpans is a trace of three spans whose ID sorts first, so that the
// rows after it are at odd offsets and a row group boundary falls inside
// a trace.
func threeSpans() ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range 3 {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{15: 1})
		s.SetSpanID(pcommon.SpanID{7: byte(i + 1)})
		s.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		s.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_010 + i))
	}
	return td
}

// TestTraceIterator: the iterator walks the same traces as Scan, in ID
// order, across row groups and a trace cut by a row group boundary.
func TestTraceIterator(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b, _ := writeBlock(t, telemetrygenLike(rng, 40_000, 1_700_000_000_000_000_000), richTrace(), threeSpans())
	ctx := context.Background()
	type trace struct {
		id    [16]byte
		spans []map[string]any
	}
	var want []trace
	require.NoError(t, b.Scan(ctx, 0, 0, nil, func(id [16]byte, td ptrace.Traces) bool {
		want = append(want, trace{id, canonical(t, td)})
		return true
	}))
	require.Len(t, want, 40_002)
	slices.SortFunc(want, func(a, b trace) int { return compareIDs(a.id, b.id) })
	require.Greater(t, len(b.file.RowGroups()), 1, "the test must cross row groups")
	// Three spans, then traces of two: row rowsPerRowGroup-1 and the next
	// are a trace's.
	require.Equal(t, int64(rowsPerRowGroup), b.file.RowGroups()[0].NumRows())

	it, err := b.Traces(ctx)
	require.NoError(t, err)
	i := 0
	for it.Next() {
		require.Less(t, i, len(want))
		require.Equal(t, want[i].id, it.ID())
		require.Equal(t, len(want[i].spans), it.Spans())
		if i%97 == 0 || it.Spans() != 2 {
			td, err := it.At()
			require.NoError(t, err)
			require.Equal(t, want[i].spans, canonical(t, td), "trace %d", i)
		}
		i++
	}
	require.NoError(t, it.Err())
	require.Equal(t, len(want), i)
	require.False(t, it.Next(), "an iterator at its end stays there")
	require.NoError(t, it.Close())

	ctx2, cancel := context.WithCancel(ctx)
	it, err = b.Traces(ctx2)
	require.NoError(t, err)
	require.True(t, it.Next())
	cancel()
	for it.Next() {
	}
	require.ErrorIs(t, it.Err(), context.Canceled)
	require.NoError(t, it.Close())
}

// TestAddFrom: traces gathered from several blocks' iterators are written
// once each, a span repeated in several blocks (replicas' copies) once.
func TestAddFrom(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	all := telemetrygenLike(rng, 500, 1_700_000_000_000_000_000)
	// Replica a has every trace; b every trace and the rich one; c every
	// other span and the rich one.
	half := ptrace.NewTraces()
	all.CopyTo(half)
	i := 0
	half.ResourceSpans().At(0).ScopeSpans().At(0).Spans().RemoveIf(func(ptrace.Span) bool { i++; return i%2 == 0 })
	a, _ := writeBlock(t, all)
	bb, _ := writeBlock(t, all, richTrace())
	c, _ := writeBlock(t, half, richTrace())
	ctx := context.Background()
	var its []*TraceIterator
	for _, blk := range []*Block{a, bb, c} {
		it, err := blk.Traces(ctx)
		require.NoError(t, err)
		require.True(t, it.Next())
		its = append(its, it)
	}
	dir := t.TempDir()
	id := ulid.MustNew(2, nil)
	w, err := NewWriter(dir, Meta{ULID: id, Source: "compactor", Sources: []ulid.ULID{a.Meta().ULID}})
	require.NoError(t, err)
	defer w.Close()
	for len(its) > 0 {
		low := its[0].ID()
		for _, it := range its[1:] {
			if cmpID(it.ID(), low) < 0 {
				low = it.ID()
			}
		}
		var on []*TraceIterator
		for _, it := range its {
			if it.ID() == low {
				on = append(on, it)
			}
		}
		require.NoError(t, w.AddFrom(low, on...))
		its = slices.DeleteFunc(its, func(it *TraceIterator) bool {
			if it.ID() != low || it.Next() {
				return false
			}
			require.NoError(t, it.Err())
			return true
		})
	}
	require.ErrorContains(t, w.AddFrom([16]byte{0xff}, func() *TraceIterator { it, _ := a.Traces(ctx); it.Next(); return it }()), "is not on it")
	m, err := w.Finish()
	require.NoError(t, err)
	require.Equal(t, int64(501), m.Stats.Traces)
	require.Equal(t, int64(1002), m.Stats.Spans, "each span once")
	require.Equal(t, []ulid.ULID{a.Meta().ULID}, m.Sources)

	merged := filepath.Join(dir, id.String())
	require.FileExists(t, filepath.Join(merged, MetaFile))
	want, err := Write(t.TempDir(), id, []ptrace.Traces{all, richTrace()}, "compactor", "")
	require.NoError(t, err)
	require.Equal(t, want.Stats.DataBytes, m.Stats.DataBytes, "the same bytes as the spans written once")
}

func cmpID(a, b [16]byte) int { return slices.Compare(a[:], b[:]) }
