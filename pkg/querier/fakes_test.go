package querier

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/middleware"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks/blockstest"
	"github.com/canopy-observability/canopy/pkg/storegateway"
)

// The test data: series up{i="<i>"} with a sample every step from base, on
// a 2h boundary.
const (
	base = int64(1_700_006_400_000)
	step = int64(15_000)
	hour = int64(3600_000)
)

const tenantID = "team-a"

// value is the sample of series i at ts: every replica and every block
// derives it the same way, so merged answers can be checked exactly.
func value(i int, ts int64) float64 { return float64(i*1000) + float64((ts-base)/step) }

// testSeries returns n series with their samples in [mint, maxt) for which
// keep (nil: every one) holds.
func testSeries(n int, mint, maxt int64, keep func(ts int64) bool) []blockstest.Series {
	out := make([]blockstest.Series, 0, n)
	for i := range n {
		var ss []blockstest.Sample
		for ts := mint; ts < maxt; ts += step {
			if keep == nil || keep(ts) {
				ss = append(ss, blockstest.Sample{Ts: ts, V: value(i, ts)})
			}
		}
		out = append(out, blockstest.Series{Labels: labels.FromStrings("__name__", "up", "i", fmt.Sprint(i)), Samples: ss})
	}
	return out
}

// openTestBlock writes series to a real TSDB block and opens it.
func openTestBlock(t *testing.T, series []blockstest.Series) *tsdb.Block {
	t.Helper()
	b, err := tsdb.OpenBlock(nil, blockstest.Create(t, t.TempDir(), series), chunkenc.NewPool(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

type sample struct {
	T int64
	V float64
}

// samplesOf reads a series set to its end: samples by series.
func samplesOf(ss storage.SeriesSet) (map[string][]sample, error) {
	out := map[string][]sample{}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		key := s.Labels().String()
		if _, ok := out[key]; ok {
			return nil, fmt.Errorf("series %s came twice", key)
		}
		it = s.Iterator(it)
		got := []sample{}
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			got = append(got, sample{ts, v})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
		out[key] = got
	}
	return out, ss.Err()
}

// want is what a query of series over [mint, maxt] answers.
func want(series []blockstest.Series, mint, maxt int64) map[string][]sample {
	out := map[string][]sample{}
	for _, s := range series {
		got := []sample{}
		for _, smp := range s.Samples {
			if smp.Ts >= mint && smp.Ts <= maxt {
				got = append(got, sample{smp.Ts, smp.V})
			}
		}
		out[s.Labels.String()] = got
	}
	return out
}

// selectAll runs one Select of every up series in [mint, maxt] through q.
func selectAll(t *testing.T, q storage.Queryable, mint, maxt int64) (map[string][]sample, error) {
	t.Helper()
	qr, err := q.Querier(mint, maxt)
	require.NoError(t, err)
	defer func() { require.NoError(t, qr.Close()) }()
	ctx := user.InjectOrgID(context.Background(), tenantID)
	return samplesOf(qr.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")))
}

// serve serves what register registers over gRPC on 127.0.0.1, as Canopy's
// processes do (Canopy's codec, the tenant in the metadata), until the test
// ends, and returns its address.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(rpc.ServerOption(),
		grpc.UnaryInterceptor(middleware.ServerUserHeaderInterceptor),
		grpc.StreamInterceptor(middleware.StreamServerUserHeaderInterceptor))
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// unreachable returns an address nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// newPool returns an ingester client pool dialling as queriers do.
func newPool(t *testing.T) *client.Pool {
	p := client.NewPool(rpc.DefaultClientConfig(), nil, log.NewNopLogger(), nil)
	t.Cleanup(p.Close)
	return p
}

// newGatewayPool returns a store-gateway client pool dialling as queriers do.
func newGatewayPool(t *testing.T) *storegateway.Pool {
	p := storegateway.NewPool(rpc.DefaultClientConfig(), nil, log.NewNopLogger(), nil)
	t.Cleanup(p.Close)
	return p
}

// fakeRing is a ring of fixed instances: all of them form the read
// replication set (of which maxErrors may fail), and all of them own every
// block.
type fakeRing struct {
	ring.ReadRing // nil: only the methods below are called
	instances     []ring.InstanceDesc
	maxErrors     int
}

func (r fakeRing) GetReplicationSetForOperation(ring.Operation) (ring.ReplicationSet, error) {
	return ring.ReplicationSet{Instances: slices.Clone(r.instances), MaxErrors: r.maxErrors}, nil
}

func (r fakeRing) Get(uint32, ring.Operation, []ring.InstanceDesc, []string, []string) (ring.ReplicationSet, error) {
	return ring.ReplicationSet{Instances: slices.Clone(r.instances), MaxErrors: r.maxErrors}, nil
}

// streamSeries sends css as an ingester or a store-gateway does.
func streamSeries(stream client.FrameSender, css storage.ChunkSeriesSet) error {
	w := remote.NewChunkedWriter(client.FrameWriter{Stream: stream}, noFlush{})
	_, err := remote.StreamChunkedReadResponses(w, 0, css, nil, 1<<20, &sync.Pool{})
	return err
}

type noFlush struct{}

func (noFlush) Flush() {}

// fakeIngester answers query streams from a block.
type fakeIngester struct {
	client.IngesterServer // nil: only QueryStream is served
	block                 tsdb.BlockReader
}

func (f *fakeIngester) QueryStream(q *prompb.Query, stream client.FrameSender) error {
	ms, err := remote.FromLabelMatchers(q.Matchers)
	if err != nil {
		return err
	}
	cq, err := tsdb.NewBlockChunkQuerier(f.block, q.StartTimestampMs, q.EndTimestampMs)
	if err != nil {
		return err
	}
	defer cq.Close()
	return streamSeries(stream, cq.Select(stream.Context(), true, nil, ms...))
}

// fakeGateway is a store-gateway serving series of the blocks it holds.
type fakeGateway struct {
	storegateway.Server // nil: only Series is served
	blocks              map[string]tsdb.BlockReader
	// broken are blocks it cannot read, with the reason it gives.
	broken map[string]string
	// first, shared by store-gateways, fails the first Series call any of
	// them receives.
	first *firstCall
	// fail fails every Series call.
	fail error

	mu    sync.Mutex
	asked []string // the block IDs it was asked for
}

// firstCall fails the first Series call: with err, or (err nil) reporting
// every block asked for unreadable, with reason.
type firstCall struct {
	done   atomic.Bool
	err    error
	reason string
}

func (g *fakeGateway) Series(req *storegateway.SeriesRequest, stream client.FrameSender) error {
	g.mu.Lock()
	g.asked = append(g.asked, req.BlockIDs...)
	g.mu.Unlock()
	if g.fail != nil {
		return g.fail
	}
	first := g.first != nil && g.first.done.CompareAndSwap(false, true)
	if first && g.first.err != nil {
		return g.first.err
	}
	ms, err := client.ToMatchers(req.Matchers)
	if err != nil {
		return err
	}
	var (
		queried []string
		failed  = map[string]string{}
		sets    []storage.ChunkSeriesSet
	)
	for _, id := range req.BlockIDs {
		b, ok := g.blocks[id]
		switch {
		case first:
			failed[id] = g.first.reason
		case g.broken[id] != "":
			failed[id] = g.broken[id]
		case !ok:
			failed[id] = "not held by this store-gateway"
		default:
			q, err := tsdb.NewBlockChunkQuerier(b, req.Start, req.End)
			if err != nil {
				return err
			}
			defer q.Close()
			queried = append(queried, id)
			sets = append(sets, q.Select(stream.Context(), true, nil, ms...))
		}
	}
	if err := storegateway.SendQueriedBlocks(stream, queried, failed); err != nil {
		return err
	}
	return streamSeries(stream, storage.NewMergeChunkSeriesSet(sets, 0, storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge)))
}

func (g *fakeGateway) askedFor() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.asked)
}
