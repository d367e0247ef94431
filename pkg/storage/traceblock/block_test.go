package traceblock

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// telemetrygenLike returns n traces shaped as telemetrygen sends them: a
// server span "lets-go" and its client child "okey-dokey-0", random IDs,
// two attributes each, service.name "telemetrygen".
func telemetrygenLike(rng *rand.Rand, n int, start int64) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "telemetrygen")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	for i := range n {
		var tid [16]byte
		binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], rng.Uint64())
		t0 := start + int64(i)*1_000_000 + rng.Int64N(1000)
		parent := ss.Spans().AppendEmpty()
		parent.SetTraceID(tid)
		parent.SetSpanID(spanID(rng))
		parent.SetName("lets-go")
		parent.SetKind(ptrace.SpanKindServer)
		parent.SetStartTimestamp(pcommon.Timestamp(t0))
		parent.SetEndTimestamp(pcommon.Timestamp(t0 + 123_000 + rng.Int64N(1000)))
		parent.Attributes().PutStr("net.peer.ip", "1.2.3.4")
		parent.Attributes().PutStr("peer.service", "telemetrygen-client")
		child := ss.Spans().AppendEmpty()
		child.SetTraceID(tid)
		child.SetSpanID(spanID(rng))
		child.SetParentSpanID(parent.SpanID())
		child.SetName("okey-dokey-0")
		child.SetKind(ptrace.SpanKindClient)
		child.SetStartTimestamp(pcommon.Timestamp(t0 + 1000))
		child.SetEndTimestamp(pcommon.Timestamp(t0 + 120_000 + rng.Int64N(1000)))
		child.Attributes().PutStr("net.peer.ip", "1.2.3.4")
		child.Attributes().PutStr("peer.service", "telemetrygen-server")
	}
	return td
}

func spanID(rng *rand.Rand) pcommon.SpanID {
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], rng.Uint64())
	return id
}

// richTrace is one trace using every field the format stores.
func richTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	tid := pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("k8s.namespace.name", "shop")
	ra.PutInt("process.pid", 4242)
	rs.Resource().SetDroppedAttributesCount(1)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.SetSchemaUrl("https://opentelemetry.io/schemas/1.25.0")
	ss.Scope().SetName("io.opentelemetry.http")
	ss.Scope().SetVersion("1.2.3")
	ss.Scope().Attributes().PutBool("scope.flag", true)
	s := ss.Spans().AppendEmpty()
	s.SetTraceID(tid)
	s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	s.SetName("POST /cart")
	s.SetKind(ptrace.SpanKindServer)
	s.SetStartTimestamp(1_700_000_000_000_000_000)
	s.SetEndTimestamp(1_700_000_000_250_000_000)
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage("payment declined")
	s.TraceState().FromRaw("vendor=x")
	s.SetFlags(1)
	s.SetDroppedAttributesCount(2)
	s.SetDroppedEventsCount(3)
	s.SetDroppedLinksCount(4)
	a := s.Attributes()
	a.PutStr("http.method", "POST")
	a.PutInt("http.status_code", 402)
	a.PutDouble("cart.total", 99.5)
	a.PutBool("retry", false)
	a.PutEmpty("nothing")
	a.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
	arr := a.PutEmptySlice("tags")
	arr.AppendEmpty().SetStr("a")
	arr.AppendEmpty().SetInt(7)
	m := a.PutEmptyMap("nested")
	m.PutStr("k", "v")
	m.PutEmptySlice("inner").AppendEmpty().SetDouble(1.5)
	e := s.Events().AppendEmpty()
	e.SetName("exception")
	e.SetTimestamp(1_700_000_000_100_000_000)
	e.Attributes().PutStr("exception.message", "declined")
	e.SetDroppedAttributesCount(1)
	l := s.Links().AppendEmpty()
	l.SetTraceID(pcommon.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	l.SetSpanID(pcommon.SpanID{8, 8, 8, 8, 8, 8, 8, 8})
	l.TraceState().FromRaw("k=v")
	l.SetFlags(1)
	l.Attributes().PutStr("link.kind", "follows")
	// A child in another service, under another resource.
	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "payments")
	c := rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	c.SetTraceID(tid)
	c.SetSpanID(pcommon.SpanID{2, 2, 2, 2, 2, 2, 2, 2})
	c.SetParentSpanID(s.SpanID())
	c.SetName("charge")
	c.SetKind(ptrace.SpanKindClient)
	c.SetStartTimestamp(1_700_000_000_010_000_000)
	c.SetEndTimestamp(1_700_000_000_300_000_000)
	return td
}

