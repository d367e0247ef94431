// Package tracesclient is the Go side of the traces ingester's gRPC
// contract (rpc/tracespb/traces.proto): the service descriptor, a client
// and a pool of clients. The messages are the generated ones
// (google.golang.org/protobuf).
package tracesclient

import (
	"context"

	"github.com/cespare/xxhash/v2"
	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
)

// TraceKey hashes tenant and trace ID into a traces ring token: every span
// of a trace goes to the ingesters that own it, and queriers ask those.
func TraceKey(tenantID string, id [16]byte) uint32 {
	h := xxhash.New()
	_, _ = h.WriteString(tenantID)
	_, _ = h.Write([]byte{0xff})
	_, _ = h.Write(id[:])
	v := h.Sum64()
	return uint32(v ^ (v >> 32))
}

// ServiceName is the fully qualified gRPC service name.
const ServiceName = "canopy.traces.v1.TracesIngester"

// StoreGatewayServiceName is the fully qualified gRPC service name of the
// traces unit of store-gateways; its methods are the ingester's FindTrace
// and Scan, over the blocks a request names.
const StoreGatewayServiceName = "canopy.traces.v1.TracesStoreGateway"

// StoreServer is what the traces unit of a store-gateway serves.
type StoreServer interface {
	FindTrace(ctx context.Context, req *tracespb.FindTraceRequest) (*tracespb.FindTraceResponse, error)
	Scan(req *tracespb.ScanRequest, send BatchSender) error
}

// RegisterStoreGateway registers srv on s.
func RegisterStoreGateway(s grpc.ServiceRegistrar, srv StoreServer) {
	s.RegisterService(&storeGatewayDesc, srv)
}

var storeGatewayDesc = grpc.ServiceDesc{
	ServiceName: StoreGatewayServiceName,
	HandlerType: (*StoreServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "FindTrace", Handler: rpc.Unary(StoreServer.FindTrace)}},
	Streams:     []grpc.StreamDesc{scanStream},
	Metadata:    "tracespb/traces.proto",
}

// Server is what the traces unit of an ingester serves. Implementations
// are safe for concurrent use; the tenant is in the context
// (pkg/util/tenant).
type Server interface {
	// Push appends the spans of req; it must not keep req once it returns.
	Push(ctx context.Context, req *tracespb.PushRequest) (*tracespb.PushResponse, error)
	// FindTrace returns the spans held of one trace.
	FindTrace(ctx context.Context, req *tracespb.FindTraceRequest) (*tracespb.FindTraceResponse, error)
	// Scan sends the traces held with a span in the request's range.
	Scan(req *tracespb.ScanRequest, send BatchSender) error
}

// BatchSender is the server side of a Scan stream.
type BatchSender interface {
	Context() context.Context
	Send(*tracespb.ScanBatch) error
}

var scanStream = grpc.StreamDesc{
	StreamName:    "Scan",
	ServerStreams: true,
	Handler: func(srv any, stream grpc.ServerStream) error {
		req := new(tracespb.ScanRequest)
		if err := stream.RecvMsg(req); err != nil {
			return err
		}
		return srv.(StoreServer).Scan(req, batchStream{stream})
	},
}

type batchStream struct{ grpc.ServerStream }

func (s batchStream) Send(b *tracespb.ScanBatch) error { return s.SendMsg(b) }

// Register registers srv on s.
func Register(s grpc.ServiceRegistrar, srv Server) { s.RegisterService(&serviceDesc, srv) }

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Push", Handler: rpc.Unary(Server.Push)},
		{MethodName: "FindTrace", Handler: rpc.Unary(Server.FindTrace)},
	},
	Streams:  []grpc.StreamDesc{scanStream},
	Metadata: "tracespb/traces.proto",
}

// Client calls a traces ingester, or the traces unit of a store-gateway
// (FindTrace and Scan). Safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	service string
}

// NewClient wraps conn to a traces ingester; every call forces rpc.Codec.
func NewClient(conn *grpc.ClientConn) *Client { return &Client{conn: conn, service: ServiceName} }

// NewStoreGatewayClient wraps conn to a store-gateway.
func NewStoreGatewayClient(conn *grpc.ClientConn) *Client {
	return &Client{conn: conn, service: StoreGatewayServiceName}
}

func (c *Client) invoke(ctx context.Context, method string, in, out any) error {
	return c.conn.Invoke(ctx, "/"+c.service+"/"+method, in, out, rpc.CallOption())
}

// Push sends spans.
func (c *Client) Push(ctx context.Context, req *tracespb.PushRequest) (*tracespb.PushResponse, error) {
	out := new(tracespb.PushResponse)
	return out, c.invoke(ctx, "Push", req, out)
}

// FindTrace asks for the spans of one trace.
func (c *Client) FindTrace(ctx context.Context, req *tracespb.FindTraceRequest) (*tracespb.FindTraceResponse, error) {
	out := new(tracespb.FindTraceResponse)
	return out, c.invoke(ctx, "FindTrace", req, out)
}

// Scan opens a scan stream; recv returns the next batch, or io.EOF at the
// end. Cancel ctx to stop early.
func (c *Client) Scan(ctx context.Context, req *tracespb.ScanRequest) (recv func() (*tracespb.ScanBatch, error), err error) {
	return rpc.ServerStream[tracespb.ScanBatch](ctx, c.conn, &scanStream, "/"+c.service+"/Scan", req)
}

// Pool keeps one connection per traces ingester of a ring (see rpc.Pool).
// It is a services.Service. Safe for concurrent use.
type Pool struct {
	*rpc.Pool
}

// NewPool returns a pool of the instances of r dialled as cfg says.
func NewPool(cfg rpc.ClientConfig, r ring.ReadRing, logger log.Logger, reg prometheus.Registerer) *Pool {
	return &Pool{rpc.NewPool("traces-ingester", cfg, r, logger, reg)}
}

// Client returns the client of the instance at addr.
func (p *Pool) Client(addr string) (*Client, error) {
	conn, err := p.Conn(addr)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}

// ScanBatchBytes is about the most span bytes in one batch of a scan.
const ScanBatchBytes = 1 << 20

// Batcher gathers the traces a Scan sends into batches of about
// ScanBatchBytes of spans. Not safe for concurrent use.
type Batcher struct {
	send  BatchSender
	batch *tracespb.ScanBatch
	size  int
}

// NewBatcher returns a Batcher sending to send.
func NewBatcher(send BatchSender) *Batcher {
	return &Batcher{send: send, batch: &tracespb.ScanBatch{}}
}

// Add adds a trace (its 16-byte ID and its spans, an OTLP TracesData),
// sending the batch once it is full. Add keeps both slices.
func (b *Batcher) Add(id, spans []byte) error {
	b.batch.Traces = append(b.batch.Traces, &tracespb.Trace{TraceId: id, Spans: spans})
	if b.size += len(spans); b.size >= ScanBatchBytes {
		return b.Flush()
	}
	return nil
}

// Flush sends what is gathered, if anything.
func (b *Batcher) Flush() error {
	if len(b.batch.Traces) == 0 {
		return nil
	}
	err := b.send.Send(b.batch)
	b.batch, b.size = &tracespb.ScanBatch{}, 0
	return err
}
