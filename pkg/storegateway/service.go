package storegateway

import (
	"context"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/rpc"
)

// ServiceName is the fully qualified gRPC service name.
// The contract is rpc/storegatewaypb/storegateway.proto; this file is its Go
// side (a test checks the descriptor declares the .proto's methods).
const ServiceName = "canopy.storegateway.v1.StoreGateway"

// queriedBlocksHeader is the gRPC header (sent before the first series) that
// lists the blocks a Series call reads. The querier compares it with the
// blocks it asked for and asks another replica for any that are missing.
const queriedBlocksHeader = "canopy-queried-blocks"

// blockErrorsHeader carries, one value per block, "<id> <reason>" for the
// requested blocks the store-gateway could not read.
const blockErrorsHeader = "canopy-block-errors"

// SeriesRequest asks for the series of the given blocks matching Matchers in
// [Start, End] (milliseconds). The tenant is in the gRPC metadata.
type SeriesRequest struct {
	Start    int64
	End      int64
	Matchers []client.Matcher
	BlockIDs []string
}

// LabelsRequest asks for label names (Name empty) or the values of label Name
// in the given blocks.
type LabelsRequest struct {
	client.LabelsRequest
	BlockIDs []string
}

// LabelsResponse holds sorted names or values and the blocks that were read.
type LabelsResponse struct {
	Values        []string
	QueriedBlocks []string
	BlockErrors   map[string]string
}

// Server is what a store-gateway serves.
type Server interface {
	// Series streams matching series as remote-read chunked frames, after
	// naming the blocks it reads with SendQueriedBlocks.
	Series(req *SeriesRequest, stream client.FrameSender) error
	LabelNames(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error)
	LabelValues(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error)
}

// RegisterServer registers srv on s.
func RegisterServer(s grpc.ServiceRegistrar, srv Server) { s.RegisterService(&serviceDesc, srv) }

func unaryLabels(call func(Server, context.Context, *LabelsRequest) (*LabelsResponse, error)) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(LabelsRequest)
		if err := dec(in); err != nil {
			return nil, err
		}
		handler := func(ctx context.Context, req any) (any, error) {
			return call(srv.(Server), ctx, req.(*LabelsRequest))
		}
		if interceptor == nil {
			return handler(ctx, in)
		}
		method, _ := grpc.Method(ctx)
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, handler)
	}
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "LabelNames", Handler: unaryLabels(Server.LabelNames)},
		{MethodName: "LabelValues", Handler: unaryLabels(Server.LabelValues)},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Series",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(SeriesRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(Server).Series(req, frameStream{stream})
		},
	}},
	Metadata: "storegatewaypb/storegateway.proto",
}

type frameStream struct{ grpc.ServerStream }

func (s frameStream) Send(f *client.Frame) error { return s.SendMsg(f) }

// SendQueriedBlocks sends the header naming the blocks a Series call reads
// and why the others (failed, by block ID) cannot be read. Series calls it
// once, before the first frame; stream is the one Series was given.
func SendQueriedBlocks(stream client.FrameSender, ids []string, failed map[string]string) error {
	ss, ok := stream.(frameStream)
	if !ok {
		return fmt.Errorf("store-gateway: stream %T cannot send headers", stream)
	}
	md := metadata.Pairs(queriedBlocksHeader, strings.Join(ids, ","))
	for id, reason := range failed {
		md.Append(blockErrorsHeader, id+" "+reason)
	}
	return ss.SendHeader(md)
}

// Client calls one store-gateway. Safe for concurrent use.
type Client struct{ conn *grpc.ClientConn }

// NewClient wraps conn (see rpc.ClientConfig.Dial); every call forces
// rpc.Codec.
func NewClient(conn *grpc.ClientConn) *Client { return &Client{conn: conn} }

// Series opens a Series stream and waits for its header. It returns the
// blocks the store-gateway will read, why it cannot read others, and a
// reader over the response frames, which the caller must Close.
func (c *Client) Series(ctx context.Context, req *SeriesRequest) ([]string, map[string]string, io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.conn.NewStream(ctx, &serviceDesc.Streams[0], "/"+ServiceName+"/Series", rpc.CallOption())
	if err == nil {
		err = stream.SendMsg(req)
	}
	if err == nil {
		err = stream.CloseSend()
	}
	var md metadata.MD
	if err == nil {
		md, err = stream.Header()
	}
	if err == nil && md == nil {
		// The call ended without headers: its status says why.
		if err = stream.RecvMsg(new(rpc.Frame)); err == nil || err == io.EOF {
			err = fmt.Errorf("store-gateway ended the series stream without naming the blocks it read")
		}
	}
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	var ids []string
	for _, v := range md.Get(queriedBlocksHeader) {
		for _, id := range strings.Split(v, ",") {
			if id != "" {
				ids = append(ids, id)
			}
		}
	}
	var failed map[string]string
	for _, v := range md.Get(blockErrorsHeader) {
		id, reason, _ := strings.Cut(v, " ")
		if failed == nil {
			failed = map[string]string{}
		}
		failed[id] = reason
	}
	return ids, failed, rpc.NewFrameReader(stream, cancel), nil
}

// LabelNames asks for label names.
func (c *Client) LabelNames(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error) {
	out := new(LabelsResponse)
	return out, c.conn.Invoke(ctx, "/"+ServiceName+"/LabelNames", req, out, rpc.CallOption())
}

// LabelValues asks for the values of one label.
func (c *Client) LabelValues(ctx context.Context, req *LabelsRequest) (*LabelsResponse, error) {
	out := new(LabelsResponse)
	return out, c.conn.Invoke(ctx, "/"+ServiceName+"/LabelValues", req, out, rpc.CallOption())
}