// canonical flattens td into comparable spans, ordered by span ID, each
// with its resource and scope.
func canonical(t testing.TB, td ptrace.Traces) []map[string]any {
	var out []map[string]any
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j)
			for k := range ss.Spans().Len() {
				s := ss.Spans().At(k)
				var events, links []any
				for e := range s.Events().Len() {
					ev := s.Events().At(e)
					events = append(events, []any{ev.Name(), ev.Timestamp(), ev.Attributes().AsRaw(), ev.DroppedAttributesCount()})
				}
				for l := range s.Links().Len() {
					lk := s.Links().At(l)
					links = append(links, []any{lk.TraceID(), lk.SpanID(), lk.TraceState().AsRaw(), lk.Flags(), lk.Attributes().AsRaw(), lk.DroppedAttributesCount()})
				}
				out = append(out, map[string]any{
					"resource": []any{rs.SchemaUrl(), rs.Resource().Attributes().AsRaw(), rs.Resource().DroppedAttributesCount()},
					"scope":    []any{ss.SchemaUrl(), ss.Scope().Name(), ss.Scope().Version(), ss.Scope().Attributes().AsRaw(), ss.Scope().DroppedAttributesCount()},
					"span": []any{s.TraceID(), s.SpanID(), s.ParentSpanID(), s.Name(), s.Kind(), s.StartTimestamp(), s.EndTimestamp(),
						s.Status().Code(), s.Status().Message(), s.TraceState().AsRaw(), s.Flags(), s.Attributes().AsRaw(),
						s.DroppedAttributesCount(), s.DroppedEventsCount(), s.DroppedLinksCount()},
					"events": events,
					"links":  links,
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int {
		x, y := a["span"].([]any)[1].(pcommon.SpanID), b["span"].([]any)[1].(pcommon.SpanID)
		return slices.Compare(x[:], y[:])
	})
	return out
}

// writeBlock writes batches as a block into a filesystem bucket and opens it.
func writeBlock(t testing.TB, batches ...ptrace.Traces) (*Block, objstore.Bucket) {
	t.Helper()
	dir := t.TempDir()
	bkt, err := filesystem.NewBucket(filepath.Join(dir, "bucket"))
	require.NoError(t, err)
	id := ulid.MustNew(1, nil)
	m, err := Write(filepath.Join(dir, "local"), id, batches, "ingester", "ingester-1")
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, Upload(ctx, bkt, "tenant", filepath.Join(dir, "local"), id))
	metas, err := ListBlocks(ctx, bkt, "tenant")
	require.NoError(t, err)
	require.Equal(t, []Meta{m}, metas)
	b, err := OpenBlock(ctx, bkt, "tenant", m)
	require.NoError(t, err)
	return b, bkt
}

func TestRoundTripEveryField(t *testing.T) {
	td := richTrace()
	b, _ := writeBlock(t, td)
	tid := [16]byte(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID())
	got, ok, err := b.FindTrace(context.Background(), tid)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, canonical(t, td), canonical(t, got))
	require.Equal(t, int64(1), b.Meta().Stats.Traces)
	require.Equal(t, int64(2), b.Meta().Stats.Spans)
	require.Equal(t, int64(1_700_000_000_000_000_000), b.Meta().MinTime)
	require.Equal(t, int64(1_700_000_000_300_000_000), b.Meta().MaxTime)
}

