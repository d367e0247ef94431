// Package client is the Go side of the ingester's gRPC contract
// (rpc/ingesterpb/ingester.proto): the service descriptor, the Go types of
// its messages and a client.
//
// The descriptor is written by hand so that its hot messages decode straight
// into Prometheus's types: a push into a remote-write 2.0 request
// (PushRequest), a query into remote read's prompb.Query (wire-identical to
// ingesterpb.QueryStreamRequest). A test checks it declares the .proto's
// methods.
package client

import (
	"context"
	"io"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/rpc"
)

// ServiceName is the fully qualified gRPC service name.
const ServiceName = "canopy.ingester.v1.Ingester"

// IngesterServer is what an ingester serves. Implementations are safe for
// concurrent use. The tenant is in the context (see pkg/util/tenant).
type IngesterServer interface {
	// Push appends the series of req. It fails only when the ingester cannot
	// take writes at all; per-sample rejections are reported in the response.
	// Push must not keep req, or any string of it, once it returns: req is
	// decoded in place from a buffer that is reused.
	Push(ctx context.Context, req *writev2.Request) (*PushResponse, error)
	// QueryStream streams series matching q as remote-read chunked frames.
	QueryStream(q *prompb.Query, stream FrameSender) error
	LabelNames(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error)
	LabelValues(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error)
	Exemplars(ctx context.Context, req *ExemplarsRequest) (*ExemplarsResponse, error)
	Metadata(ctx context.Context, req *MetadataRequest) (*MetadataResponse, error)
}

// FrameSender is the server side of a query stream.
type FrameSender = rpc.FrameSender

// Frame is one piece of a streamed query answer.
type Frame = rpc.Frame

// FrameWriter adapts a FrameSender to io.Writer for remote.NewChunkedWriter.
type FrameWriter = rpc.FrameWriter

// RegisterIngesterServer registers srv on s.
func RegisterIngesterServer(s grpc.ServiceRegistrar, srv IngesterServer) {
	s.RegisterService(&serviceDesc, srv)
}

func unary[Req any, PReq interface {
	*Req
	rpc.Message
}, Resp any](call func(IngesterServer, context.Context, PReq) (Resp, error)) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := PReq(new(Req))
		if err := dec(in); err != nil {
			return nil, err
		}
		handler := func(ctx context.Context, req any) (any, error) {
			return call(srv.(IngesterServer), ctx, req.(PReq))
		}
		if interceptor == nil {
			return handler(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodName(ctx)}, handler)
	}
}

// methodName is the full method name gRPC put in ctx, for interceptors.
func methodName(ctx context.Context) string {
	if m, ok := grpc.Method(ctx); ok {
		return m
	}
	return "/" + ServiceName + "/unknown"
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*IngesterServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Push", Handler: pushHandler},
		{MethodName: "LabelNames", Handler: unary(func(s IngesterServer, ctx context.Context, r *LabelsRequest) (*LabelsResponse, error) {
			return s.LabelNames(ctx, r)
		})},
		{MethodName: "LabelValues", Handler: unary(func(s IngesterServer, ctx context.Context, r *LabelsRequest) (*LabelsResponse, error) {
			return s.LabelValues(ctx, r)
		})},
		{MethodName: "Exemplars", Handler: unary(func(s IngesterServer, ctx context.Context, r *ExemplarsRequest) (*ExemplarsResponse, error) {
			return s.Exemplars(ctx, r)
		})},
		{MethodName: "Metadata", Handler: unary(func(s IngesterServer, ctx context.Context, r *MetadataRequest) (*MetadataResponse, error) {
			return s.Metadata(ctx, r)
		})},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "QueryStream",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			q := new(prompb.Query)
			if err := stream.RecvMsg(q); err != nil {
				return err
			}
			return srv.(IngesterServer).QueryStream(q, frameServerStream{stream})
		},
	}},
	Metadata: "ingesterpb/ingester.proto",
}

// pushHandler decodes the request in place, from gRPC's buffer, which it
// holds until the ingester's Push has returned.
func pushHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &receivedPush{}
	defer in.release()
	if err := dec(in); err != nil {
		return nil, err
	}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(IngesterServer).Push(ctx, req.(*receivedPush).d.Request())
	}
	if interceptor == nil {
		return handler(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodName(ctx)}, handler)
}

type frameServerStream struct{ grpc.ServerStream }

func (s frameServerStream) Send(f *Frame) error { return s.SendMsg(f) }

// Client calls an ingester over gRPC. Safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
}

// NewClient wraps conn (see rpc.ClientConfig.Dial); every call forces
// rpc.Codec.
func NewClient(conn *grpc.ClientConn) *Client { return &Client{conn: conn} }

func (c *Client) invoke(ctx context.Context, method string, in, out any) error {
	return c.conn.Invoke(ctx, "/"+ServiceName+"/"+method, in, out, rpc.CallOption())
}

// Push sends a write request.
func (c *Client) Push(ctx context.Context, req *writev2.Request) (*PushResponse, error) {
	out := new(PushResponse)
	return out, c.invoke(ctx, "Push", PushRequest{Request: req}, out)
}

// PushShared sends a push marshalled once for several ingesters
// (EncodePush).
func (c *Client) PushShared(ctx context.Context, req *rpc.Shared) (*PushResponse, error) {
	out := new(PushResponse)
	return out, c.invoke(ctx, "Push", req, out)
}

// EncodePush marshals req once, for PushShared to any number of ingesters.
func EncodePush(req *writev2.Request) (*rpc.Shared, error) {
	return rpc.NewShared(PushRequest{Request: req})
}

// LabelNames asks for label names.
func (c *Client) LabelNames(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error) {
	out := new(LabelsResponse)
	return out, c.invoke(ctx, "LabelNames", req, out)
}

// LabelValues asks for label values.
func (c *Client) LabelValues(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error) {
	out := new(LabelsResponse)
	return out, c.invoke(ctx, "LabelValues", req, out)
}

// Exemplars asks for exemplars.
func (c *Client) Exemplars(ctx context.Context, req *ExemplarsRequest) (*ExemplarsResponse, error) {
	out := new(ExemplarsResponse)
	return out, c.invoke(ctx, "Exemplars", req, out)
}

// Metadata asks for metric metadata.
func (c *Client) Metadata(ctx context.Context, req *MetadataRequest) (*MetadataResponse, error) {
	out := new(MetadataResponse)
	return out, c.invoke(ctx, "Metadata", req, out)
}

// QueryStream opens a query stream and returns a reader over its frames. The
// caller must Close the reader (which cancels the stream).
func (c *Client) QueryStream(ctx context.Context, q *prompb.Query) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.conn.NewStream(ctx, &serviceDesc.Streams[0], "/"+ServiceName+"/QueryStream", rpc.CallOption())
	if err != nil {
		cancel()
		return nil, err
	}
	if err := stream.SendMsg(q); err != nil {
		cancel()
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		cancel()
		return nil, err
	}
	return rpc.NewFrameReader(stream, cancel), nil
}
