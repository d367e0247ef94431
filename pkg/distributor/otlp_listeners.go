package distributor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// OTLPListeners serves OTLP on its own ports, as agents expect by default:
// gRPC (4317) and HTTP /v1/metrics, /v1/logs and /v1/traces (4318). Either is skipped
// when its address is empty. It is a services.Service.
type OTLPListeners struct {
	services.Service

	cfg      Config
	d        *Distributor
	logs     *Logs   // nil: no logs
	traces   *Traces // nil: no traces
	resolver tenant.Resolver
	logger   log.Logger

	grpcServer *grpc.Server
	httpServer *http.Server
	grpcLis    net.Listener
	httpLis    net.Listener
	errs       chan error
}

// NewOTLPListeners returns the OTLP listeners service; logs and traces
// may be nil when the process takes no logs or no traces.
func NewOTLPListeners(cfg Config, d *Distributor, logs *Logs, traces *Traces, resolver tenant.Resolver, logger log.Logger) *OTLPListeners {
	o := &OTLPListeners{cfg: cfg, d: d, logs: logs, traces: traces, resolver: resolver, logger: log.With(logger, "component", "otlp"), errs: make(chan error, 2)}
	o.Service = services.NewBasicService(o.starting, o.running, o.stopping)
	return o
}

// GRPCAddr and HTTPAddr return the bound addresses (useful with port 0).
func (o *OTLPListeners) GRPCAddr() net.Addr { return addrOf(o.grpcLis) }

// HTTPAddr returns the bound HTTP address.
func (o *OTLPListeners) HTTPAddr() net.Addr { return addrOf(o.httpLis) }

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

func (o *OTLPListeners) starting(context.Context) error {
	var err error
	if o.cfg.OTLPGRPCListenAddress != "" {
		if o.grpcLis, err = net.Listen("tcp", o.cfg.OTLPGRPCListenAddress); err != nil {
			return fmt.Errorf("OTLP gRPC listener (-distributor.otlp.grpc-listen-address): %w", err)
		}
		o.grpcServer = grpc.NewServer(grpc.MaxRecvMsgSize(o.cfg.MaxDecompressedSize), grpc.ForceServerCodecV2(otlpCodec{proto: encoding.GetCodecV2(proto.Name)}))
		o.grpcServer.RegisterService(otlpServiceDesc("opentelemetry.proto.collector.metrics.v1.MetricsService"), &otlpGRPC{d: o.d, resolver: o.resolver})
		if o.logs != nil {
			o.grpcServer.RegisterService(otlpServiceDesc("opentelemetry.proto.collector.logs.v1.LogsService"), &otlpLogsGRPC{l: o.logs, resolver: o.resolver})
		}
		if o.traces != nil {
			o.grpcServer.RegisterService(otlpServiceDesc("opentelemetry.proto.collector.trace.v1.TraceService"), &otlpTracesGRPC{t: o.traces, resolver: o.resolver})
		}
		go func() { o.errs <- o.grpcServer.Serve(o.grpcLis) }()
	}
	if o.cfg.OTLPHTTPListenAddress != "" {
		if o.httpLis, err = net.Listen("tcp", o.cfg.OTLPHTTPListenAddress); err != nil {
			if o.grpcServer != nil {
				o.grpcServer.Stop()
			}
			return fmt.Errorf("OTLP HTTP listener (-distributor.otlp.http-listen-address): %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/v1/metrics", o.d.OTLPHandler(o.resolver))
		if o.logs != nil {
			mux.Handle("/v1/logs", o.logs.OTLPHandler(o.resolver))
		}
		if o.traces != nil {
			mux.Handle("/v1/traces", o.traces.OTLPHandler(o.resolver))
		}
		o.httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := o.httpServer.Serve(o.httpLis); !errors.Is(err, http.ErrServerClosed) {
				o.errs <- err
			}
		}()
	}
	level.Info(o.logger).Log("msg", "OTLP receivers listening", "grpc", o.GRPCAddr(), "http", o.HTTPAddr())
	return nil
}

func (o *OTLPListeners) running(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-o.errs:
		return fmt.Errorf("OTLP listener: %w", err)
	}
}

func (o *OTLPListeners) stopping(error) error {
	if o.grpcServer != nil {
		o.grpcServer.GracefulStop()
	}
	if o.httpServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return o.httpServer.Shutdown(ctx)
	}
	return nil
}

