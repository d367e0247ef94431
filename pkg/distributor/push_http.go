package distributor

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/util/writeproto"
)

// Remote write protocol facts (remote write 1.0 and 2.0 specifications).
const (
	protoV1 = "prometheus.WriteRequest"
	protoV2 = "io.prometheus.write.v2.Request"

	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// remoteWriteVersion picks the protobuf message from the Content-Type.
func remoteWriteVersion(contentType string) (string, error) {
	if contentType == "" {
		return protoV1, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-protobuf" {
		return "", &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: remote write needs application/x-protobuf (with proto=%s or proto=%s)", contentType, protoV1, protoV2)}
	}
	switch p := params["proto"]; p {
	case "", protoV1:
		return protoV1, nil
	case protoV2:
		return protoV2, nil
	default:
		return "", &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported remote write message %q: this receiver takes %s and %s", p, protoV1, protoV2)}
	}
}

// DecodeRemoteWrite decompresses and decodes a remote write body of the given
// protobuf message into the 2.0 form used inside Canopy. The request owns
// its memory.
func DecodeRemoteWrite(body []byte, proto string, maxDecompressed int) (*writev2.Request, error) {
	req, _, err := decodeRemoteWrite(body, proto, maxDecompressed, nil)
	return req, err // never released: its memory is the garbage collector's
}

// decodeRemoteWrite is DecodeRemoteWrite with the decompressed bytes
// reserved from the distributor's in-flight budget (res may be nil). The
// request shares the decompressed bytes (it is decoded without copying, see
// writeproto.Decoded): release, never nil, gives them back, after
// which nothing of the request may be used.
func decodeRemoteWrite(body []byte, proto string, maxDecompressed int, res *reservation) (*writev2.Request, func(), error) {
	buf := getBuf()
	raw, err := snappyDecode(buf, body, maxDecompressed, res)
	if err != nil {
		putBuf(buf)
		return nil, nil, err
	}
	d := writeproto.Get()
	d.OnRelease(func() { putBuf(buf) })
	decode, declared, other := d.DecodeV1, protoV1, protoV2
	if proto == protoV2 {
		decode, declared, other = d.DecodeV2, protoV2, protoV1
	}
	if err := decode(raw); err != nil {
		d.Release()
		return nil, nil, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding remote write %s request: %v", versionName(declared), err)}
	}
	req := d.Request()
	if proto == protoV2 && len(req.Symbols) > 0 && req.Symbols[0] != "" {
		d.Release()
		return nil, nil, &Error{Code: http.StatusBadRequest, Msg: "remote write 2.0 request: the first symbol must be the empty string"}
	}
	if len(req.Timeseries) == 0 && len(raw) > 0 {
		d.Release()
		return nil, nil, errVersionMismatch(declared, other)
	}
	return req, d.Release, nil
}

// versionName is "1.0" or "2.0".
func versionName(proto string) string {
	if proto == protoV2 {
		return "2.0"
	}
	return "1.0"
}

// errVersionMismatch answers a non-empty body in which the message the
// Content-Type names finds nothing: the other version's message, whose
// fields the decoder skips as unknown. Accepting it would drop every sample.
func errVersionMismatch(declared, other string) *Error {
	return &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("request body holds no %s time series, though it is not empty: is it a %s? Set Content-Type: application/x-protobuf;proto=%s to match the body", declared, other, other)}
}

// RemoteWriteHandler serves POST /api/v1/push (remote write 1.0 and 2.0).
func (d *Distributor) RemoteWriteHandler(resolver tenant.Resolver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := d.serveRemoteWrite(w, r, resolver)
		d.metrics.requests.WithLabelValues("remote_write", strconv.Itoa(code)).Inc()
	})
}

func (d *Distributor) serveRemoteWrite(w http.ResponseWriter, r *http.Request, resolver tenant.Resolver) int {
	if r.Method != http.MethodPost {
		return writeError(w, &Error{Code: http.StatusMethodNotAllowed, Msg: "remote write takes POST"})
	}
	tenantID, err := resolver.FromRequest(r)
	if err != nil {
		return writeError(w, &Error{Code: http.StatusUnauthorized, Msg: err.Error()})
	}
	proto, err := remoteWriteVersion(r.Header.Get("Content-Type"))
	if err != nil {
		return writeError(w, err)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "snappy" {
		return writeError(w, &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Encoding %q: remote write bodies are snappy-compressed", enc)})
	}
	res, err := d.inflight.start()
	if err != nil {
		return writeError(w, err)
	}
	defer res.release()
	buf, err := readBody(r, d.cfg.MaxRecvMsgSize, res)
	if err != nil {
		return writeError(w, err)
	}
	req, release, err := decodeRemoteWrite(buf.Bytes(), proto, d.cfg.MaxDecompressedSize, res)
	putBuf(buf)
	if err != nil {
		return writeError(w, err)
	}
	pushed, err := d.push(r.Context(), tenantID, req, release)
	if proto == protoV2 {
		w.Header().Set(headerSamplesWritten, strconv.Itoa(pushed.Samples))
		w.Header().Set(headerHistogramsWritten, strconv.Itoa(pushed.Histograms))
		w.Header().Set(headerExemplarsWritten, strconv.Itoa(pushed.Exemplars))
	}
	if err != nil {
		return writeError(w, err)
	}
	if pushed.Dropped > 0 {
		return writeError(w, &Error{Code: http.StatusBadRequest, Msg: partialMessage(pushed)})
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func partialMessage(res PushResult) string {
	return fmt.Sprintf("%d samples written, %d samples rejected (%d exemplars rejected); first rejection: %s", res.Samples+res.Histograms, res.Dropped, res.DroppedExemplars, res.Message)
}

func writeError(w http.ResponseWriter, err error) int {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: http.StatusInternalServerError, Msg: err.Error()}
	}
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	http.Error(w, e.Msg, e.Code)
	return e.Code
}
