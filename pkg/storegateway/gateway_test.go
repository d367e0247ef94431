package storegateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/middleware"
	"github.com/grafana/dskit/user"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks/blockstest"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*mockKV).loop"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// testSeries is n series of 2h at 15s whose values and label values vary, so
// the index has many postings and the chunks span many pages.
func testSeries(n int, mint int64) []blockstest.Series {
	out := make([]blockstest.Series, 0, n)
	for i := range n {
		var ss []blockstest.Sample
		for ts := mint; ts < mint+2*3600_000; ts += 15_000 {
			ss = append(ss, blockstest.Sample{Ts: ts, V: float64(i) + float64(ts%7919)/3})
		}
		out = append(out, blockstest.Series{
			Labels:  labels.FromStrings("__name__", fmt.Sprintf("metric_%d", i%7), "job", fmt.Sprintf("job-%d", i%13), "i", fmt.Sprint(i)),
			Samples: ss,
		})
	}
	return out
}

// base is the start of the test block, on a 2h boundary.
const base = int64(1_700_006_400_000)

// flakyBucket fails GetRange while fail is set.
type flakyBucket struct {
	objstore.Bucket
	fail atomic.Bool
}

func (b *flakyBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if b.fail.Load() {
		return nil, errors.New("bucket unavailable")
	}
	return b.Bucket.GetRange(ctx, name, off, length)
}

type fixture struct {
	bkt     *flakyBucket
	local   *tsdb.Block
	id      string
	gateway *StoreGateway
	client  *Client
}

// newFixture uploads one block and serves it from a store-gateway over real
// gRPC, with a cache far smaller than the block so pages are evicted while a
// query runs.
func newFixture(t *testing.T, cacheSize int64) *fixture {
	t.Helper()
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	bkt := &flakyBucket{Bucket: fs}
	dir := blockstest.Create(t, t.TempDir(), testSeries(500, base))
	meta, err := metricsblocks.Upload(context.Background(), metricsblocks.TenantBucket(bkt, "t1"), dir, metricsblocks.CanopyMeta{Tenant: "t1", Source: metricsblocks.SourceIngester})
	require.NoError(t, err)
	local, err := tsdb.OpenBlock(nil, dir, chunkenc.NewPool(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = local.Close() })

	var cfg Config
	fset := flag.NewFlagSet("", flag.PanicOnError)
	cfg.RegisterFlags(fset)
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.InstanceAddr = "127.0.0.1"
	g, err := New(cfg, ringconfig.Instance{ID: "store-gateway", Addr: "127.0.0.1"}, bkt, nil, nil, log.NewNopLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	g.cache = newPageCache(cacheSize, prometheus.NewRegistry())
	g.ctx = context.Background()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(rpc.ServerOption(),
		grpc.UnaryInterceptor(middleware.ServerUserHeaderInterceptor),
		grpc.StreamInterceptor(middleware.StreamServerUserHeaderInterceptor))
	RegisterServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := cfg.Client.Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &fixture{bkt: bkt, local: local, id: meta.ULID.String(), gateway: g, client: NewClient(conn)}
}

type sample struct {
	t int64
	v float64
}

// samplesOf reads a series set to the end.
func samplesOf(ss storage.SeriesSet) (map[string][]sample, error) {
	out := map[string][]sample{}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var got []sample
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			got = append(got, sample{ts, v})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		out[s.Labels().String()] = got
	}
	return out, ss.Err()
}

func collect(t *testing.T, ss storage.SeriesSet) map[string][]sample {
	t.Helper()
	out, err := samplesOf(ss)
	require.NoError(t, err)
	return out
}

func (f *fixture) series(t *testing.T, start, end int64, ms ...*labels.Matcher) ([]string, map[string][]sample, error) {
	ctx := user.InjectOrgID(context.Background(), "t1")
	ids, _, rc, err := f.client.Series(ctx, &SeriesRequest{Start: start, End: end, Matchers: client.FromMatchers(ms), BlockIDs: []string{f.id}})
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	out, err := samplesOf(remote.NewChunkedSeriesSet(remote.NewChunkedReader(rc, 64<<20, nil), rc, start, end, func(error) {}))
	return ids, out, err
}