func TestFindEveryTrace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	td := telemetrygenLike(rng, 200_000, 1_700_000_000_000_000_000)
	b, _ := writeBlock(t, td)
	require.Equal(t, int64(200_000), b.Meta().Stats.Traces)
	byTrace := map[[16]byte]ptrace.Traces{}
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	ctx := context.Background()
	for i := 0; i < spans.Len(); i += 2 * 997 { // every 997th trace
		tid := [16]byte(spans.At(i).TraceID())
		want := ptrace.NewTraces()
		rs := want.ResourceSpans().AppendEmpty()
		td.ResourceSpans().At(0).Resource().CopyTo(rs.Resource())
		ss := rs.ScopeSpans().AppendEmpty()
		td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().CopyTo(ss.Scope())
		spans.At(i).CopyTo(ss.Spans().AppendEmpty())
		spans.At(i + 1).CopyTo(ss.Spans().AppendEmpty())
		byTrace[tid] = want
		got, ok, err := b.FindTrace(ctx, tid)
		require.NoError(t, err)
		require.True(t, ok, "trace %x", tid)
		require.Equal(t, canonical(t, want), canonical(t, got))
	}
	require.Greater(t, len(b.file.RowGroups()), 1, "the test must cross row groups")
	// IDs the block does not hold: none found, whatever the bloom says.
	for i := range 1000 {
		var tid [16]byte
		binary.BigEndian.PutUint64(tid[8:], uint64(i))
		tid[0] = byte(i)
		_, ok, err := b.FindTrace(ctx, tid)
		require.NoError(t, err)
		require.False(t, ok)
	}
}

func TestScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	td := telemetrygenLike(rng, 70_000, 1_700_000_000_000_000_000) // over one row group
	td2 := richTrace()
	b, _ := writeBlock(t, td, td2)
	var ids [][16]byte
	spans := 0
	require.NoError(t, b.Scan(context.Background(), 0, 0, nil, func(id [16]byte, got ptrace.Traces) bool {
		ids = append(ids, id)
		spans += got.SpanCount()
		return true
	}))
	require.Len(t, ids, 70_001)
	require.Equal(t, 140_002, spans)
	slices.SortFunc(ids, compareIDs)
	require.Len(t, slices.Compact(ids), 70_001, "each trace once")
	// A time range keeps the traces with a span in it; fn stops the scan.
	n := 0
	require.NoError(t, b.Scan(context.Background(), 1_700_000_000_000_000_000, 1_700_000_000_005_000_000, nil, func([16]byte, ptrace.Traces) bool { n++; return true }))
	require.Equal(t, 5+1, n, "traces 0 to 4 (trace 5 starts just after 5 ms) and the rich one")
	n = 0
	require.NoError(t, b.Scan(context.Background(), 0, 0, nil, func([16]byte, ptrace.Traces) bool { n++; return n < 10 }))
	require.Equal(t, 10, n)
}

// countingBucket counts range reads.
type countingBucket struct {
	objstore.Bucket
	ranges atomic.Int64
}

func (c *countingBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	c.ranges.Add(1)
	return c.Bucket.GetRange(ctx, name, off, length)
}

// TestLookupRangeReads: a lookup by ID reads a handful of pieces of
// data.parquet from the bucket, not one request per page header.
func TestLookupRangeReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	td := telemetrygenLike(rng, 200_000, 1_700_000_000_000_000_000)
	b, bkt := writeBlock(t, td)
	cb := &countingBucket{Bucket: bkt}
	b, err := OpenBlock(context.Background(), cb, "tenant", b.Meta())
	require.NoError(t, err)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	ctx := context.Background()
	_, ok, err := b.FindTrace(ctx, [16]byte(spans.At(0).TraceID()))
	require.NoError(t, err)
	require.True(t, ok)
	const lookups = 50
	before := cb.ranges.Load()
	for i := range lookups {
		_, ok, err := b.FindTrace(ctx, [16]byte(spans.At(2*(i*7919%200_000)).TraceID()))
		require.NoError(t, err)
		require.True(t, ok)
	}
	per := float64(cb.ranges.Load()-before) / lookups
	t.Logf("%.1f range reads a lookup", per)
	require.Less(t, per, 40.0)
}

func compareIDs(a, b [16]byte) int { return slices.Compare(a[:], b[:]) }
