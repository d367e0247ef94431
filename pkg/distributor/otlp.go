package distributor

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/canopy-observability/canopy/pkg/util/otlpdepth"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// RequestBuilder is a storage.AppenderV2 that collects what is appended (by
// Prometheus's OTLP translator, or by anything else writing through the
// storage interface) into one remote write 2.0 request. Samples of the same
// series are grouped. Not safe for concurrent use.
type RequestBuilder struct {
	symbols writev2.SymbolsTable
	series  []writev2.TimeSeries
	index   map[uint64][]int // label hash -> series indexes (collisions kept apart)
	lbls    []labels.Labels
	refs    []uint32
}

// NewRequestBuilder returns an empty builder.
func NewRequestBuilder() *RequestBuilder {
	return &RequestBuilder{symbols: writev2.NewSymbolTable(), index: map[uint64][]int{}}
}

// seriesFor returns the entry to append a sample of ls to. A remote write 2.0
// series entry holds floats or histograms, not both: when a series switches
// between the two, it gets a new entry, so samples keep their order.
func (b *RequestBuilder) seriesFor(ls labels.Labels, isHistogram bool) *writev2.TimeSeries {
	h := ls.Hash()
	for j, i := range b.index[h] {
		if !labels.Equal(b.lbls[i], ls) {
			continue
		}
		ts := &b.series[i]
		if isHistogram && len(ts.Samples) == 0 || !isHistogram && len(ts.Histograms) == 0 {
			return ts
		}
		b.series = append(b.series, writev2.TimeSeries{LabelsRefs: ts.LabelsRefs})
		b.lbls = append(b.lbls, ls)
		b.index[h][j] = len(b.series) - 1
		return &b.series[len(b.series)-1]
	}
	b.refs = b.symbols.SymbolizeLabels(ls, b.refs[:0])
	b.series = append(b.series, writev2.TimeSeries{LabelsRefs: append([]uint32(nil), b.refs...)})
	b.lbls = append(b.lbls, ls)
	b.index[h] = append(b.index[h], len(b.series)-1)
	return &b.series[len(b.series)-1]
}

// Append implements storage.AppenderV2.
func (b *RequestBuilder) Append(_ storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	ts := b.seriesFor(ls, h != nil || fh != nil)
	switch {
	case fh != nil:
		ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(st, t, fh))
	case h != nil:
		ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(st, t, h))
	default:
		ts.Samples = append(ts.Samples, writev2.Sample{Value: v, Timestamp: t, StartTimestamp: st})
	}
	for _, e := range opts.Exemplars {
		ts.Exemplars = append(ts.Exemplars, b.exemplar(e))
	}
	md := opts.Metadata
	if md.Type != "" || md.Help != "" || md.Unit != "" {
		ts.Metadata = writev2.Metadata{
			Type:    writev2.FromMetadataType(md.Type),
			HelpRef: b.symbols.Symbolize(md.Help),
			UnitRef: b.symbols.Symbolize(md.Unit),
		}
	}
	return 0, nil
}

func (b *RequestBuilder) exemplar(e exemplar.Exemplar) writev2.Exemplar {
	return writev2.Exemplar{LabelsRefs: b.symbols.SymbolizeLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts}
}

// Commit implements storage.AppenderV2.
func (b *RequestBuilder) Commit() error { return nil }

// Rollback implements storage.AppenderV2.
func (b *RequestBuilder) Rollback() error { return nil }

// Request returns the request built so far. It shares memory with the
// builder: append nothing more once it is taken.
func (b *RequestBuilder) Request() *writev2.Request {
	return &writev2.Request{Symbols: b.symbols.Symbols(), Timeseries: b.series}
}

// TranslateOTLP converts OTLP metrics to a remote write 2.0 request the way
// Prometheus's own OTLP receiver does (its translator package).
func (d *Distributor) TranslateOTLP(ctx context.Context, md pmetric.Metrics) (*writev2.Request, error) {
	b := NewRequestBuilder()
	conv := otlptranslator.NewPrometheusConverter(b)
	_, err := conv.FromMetrics(ctx, md, otlptranslator.Settings{
		AddMetricSuffixes:                 true,
		AllowUTF8:                         false,
		PromoteResourceAttributes:         otlptranslator.NewPromoteResourceAttributes(config.OTLPConfig{PromoteResourceAttributes: d.cfg.OTLPPromoteResourceAttr}),
		KeepIdentifyingResourceAttributes: d.cfg.OTLPKeepIdentifyingAttr,
		DisableTargetInfo:                 d.cfg.OTLPDisableTargetInfo,
	})
	if err != nil {
		// The translator reports per-point problems and keeps going; what it
		// converted is still written.
		return b.Request(), &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("translating OTLP metrics: %v", err)}
	}
	return b.Request(), nil
}