// The OTLP gRPC services are registered here, not by pdata's
// RegisterGRPCServer: pdata's handlers have gRPC decode the request with
// pdata (recursively, without a bound) before any code of ours runs, and a
// codec refusing a body nested too deep can only have it answered Internal
// (gRPC turns every codec error into Internal). These handlers get the
// request's bytes undecoded (otlpCodec), and exportProto refuses a body
// nested too deep with InvalidArgument before decoding it with pdata's
// ExportRequest.UnmarshalProto, which does what pdata's handlers do
// (migrating deprecated fields included). The services and their Export
// method are OTLP's, so every OTLP client works as before.

// otlpExporter is one signal's OTLP gRPC service.
type otlpExporter interface {
	// exportProto checks, decodes and writes an export request in
	// protobuf; body is valid only until it returns.
	exportProto(ctx context.Context, body []byte) (*otlpBytes, error)
}

// otlpServiceDesc describes the OTLP gRPC service of that name: its one
// method, Export, served by an otlpExporter.
func otlpServiceDesc(service string) *grpc.ServiceDesc {
	method := "/" + service + "/Export"
	return &grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*otlpExporter)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
				req := new(otlpBytes)
				if err := dec(req); err != nil {
					return nil, err
				}
				defer req.buf.Free()
				export := func(ctx context.Context, req any) (any, error) {
					return srv.(otlpExporter).exportProto(ctx, req.(*otlpBytes).buf.ReadOnlyData())
				}
				if interceptor == nil {
					return export(ctx, req)
				}
				return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, export)
			},
		}},
	}
}

// otlpBytes is an OTLP message in protobuf, as received or to be sent,
// which otlpCodec passes through as it is.
type otlpBytes struct{ buf mem.Buffer }

// otlpCodec is the OTLP gRPC server's codec: it hands otlpBytes over
// undecoded and leaves any other message to the proto codec.
type otlpCodec struct{ proto encoding.CodecV2 }

// Marshal implements encoding.CodecV2.
func (c otlpCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*otlpBytes); ok {
		return mem.BufferSlice{m.buf}, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal implements encoding.CodecV2. An otlpBytes holds a reference to
// the data, which its holder frees.
func (c otlpCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*otlpBytes); ok {
		m.buf = data.MaterializeToBuffer(mem.DefaultBufferPool())
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// Name implements encoding.CodecV2.
func (c otlpCodec) Name() string { return proto.Name }

// otlpResponse marshals an OTLP export response for otlpCodec.
func otlpResponse(b []byte, err error) (*otlpBytes, error) {
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &otlpBytes{buf: mem.SliceBuffer(b)}, nil
}

// otlpProtobuf is OTLP's protobuf encoding, the only one over gRPC.
const otlpProtobuf = "application/x-protobuf"

func (s *otlpGRPC) exportProto(ctx context.Context, body []byte) (*otlpBytes, error) {
	req := pmetricotlp.NewExportRequest()
	if err := decodeOTLP("metrics", otlpProtobuf, body, nil, req.UnmarshalProto); err != nil {
		s.d.metrics.requests.WithLabelValues("otlp_grpc", codes.InvalidArgument.String()).Inc()
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	resp, err := s.Export(ctx, req)
	if err != nil {
		return nil, err
	}
	return otlpResponse(resp.MarshalProto())
}

func (s *otlpLogsGRPC) exportProto(ctx context.Context, body []byte) (*otlpBytes, error) {
	req := plogotlp.NewExportRequest()
	if err := decodeOTLP("logs", otlpProtobuf, body, nil, req.UnmarshalProto); err != nil {
		s.l.metrics.requests.WithLabelValues("otlp_grpc", codes.InvalidArgument.String()).Inc()
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	resp, err := s.Export(ctx, req)
	if err != nil {
		return nil, err
	}
	return otlpResponse(resp.MarshalProto())
}

// exportProto cuts the request into traces straight from its protobuf
// (tracepush.SplitProto checks nesting, IDs and sizes as it walks): the
// spans are never decoded into pdata.
func (s *otlpTracesGRPC) exportProto(ctx context.Context, body []byte) (*otlpBytes, error) {
	tenantID, err := s.resolver.FromIncomingContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	res, err := s.t.PushProto(ctx, tenantID, body)
	if err != nil {
		code := grpcCode(err)
		s.t.metrics.requests.WithLabelValues("otlp_grpc", code.String()).Inc()
		return nil, status.Error(code, err.Error())
	}
	s.t.metrics.requests.WithLabelValues("otlp_grpc", codes.OK.String()).Inc()
	resp := ptraceotlp.NewExportResponse()
	if res.Rejected > 0 || res.Message != "" {
		resp.PartialSuccess().SetRejectedSpans(int64(res.Rejected))
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	return otlpResponse(resp.MarshalProto())
}
