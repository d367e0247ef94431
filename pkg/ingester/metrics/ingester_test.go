package metrics

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*Client).WatchKey"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/grafana/dskit/kv/consul.(*Client).cas"),
		// dskit keeps one process-wide in-memory KV for the "inmemory" ring store.
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*mockKV).loop"),
	)
}

func newTestIngester(t *testing.T, dir string, limits validation.Limits) *Ingester {
	return newShippingIngester(t, dir, limits, nil)
}

func newShippingIngester(t *testing.T, dir string, limits validation.Limits, bkt objstore.Bucket) *Ingester {
	t.Helper()
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.InstanceID = "ingester-test"
	cfg.Ring.InstanceAddr = "127.0.0.1"
	cfg.Ring.HeartbeatPeriod = 100 * time.Millisecond
	cfg.Ring.HeartbeatTimeout = time.Minute
	require.NoError(t, cfg.Validate())
	i, err := New(cfg, dir, dir+".tokens", ringconfig.Instance{ID: "ingester-test", Addr: "127.0.0.1", Port: 9095}, validation.NewStaticOverrides(limits, nil), bkt, nil, log.NewNopLogger(), nil)
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), i))
	return i
}

func defaultLimits() validation.Limits {
	var l validation.Limits
	l.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	return l
}

func request(ts int64, names ...string) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i, n := range names {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", n, "job", "test"), nil),
			Samples:    []writev2.Sample{{Value: float64(i + 1), Timestamp: ts}},
		})
	}
	req.Symbols = st.Symbols()
	return req
}

type frameBuffer struct {
	ctx context.Context
	buf bytes.Buffer
}

func (f *frameBuffer) Context() context.Context { return f.ctx }
func (f *frameBuffer) Send(fr *client.Frame) error {
	f.buf.Write(fr.Data)
	return nil
}

// query returns name -> samples for the tenant's series matching name=~".+"
// and ms.
func query(t *testing.T, i *Ingester, tenantID string, ms ...*labels.Matcher) map[string][]float64 {
	t.Helper()
	ctx := user.InjectOrgID(context.Background(), tenantID)
	q, err := remote.ToQuery(0, time.Now().Add(time.Hour).UnixMilli(), append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}, ms...), nil)
	require.NoError(t, err)
	fb := &frameBuffer{ctx: ctx}
	require.NoError(t, i.QueryStream(q, fb))
	ss := remote.NewChunkedSeriesSet(remote.NewChunkedReader(&fb.buf, 1<<20, nil), io.NopCloser(nil), 0, time.Now().Add(time.Hour).UnixMilli(), func(error) {})
	out := map[string][]float64{}
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		for it.Next() != 0 {
			_, v := it.At()
			out[s.Labels().Get("__name__")] = append(out[s.Labels().Get("__name__")], v)
		}
	}
	require.NoError(t, ss.Err())
	return out
}

func TestPushQueryAndWALReplay(t *testing.T) {
	dir := t.TempDir()
	i := newTestIngester(t, dir, defaultLimits())
	now := time.Now().UnixMilli()
	ctxA := user.InjectOrgID(context.Background(), "team-a")
	resp, err := i.Push(ctxA, request(now, "a_one", "a_two"))
	require.NoError(t, err)
	require.Empty(t, resp.Rejected)
	_, err = i.Push(user.InjectOrgID(context.Background(), "team-b"), request(now, "b_one"))
	require.NoError(t, err)

	require.Equal(t, map[string][]float64{"a_one": {1}, "a_two": {2}}, query(t, i, "team-a"))
	require.Equal(t, map[string][]float64{"b_one": {1}}, query(t, i, "team-b"), "tenants never see each other's series")
	require.Empty(t, query(t, i, "team-c"))

	names, err := i.LabelValues(ctxA, &client.LabelsRequest{Start: 0, End: now + 1, Name: "__name__"})
	require.NoError(t, err)
	require.Equal(t, []string{"a_one", "a_two"}, names.Values)

	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))

	// A new ingester on the same directory replays the WAL before serving.
	i2 := newTestIngester(t, dir, defaultLimits())
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i2)) }()
	require.Equal(t, map[string][]float64{"a_one": {1}, "a_two": {2}}, query(t, i2, "team-a"))
	require.Equal(t, map[string][]float64{"b_one": {1}}, query(t, i2, "team-b"))
}

// TestQueryShards checks that the shards of a query sharded by the
// query-frontend split the series between them.
func TestQueryShards(t *testing.T) {
	i := newTestIngester(t, t.TempDir(), defaultLimits())
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()
	var names []string
	for n := range 40 {
		names = append(names, fmt.Sprintf("m_%d", n))
	}
	_, err := i.Push(user.InjectOrgID(context.Background(), "t"), request(time.Now().UnixMilli(), names...))
	require.NoError(t, err)
	all := query(t, i, "t")
	require.Len(t, all, 40)
	union := map[string][]float64{}
	for s := range 3 {
		got := query(t, i, "t", queryshard.Matcher(s, 3))
		require.NotEmpty(t, got)
		require.Less(t, len(got), 40)
		for k, v := range got {
			require.NotContains(t, union, k, "a series is in one shard only")
			union[k] = v
		}
	}
	require.Equal(t, all, union)
}

