package compactor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// telemetrygenTraces returns n traces shaped as telemetrygen sends them: a
// server span and its client child, random IDs, two attributes each,
// service.name "telemetrygen"; trace i starts i ms after start.
func telemetrygenTraces(rng *mrand.Rand, n int, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "telemetrygen")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	for i := range n {
		var tid [16]byte
		binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], rng.Uint64())
		t0 := start.UnixNano() + int64(i)*1_000_000 + rng.Int64N(1000)
		parent := ss.Spans().AppendEmpty()
		parent.SetTraceID(tid)
		parent.SetSpanID(randSpanID(rng))
		parent.SetName("lets-go")
		parent.SetKind(ptrace.SpanKindServer)
		parent.SetStartTimestamp(pcommon.Timestamp(t0))
		parent.SetEndTimestamp(pcommon.Timestamp(t0 + 123_000 + rng.Int64N(1000)))
		parent.Attributes().PutStr("net.peer.ip", "1.2.3.4")
		parent.Attributes().PutStr("peer.service", "telemetrygen-client")
		child := ss.Spans().AppendEmpty()
		child.SetTraceID(tid)
		child.SetSpanID(randSpanID(rng))
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

func randSpanID(rng *mrand.Rand) pcommon.SpanID {
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], rng.Uint64())
	return id
}

// without returns a copy of td without the spans drop selects.
func without(td ptrace.Traces, drop func(i int, s ptrace.Span) bool) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	i := 0
	out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().RemoveIf(func(s ptrace.Span) bool { i++; return drop(i-1, s) })
	return out
}

// shipTraceBlock writes batches as one block shipped at shipped by
// ingester and uploads it.
func shipTraceBlock(t testing.TB, bkt objstore.Bucket, tenant string, shipped time.Time, ingester string, batches ...ptrace.Traces) traceblock.Meta {
	t.Helper()
	id := ulid.MustNew(ulid.Timestamp(shipped), rand.Reader)
	dir := t.TempDir()
	m, err := traceblock.Write(dir, id, batches, "ingester", ingester)
	require.NoError(t, err)
	require.NoError(t, traceblock.Upload(context.Background(), bkt, tenant, dir, id))
	return m
}

// spanKey identifies a span: a replica's copy has the same.
type spanKey struct {
	trace [16]byte
	span  [8]byte
	start uint64
}

// spanSet is spans by key, each described by its fields and the number of
// times it was read.
type spanSet map[spanKey]spanInfo

type spanInfo struct {
	desc  string
	count int
}

func describe(rs ptrace.ResourceSpans, s ptrace.Span) string {
	return fmt.Sprintf("%v|%s|%x|%d|%d|%v", rs.Resource().Attributes().AsRaw(), s.Name(), s.ParentSpanID(), s.Kind(), s.EndTimestamp(), s.Attributes().AsRaw())
}

func (ss spanSet) add(td ptrace.Traces) {
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		for j := range rs.ScopeSpans().Len() {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := range spans.Len() {
				s := spans.At(k)
				key := spanKey{s.TraceID(), s.SpanID(), uint64(s.StartTimestamp())}
				in := ss[key]
				ss[key] = spanInfo{describe(rs, s), in.count + 1}
			}
		}
	}
}

// once is the set with every span counted once.
func (ss spanSet) once() spanSet {
	out := spanSet{}
	for k, v := range ss {
		out[k] = spanInfo{v.desc, 1}
	}
	return out
}

func spansOf(tds ...ptrace.Traces) spanSet {
	ss := spanSet{}
	for _, td := range tds {
		ss.add(td)
	}
	return ss.once()
}

// scanBlock reads every span of a block by Scan, checking the traces come
// in increasing ID order.
func scanBlock(t testing.TB, bkt objstore.Bucket, tenant string, m traceblock.Meta) spanSet {
	t.Helper()
	ctx := context.Background()
	b, err := traceblock.OpenBlock(ctx, bkt, tenant, m)
	require.NoError(t, err)
	ss := spanSet{}
	var last []byte
	require.NoError(t, b.Scan(ctx, 0, 0, nil, func(id [16]byte, td ptrace.Traces) bool {
		require.Positive(t, slices.Compare(id[:], last), "traces in increasing ID order")
		last = slices.Clone(id[:])
		ss.add(td)
		return true
	}))
	return ss
}

