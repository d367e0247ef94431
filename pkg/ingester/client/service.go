// Package client is the gRPC contract between distributors/queriers and
// ingesters: the service definition, its wire types and a client.
//
// The service is declared by hand (no generated code): its request and
// response types are Prometheus's own gogo-protobuf types where they exist
// (remote write 2.0 requests, remote read queries) and small Canopy types
// otherwise, all marshalled by Codec.
package client

import (
	"context"
	"io"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/grpc"
)

// ServiceName is the fully qualified gRPC service name.
const ServiceName = "canopy.ingester.v1.Ingester"

// IngesterServer is what an ingester serves. Implementations are safe for
// concurrent use. The tenant is in the context (see pkg/util/tenant).
type IngesterServer interface {
	// Push appends the series of req. It fails only when the ingester cannot
	// take writes at all; per-sample rejections are reported in the response.
	Push(ctx context.Context, req *writev2.Request) (*PushResponse, error)
	// QueryStream streams series matching q as remote-read chunked frames.
	QueryStream(q *prompb.Query, stream FrameSender) error
	LabelNames(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error)
	LabelValues(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error)
	Exemplars(ctx context.Context, req *ExemplarsRequest) (*ExemplarsResponse, error)
	Metadata(ctx context.Context, req *MetadataRequest) (*MetadataResponse, error)
}

// FrameSender is the server side of a query stream.
type FrameSender interface {
	Context() context.Context
	Send(*Frame) error
}

// RegisterIngesterServer registers srv on s.
func RegisterIngesterServer(s grpc.ServiceRegistrar, srv IngesterServer) {
	s.RegisterService(&serviceDesc, srv)
}

func unary[Req any, PReq interface {
	*Req
	gogoMessage
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
		{MethodName: "Push", Handler: unary(func(s IngesterServer, ctx context.Context, r *writev2.Request) (*PushResponse, error) {
			return s.Push(ctx, r)
		})},
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
	Metadata: "canopy/ingester.proto",
}

type frameServerStream struct{ grpc.ServerStream }

func (s frameServerStream) Send(f *Frame) error { return s.SendMsg(f) }

// Client calls an ingester over gRPC. Safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
}

// NewClient wraps conn, which must have been dialled with Codec forced
// (see DialOptions).
func NewClient(conn *grpc.ClientConn) *Client { return &Client{conn: conn} }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the connection, for the other services a Canopy process serves on
// the same gRPC port (the store-gateway).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

func (c *Client) invoke(ctx context.Context, method string, in, out any) error {
	return c.conn.Invoke(ctx, "/"+ServiceName+"/"+method, in, out, grpc.ForceCodec(Codec{}))
}

// Push sends a write request.
func (c *Client) Push(ctx context.Context, req *writev2.Request) (*PushResponse, error) {
	out := new(PushResponse)
	return out, c.invoke(ctx, "Push", req, out)
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
	stream, err := c.conn.NewStream(ctx, &serviceDesc.Streams[0], "/"+ServiceName+"/QueryStream", grpc.ForceCodec(Codec{}))
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
	return NewFrameReader(stream, cancel), nil
}

// NewFrameReader reads the frames of a server stream whose request has been
// sent as one byte stream; Close calls cancel, which must end the stream.
func NewFrameReader(stream grpc.ClientStream, cancel context.CancelFunc) io.ReadCloser {
	return &frameReader{stream: stream, cancel: cancel}
}

// frameReader turns a stream of frames back into the byte stream the server
// wrote, for remote.NewChunkedReader.
type frameReader struct {
	stream grpc.ClientStream
	cancel context.CancelFunc
	frame  Frame
	off    int
}

func (r *frameReader) Read(p []byte) (int, error) {
	for r.off >= len(r.frame.Data) {
		r.frame.Data = r.frame.Data[:0]
		r.off = 0
		if err := r.stream.RecvMsg(&r.frame); err != nil {
			return 0, err // io.EOF at the end of the stream.
		}
	}
	n := copy(p, r.frame.Data[r.off:])
	r.off += n
	return n, nil
}

func (r *frameReader) Close() error {
	r.cancel()
	return nil
}

// FrameWriter adapts a FrameSender to io.Writer for remote.NewChunkedWriter.
type FrameWriter struct {
	Stream FrameSender
}

// Write sends a copy of b as one frame. gRPC may still hold a sent message's
// bytes after Send returns (Frame marshals without copying), and the
// remote-read writer reuses b from a pool: sending b itself corrupted frames.
func (w FrameWriter) Write(b []byte) (int, error) {
	if err := w.Stream.Send(&Frame{Data: append([]byte(nil), b...)}); err != nil {
		return 0, err
	}
	return len(b), nil
}
