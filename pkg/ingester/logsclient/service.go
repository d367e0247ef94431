// Package logsclient is the Go side of the logs ingester's gRPC contract
// (rpc/logspb/logs.proto): the service descriptor, conversions between its
// messages and Canopy's types, a client and a pool of clients. The
// messages are the generated ones (google.golang.org/protobuf).
package logsclient

import (
	"context"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
)

// ServiceName is the fully qualified gRPC service name.
const ServiceName = "canopy.logs.v1.LogsIngester"

// StoreGatewayServiceName is the fully qualified gRPC service name of the
// logs unit of store-gateways.
const StoreGatewayServiceName = "canopy.logs.v1.LogsStoreGateway"

// StoreServer is what the logs unit of a store-gateway serves: Select and
// Series over the blocks a request names (block_ids).
type StoreServer interface {
	Select(req *logspb.SelectRequest, send BatchSender) error
	Series(ctx context.Context, req *logspb.SeriesRequest) (*logspb.SeriesResponse, error)
}

// RegisterStoreGateway registers srv on s.
func RegisterStoreGateway(s grpc.ServiceRegistrar, srv StoreServer) {
	s.RegisterService(&storeGatewayDesc, srv)
}

var storeGatewayDesc = grpc.ServiceDesc{
	ServiceName: StoreGatewayServiceName,
	HandlerType: (*StoreServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Series", Handler: rpc.Unary(StoreServer.Series)}},
	Streams:     []grpc.StreamDesc{selectStream},
	Metadata:    "logspb/logs.proto",
}

// selectStream is the Select stream of both services: a Server is also a
// StoreServer.
var selectStream = grpc.StreamDesc{
	StreamName:    "Select",
	ServerStreams: true,
	Handler: func(srv any, stream grpc.ServerStream) error {
		req := new(logspb.SelectRequest)
		if err := stream.RecvMsg(req); err != nil {
			return err
		}
		return srv.(StoreServer).Select(req, batchStream{stream})
	},
}

// Server is what the logs unit of an ingester serves. Implementations are
// safe for concurrent use; the tenant is in the context (pkg/util/tenant).
type Server interface {
	// Push appends the entries of req; it must not keep req once it returns.
	Push(ctx context.Context, req *logspb.PushRequest) (*logspb.PushResponse, error)
	// Select sends the matching entries in batches.
	Select(req *logspb.SelectRequest, send BatchSender) error
	Labels(ctx context.Context, req *logspb.LabelsRequest) (*logspb.LabelsResponse, error)
	Series(ctx context.Context, req *logspb.SeriesRequest) (*logspb.SeriesResponse, error)
}

// BatchSender is the server side of a Select stream.
type BatchSender interface {
	Context() context.Context
	Send(*logspb.SelectBatch) error
}

// Register registers srv on s.
func Register(s grpc.ServiceRegistrar, srv Server) { s.RegisterService(&serviceDesc, srv) }

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Push", Handler: rpc.Unary(Server.Push)},
		{MethodName: "Labels", Handler: rpc.Unary(Server.Labels)},
		{MethodName: "Series", Handler: rpc.Unary(Server.Series)},
	},
	Streams:  []grpc.StreamDesc{selectStream},
	Metadata: "logspb/logs.proto",
}

type batchStream struct{ grpc.ServerStream }

func (s batchStream) Send(b *logspb.SelectBatch) error { return s.SendMsg(b) }

// Client calls a logs ingester, or the logs unit of a store-gateway
// (Select and Series only). Safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	service string
}

// NewClient wraps conn to a logs ingester; every call forces rpc.Codec.
func NewClient(conn *grpc.ClientConn) *Client { return &Client{conn: conn, service: ServiceName} }

// NewStoreGatewayClient wraps conn to a store-gateway.
func NewStoreGatewayClient(conn *grpc.ClientConn) *Client {
	return &Client{conn: conn, service: StoreGatewayServiceName}
}

func (c *Client) invoke(ctx context.Context, method string, in, out any) error {
	return c.conn.Invoke(ctx, "/"+c.service+"/"+method, in, out, rpc.CallOption())
}

// Push sends entries.
func (c *Client) Push(ctx context.Context, req *logspb.PushRequest) (*logspb.PushResponse, error) {
	out := new(logspb.PushResponse)
	return out, c.invoke(ctx, "Push", req, out)
}

// Labels asks for label names or values.
func (c *Client) Labels(ctx context.Context, req *logspb.LabelsRequest) (*logspb.LabelsResponse, error) {
	out := new(logspb.LabelsResponse)
	return out, c.invoke(ctx, "Labels", req, out)
}

// Series asks for the label sets of streams.
func (c *Client) Series(ctx context.Context, req *logspb.SeriesRequest) (*logspb.SeriesResponse, error) {
	out := new(logspb.SeriesResponse)
	return out, c.invoke(ctx, "Series", req, out)
}

// Select opens a select stream; recv returns the next batch, or io.EOF
// at the end. Cancel ctx to stop early.
func (c *Client) Select(ctx context.Context, req *logspb.SelectRequest) (recv func() (*logspb.SelectBatch, error), err error) {
	return rpc.ServerStream[logspb.SelectBatch](ctx, c.conn, &selectStream, "/"+c.service+"/Select", req)
}

// Pool keeps one connection per logs ingester of a ring (see rpc.Pool). It
// is a services.Service. Safe for concurrent use.
type Pool struct {
	*rpc.Pool
}

// NewPool returns a pool of the instances of r dialled as cfg says.
func NewPool(cfg rpc.ClientConfig, r ring.ReadRing, logger log.Logger, reg prometheus.Registerer) *Pool {
	return &Pool{rpc.NewPool("logs-ingester", cfg, r, logger, reg)}
}

// Client returns the client of the instance at addr.
func (p *Pool) Client(addr string) (*Client, error) {
	conn, err := p.Conn(addr)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}