// liveTraces reads what a query sees: the spans of the tenant's listed
// blocks, each once.
func liveTraces(t testing.TB, bkt objstore.Bucket, tenant string) spanSet {
	t.Helper()
	all := spanSet{}
	for _, m := range liveTraceMetas(t, bkt, tenant) {
		for k, v := range scanBlock(t, bkt, tenant, m) {
			all[k] = v
		}
	}
	return all.once()
}

func liveTraceMetas(t testing.TB, bkt objstore.Bucket, tenant string) []traceblock.Meta {
	t.Helper()
	metas, err := traceblock.ListBlocks(context.Background(), bkt, tenant)
	require.NoError(t, err)
	slices.SortFunc(metas, func(a, b traceblock.Meta) int { return a.ULID.Compare(b.ULID) })
	return metas
}

func traceBlockExists(t testing.TB, bkt objstore.Bucket, tenant string, id ulid.ULID) bool {
	t.Helper()
	ok, err := bkt.Exists(context.Background(), path.Join(traceblock.Dir(tenant, id), traceblock.DataFile))
	require.NoError(t, err)
	return ok
}

// TestTracesRetention: a trace block whose newest span is older than the
// tenant's traces retention is marked for deletion (queriers stop listing
// it), then deleted after the deletion delay; newer blocks and tenants
// without a retention keep theirs.
func TestTracesRetention(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rng := mrand.New(mrand.NewPCG(1, 1))
	// Spans end about 123µs after they start.
	old := shipTraceBlock(t, fs, "team-t", now.Add(-48*time.Hour), "i", telemetrygenTraces(rng, 10, now.Add(-49*time.Hour)))
	recent := shipTraceBlock(t, fs, "team-t", now.Add(-24*time.Hour), "i", telemetrygenTraces(rng, 10, now.Add(-24*time.Hour)))
	shipTraceBlock(t, fs, "team-forever", now.Add(-1000*time.Hour), "i", telemetrygenTraces(rng, 10, now.Add(-1000*time.Hour)))

	limits := defaultLimits()
	limits.TracesRetentionPeriod = model.Duration(48 * time.Hour)
	forever := limits
	forever.TracesRetentionPeriod = 0
	c := newTestCompactor(t, fs, limits, &now)
	c.limits = validation.NewStaticOverrides(limits, map[string]*validation.Limits{"team-forever": &forever})
	res := c.Run(ctx, false)
	require.Empty(t, res.Errors)

	metas := liveTraceMetas(t, fs, "team-t")
	require.Len(t, metas, 1)
	require.Equal(t, recent.ULID, metas[0].ULID)
	require.True(t, traceBlockExists(t, fs, "team-t", old.ULID), "kept until the deletion delay has passed: a querier may be reading it")
	l, err := traceblock.List(ctx, fs, "team-t")
	require.NoError(t, err)
	require.Equal(t, "retention: every span older than 48h0m0s", l.Deletion[old.ULID].Reason)

	now = now.Add(c.cfg.DeletionDelay)
	res = c.Run(ctx, false)
	require.Empty(t, res.Errors)
	var left []string
	require.NoError(t, fs.Iter(ctx, "team-t/traces/"+old.ULID.String()+"/", func(n string) error { left = append(left, n); return nil }))
	require.Empty(t, left, "every object of the expired block is gone")
	ok, err := fs.Exists(ctx, "team-t/traces/markers/"+old.ULID.String()+"-"+layout.DeletionMarkFilename)
	require.NoError(t, err)
	require.False(t, ok, "and its global marker")
	require.Len(t, liveTraceMetas(t, fs, "team-t"), 1)
	require.Len(t, liveTraceMetas(t, fs, "team-forever"), 1, "no retention: kept")
}

