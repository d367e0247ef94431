package client

import (
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
	n := m.Request.Size()
	h := rpc.BytesFieldHeaderLen(writeRequestField, n)
	b := make([]byte, h+n)
	rpc.AppendBytesFieldHeader(b[:0], writeRequestField, n)
	if _, err := m.Request.MarshalToSizedBuffer(b[h:]); err != nil {
		return nil, err
	}
	return b, nil
}

// Unmarshal decodes an ingesterpb.PushRequest into m.Request, which must not
// be nil. Strings are copied: b is not retained.
func (m PushRequest) Unmarshal(b []byte) error {
	return rpc.DecodeBytesField(b, writeRequestField, func(v []byte) error {
		m.Request.Reset()
		return m.Request.Unmarshal(v)
	})
}
