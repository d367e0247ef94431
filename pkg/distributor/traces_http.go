package distributor

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/canopy-observability/canopy/pkg/tracepush"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// OTLPHandler serves OTLP traces over HTTP (protobuf or JSON, optionally
// gzip- or zstd-compressed): /otlp/v1/traces, and /v1/traces on the OTLP
// port. Rejected spans are reported as a partial success naming the first
// problem; a push over the rate limit is answered 429.
func (t *Traces) OTLPHandler(resolver tenant.Resolver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := t.serveOTLP(w, r, resolver)
		t.metrics.requests.WithLabelValues("otlp_http", strconv.Itoa(code)).Inc()
	})
}

func (t *Traces) serveOTLP(w http.ResponseWriter, r *http.Request, resolver tenant.Resolver) int {
	body, err := t.d.readPush(r, resolver, "OTLP/HTTP", otlpTypes, false)
	if err != nil {
		return writeError(w, err)
	}
	defer body.release()
	var res TracesResult
	if body.mediaType == "application/json" {
		// DecodeOTLP checks the nesting and UTF-8 of the body before pdata
		// reads it (pdata's decoders recurse without a bound).
		td, derr := tracepush.DecodeOTLP(body.data, body.mediaType)
		if derr != nil {
			return writeError(w, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding OTLP traces request (%s): %v", body.mediaType, derr)})
		}
		res, err = t.PushTraces(r.Context(), body.tenant, td)
	} else {
		res, err = t.PushProto(r.Context(), body.tenant, body.data)
	}
	if err != nil {
		return writeError(w, err)
	}
	resp := ptraceotlp.NewExportResponse()
	if res.Rejected > 0 || res.Message != "" {
		resp.PartialSuccess().SetRejectedSpans(int64(res.Rejected))
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	return writeOTLPResponse(w, body.mediaType, resp.MarshalJSON, resp.MarshalProto)
}

// PushTraces checks and writes decoded spans (OTLP JSON, Zipkin, gRPC).
func (t *Traces) PushTraces(ctx context.Context, tenantID string, td ptrace.Traces) (TracesResult, error) {
	lim := t.d.limits.ByTenant(tenantID)
	b, err := tracepush.Split(td, splitLimits(lim))
	if err != nil {
		return TracesResult{}, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("checking spans: %v", err)}
	}
	return t.push(ctx, tenantID, lim, b)
}

// otlpTracesGRPC is the OTLP traces gRPC service (its Export is
// exportProto, on the raw request: otlp_listeners.go).
type otlpTracesGRPC struct {
	t        *Traces
	resolver tenant.Resolver
}

// ZipkinHandler serves Zipkin's v2 span API (POST /api/v2/spans, a JSON
// array of spans, optionally gzip- or zstd-compressed), as Zipkin
// reporters send it. It answers 202 as Zipkin does, or 400 naming the
// first rejected span's problem when some spans were rejected (the rest
// are written).
func (t *Traces) ZipkinHandler(resolver tenant.Resolver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := t.serveZipkin(w, r, resolver)
		t.metrics.requests.WithLabelValues("zipkin", strconv.Itoa(code)).Inc()
	})
}

func (t *Traces) serveZipkin(w http.ResponseWriter, r *http.Request, resolver tenant.Resolver) int {
	body, err := t.d.readPush(r, resolver, "the Zipkin v2 span API", []string{"application/json"}, true)
	if err != nil {
		return writeError(w, err)
	}
	defer body.release()
	td, err := tracepush.DecodeZipkin(body.data)
	if err != nil {
		return writeError(w, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding Zipkin spans: %v", err)})
	}
	res, err := t.PushTraces(r.Context(), body.tenant, td)
	if err != nil {
		return writeError(w, err)
	}
	if res.Rejected > 0 {
		code := res.Status
		if code == 0 {
			code = http.StatusBadRequest
		}
		return writeError(w, &Error{Code: code, Msg: fmt.Sprintf("%d spans written, %d rejected; first rejection: %s", res.Spans, res.Rejected, res.Message)})
	}
	w.WriteHeader(http.StatusAccepted)
	return http.StatusAccepted
}