// TestTracesMergeDedupesReplicas: the blocks three replicas shipped in a
// merge window that is over (and another ingester's) become one block
// holding each span once, which reads back, by Scan and by FindTrace,
// exactly what the blocks read together; the replaced blocks are no
// longer listed, and deleted after the deletion delay. Blocks of a window
// not over yet are left alone.
func TestTracesMergeDedupesReplicas(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	window := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) // a 2h window
	rng := mrand.New(mrand.NewPCG(2, 2))
	data := telemetrygenTraces(rng, 3000, window)
	other := telemetrygenTraces(rng, 100, window.Add(time.Hour))
	// The third replica missed the child span of every tenth trace.
	partial := without(data, func(i int, _ ptrace.Span) bool { return i%20 == 1 })
	var srcs []ulid.ULID
	for i, td := range []ptrace.Traces{data, data, partial} {
		srcs = append(srcs, shipTraceBlock(t, fs, "team", window.Add(time.Duration(10+i)*time.Minute), fmt.Sprintf("ingester-%d", i+1), td).ULID)
	}
	srcs = append(srcs, shipTraceBlock(t, fs, "team", window.Add(90*time.Minute), "ingester-4", other).ULID)
	open := shipTraceBlock(t, fs, "team", window.Add(2*time.Hour+time.Minute), "ingester-1", other)
	want := spansOf(data, other)
	require.Equal(t, want, liveTraces(t, fs, "team"))

	now := window.Add(2*time.Hour + logsMergeGrace + time.Minute)
	reg := prometheus.NewPedanticRegistry()
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	c.metrics, c.tracesMetrics = newMetrics(reg), newTracesMetrics(reg)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 1, res.Compacted)

	metas := liveTraceMetas(t, fs, "team")
	require.Len(t, metas, 2)
	merged := metas[0]
	require.Equal(t, open.ULID, metas[1].ULID, "the block of the next window, not over, is left alone")
	require.Equal(t, "compactor", merged.Source)
	slices.SortFunc(srcs, func(a, b ulid.ULID) int { return a.Compare(b) })
	require.Equal(t, srcs, merged.Sources)
	require.Equal(t, srcs[0].Time(), merged.ULID.Time(), "a merged block keeps its sources' shipping window")
	require.Equal(t, int64(3100), merged.Stats.Traces)
	require.Equal(t, int64(6200), merged.Stats.Spans)
	got := scanBlock(t, fs, "team", merged)
	require.Equal(t, want, got, "each span once, as shipped")

	// FindTrace answers the traces, whole, from the merged block (one in
	// thirty: each lookup reads pages of every column).
	b, err := traceblock.OpenBlock(ctx, fs, "team", merged)
	require.NoError(t, err)
	byTrace := map[[16]byte]spanSet{}
	for k, v := range want {
		if k.trace[0]%30 != 0 {
			continue
		}
		if byTrace[k.trace] == nil {
			byTrace[k.trace] = spanSet{}
		}
		byTrace[k.trace][k] = v
	}
	require.Greater(t, len(byTrace), 50)
	for id, spans := range byTrace {
		td, ok, err := b.FindTrace(ctx, id)
		require.NoError(t, err)
		require.True(t, ok, "trace %x", id)
		require.Equal(t, spans, spansOf(td), "trace %x", id)
		require.Equal(t, 2, td.SpanCount())
	}
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactions.WithLabelValues("traces_merge")))
	require.Equal(t, 4.0, testutil.ToFloat64(c.metrics.blocksMarked.WithLabelValues("compacted")))
	require.Equal(t, float64(6000+6000+5700+200-6200), testutil.ToFloat64(c.tracesMetrics.spansDeduplicated))

	// The next pass merges nothing more; after the deletion delay the
	// sources go.
	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Zero(t, res.Compacted)
	now = now.Add(c.cfg.DeletionDelay + time.Minute)
	res = c.Run(ctx, false)
	require.Empty(t, res.Errors)
	for _, id := range srcs {
		require.False(t, traceBlockExists(t, fs, "team", id), "source %s deleted", id)
	}
	require.Equal(t, want, liveTraces(t, fs, "team"))
}

// TestTracesLateBlock: a block shipped into a window already merged (an
// ingester that could not upload for a while) is merged with the
// window's block at the next pass: its new spans are added, its copies of
// spans already there kept once.
func TestTracesLateBlock(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	window := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rng := mrand.New(mrand.NewPCG(3, 3))
	data := telemetrygenTraces(rng, 500, window)
	a := shipTraceBlock(t, fs, "t", window.Add(time.Minute), "a", data)
	b := shipTraceBlock(t, fs, "t", window.Add(2*time.Minute), "b", data)
	now := window.Add(3 * time.Hour)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 1, res.Compacted)
	first := liveTraceMetas(t, fs, "t")
	require.Len(t, first, 1)
	require.Equal(t, sortedIDs(a.ULID, b.ULID), first[0].Sources)

	// The late block: a trace already merged (its copies), one more span
	// of another, and a new trace.
	late := without(data, func(i int, _ ptrace.Span) bool { return i > 1 })
	extra := without(data, func(i int, _ ptrace.Span) bool { return i != 2 })
	extra.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetSpanID(pcommon.SpanID{1, 2, 3})
	extra.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("late-span")
	fresh := telemetrygenTraces(rng, 1, window.Add(time.Hour))
	lb := shipTraceBlock(t, fs, "t", window.Add(100*time.Minute), "c", late, extra, fresh)
	want := spansOf(data, extra, fresh)
	now = now.Add(time.Hour)
	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 1, res.Compacted)
	metas := liveTraceMetas(t, fs, "t")
	require.Len(t, metas, 1)
	require.Equal(t, sortedIDs(first[0].ULID, lb.ULID), metas[0].Sources)
	require.Equal(t, int64(1003), metas[0].Stats.Spans)
	require.Equal(t, int64(501), metas[0].Stats.Traces)
	require.Equal(t, want, scanBlock(t, fs, "t", metas[0]))
}

