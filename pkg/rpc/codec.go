// Package rpc is what Canopy's internal gRPC clients and servers share: the
// codec, the client configuration and the client pool. The contracts
// themselves are the .proto files of the subpackages (see README.md).
package rpc

import (
	"fmt"

	"google.golang.org/grpc/encoding"
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

// Codec is the gRPC codec of Canopy's internal servers and clients. It
// marshals a Message with its own code and every other protobuf message
// (health checks, reflection, the generated messages) with
// google.golang.org/protobuf, so it can be forced on a whole server. Its name
// is "proto": everything it writes is protobuf.
type Codec struct{}

var _ encoding.Codec = Codec{}

// Marshal encodes v.
func (Codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case Message:
		return m.Marshal()
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("canopy codec: cannot marshal %T", v)
}

// Unmarshal decodes data into v. data is not retained.
func (Codec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case Message:
		return m.Unmarshal(data)
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("canopy codec: cannot unmarshal into %T", v)
}

// Name is the content-subtype.
func (Codec) Name() string { return "proto" }
