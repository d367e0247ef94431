package logs

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/ingester/unit"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*Client).WatchKey"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/grafana/dskit/kv/consul.(*Client).cas"),
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*mockKV).loop"),
	)
}

func testConfig(t *testing.T) Config {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.InstanceID = "logs-test"
	cfg.Ring.InstanceAddr = "127.0.0.1"
	cfg.Ring.HeartbeatPeriod = 100 * time.Millisecond
	cfg.Ring.HeartbeatTimeout = time.Minute
	cfg.ChunkTargetSize = 4 << 10
	cfg.SelectBatchBytes = 1 << 10
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
	i, err := New(cfg, dir, dir+".tokens", ringconfig.Instance{ID: "logs-test", Addr: "127.0.0.1", Port: 9095}, validation.NewStaticOverrides(limits, nil), bkt, nil, log.NewNopLogger(), nil)
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), i))
	return i
}

func stop(t *testing.T, i *Ingester) {
	t.Helper()
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))
}

func push(t *testing.T, i *Ingester, tenant string, ls labels.Labels, es ...logchunk.Entry) *logspb.PushResponse {
	t.Helper()
	ws := &logspb.Stream{Labels: logsclient.FromLabels(ls)}
	for _, e := range es {
		ws.Entries = append(ws.Entries, &logspb.Entry{Timestamp: e.Timestamp, Line: e.Line, Metadata: logsclient.FromLabels(e.Metadata)})
	}
	resp, err := i.Push(user.InjectOrgID(context.Background(), tenant), &logspb.PushRequest{Streams: []*logspb.Stream{ws}})
	require.NoError(t, err)
	return resp
}

// collect is a BatchSender gathering every entry per stream.
type collect struct {
	ctx     context.Context
	batches int
	got     map[string][]string
}

func (c *collect) Context() context.Context { return c.ctx }
func (c *collect) Send(b *logspb.SelectBatch) error {
	c.batches++
	var sb labels.ScratchBuilder
	for _, s := range b.Streams {
		k := logsclient.ToLabels(s.Labels, &sb).String()
		for _, e := range s.Entries {
			md := ""
			if len(e.Metadata) > 0 {
				md = " " + logsclient.ToLabels(e.Metadata, &sb).String()
			}
			c.got[k] = append(c.got[k], fmt.Sprintf("%d %s%s", e.Timestamp, e.Line, md))
		}
	}
	return nil
}