func TestPushRejectionsKeepTheRest(t *testing.T) {
	limits := defaultLimits()
	limits.MaxGlobalSeriesPerTenant = 2
	limits.OutOfOrderTimeWindow = 0
	i := newTestIngester(t, t.TempDir(), limits)
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()
	ctx := user.InjectOrgID(context.Background(), "t")
	now := time.Now().UnixMilli()

	resp, err := i.Push(ctx, request(now, "s1", "s2", "s3"))
	require.NoError(t, err)
	require.Equal(t, map[string]int{ReasonSeriesLimit: 1}, resp.Rejected)
	require.Contains(t, resp.FirstError, "-ingester.max-global-series-per-tenant")
	require.True(t, resp.LimitError)

	// An out-of-order sample is rejected, the in-order one beside it kept.
	req := request(now-60_000, "s1")
	req2 := request(now+1000, "s2")
	req.Timeseries = append(req.Timeseries, writev2.TimeSeries{LabelsRefs: remap(req2, req), Samples: req2.Timeseries[0].Samples})
	resp, err = i.Push(ctx, req)
	require.NoError(t, err)
	require.Equal(t, map[string]int{ReasonOutOfOrder: 1}, resp.Rejected)
	require.Contains(t, resp.FirstError, "-ingester.out-of-order-time-window")
	require.Equal(t, map[string][]float64{"s1": {1}, "s2": {2, 1}}, query(t, i, "t"))
}

// remap re-symbolizes the first series of src into dst's symbol table.
func remap(src, dst *writev2.Request) []uint32 {
	var out []uint32
	for _, r := range src.Timeseries[0].LabelsRefs {
		s := src.Symbols[r]
		idx := -1
		for j, d := range dst.Symbols {
			if d == s {
				idx = j
			}
		}
		if idx < 0 {
			dst.Symbols = append(dst.Symbols, s)
			idx = len(dst.Symbols) - 1
		}
		out = append(out, uint32(idx))
	}
	return out
}

// TestEveryValidTenantCanWrite: tenant names that look like parts of the
// data layout, or use every character the validator allows, write and read
// back like any other.
func TestEveryValidTenantCanWrite(t *testing.T) {
	dir := t.TempDir()
	i := newTestIngester(t, dir, defaultLimits())
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()
	now := time.Now().UnixMilli()
	for _, id := range []string{
		"tokens", "metrics", "metrics.tokens", "layout-version", "metrics.migrating",
		"wal", "chunks_head", "wbl", "lock", "shipper.json", "queries.active",
		".", "..x", "a!b_c.d*e'f(g)", "-", "*", "'", strings.Repeat("z", tenant.MaxLength),
	} {
		if tenant.Validate(id) != nil {
			continue // "." is refused before it reaches an ingester
		}
		ctx := user.InjectOrgID(context.Background(), id)
		resp, err := i.Push(ctx, request(now, "m"))
		require.NoError(t, err, "tenant %q", id)
		require.Empty(t, resp.Rejected, "tenant %q", id)
		require.Len(t, query(t, i, id)["m"], 1, "tenant %q", id)
	}
}

// TestStorageErrorsHideServerPaths: when a tenant's TSDB cannot be opened,
// the client learns which tenant and step failed, not the server's paths.
func TestStorageErrorsHideServerPaths(t *testing.T) {
	dir := t.TempDir()
	i := newTestIngester(t, dir, defaultLimits())
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blocked"), []byte("not a directory"), 0o600))
	_, err := i.Push(user.InjectOrgID(context.Background(), "blocked"), request(time.Now().UnixMilli(), "m"))
	require.ErrorContains(t, err, "opening the TSDB of tenant blocked failed")
	require.NotContains(t, err.Error(), dir)
}

// cancellingSender is a stream whose client goes away after the first frame
// but whose transport keeps accepting frames.
type cancellingSender struct {
	ctx    context.Context
	cancel context.CancelFunc
	frames int
}

func (s *cancellingSender) Context() context.Context { return s.ctx }
func (s *cancellingSender) Send(*client.Frame) error {
	s.frames++
	s.cancel()
	return nil
}

// TestQueryStreamStopsWhenTheClientLeaves: a query over 5,000 series stops
// reading within a few frames of its context ending.
func TestQueryStreamStopsWhenTheClientLeaves(t *testing.T) {
	i := newTestIngester(t, t.TempDir(), defaultLimits())
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()
	i.cfg.MaxFrameBytes = 256 // about one series a frame
	names := make([]string, 5000)
	for n := range names {
		names[n] = fmt.Sprintf("series_%d", n)
	}
	ctx := user.InjectOrgID(context.Background(), "t")
	_, err := i.Push(ctx, request(time.Now().UnixMilli(), names...))
	require.NoError(t, err)
	q, err := remote.ToQuery(0, time.Now().Add(time.Hour).UnixMilli(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}, nil)
	require.NoError(t, err)
	s := &cancellingSender{}
	s.ctx, s.cancel = context.WithCancel(ctx)
	require.ErrorIs(t, i.QueryStream(q, s), context.Canceled)
	require.Less(t, s.frames, 200, "frames sent after the client left")
}
