package traces

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*mockKV).loop"),
		goleak.IgnoreAnyFunction("github.com/grafana/dskit/kv/consul.(*Client).cas"),
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*Client).WatchKey"),
	)
}

func testConfig(t *testing.T) Config {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.InstanceID = "traces-test"
	cfg.Ring.InstanceAddr = "127.0.0.1"
	cfg.Ring.HeartbeatPeriod = 100 * time.Millisecond
	cfg.Ring.HeartbeatTimeout = time.Minute
	cfg.ShipInterval = time.Hour // the tests ship by hand
	require.NoError(t, cfg.Validate())
	return cfg
}

func testLimits() validation.Limits {
	var l validation.Limits
	l.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	return l
}

func start(t *testing.T, cfg Config, dir string, limits validation.Limits, bkt objstore.Bucket) *Ingester {
	t.Helper()
	i, err := New(cfg, dir, dir+".tokens", ringconfig.Instance{ID: "traces-test", Addr: "127.0.0.1", Port: 9095}, validation.NewStaticOverrides(limits, nil), bkt, nil, log.NewNopLogger(), nil)
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), i))
	return i
}

func stop(t *testing.T, i *Ingester) {
	t.Helper()
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))
}

// spans returns the OTLP protobuf of n spans of trace id, named name.
func spans(t testing.TB, id [16]byte, name string, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty()
	for k := range n {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(id)
		s.SetSpanID(pcommon.SpanID{byte(len(name)), byte(k), 1, 2, 3, 4, 5, 6})
		s.SetName(name)
		s.SetStartTimestamp(pcommon.Timestamp(1e18 + int64(k)))
		s.SetEndTimestamp(pcommon.Timestamp(1e18 + int64(k) + 1000))
	}
	var m ptrace.ProtoMarshaler
	b, err := m.MarshalTraces(td)
	require.NoError(t, err)
	return b
}

func push(t testing.TB, i *Ingester, tenant string, ts ...*tracespb.Trace) *tracespb.PushResponse {
	t.Helper()
	resp, err := i.Push(user.InjectOrgID(context.Background(), tenant), &tracespb.PushRequest{Traces: ts})
	require.NoError(t, err)
	return resp
}

func find(t testing.TB, i *Ingester, tenant string, id [16]byte) int {
	t.Helper()
	resp, err := i.FindTrace(user.InjectOrgID(context.Background(), tenant), &tracespb.FindTraceRequest{TraceId: id[:]})
	require.NoError(t, err)
	n := 0
	var u ptrace.ProtoUnmarshaler
	for _, p := range resp.Spans {
		td, err := u.UnmarshalTraces(p)
		require.NoError(t, err)
		n += td.SpanCount()
	}
	return n
}

