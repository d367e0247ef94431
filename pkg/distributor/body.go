package distributor

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readChunk is the most a body read grows its buffer by before bytes
// arrive to fill it.
const readChunk = 64 << 10

// readBody reads at most max bytes of r's body into a pooled buffer, which
// the caller returns with bufPool.Put. The buffer grows as bytes arrive,
// each reserved from res first: a declared Content-Length larger than what
// is sent reserves nothing.
func readBody(r *http.Request, max int, res *reservation) (*bytes.Buffer, error) {
	if r.ContentLength > int64(max) {
		return nil, &Error{Code: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes (-distributor.max-recv-msg-size)", r.ContentLength, max)}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := readBounded(buf, r.Body, max, res, "request body is larger than the limit of %d bytes (-distributor.max-recv-msg-size)", "reading request body"); err != nil {
		bufPool.Put(buf)
		return nil, err
	}
	return buf, nil
}

// readBounded appends what src yields to buf, up to limit bytes, growing buf
// by at most readChunk (or its size, doubling) at a time and reserving each
// byte read from res. Its errors are *Error: 413 with tooLarge (a format of
// the limit) beyond limit, the reservation's 503, or 400 "<failed>: <read
// error>". Messages are built only on error: this is the push path.
func readBounded(buf *bytes.Buffer, src io.Reader, limit int, res *reservation, tooLarge, failed string) error {
	for {
		if buf.Len() > limit {
			return &Error{Code: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf(tooLarge, limit)}
		}
		grow := min(max(buf.Len(), bytes.MinRead), readChunk)
		buf.Grow(grow)
		free := buf.AvailableBuffer()[:min(buf.Available(), limit+1-buf.Len())]
		n, err := src.Read(free)
		if n > 0 {
			if rerr := res.add(n); rerr != nil {
				return rerr
			}
			buf.Write(free[:n])
		}
		if err == io.EOF {
			if buf.Len() > limit {
				return &Error{Code: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf(tooLarge, limit)}
			}
			return nil
		}
		if err != nil {
			return &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("%s: %v", failed, err)}
		}
	}
}

// maxSnappyRatio bounds what a snappy block can decode to: its densest
// element, a copy with a 2-byte offset, takes 3 bytes for 64.
const maxSnappyRatio = 22

// snappyDecode decodes a snappy block into buf (which it reuses) and
// returns the decoded bytes. The length the block declares is checked
// against max, against what its size can encode and against the in-flight
// budget before anything is allocated for it.
func snappyDecode(buf *bytes.Buffer, body []byte, max int, res *reservation) ([]byte, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("request body is not snappy block-compressed: %v", err)}
	}
	if n > max {
		return nil, &Error{Code: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request decompresses to %d bytes, more than the limit of %d bytes (-distributor.max-decompressed-size)", n, max)}
	}
	if n > maxSnappyRatio*len(body)+64 {
		return nil, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("request body is not valid snappy: its header declares %d bytes, more than %d bytes of snappy can encode", n, len(body))}
	}
	if err := res.add(n); err != nil {
		return nil, err
	}
	buf.Reset()
	buf.Grow(n)
	raw, err := snappy.Decode(buf.Bytes()[:n], body)
	if err != nil {
		return nil, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("request body is not valid snappy: %v", err)}
	}
	return raw, nil
}

// decompress undoes Content-Encoding into out (which it reuses), reading
// the compressed stream incrementally: a bomb is refused once it has
// produced max bytes, and every byte it produces is first reserved from
// res. It returns body itself when there is no encoding.
func decompress(encoding string, body []byte, out *bytes.Buffer, max int, res *reservation) ([]byte, error) {
	var r io.Reader
	switch encoding {
	case "", "identity":
		return body, nil
	case "gzip":
		gz, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("request body is not valid gzip: %v", err)}
		}
		r = gz
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)), zstd.WithDecoderMaxWindow(uint64(min(max, 8<<20))))
		if err != nil {
			return nil, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("request body is not valid zstd: %v", err)}
		}
		defer zr.Close()
		r = zr
	default:
		return nil, &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Encoding %q: use gzip, zstd or none", encoding)}
	}
	out.Reset()
	if err := readBounded(out, r, max, res, "request decompresses to more than the limit of %d bytes (-distributor.max-decompressed-size)", "decompressing request body ("+encoding+")"); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
