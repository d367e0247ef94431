package rpc

import (
	"context"
	"io"
	"sync"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"google.golang.org/grpc"
)

// frameDataField is Frame.data's number in ingesterpb/ingester.proto.
const frameDataField = 1

// Frame is the Go form of ingesterpb.Frame, one piece of a streamed query
// answer in Prometheus's streamed remote-read framing. It marshals with one
// copy of Data (into a pooled buffer, see Codec), so a sender may reuse Data
// once Send returns.
type Frame struct {
	Data []byte
}

// Marshal encodes the frame as ingesterpb.Frame.
func (m *Frame) Marshal() ([]byte, error) {
	b := make([]byte, m.MarshalSize())
	return b, m.MarshalInto(b)
}

// MarshalSize is the length of the encoded frame.
func (m *Frame) MarshalSize() int {
	if len(m.Data) == 0 {
		return 0
	}
	return BytesFieldHeaderLen(frameDataField, len(m.Data)) + len(m.Data)
}

// MarshalInto encodes the frame into b, of MarshalSize bytes.
func (m *Frame) MarshalInto(b []byte) error {
	if len(m.Data) == 0 {
		return nil
	}
	h := AppendBytesFieldHeader(b[:0], frameDataField, len(m.Data))
	copy(b[len(h):], m.Data)
	return nil
}

// Unmarshal decodes an ingesterpb.Frame into m, reusing m.Data's capacity.
func (m *Frame) Unmarshal(b []byte) error {
	m.Data = m.Data[:0]
	return DecodeBytesField(b, frameDataField, func(v []byte) error {
		m.Data = append(m.Data[:0], v...)
		return nil
	})
}

// FrameSender is the server side of a query stream.
type FrameSender interface {
	Context() context.Context
	// Send sends f; it does not retain f.Data once it returns.
	Send(f *Frame) error
}

// FrameWriter adapts a FrameSender to io.Writer for remote.NewChunkedWriter:
// each Write is one frame.
type FrameWriter struct {
	Stream FrameSender
}

// Write sends b as one frame. The remote-read writer reuses b from a pool,
// which is safe because Frame.Marshal copies b before Send returns.
func (w FrameWriter) Write(b []byte) (int, error) {
	if err := w.Stream.Send(&Frame{Data: b}); err != nil {
		return 0, err
	}
	return len(b), nil
}

// NewFrameReader reads the frames of a server stream whose request has been
// sent as one byte stream, for remote.NewChunkedReader; Close calls cancel,
// which must end the stream.
func NewFrameReader(stream grpc.ClientStream, cancel context.CancelFunc) io.ReadCloser {
	return &frameReader{stream: stream, cancel: cancel}
}

type frameReader struct {
	stream grpc.ClientStream
	cancel context.CancelFunc
	frame  Frame
	off    int
}

func (r *frameReader) Read(p []byte) (int, error) {
	for r.off >= len(r.frame.Data) {
		r.off = 0
		if err := r.stream.RecvMsg(&r.frame); err != nil {
			r.frame.Data = r.frame.Data[:0]
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

// framePool recycles the marshalling buffers of series streams.
var framePool = &sync.Pool{}

type noopFlusher struct{}

func (noopFlusher) Flush() {}

// StreamSeries sends css on stream in Prometheus's streamed remote-read
// framing, in frames of up to maxFrameBytes. It stops, with the context's
// error, as soon as the stream's context ends, also between frames: a
// selector over many series reads a long way before its next frame is full,
// and no frame would be sent to notice the client was gone.
func StreamSeries(stream FrameSender, css storage.ChunkSeriesSet, maxFrameBytes int) error {
	css = &ctxChunkSeriesSet{ChunkSeriesSet: css, ctx: stream.Context()}
	w := remote.NewChunkedWriter(FrameWriter{Stream: stream}, noopFlusher{})
	_, err := remote.StreamChunkedReadResponses(w, 0, css, nil, maxFrameBytes, framePool)
	return err
}

// ctxCheckEvery is how many series a stream reads between two looks at its
// context: a look is cheap, but not free on a per-series path.
const ctxCheckEvery = 64

type ctxChunkSeriesSet struct {
	storage.ChunkSeriesSet
	ctx context.Context
	n   int
	err error
}

func (s *ctxChunkSeriesSet) Next() bool {
	if s.n++; s.n%ctxCheckEvery == 0 {
		if s.err = s.ctx.Err(); s.err != nil {
			return false
		}
	}
	return s.ChunkSeriesSet.Next()
}

func (s *ctxChunkSeriesSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.ChunkSeriesSet.Err()
}