func TestSeriesFromBucketMatchLocalBlock(t *testing.T) {
	f := newFixture(t, 64<<10)
	cases := [][]*labels.Matcher{
		{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")},
		{labels.MustNewMatcher(labels.MatchEqual, "__name__", "metric_3")},
		{labels.MustNewMatcher(labels.MatchEqual, "job", "job-5"), labels.MustNewMatcher(labels.MatchNotEqual, "i", "5")},
		{labels.MustNewMatcher(labels.MatchRegexp, "i", "1.?"), labels.MustNewMatcher(labels.MatchNotRegexp, "__name__", "metric_[12]")},
		{labels.MustNewMatcher(labels.MatchEqual, "__name__", "absent")},
	}
	for _, ms := range cases {
		for _, r := range [][2]int64{{base, base + 2*3600_000}, {base + 1800_000, base + 2400_000}} {
			t.Run(fmt.Sprint(ms, r), func(t *testing.T) {
				q, err := tsdb.NewBlockQuerier(f.local, r[0], r[1])
				require.NoError(t, err)
				defer q.Close()
				want := collect(t, q.Select(context.Background(), true, nil, ms...))
				ids, got, err := f.series(t, r[0], r[1], ms...)
				require.NoError(t, err)
				require.Equal(t, []string{f.id}, ids)
				require.Equal(t, want, got)
			})
		}
	}
	require.LessOrEqual(t, f.gateway.cache.size, int64(64<<10)+chunksReadAhead*chunksPageSize, "the cache stays near its bound")
}

// TestSeriesShards checks the shard matcher: the shards split the block's
// series between them, and the matcher does not prune the block (no block
// has a __query_shard__ label).
func TestSeriesShards(t *testing.T) {
	f := newFixture(t, 1<<20)
	name := labels.MustNewMatcher(labels.MatchRegexp, "__name__", "metric_[0-4]")
	_, all, err := f.series(t, base, base+3600_000, name)
	require.NoError(t, err)
	require.NotEmpty(t, all)
	union := map[string][]sample{}
	for s := range 4 {
		_, got, err := f.series(t, base, base+3600_000, name, queryshard.Matcher(s, 4))
		require.NoError(t, err)
		require.NotEmpty(t, got)
		for k, v := range got {
			require.NotContains(t, union, k)
			union[k] = v
		}
	}
	require.Equal(t, all, union)
	_, _, err = f.series(t, base, base+3600_000, name, labels.MustNewMatcher(labels.MatchEqual, queryshard.Label, "5_of_4"))
	require.ErrorContains(t, err, "5_of_4")
}

func TestLabelsFromBucket(t *testing.T) {
	f := newFixture(t, 1<<20)
	ctx := user.InjectOrgID(context.Background(), "t1")
	names, err := f.client.LabelNames(ctx, &LabelsRequest{LabelsRequest: client.LabelsRequest{Start: 0, End: base + 1e9}, BlockIDs: []string{f.id}})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "i", "job"}, names.Values)
	require.Equal(t, []string{f.id}, names.QueriedBlocks)
	vals, err := f.client.LabelValues(ctx, &LabelsRequest{
		LabelsRequest: client.LabelsRequest{Start: 0, End: base + 1e9, Name: "job", Matchers: client.FromMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "metric_0")})},
		BlockIDs:      []string{f.id},
	})
	require.NoError(t, err)
	require.Len(t, vals.Values, 13)
}

func TestPruning(t *testing.T) {
	f := newFixture(t, 1<<20)
	// Outside the block's time range, and a label no series has: the block
	// counts as queried (it was checked) and nothing is read.
	ids, got, err := f.series(t, base+3*3600_000, base+4*3600_000)
	require.NoError(t, err)
	require.Equal(t, []string{f.id}, ids)
	require.Empty(t, got)
	ids, got, err = f.series(t, base, base+3600_000, labels.MustNewMatcher(labels.MatchEqual, "pod", "x"))
	require.NoError(t, err)
	require.Equal(t, []string{f.id}, ids)
	require.Empty(t, got)
	require.Equal(t, 1.0, counterValue(t, f.gateway.blocksPruned.WithLabelValues("time")))
	require.Equal(t, 1.0, counterValue(t, f.gateway.blocksPruned.WithLabelValues("labels")))
}