func TestPushFindReplayShip(t *testing.T) {
	dir := t.TempDir()
	bkt, err := filesystem.NewBucket(filepath.Join(t.TempDir(), "bucket"))
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.FlushOnShutdown = false // restarts replay the WAL
	i := start(t, cfg, dir, testLimits(), bkt)
	a, b := [16]byte{1}, [16]byte{2}
	require.Zero(t, push(t, i, "t1", &tracespb.Trace{TraceId: a[:], Spans: spans(t, a, "a", 3)}, &tracespb.Trace{TraceId: b[:], Spans: spans(t, b, "b", 2)}).RejectedTraces)
	push(t, i, "t1", &tracespb.Trace{TraceId: a[:], Spans: spans(t, a, "late", 1)})
	push(t, i, "t2", &tracespb.Trace{TraceId: a[:], Spans: spans(t, a, "other tenant", 5)})
	require.Equal(t, 4, find(t, i, "t1", a))
	require.Equal(t, 2, find(t, i, "t1", b))
	require.Equal(t, 5, find(t, i, "t2", a), "tenants are apart")
	require.Zero(t, find(t, i, "t3", a))

	// A restart replays the WAL; so does one after a checkpoint, with a
	// push after it.
	stop(t, i)
	i = start(t, cfg, dir, testLimits(), bkt)
	require.Equal(t, 4, find(t, i, "t1", a))
	require.NoError(t, i.base.Checkpoint())
	push(t, i, "t1", &tracespb.Trace{TraceId: b[:], Spans: spans(t, b, "after checkpoint", 1)})
	stop(t, i)
	i = start(t, cfg, dir, testLimits(), bkt)
	require.Equal(t, 4, find(t, i, "t1", a))
	require.Equal(t, 3, find(t, i, "t1", b))

	// Flushing cuts and ships one block per tenant; shipped traces are
	// still found in the ingester for -ingester.traces.retain-shipped-for,
	// then only in the bucket.
	tenants, shipped, err := i.FlushAndShip(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, tenants)
	require.Equal(t, 2, shipped)
	require.Equal(t, 4, find(t, i, "t1", a))
	metas, err := traceblock.ListBlocks(context.Background(), bkt, "t1")
	require.NoError(t, err)
	require.Len(t, metas, 1)
	require.Equal(t, int64(2), metas[0].Stats.Traces)
	require.Equal(t, int64(7), metas[0].Stats.Spans)
	blk, err := traceblock.OpenBlock(context.Background(), bkt, "t1", metas[0])
	require.NoError(t, err)
	td, ok, err := blk.FindTrace(context.Background(), a)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 4, td.SpanCount())

	i.base.SetNow(func() time.Time { return time.Now().Add(cfg.RetainShipped) })
	i.base.DropShipped()
	require.Zero(t, find(t, i, "t1", a))
	// Spans arriving after their trace was cut start it again.
	push(t, i, "t1", &tracespb.Trace{TraceId: a[:], Spans: spans(t, a, "very late", 1)})
	require.Equal(t, 1, find(t, i, "t1", a))
	stop(t, i)
}

func TestPushLimits(t *testing.T) {
	lim := testLimits()
	lim.TracesMaxLiveTracesPerTenant = 2
	lim.TracesMaxBytesPerTrace = 400
	i := start(t, testConfig(t), t.TempDir(), lim, nil)
	defer stop(t, i)
	a, b, c := [16]byte{1}, [16]byte{2}, [16]byte{3}
	resp := push(t, i, "t", &tracespb.Trace{TraceId: a[:], Spans: spans(t, a, "a", 1)}, &tracespb.Trace{TraceId: b[:], Spans: spans(t, b, "b", 1)}, &tracespb.Trace{TraceId: c[:], Spans: spans(t, c, "c", 1)})
	require.Equal(t, int64(1), resp.RejectedTraces)
	require.Equal(t, int32(429), resp.FirstErrorStatus)
	require.Contains(t, resp.FirstError, "-ingester.traces.max-live-traces-per-tenant")
	require.Equal(t, 1, find(t, i, "t", a))
	require.Zero(t, find(t, i, "t", c))

	resp = push(t, i, "t", &tracespb.Trace{TraceId: a[:], Spans: spans(t, a, "big", 20)})
	require.Equal(t, int32(400), resp.FirstErrorStatus)
	require.Contains(t, resp.FirstError, "-ingester.traces.max-bytes-per-trace")
	require.Equal(t, 1, find(t, i, "t", a), "the spans already held stay")

	resp = push(t, i, "t", &tracespb.Trace{TraceId: []byte{1, 2}, Spans: spans(t, a, "a", 1)})
	require.Contains(t, resp.FirstError, "trace IDs are 16 bytes")
}

func TestWALRecordRoundTrip(t *testing.T) {
	ps := []piece{{id: [16]byte{1}, spans: []byte("x")}, {id: [16]byte{2}, spans: nil}}
	tenant, got, err := decodePieces(encodePieces(nil, "tenant-a", ps))
	require.NoError(t, err)
	require.Equal(t, "tenant-a", tenant)
	require.Equal(t, ps[0], got[0])
	require.Equal(t, ps[1].id, got[1].id)
	require.Empty(t, got[1].spans)
	for n := range len(encodePieces(nil, "tenant-a", ps)) {
		_, _, err := decodePieces(encodePieces(nil, "tenant-a", ps)[:n])
		require.Error(t, err, "truncated at %d", n)
	}
}
