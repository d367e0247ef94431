package client

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
)

// gogoMessage is implemented by the gogo-generated Prometheus types
// (writev2.Request, prompb.Query) and by Canopy's own wire types.
type gogoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// Codec is the gRPC codec Canopy's servers and clients use. It marshals
// gogo-style messages with their own generated code (fast, no reflection) and
// falls back to google.golang.org/protobuf for everything else (health checks,
// reflection), so it can be forced on a whole server.
type Codec struct{}

var _ encoding.Codec = Codec{}

// Marshal encodes v.
func (Codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case gogoMessage:
		return m.Marshal()
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("canopy codec: cannot marshal %T", v)
}

// Unmarshal decodes data into v. data is not retained: every message type
// copies what it keeps.
func (Codec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case gogoMessage:
		return m.Unmarshal(data)
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("canopy codec: cannot unmarshal into %T", v)
}

// Name is the content-subtype. It is "proto" because the bytes on the wire are
// protobuf for every message but the small JSON-bodied metadata messages.
func (Codec) Name() string { return "proto" }