func TestBucketFailures(t *testing.T) {
	f := newFixture(t, 64<<10)
	// A block that cannot be opened is not reported as queried, so the
	// querier asks another replica.
	f.bkt.fail.Store(true)
	ids, _, err := f.series(t, 0, base+1e9, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.NoError(t, err)
	require.Empty(t, ids)

	// Failing in the middle of a query is an error naming the object, not a
	// crash and not a short answer.
	f.bkt.fail.Store(false)
	f.gateway.blocks = map[blockKey]*blockEntry{}
	_, err = f.gateway.block(context.Background(), "t1", mustULID(t, f.id))
	require.NoError(t, err)
	f.bkt.fail.Store(true)
	_, _, err = f.series(t, 0, base+1e9, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	require.ErrorContains(t, err, "bucket unavailable")

	// Other tenants' blocks are not reachable by id.
	f.bkt.fail.Store(false)
	ctx := user.InjectOrgID(context.Background(), "t2")
	ids, failed, _, err := f.client.Series(ctx, &SeriesRequest{Start: 0, End: 1, BlockIDs: []string{f.id}})
	require.NoError(t, err)
	require.Empty(t, ids)
	require.Contains(t, failed[f.id], "no meta.json in the bucket")

	_, _, _, err = f.client.Series(ctx, &SeriesRequest{Start: 0, End: 1, BlockIDs: []string{"not-a-ulid"}})
	require.ErrorContains(t, err, `block id "not-a-ulid"`)
}

func TestCacheServesRepeatReads(t *testing.T) {
	f := newFixture(t, 64<<20)
	m := labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")
	_, first, err := f.series(t, 0, base+1e9, m)
	require.NoError(t, err)
	read := counterValue(t, f.gateway.cache.fetched)
	require.Positive(t, read)
	f.bkt.fail.Store(true) // a warm cache needs no bucket
	_, second, err := f.series(t, 0, base+1e9, m)
	require.NoError(t, err)
	require.Equal(t, first, second)
	require.Equal(t, read, counterValue(t, f.gateway.cache.fetched))
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

func mustULID(t *testing.T, s string) ulid.ULID {
	t.Helper()
	id, err := ulid.ParseStrict(s)
	require.NoError(t, err)
	return id
}

// TestIdleBlocksAreUnloaded checks that a block no query read for
// -store-gateway.idle-block-timeout lets go of its index, that a recently
// read one keeps it, and that the next query opens it again and answers the
// same.
func TestIdleBlocksAreUnloaded(t *testing.T) {
	f := newFixture(t, 1<<20)
	clock := time.Unix(1_800_000_000, 0)
	f.gateway.now = func() time.Time { return clock }
	name := labels.MustNewMatcher(labels.MatchEqual, "__name__", "metric_1")
	_, want, err := f.series(t, base, base+3600_000, name)
	require.NoError(t, err)
	require.NotEmpty(t, want)
	require.Equal(t, 1.0, counterValue(t, f.gateway.loaded))

	clock = clock.Add(30 * time.Minute)
	f.gateway.unloadIdle()
	require.Equal(t, 1.0, counterValue(t, f.gateway.loaded), "read 30 minutes ago: still open")

	clock = clock.Add(31 * time.Minute)
	f.gateway.unloadIdle()
	require.Equal(t, 0.0, counterValue(t, f.gateway.loaded))
	require.Equal(t, 1.0, counterValue(t, f.gateway.unloaded))

	_, got, err := f.series(t, base, base+3600_000, name)
	require.NoError(t, err)
	require.Equal(t, want, got)
	f.gateway.updateLoaded()
	require.Equal(t, 1.0, counterValue(t, f.gateway.loaded))
}
