package distributor

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// receivedPush is a push request's body, read within the body limits and the
// in-flight budget and with its Content-Encoding undone. release gives
// its memory and its reservation back.
type receivedPush struct {
	tenant    string
	mediaType string
	data      []byte
	res       *reservation
	bufs      []*bytes.Buffer
}

func (b *receivedPush) release() {
	for _, buf := range b.bufs {
		putBuf(buf)
	}
	b.res.release()
}

// readPush answers the questions every push API asks first: POST, the
// tenant, a Content-Type among types (the first is assumed when there is
// none, if dflt), the body within -distributor.max-recv-msg-size and the
// in-flight budget, decompressed within -distributor.max-decompressed-size.
// api names the API in errors. The caller must release the body.
func (d *Distributor) readPush(r *http.Request, resolver tenant.Resolver, api string, types []string, dflt bool) (*receivedPush, error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Code: http.StatusMethodNotAllowed, Msg: api + " takes POST"}
	}
	id, err := resolver.FromRequest(r)
	if err != nil {
		return nil, &Error{Code: http.StatusUnauthorized, Msg: err.Error()}
	}
	ct := r.Header.Get("Content-Type")
	mt, _, perr := mime.ParseMediaType(ct)
	if ct == "" && dflt {
		mt, perr = types[0], nil
	}
	if perr != nil || !slices.Contains(types, mt) {
		return nil, &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: %s takes %s", ct, api, strings.Join(types, " or "))}
	}
	res, err := d.inflight.start()
	if err != nil {
		return nil, err
	}
	b := &receivedPush{tenant: id, mediaType: mt, res: res}
	raw, err := readBody(r, d.cfg.MaxRecvMsgSize, res)
	if err != nil {
		b.release()
		return nil, err
	}
	plain := getBuf()
	b.bufs = append(b.bufs, raw, plain)
	if b.data, err = decompress(r.Header.Get("Content-Encoding"), raw.Bytes(), plain, d.cfg.MaxDecompressedSize, res); err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

// writeOTLPResponse answers an OTLP/HTTP export in the request's encoding.
func writeOTLPResponse(w http.ResponseWriter, mediaType string, marshalJSON, marshalProto func() ([]byte, error)) int {
	marshal := marshalProto
	if mediaType == "application/json" {
		marshal = marshalJSON
	}
	out, err := marshal()
	if err != nil {
		return writeError(w, err)
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return http.StatusOK
}

// OTLP/HTTP's and Loki's push encodings.
var (
	otlpTypes     = []string{"application/x-protobuf", "application/json"}
	lokiPushTypes = []string{"application/x-protobuf", "application/json"}
)
