// Package rpc is what Canopy's internal gRPC clients and servers share: the
// codec, the client configuration and the client pool. The contracts
// themselves are the .proto files of the subpackages (see README.md).
package rpc

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Message is a message that marshals itself: the hand-written fast paths
// (PushRequest, Frame), the Go types of the small messages (which convert to
// their generated form) and Prometheus's gogo-generated types.
type Message interface {
	Marshal() ([]byte, error)
	// Unmarshal decodes b, ignoring fields it does not know. It must not
	// retain b: gRPC reuses the buffer.
	Unmarshal(b []byte) error
}

// SizedMessage is a Message that can marshal into a buffer of its size, so
// the codec marshals large ones into a pooled buffer gRPC returns to the pool
// once sent, instead of allocating.
type SizedMessage interface {
	Message
	// MarshalSize is the length of the encoded message.
	MarshalSize() int
	// MarshalInto encodes the message into b, of MarshalSize bytes.
	MarshalInto(b []byte) error
}

// Codec is the gRPC codec of Canopy's internal servers and clients (see
// ServerOption and CallOption). It marshals a Message with its own code and
// every other protobuf message (health checks, the generated messages) with
// google.golang.org/protobuf, so it can be forced on a whole server. Large
// SizedMessages are marshalled into pooled buffers, and received messages
// are decoded from gRPC's buffers without copying them first. Its name is
// "proto": everything it writes is protobuf.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// ServerOption forces Codec on every call a server receives.
func ServerOption() grpc.ServerOption { return grpc.ForceServerCodecV2(Codec{}) }

// CallOption forces Codec on a client call.
func CallOption() grpc.CallOption { return grpc.ForceCodecV2(Codec{}) }

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if s, ok := v.(*Shared); ok {
		s.buf.Ref() // the transport frees its reference once it has sent it
		return mem.BufferSlice{s.buf}, nil
	}
	if m, ok := v.(SizedMessage); ok {
		n := m.MarshalSize()
		if !mem.IsBelowBufferPoolingThreshold(n) {
			pool := mem.DefaultBufferPool()
			buf := pool.Get(n)
			if err := m.MarshalInto(*buf); err != nil {
				pool.Put(buf)
				return nil, err
			}
			return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
		}
	}
	b, err := MarshalBytes(v)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// BufferUnmarshaler is a message that decodes from the received buffer
// without copying it and so keeps it: it must Free buf once done with it
// (also when it fails).
type BufferUnmarshaler interface {
	UnmarshalBuffer(buf mem.Buffer) error
}

// Shared is a message marshalled once and sent as is on several calls (the
// same push to each replica): Codec sends its bytes without copying them.
// Free it once every call that sends it has returned.
type Shared struct {
	buf mem.Buffer
}

// NewShared marshals m into a pooled buffer.
func NewShared(m SizedMessage) (*Shared, error) {
	pool := mem.DefaultBufferPool()
	b := pool.Get(m.MarshalSize())
	if err := m.MarshalInto(*b); err != nil {
		pool.Put(b)
		return nil, err
	}
	return &Shared{buf: mem.NewBuffer(b, pool)}, nil
}

// Free gives the buffer back once the calls sending it are done with it.
func (s *Shared) Free() { s.buf.Free() }

// Len is the length of the encoded message.
func (s *Shared) Len() int { return s.buf.Len() }

// Unmarshal decodes data into v. data is not retained, but by a
// BufferUnmarshaler.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	if m, ok := v.(BufferUnmarshaler); ok {
		return m.UnmarshalBuffer(buf)
	}
	defer buf.Free()
	return UnmarshalBytes(buf.ReadOnlyData(), v)
}

// Name is the content-subtype.
func (Codec) Name() string { return "proto" }

// MarshalBytes encodes v as Codec does, into one byte slice.
func MarshalBytes(v any) ([]byte, error) {
	switch m := v.(type) {
	case Message:
		return m.Marshal()
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("canopy codec: cannot marshal %T", v)
}

// UnmarshalBytes decodes b into v as Codec does. b is not retained.
func UnmarshalBytes(b []byte, v any) error {
	switch m := v.(type) {
	case Message:
		return m.Unmarshal(b)
	case proto.Message:
		return proto.Unmarshal(b, m)
	}
	return fmt.Errorf("canopy codec: cannot unmarshal into %T", v)
}

// Unary is the grpc.MethodDesc handler of a unary method call(srv, ctx,
// req) of a server of type S, for service descriptors written by hand.
func Unary[S any, Req any, Resp any](call func(S, context.Context, *Req) (Resp, error)) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(Req)
		if err := dec(in); err != nil {
			return nil, err
		}
		handler := func(ctx context.Context, req any) (any, error) { return call(srv.(S), ctx, req.(*Req)) }
		if interceptor == nil {
			return handler(ctx, in)
		}
		method, ok := grpc.Method(ctx)
		if !ok {
			method = "unknown"
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, handler)
	}
}

// ServerStream opens a server-streaming call of method on conn, sends req
// and closes the sending side; recv returns the next message, or io.EOF
// at the end. Cancel ctx to stop early. Every call forces Codec.
func ServerStream[Resp any](ctx context.Context, conn *grpc.ClientConn, desc *grpc.StreamDesc, method string, req any) (recv func() (*Resp, error), err error) {
	stream, err := conn.NewStream(ctx, desc, method, CallOption())
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(req); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	return func() (*Resp, error) {
		m := new(Resp)
		if err := stream.RecvMsg(m); err != nil {
			return nil, err
		}
		return m, nil
	}, nil
}
