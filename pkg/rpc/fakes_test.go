package rpc_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/grafana/dskit/middleware"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// fakeIngester records what it is sent and answers fixed responses; its
// query stream is the frames "series-" and the query's first matcher value.
type fakeIngester struct {
	mu      sync.Mutex
	pushed  []*writev2.Request
	tenants []string
	queries []*prompb.Query
	labels  []*client.LabelsRequest
}

func (f *fakeIngester) Push(ctx context.Context, req *writev2.Request) (*client.PushResponse, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	// The request is gRPC's buffer, decoded in place: it is kept as a copy.
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	cp := new(writev2.Request)
	if err := cp.Unmarshal(b); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushed = append(f.pushed, cp)
	f.tenants = append(f.tenants, id)
	return &client.PushResponse{Rejected: map[string]int{"out_of_order": 1}, FirstError: "out of order sample", LimitError: true}, nil
}

func (f *fakeIngester) QueryStream(q *prompb.Query, stream client.FrameSender) error {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	w := client.FrameWriter{Stream: stream}
	if _, err := w.Write([]byte("series-")); err != nil {
		return err
	}
	_, err := w.Write([]byte(q.Matchers[0].Value))
	return err
}

func (f *fakeIngester) LabelNames(context.Context, *client.LabelsRequest) (*client.LabelsResponse, error) {
	return &client.LabelsResponse{Values: []string{"__name__", "job"}}, nil
}

func (f *fakeIngester) LabelValues(_ context.Context, req *client.LabelsRequest) (*client.LabelsResponse, error) {
	f.mu.Lock()
	f.labels = append(f.labels, req)
	f.mu.Unlock()
	return &client.LabelsResponse{Values: []string{"a", "b"}, Warnings: []string{"a warning an old client does not know"}}, nil
}

func (f *fakeIngester) Exemplars(context.Context, *client.ExemplarsRequest) (*client.ExemplarsResponse, error) {
	return &client.ExemplarsResponse{}, nil
}

func (f *fakeIngester) Metadata(context.Context, *client.MetadataRequest) (*client.MetadataResponse, error) {
	return &client.MetadataResponse{}, nil
}

// serve serves ing on 127.0.0.1 as a Canopy process does (Canopy's codec, the
// tenant from the metadata), over TLS when creds is not nil, until the test
// ends; it returns the address.
func serve(t *testing.T, ing client.IngesterServer, creds credentials.TransportCredentials) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	opts := []grpc.ServerOption{rpc.ServerOption(),
		grpc.UnaryInterceptor(middleware.ServerUserHeaderInterceptor),
		grpc.StreamInterceptor(middleware.StreamServerUserHeaderInterceptor)}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	client.RegisterIngesterServer(srv, ing)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// metadataContext puts ctx's tenant in the outgoing gRPC metadata, as
// Canopy's clients' interceptor does.
func metadataContext(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	ctx, err := user.InjectIntoGRPCRequest(ctx)
	require.NoError(t, err)
	return ctx
}
