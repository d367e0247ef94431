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

// maxPooledBuf is the largest buffer kept for reuse: a pool of buffers as
// large as the biggest body ever received would hold that much per request
// long after the request.
const maxPooledBuf = 4 << 20

func getBuf() *bytes.Buffer {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuf {
		bufPool.Put(buf)
	}
}

// readChunk is the size of the pieces a body is read into before it is
// put together: a body refused half-way (over a limit, or a bomb) leaves
// only pooled pieces behind, never a buffer doubled on the way up.
const readChunk = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// readBody reads at most max bytes of r's body into a pooled buffer, which
// the caller returns with putBuf. The buffer grows as bytes arrive,
// each reserved from res first: a declared Content-Length larger than what
// is sent reserves nothing.
func readBody(r *http.Request, max int, res *reservation) (*bytes.Buffer, error) {
	if r.ContentLength > int64(max) {
		return nil, &Error{Code: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes (-distributor.max-recv-msg-size)", r.ContentLength, max)}
	}
	buf := getBuf()
	if err := readBounded(buf, r.Body, max, res, "request body is larger than the limit of %d bytes (-distributor.max-recv-msg-size)", "reading request body"); err != nil {
		putBuf(buf)
		return nil, err
	}
	return buf, nil
}

// readBounded appends what src yields to buf, up to limit bytes. It reads
// into pooled pieces of readChunk bytes and, at the end, copies them into
// buf grown to the exact size, so what it allocates is what arrived; every
// piece and buf's capacity are reserved from res first. Its errors are
// *Error: 413 with tooLarge (a format of the limit) beyond limit, the
// reservation's 503, or 400 "<failed>: <read error>". Messages are built
// only on error: this is the push path.
func readBounded(buf *bytes.Buffer, src io.Reader, limit int, res *reservation, tooLarge, failed string) error {
	var chunks []*[]byte
	defer func() {
		for _, c := range chunks {
			chunkPool.Put(c)
		}
		res.sub(len(chunks) * readChunk)
	}()
	total, used := 0, readChunk // used: bytes of the last chunk filled
	for {
		if used == readChunk {
			if err := res.add(readChunk); err != nil {
				return err
			}
			chunks = append(chunks, chunkPool.Get().(*[]byte))
			used = 0
		}
		c := *chunks[len(chunks)-1]
		n, err := src.Read(c[used:min(readChunk, used+limit+1-total)])
		used += n
		total += n
		if total > limit {
			return &Error{Code: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf(tooLarge, limit)}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("%s: %v", failed, err)}
		}
	}
	if err := res.add(max(buf.Len()+total, buf.Cap())); err != nil {
		return err
	}
	buf.Grow(total)
	for i, c := range chunks {
		if i == len(chunks)-1 {
			buf.Write((*c)[:used])
		} else {
			buf.Write(*c)
		}
	}
	return nil
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
