package distributor

import (
	"context"
	"fmt"
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
	body, err := l.d.readPush(r, resolver, "the Loki push API", lokiPushTypes, true)
	if err != nil {
		return writeError(w, err)
	}
	defer body.release()
	var streams []logpush.Stream
	if body.mediaType == "application/json" {
		streams, err = logpush.DecodeJSON(body.data)
	} else {
		raw := getBuf()
		defer putBuf(raw)
		var decoded []byte
		if decoded, err = snappyDecode(raw, body.data, l.d.cfg.MaxDecompressedSize, body.res); err != nil {
			return writeError(w, err)
		}
		streams, err = logpush.DecodeProto(decoded)
	}
	if err != nil {
		return writeError(w, &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding the Loki push request (%s): %v", body.mediaType, err)})
	}
	pushed, err := l.Push(r.Context(), body.tenant, streams)
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
	body, err := l.d.readPush(r, resolver, "OTLP/HTTP", otlpTypes, false)
	if err != nil {
		return writeError(w, err)
	}
	defer body.release()
	req := plogotlp.NewExportRequest()
	if err := decodeOTLP("logs", body.mediaType, body.data, req.UnmarshalJSON, req.UnmarshalProto); err != nil {
		return writeError(w, err)
	}
	rejected, msg, err := l.pushOTLP(r.Context(), body.tenant, req.Logs())
	if err != nil {
		return writeError(w, err)
	}
	resp := plogotlp.NewExportResponse()
	if rejected > 0 || msg != "" {
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return writeOTLPResponse(w, body.mediaType, resp.MarshalJSON, resp.MarshalProto)
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
