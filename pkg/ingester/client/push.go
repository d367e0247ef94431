package client

import (
	"fmt"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/canopy-observability/canopy/pkg/rpc"
)

// writeRequestField is PushRequest.write_request's number in
// rpc/ingesterpb/ingester.proto.
const writeRequestField = 1

// PushRequest is the Go form of ingesterpb.PushRequest: it marshals the
// remote-write 2.0 request once, straight into the message buffer after the
// wrapper's tag and length, and unmarshals it straight from the received
// buffer, so the wrapper costs neither a copy nor an allocation of the
// request's size.
type PushRequest struct {
	*writev2.Request
}

// Marshal encodes the request as ingesterpb.PushRequest.
func (m PushRequest) Marshal() ([]byte, error) {
	b := make([]byte, m.MarshalSize())
	return b, m.MarshalInto(b)
}

// MarshalSize is the length of the encoded request. It computes the
// request's size, which MarshalInto computes again: call them once each.
func (m PushRequest) MarshalSize() int {
	n := m.Request.Size()
	return rpc.BytesFieldHeaderLen(writeRequestField, n) + n
}

// MarshalInto encodes the request into b, of MarshalSize bytes: the tag and
// length, then the remote-write request marshalled in place.
func (m PushRequest) MarshalInto(b []byte) error {
	n := m.Request.Size()
	h := rpc.AppendBytesFieldHeader(b[:0], writeRequestField, n)
	if len(h)+n != len(b) {
		return fmt.Errorf("push request: buffer of %d bytes for a message of %d", len(b), len(h)+n)
	}
	_, err := m.Request.MarshalToSizedBuffer(b[len(h):])
	return err
}

// Unmarshal decodes an ingesterpb.PushRequest into m.Request, which must not
// be nil. Strings are copied: b is not retained.
func (m PushRequest) Unmarshal(b []byte) error {
	return rpc.DecodeBytesField(b, writeRequestField, func(v []byte) error {
		m.Request.Reset()
		return m.Request.Unmarshal(v)
	})
}