// TestTracesMergeManyBlocks: a window of more blocks than one job merges
// (ingesters ship every 30s) becomes one block in one pass, by rounds.
func TestTracesMergeManyBlocks(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	window := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rng := mrand.New(mrand.NewPCG(4, 4))
	n := 2*tracesMaxMergeBlocks + 5
	var tds []ptrace.Traces
	for i := range n {
		td := telemetrygenTraces(rng, 3, window.Add(time.Duration(i)*time.Minute))
		tds = append(tds, td)
		shipTraceBlock(t, fs, "t", window.Add(time.Duration(i)*time.Minute), "a", td)
		if i%2 == 0 {
			shipTraceBlock(t, fs, "t", window.Add(time.Duration(i)*time.Minute+time.Second), "b", td)
		}
	}
	jobs := planTraces(liveTraceMetas(t, fs, "t"), []time.Duration{2 * time.Hour}, window.Add(3*time.Hour))
	require.Len(t, jobs, 4)
	total := 0
	for _, j := range jobs {
		require.LessOrEqual(t, len(j), tracesMaxMergeBlocks)
		require.GreaterOrEqual(t, len(j), tracesMaxMergeBlocks/2)
		total += len(j)
	}
	require.Equal(t, n+(n+1)/2, total)

	now := window.Add(3 * time.Hour)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 5, res.Compacted, "four jobs, then one of their blocks")
	metas := liveTraceMetas(t, fs, "t")
	require.Len(t, metas, 1)
	require.Equal(t, spansOf(tds...), scanBlock(t, fs, "t", metas[0]))
}

// TestTracesCorruptBlock: a block whose data cannot be read is marked
// no-compact and left out of the merge; the window's other blocks are
// merged.
func TestTracesCorruptBlock(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	window := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rng := mrand.New(mrand.NewPCG(5, 5))
	data := telemetrygenTraces(rng, 200, window)
	shipTraceBlock(t, fs, "t", window.Add(time.Minute), "a", data)
	shipTraceBlock(t, fs, "t", window.Add(2*time.Minute), "b", data)
	bad := shipTraceBlock(t, fs, "t", window.Add(3*time.Minute), "c", data)
	name := path.Join(traceblock.Dir("t", bad.ULID), traceblock.DataFile)
	junk := make([]byte, bad.Stats.DataBytes)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	require.NoError(t, fs.Upload(ctx, name, bytes.NewReader(junk)))

	now := window.Add(3 * time.Hour)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	res := c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 1, res.Compacted)
	l, err := traceblock.List(ctx, fs, "t")
	require.NoError(t, err)
	require.Contains(t, l.NoCompact, bad.ULID)
	require.Contains(t, l.NoCompact[bad.ULID].Reason, "corrupt: ")
	metas := liveTraceMetas(t, fs, "t")
	require.Len(t, metas, 2, "the merged block and the damaged one, still listed")
	require.Equal(t, spansOf(data), scanBlock(t, fs, "t", metas[0]))

	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Zero(t, res.Compacted, "the damaged block is not tried again")
}

