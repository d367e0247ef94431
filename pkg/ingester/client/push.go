package client

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/mem"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/util/writeproto"
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

// MarshalSize is the length of the encoded request.
func (m PushRequest) MarshalSize() int {
	n := m.Request.Size()
	return rpc.BytesFieldHeaderLen(writeRequestField, n) + n
}

// MarshalInto encodes the request into b, of MarshalSize bytes: the tag and
// length, then the remote-write request marshalled in place (its size is
// derived from len(b), not computed again).
func (m PushRequest) MarshalInto(b []byte) error {
	n, ok := rpc.BytesFieldContentLen(writeRequestField, len(b))
	if !ok {
		return fmt.Errorf("push request: no message fits a buffer of %d bytes", len(b))
	}
	h := rpc.AppendBytesFieldHeader(b[:0], writeRequestField, n)
	if _, err := m.Request.MarshalToSizedBuffer(b[len(h):]); err != nil {
		return fmt.Errorf("push request: %w", err)
	}
	return nil
}

// Unmarshal decodes an ingesterpb.PushRequest into m.Request, which must not
// be nil. Strings are copied: b is not retained. A message without
// write_request but with other fields is an error, not an empty push: it is
// what a distributor older than the .proto contract sends (a bare
// remote-write request), and appending nothing would lose it silently.
func (m PushRequest) Unmarshal(b []byte) error {
	seen := false
	err := rpc.DecodeBytesField(b, writeRequestField, func(v []byte) error {
		seen = true
		m.Request.Reset()
		return m.Request.Unmarshal(v)
	})
	if err == nil && !seen && len(b) > 0 {
		return errNoWriteRequest
	}
	return err
}

// receivedPush is an ingesterpb.PushRequest as an ingester receives it:
// decoded in place (writeproto.Decoded), its strings in gRPC's buffer, held
// until release.
type receivedPush struct {
	d *writeproto.Decoded
}

// UnmarshalBuffer implements rpc.BufferUnmarshaler.
func (p *receivedPush) UnmarshalBuffer(buf mem.Buffer) error {
	p.d = writeproto.Get()
	p.d.OnRelease(buf.Free)
	b := buf.ReadOnlyData()
	seen := false
	err := rpc.DecodeBytesField(b, writeRequestField, func(v []byte) error {
		seen = true
		return p.d.DecodeV2(v)
	})
	if err == nil && !seen && len(b) > 0 {
		return errNoWriteRequest
	}
	return err
}

func (p *receivedPush) release() {
	if p.d != nil {
		p.d.Release()
		p.d = nil
	}
}

var errNoWriteRequest = errors.New("push request without write_request: the distributor is older than the ingester's contract (rpc/ingesterpb); upgrade it")
