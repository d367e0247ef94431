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
		o.grpcServer = grpc.NewServer(grpc.MaxRecvMsgSize(o.cfg.MaxDecompressedSize))
		pmetricotlp.RegisterGRPCServer(o.grpcServer, &otlpGRPC{d: o.d, resolver: o.resolver})
		if o.logs != nil {
			plogotlp.RegisterGRPCServer(o.grpcServer, &otlpLogsGRPC{l: o.logs, resolver: o.resolver})
		}
		if o.traces != nil {
			ptraceotlp.RegisterGRPCServer(o.grpcServer, &otlpTracesGRPC{t: o.traces, resolver: o.resolver})
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
