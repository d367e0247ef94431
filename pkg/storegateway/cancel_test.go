package storegateway

import (
	"container/list"
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
)

// blockingBucket holds every range read, while hold is set, until the
// read's context ends or release is closed.
type blockingBucket struct {
	objstore.Bucket
	hold    atomic.Bool
	release chan struct{}
	held    chan struct{} // receives when a read starts being held
	ended   chan error    // receives the context error that ended a held read
}

func newBlockingBucket(b objstore.Bucket) *blockingBucket {
	return &blockingBucket{Bucket: b, release: make(chan struct{}), held: make(chan struct{}, 100), ended: make(chan error, 100)}
}

func (b *blockingBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if b.hold.Load() {
		b.held <- struct{}{}
		select {
		case <-ctx.Done():
			b.ended <- ctx.Err()
			return nil, ctx.Err()
		case <-b.release:
		}
	}
	return b.Bucket.GetRange(ctx, name, off, length)
}

// serverStream is the server side of a Series call made without gRPC, so
// that the test sees what the handler returns.
type serverStream struct {
	grpc.ServerStream // nil: only the methods below are called
	ctx               context.Context
}

func (s serverStream) Context() context.Context   { return s.ctx }
func (serverStream) SendHeader(metadata.MD) error { return nil }
func (serverStream) SendMsg(any) error            { return nil }
func (serverStream) SetHeader(metadata.MD) error  { return nil }
func (serverStream) SetTrailer(metadata.MD)       {}
func (serverStream) RecvMsg(any) error            { return io.EOF }
func (s serverStream) frames() client.FrameSender { return frameStream{s} }

// TestQueryCancelStopsBucketReads checks that a query whose context ends
// while the store-gateway reads the bucket for it returns at once with the
// context's error, that the bucket read it waited on saw the cancellation,
// and that the next query, whose context holds, reads the same pages.
func TestQueryCancelStopsBucketReads(t *testing.T) {
	job := labels.MustNewMatcher(labels.MatchEqual, "job", "job-5")
	for _, tc := range []struct {
		name  string
		query func(ctx context.Context, g *StoreGateway, id string) error
	}{
		{"series", func(ctx context.Context, g *StoreGateway, id string) error {
			return g.Series(&SeriesRequest{Start: 0, End: base + 1e9, Matchers: client.FromMatchers([]*labels.Matcher{job}), BlockIDs: []string{id}}, serverStream{ctx: ctx}.frames())
		}},
		{"label names", func(ctx context.Context, g *StoreGateway, id string) error {
			_, err := g.LabelNames(ctx, &LabelsRequest{LabelsRequest: client.LabelsRequest{Start: 0, End: base + 1e9, Matchers: client.FromMatchers([]*labels.Matcher{job})}, BlockIDs: []string{id}})
			return err
		}},
		{"label values", func(ctx context.Context, g *StoreGateway, id string) error {
			_, err := g.LabelValues(ctx, &LabelsRequest{LabelsRequest: client.LabelsRequest{Start: 0, End: base + 1e9, Name: "__name__", Matchers: client.FromMatchers([]*labels.Matcher{job})}, BlockIDs: []string{id}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 64<<20)
			bkt := newBlockingBucket(f.bkt)
			f.gateway.bkt = bkt
			ctx := user.InjectOrgID(context.Background(), "t1")
			_, err := f.gateway.block(ctx, "t1", mustULID(t, f.id))
			require.NoError(t, err)
			f.gateway.cache.drop() // the query reads the bucket

			bkt.hold.Store(true)
			qctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.query(qctx, f.gateway, f.id) }()
			receive(t, bkt.held)
			cancel()
			require.ErrorIs(t, receive(t, done), context.Canceled)
			require.ErrorIs(t, receive(t, bkt.ended), context.Canceled, "the bucket read saw the query's end")

			bkt.hold.Store(false)
			require.NoError(t, tc.query(ctx, f.gateway, f.id), "a cancelled read leaves nothing behind for the next query")
		})
	}
}

// TestQueryCancelWhileBlockOpens checks that a query waiting for a block
// to open stops waiting when its context ends, and that the opening, which
// is shared, goes on: the next query finds the block open.
func TestQueryCancelWhileBlockOpens(t *testing.T) {
	f := newFixture(t, 64<<20)
	bkt := newBlockingBucket(f.bkt)
	f.gateway.bkt = bkt
	var stop context.CancelFunc
	f.gateway.ctx, stop = context.WithCancel(context.Background())
	t.Cleanup(stop)
	ctx := user.InjectOrgID(context.Background(), "t1")

	bkt.hold.Store(true)
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := f.gateway.LabelNames(qctx, &LabelsRequest{LabelsRequest: client.LabelsRequest{Start: 0, End: base + 1e9}, BlockIDs: []string{f.id}})
		done <- err
	}()
	receive(t, bkt.held) // the opening reads the index
	cancel()
	require.ErrorIs(t, receive(t, done), context.Canceled)
	require.Empty(t, bkt.ended, "the opening is not the query's to cancel")

	bkt.hold.Store(false)
	close(bkt.release)
	res, err := f.gateway.LabelNames(ctx, &LabelsRequest{LabelsRequest: client.LabelsRequest{Start: 0, End: base + 1e9}, BlockIDs: []string{f.id}})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "i", "job"}, res.Values)
	require.Equal(t, 0.0, counterValue(t, f.gateway.openFailures))
}

// drop empties the cache.
func (c *pageCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pages = map[pageKey]*list.Element{}
	c.lru.Init()
	c.size = 0
}