// pushOTLP translates and writes, returning rejected data points and message.
func (d *Distributor) pushOTLP(ctx context.Context, tenantID string, md pmetric.Metrics) (int64, string, error) {
	req, terr := d.TranslateOTLP(ctx, md)
	res, err := d.Push(ctx, tenantID, req)
	if err != nil {
		return 0, "", err
	}
	msg := res.Message
	if terr != nil {
		msg = terr.Error()
	}
	return int64(res.Dropped), msg, nil
}

// OTLPHandler serves OTLP metrics over HTTP (protobuf or JSON, optionally
// gzip- or zstd-compressed).
func (d *Distributor) OTLPHandler(resolver tenant.Resolver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := d.serveOTLP(w, r, resolver)
		d.metrics.requests.WithLabelValues("otlp_http", strconv.Itoa(code)).Inc()
	})
}

func (d *Distributor) serveOTLP(w http.ResponseWriter, r *http.Request, resolver tenant.Resolver) int {
	body, err := d.readPush(r, resolver, "OTLP/HTTP", otlpTypes, false)
	if err != nil {
		return writeError(w, err)
	}
	defer body.release()
	req := pmetricotlp.NewExportRequest()
	if err := decodeOTLP("metrics", body.mediaType, body.data, req.UnmarshalJSON, req.UnmarshalProto); err != nil {
		return writeError(w, err)
	}
	rejected, msg, err := d.pushOTLP(r.Context(), body.tenant, req.Metrics())
	if err != nil {
		return writeError(w, err)
	}
	resp := pmetricotlp.NewExportResponse()
	if rejected > 0 || msg != "" {
		resp.PartialSuccess().SetRejectedDataPoints(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return writeOTLPResponse(w, body.mediaType, resp.MarshalJSON, resp.MarshalProto)
}

// decodeOTLP decodes an OTLP export request body, in protobuf or (mediaType
// application/json) in JSON, with the unmarshal function of its encoding.
// It refuses first a body nested deeper than otlpdepth's bounds: pdata's
// decoders recurse once per level without a bound, and a body of attribute
// values nested a few million deep would overflow the stack and kill the
// process. Errors are *Error (400); signal names the request in them.
func decodeOTLP(signal, mediaType string, body []byte, unmarshalJSON, unmarshalProto func([]byte) error) error {
	check, unmarshal := otlpdepth.CheckProto, unmarshalProto
	if mediaType == "application/json" {
		check, unmarshal = otlpdepth.CheckJSON, unmarshalJSON
	}
	if err := check(body); err != nil {
		return &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("OTLP %s request %v", signal, err)}
	}
	if err := unmarshal(body); err != nil {
		return &Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("decoding OTLP %s request (%s): %v", signal, mediaType, err)}
	}
	return nil
}

// otlpGRPC is the OTLP metrics gRPC service.
type otlpGRPC struct {
	pmetricotlp.UnimplementedGRPCServer
	d        *Distributor
	resolver tenant.Resolver
}

// Export implements pmetricotlp.GRPCServer.
func (s *otlpGRPC) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	tenantID, err := s.resolver.FromIncomingContext(ctx)
	if err != nil {
		return pmetricotlp.ExportResponse{}, status.Error(codes.Unauthenticated, err.Error())
	}
	rejected, msg, err := s.d.pushOTLP(ctx, tenantID, req.Metrics())
	if err != nil {
		code := grpcCode(err)
		s.d.metrics.requests.WithLabelValues("otlp_grpc", code.String()).Inc()
		return pmetricotlp.ExportResponse{}, status.Error(code, err.Error())
	}
	s.d.metrics.requests.WithLabelValues("otlp_grpc", codes.OK.String()).Inc()
	resp := pmetricotlp.NewExportResponse()
	if rejected > 0 || msg != "" {
		resp.PartialSuccess().SetRejectedDataPoints(rejected)
		resp.PartialSuccess().SetErrorMessage(msg)
	}
	return resp, nil
}