// TestTracesCrashMidWrite: a merge that fails before its block's meta.json
// is uploaded leaves the sources listed and the half block unlisted; the
// next pass merges again, and the half block is deleted once the partial
// block deletion delay has passed.
func TestTracesCrashMidWrite(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	bkt := &failingMeta{Bucket: fs}
	ctx := context.Background()
	now := time.Now() // the partial block's age is its objects' modification time
	window := now.Truncate(2 * time.Hour).Add(-4 * time.Hour)
	rng := mrand.New(mrand.NewPCG(6, 6))
	data := telemetrygenTraces(rng, 100, window)
	shipTraceBlock(t, fs, "t", window.Add(time.Minute), "a", data)
	shipTraceBlock(t, fs, "t", window.Add(2*time.Minute), "b", data)
	want := liveTraces(t, fs, "t")

	c := newTestCompactor(t, bkt, defaultLimits(), &now)
	bkt.fail = true
	res := c.Run(ctx, true)
	require.Len(t, res.Errors, 1)
	require.Contains(t, res.Errors[0], "injected failure")
	l, err := traceblock.List(ctx, fs, "t")
	require.NoError(t, err)
	require.Len(t, l.Partial, 1, "the half-written block has no meta.json")
	require.Empty(t, l.Deletion, "no source is marked")
	require.Equal(t, want, liveTraces(t, fs, "t"))

	bkt.fail = false
	res = c.Run(ctx, true)
	require.Empty(t, res.Errors)
	require.Equal(t, 1, res.Compacted)
	require.Len(t, liveTraceMetas(t, fs, "t"), 1)
	require.Equal(t, want, liveTraces(t, fs, "t"))

	now = now.Add(c.cfg.PartialBlockDeletionDelay + time.Minute)
	res = c.Run(ctx, false)
	require.Empty(t, res.Errors)
	l, err = traceblock.List(ctx, fs, "t")
	require.NoError(t, err)
	require.Empty(t, l.Partial)
	entries, err := os.ReadDir(c.dir)
	require.NoError(t, err)
	for _, e := range entries {
		sub, err := os.ReadDir(filepath.Join(c.dir, e.Name()))
		require.NoError(t, err)
		require.Empty(t, sub, "jobs leave no scratch files")
	}
}

// TestTracesBytesPerSpan: telemetrygen-like traces (two spans, random
// IDs) shipped by three replicas take at most 40 bytes a span (data and
// bloom) once merged.
func TestTracesBytesPerSpan(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	window := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	data := telemetrygenTraces(mrand.New(mrand.NewPCG(7, 7)), 20_000, window)
	var in int64
	for i := range 3 {
		m := shipTraceBlock(t, fs, "t", window.Add(time.Duration(i)*time.Minute), fmt.Sprint(i), data)
		in += m.Stats.DataBytes + m.Stats.BloomBytes
	}
	now := window.Add(3 * time.Hour)
	c := newTestCompactor(t, fs, defaultLimits(), &now)
	res := c.Run(context.Background(), true)
	require.Empty(t, res.Errors)
	metas := liveTraceMetas(t, fs, "t")
	require.Len(t, metas, 1)
	m := metas[0]
	require.Equal(t, int64(40_000), m.Stats.Spans)
	perSpan := float64(m.Stats.DataBytes+m.Stats.BloomBytes) / float64(m.Stats.Spans)
	t.Logf("%d spans: %.1f bytes a span merged (%.1f in the three replicas' blocks)", m.Stats.Spans, perSpan, float64(in)/float64(m.Stats.Spans))
	require.LessOrEqual(t, perSpan, 40.0)
}

// BenchmarkTracesMerge merges three replicas' blocks of 100,000
// telemetrygen-like traces (200,000 spans each) into one: input spans/s,
// and bytes a span of the merged block.
func BenchmarkTracesMerge(b *testing.B) {
	fs, err := filesystem.NewBucket(b.TempDir())
	require.NoError(b, err)
	window := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	data := telemetrygenTraces(mrand.New(mrand.NewPCG(8, 8)), 100_000, window)
	var metas []traceblock.Meta
	var in int64
	for i := range 3 {
		m := shipTraceBlock(b, fs, "t", window.Add(time.Duration(i)*time.Minute), fmt.Sprint(i), data)
		metas = append(metas, m)
		in += m.Stats.Spans
	}
	now := window.Add(3 * time.Hour)
	// The parts of a compactor a job uses.
	c := &Compactor{dir: b.TempDir(), bkt: fs, logger: log.NewNopLogger(), metrics: newMetrics(nil), tracesMetrics: newTracesMetrics(nil)}
	t := &tracesTenant{id: "t", tb: layout.TenantBucket(fs, "t", traceblock.Signal), now: now}
	b.ReportAllocs()
	var m traceblock.Meta
	for b.Loop() {
		m, err = c.runTracesJob(context.Background(), t, metas)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(in)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(m.Stats.DataBytes+m.Stats.BloomBytes)/float64(m.Stats.Spans), "B/span")
}