func selectAll(t *testing.T, i *Ingester, tenant string, start, end int64, needles ...string) map[string][]string {
	t.Helper()
	c := &collect{ctx: user.InjectOrgID(context.Background(), tenant), got: map[string][]string{}}
	req := &logspb.SelectRequest{Matchers: logsclient.FromMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", ".+")}), Start: start, End: end, Needles: needles}
	require.NoError(t, i.Select(req, c))
	return c.got
}

func entries(from, n int, format string) []logchunk.Entry {
	out := make([]logchunk.Entry, n)
	for k := range out {
		out[k] = logchunk.Entry{Timestamp: int64(from+k) * 1e9, Line: fmt.Sprintf(format, from+k)}
	}
	return out
}

func TestPushSelectAndReplay(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	i := start(t, cfg, dir, testLimits(), nil)
	api := labels.FromStrings("app", "api")
	web := labels.FromStrings("app", "web")
	push(t, i, "t1", api, entries(1, 100, "api line %d with some padding to fill chunks")...)
	push(t, i, "t1", web, logchunk.Entry{Timestamp: 5e9, Line: "GET /", Metadata: labels.FromStrings("trace_id", "abc")})
	push(t, i, "t2", api, entries(1, 1, "other tenant %d")...)
	i.cutDue(false) // the api stream is over 4KiB: cut

	want := selectAll(t, i, "t1", 0, 1e12)
	require.Len(t, want[api.String()], 100)
	require.Equal(t, []string{`5000000000 GET / {trace_id="abc"}`}, want[web.String()])
	require.Equal(t, "1000000000 api line 1 with some padding to fill chunks", want[api.String()][0])
	require.Len(t, selectAll(t, i, "t2", 0, 1e12), 1, "tenants are apart")

	// [start, end) and needles.
	got := selectAll(t, i, "t1", 10e9, 20e9)
	require.Len(t, got[api.String()], 10)
	// Needles are hints: cut chunks that cannot hold one are skipped, the
	// open chunk is read whole (the engine filters).
	got = selectAll(t, i, "t1", 0, 1e12, "no such needle anywhere")
	require.NotContains(t, got, api.String())
	require.Contains(t, got, web.String())

	// A restart replays the WAL; so does one after a checkpoint, with
	// entries after it.
	stop(t, i)
	i = start(t, cfg, dir, testLimits(), nil)
	require.Equal(t, want, selectAll(t, i, "t1", 0, 1e12))
	require.NoError(t, i.base.Checkpoint())
	push(t, i, "t1", web, logchunk.Entry{Timestamp: 6e9, Line: "after the checkpoint"})
	want[web.String()] = append(want[web.String()], "6000000000 after the checkpoint")
	stop(t, i)
	i = start(t, cfg, dir, testLimits(), nil)
	require.Equal(t, want, selectAll(t, i, "t1", 0, 1e12))
	stop(t, i)
}

func TestPushLimits(t *testing.T) {
	cfg := testConfig(t)
	limits := testLimits()
	limits.LogsMaxGlobalStreamsPerUser = 1
	i := start(t, cfg, t.TempDir(), limits, nil)
	defer stop(t, i)
	a, b := labels.FromStrings("app", "a"), labels.FromStrings("app", "b")
	require.Empty(t, push(t, i, "t", a, entries(100, 1, "%d")...).Rejected)
	resp := push(t, i, "t", b, entries(100, 2, "%d")...)
	require.Equal(t, map[string]int64{reasonStreamLimit: 2}, resp.Rejected)
	require.True(t, resp.LimitError)
	require.Contains(t, resp.FirstError, "-ingester.logs.max-global-streams-per-tenant")

	// Two hours behind the newest entry is beyond the default window of 1h;
	// the rest of the push is kept, and an exact repeat is ignored.
	resp = push(t, i, "t", a, logchunk.Entry{Timestamp: 100e9 - 2*3600e9, Line: "late"}, logchunk.Entry{Timestamp: 101e9, Line: "fine"}, logchunk.Entry{Timestamp: 101e9, Line: "fine"})
	require.Equal(t, map[string]int64{reasonTooFarBehind: 1}, resp.Rejected)
	require.Contains(t, resp.FirstError, "-ingester.logs.out-of-order-window")
	require.Equal(t, []string{"100000000000 100", "101000000000 fine"}, selectAll(t, i, "t", 0, 1e15)[a.String()])
}

func TestShipAndReadBlock(t *testing.T) {
	dir := t.TempDir()
	bkt, err := filesystem.NewBucket(filepath.Join(dir, "bucket"))
	require.NoError(t, err)
	cfg := testConfig(t)
	i := start(t, cfg, filepath.Join(dir, "logs"), testLimits(), bkt)
	api := labels.FromStrings("app", "api")
	const needle = "trace=3f9a1c7e5b2d4f60a8e1"
	for k := 0; k < 3; k++ { // three chunks
		es := entries(1+100*k, 100, "api line %[1]d request_id=r%[1]d")
		if k == 0 {
			es[76].Line += " " + needle
		}
		push(t, i, "t1", api, es...)
		i.cutDue(true)
	}
	push(t, i, "t1", labels.FromStrings("app", "web"), entries(1, 5, "web %d")...)
	_, shipped, err := i.FlushAndShip(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, shipped)

	metas, err := logblock.ListBlocks(context.Background(), bkt, "t1")
	require.NoError(t, err)
	require.Len(t, metas, 1)
	m := metas[0]
	require.Equal(t, 2, m.Stats.Streams)
	require.EqualValues(t, 305, m.Stats.Entries)
	require.Equal(t, int64(1e9), m.MinTime)
	require.Equal(t, int64(300e9), m.MaxTime)

	b, err := logblock.OpenBlock(context.Background(), bkt, "t1", m)
	require.NoError(t, err)
	defer b.Close()
	var lines []string
	st, err := b.Select(context.Background(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "api")}, 0, 1e15, []string{needle}, func(ls labels.Labels, es []logchunk.Entry) error {
		for _, e := range es {
			if strings.Contains(e.Line, needle) {
				lines = append(lines, strings.Clone(e.Line))
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"api line 77 request_id=r77 " + needle}, lines)
	require.Equal(t, 1, st.Chunks, "the token filters skip the chunks without the needle")
	require.Equal(t, 2, st.ChunksSkipped)

	// Shipped chunks are gone from the checkpoint: a restart without the
	// bucket's data holds nothing of them... but they stay queryable in
	// memory for -ingester.logs.retain-shipped-for.
	require.Len(t, selectAll(t, i, "t1", 0, 1e15)[api.String()], 300)
	stop(t, i)
}

// TestReplayCutsTornTail: a process killed while writing a record leaves a
// torn record at the end of the WAL; the restart keeps every whole record
// before it, cuts the rest and takes pushes again.
func TestReplayCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	i := start(t, cfg, dir, testLimits(), nil)
	app := labels.FromStrings("app", "api")
	push(t, i, "t", app, entries(1, 3, "line %d")...)
	stop(t, i)

	_, last, err := wlog.Segments(unit.WALDir(dir))
	require.NoError(t, err)
	f, err := os.OpenFile(wlog.SegmentName(unit.WALDir(dir), last), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	// A record header promising more bytes than follow.
	_, err = f.Write([]byte{1, 0x00, 0xff, 0x12, 0x34, 0x56, 0x78, 'x'})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	sr, err := wlog.NewSegmentsReader(unit.WALDir(dir))
	require.NoError(t, err)
	rd := wlog.NewReader(sr)
	for rd.Next() {
	}
	require.Error(t, rd.Err(), "the WAL now ends in a torn record")
	require.NoError(t, sr.Close())

	i = start(t, cfg, dir, testLimits(), nil)
	defer stop(t, i)
	require.Equal(t, []string{"1000000000 line 1", "2000000000 line 2", "3000000000 line 3"}, selectAll(t, i, "t", 0, 1e15)[app.String()])
	push(t, i, "t", app, entries(4, 1, "line %d")...)
	require.Len(t, selectAll(t, i, "t", 0, 1e15)[app.String()], 4)
}

// TestSelectShards: the shards of a select split the streams between them,
// each stream in exactly one.
func TestSelectShards(t *testing.T) {
	i := start(t, testConfig(t), t.TempDir(), testLimits(), nil)
	defer stop(t, i)
	for s := 0; s < 20; s++ {
		push(t, i, "t", labels.FromStrings("app", fmt.Sprintf("a%d", s)), entries(1, 2, "line %d")...)
	}
	seen := map[string]int{}
	for k := uint64(0); k < 4; k++ {
		c := &collect{ctx: user.InjectOrgID(context.Background(), "t"), got: map[string][]string{}}
		req := &logspb.SelectRequest{Matchers: logsclient.FromMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", ".+")}), Start: 0, End: 1e15, ShardIndex: k, ShardCount: 4}
		require.NoError(t, i.Select(req, c))
		require.Less(t, len(c.got), 20, "a shard holds some streams, not all")
		for s, es := range c.got {
			seen[s]++
			require.Len(t, es, 2)
		}
	}
	require.Len(t, seen, 20)
	for s, n := range seen {
		require.Equal(t, 1, n, s)
	}
}
