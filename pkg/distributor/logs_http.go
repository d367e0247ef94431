package distributor

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/canopy-observability/canopy/pkg/logpush"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// PushHandler serves POST /loki/api/v1/push: snappy-compressed protobuf
// (Promtail, Alloy, Fluent Bit, Vector) or JSON, either optionally under a
// Content-Encoding (gzip, zstd). It answers 204, or 400 naming the first
// rejected entry's problem when some entries were rejected (the rest are
// written).
func (l *Logs) PushHandler(resolver tenant.Resolver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := l.servePush(w, r, resolver)
		l.metrics.requests.WithLabelValues("loki_push", strconv.Itoa(code)).Inc()
	})
}

func (l *Logs) servePush(w http.ResponseWriter, r *http.Request, resolver tenant.Resolver) int {
	if r.Method != http.MethodPost {
		return writeError(w, &Error{Code: http.StatusMethodNotAllowed, Msg: "the Loki push API takes POST"})
	}
	tenantID, err := resolver.FromRequest(r)
	if err != nil {
		return writeError(w, &Error{Code: http.StatusUnauthorized, Msg: err.Error()})
	}
	ct := r.Header.Get("Content-Type")
	mt := "application/x-protobuf"
	if ct != "" {
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return writeError(w, &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: the Loki push API takes application/x-protobuf (snappy) or application/json", ct)})
		}
	}
	if mt != "application/x-protobuf" && mt != "application/json" {
		return writeError(w, &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: the Loki push API takes application/x-protobuf (snappy) or application/json", ct)})
	}
	res, err := l.d.inflight.start()
	if err != nil {
		return writeError(w, err)
	}
	defer res.release()
	buf, err := readBody(r, l.d.cfg.MaxRecvMsgSize, res)
	if err != nil {
		return writeError(w, err)
	}
	defer putBuf(buf)
	plain := getBuf()
	defer putBuf(plain)
	body, err := decompress(r.Header.Get("Content-Encoding"), buf.Bytes(), plain, l.d.cfg.MaxDecompressedSize, res)
	if err != nil {
		return writeError(w, err)
	}
	var streams []logpush.Stream
	if mt == "application/json" {
		streams, err = logpush.DecodeJSON(body)
	} else {
		raw := getBuf()
		defer putBuf(raw)
		var decoded []byte
		if decoded, err = snappyDecode(raw, body, l.d.cfg.MaxDecompressedSize, res); err != nil {
			return writeError(w, err)
		}
		streams, err = logpush.DecodeProto(decoded)
	}
	if err != nil {
		return writeError(w, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding the Loki push request (%s): %v", mt, err)})
	}
	pushed, err := l.Push(r.Context(), tenantID, streams)
	if err != nil {
		return writeError(w, err)
	}
	if pushed.Rejected > 0 {
		return writeError(w, &Error{Code: http.StatusBadRequest, Msg: partialLogsMessage(pushed)})
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// pushOTLP converts OTLP logs to streams as the tenant's OTLP mapping
// says and writes them; it returns the rejected records and the message.
func (l *Logs) pushOTLP(ctx context.Context, tenantID string, ld plog.Logs) (int64, string, error) {
	cfg := l.d.limits.ByTenant(tenantID).LogsOTLP
	streams, err := logpush.FromOTLP(ld, cfg, l.d.now())
	if err != nil {
		return 0, "", &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("converting OTLP logs: %v", err)}
	}
	res, err := l.Push(ctx, tenantID, streams)
	if err != nil {
		return 0, "", err
	}
	return int64(res.Rejected), res.Message, nil
}

// OTLPHandler serves OTLP logs over HTTP (protobuf or JSON, optionally
// gzip- or zstd-compressed): /otlp/v1/logs, and /v1/logs on the OTLP port.
func (l *Logs) OTLPHandler(resolver tenant.Resolver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := l.serveOTLP(w, r, resolver)
		l.metrics.requests.WithLabelValues("otlp_http", strconv.Itoa(code)).Inc()
	})
}

func (l *Logs) serveOTLP(w http.ResponseWriter, r *http.Request, resolver tenant.Resolver) int {
	if r.Method != http.MethodPost {
		return writeError(w, &Error{Code: http.StatusMethodNotAllowed, Msg: "OTLP takes POST"})
	}
	tenantID, err := resolver.FromRequest(r)
	if err != nil {
		return writeError(w, &Error{Code: http.StatusUnauthorized, Msg: err.Error()})
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-protobuf" && ct != "application/json" {
		return writeError(w, &Error{Code: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: OTLP/HTTP takes application/x-protobuf or application/json", r.Header.Get("Content-Type"))})
	}
	res, err := l.d.inflight.start()
	if err != nil {
		return writeError(w, err)
	}
	defer res.release()
	buf, err := readBody(r, l.d.cfg.MaxRecvMsgSize, res)
	if err != nil {
		return writeError(w, err)
	}
	defer putBuf(buf)
	plain := getBuf()
	defer putBuf(plain)
	body, err := decompress(r.Header.Get("Content-Encoding"), buf.Bytes(), plain, l.d.cfg.MaxDecompressedSize, res)
	if err != nil {
		return writeError(w, err)
	}
	req := plogotlp.NewExportRequest()
	if ct == "application/json" {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return writeError(w, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding OTLP logs request (%s): %v", ct, err)})
	}
	rejected, msg, err := l.pushOTLP(r.Context(), tenantID, req.Logs())
	if err != nil {
		return writeError(w, err)
	}
	resp := plogotlp.NewExportResponse()
	if rejected > 0 || msg != "" {
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	var out []byte
	if ct == "application/json" {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	if err != nil {
		return writeError(w, err)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return http.StatusOK
}

// otlpLogsGRPC is the OTLP logs gRPC service.
type otlpLogsGRPC struct {
	plogotlp.UnimplementedGRPCServer
	l        *Logs
	resolver tenant.Resolver
}

// Export implements plogotlp.GRPCServer.
func (s *otlpLogsGRPC) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	tenantID, err := s.resolver.FromIncomingContext(ctx)
	if err != nil {
		return plogotlp.ExportResponse{}, status.Error(codes.Unauthenticated, err.Error())
	}
	rejected, msg, err := s.l.pushOTLP(ctx, tenantID, req.Logs())
	if err != nil {
		code := grpcCode(err)
		s.l.metrics.requests.WithLabelValues("otlp_grpc", code.String()).Inc()
		return plogotlp.ExportResponse{}, status.Error(code, err.Error())
	}
	s.l.metrics.requests.WithLabelValues("otlp_grpc", codes.OK.String()).Inc()
	resp := plogotlp.NewExportResponse()
	if rejected > 0 || msg != "" {
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, nil
}

// grpcCode maps a push error to the gRPC code OTLP clients act on:
// Unavailable is retried, InvalidArgument is not.
func grpcCode(err error) codes.Code {
	e, ok := err.(*Error)
	if !ok {
		return codes.Internal
	}
	switch {
	case e.Code == http.StatusTooManyRequests || e.Code == http.StatusServiceUnavailable:
		return codes.Unavailable
	case e.Code >= 400 && e.Code < 500:
		return codes.InvalidArgument
	}
	return codes.Internal
}
