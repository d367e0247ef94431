package distributor

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// The hostile bodies of the tests below nest attribute values in arrays,
// each the only value of the one before. In protobuf, 2.5 million levels:
// 25 MB (a few tens of KB gzipped), which pdata's recursive decoder cannot
// read within a 1 GB stack, Go's default bound: a process decoding it dies
// of "fatal error: stack overflow", which recover cannot catch. The
// distributor must refuse them before pdata reads them, and go on serving.
// In JSON, 100,000 levels (2.8 MB).
const (
	deepLevels     = 2_500_000
	deepJSONLevels = 100_000
)

// Where an attribute value or a log body is in the OTLP export requests,
// as field numbers, innermost first.
var (
	// KeyValue value, NumberDataPoint attributes, Gauge data_points,
	// Metric gauge, ScopeMetrics metrics, ResourceMetrics scope_metrics,
	// request resource_metrics.
	metricsAttrPath = []protowire.Number{2, 7, 1, 5, 2, 2, 1}
	// LogRecord body, ScopeLogs log_records, ResourceLogs scope_logs,
	// request resource_logs.
	logBodyPath = []protowire.Number{5, 2, 2, 1}
	// KeyValue value, Span attributes, ScopeSpans spans, ResourceSpans
	// scope_spans, request resource_spans.
	spanAttrPath = []protowire.Number{2, 9, 2, 2, 1}
)

// deepBody returns an OTLP request in protobuf holding, where path says,
// an AnyValue of levels arrays nested in each other around a string. It is
// built backwards, then turned around: linear in its size.
func deepBody(levels int, path []protowire.Number) []byte {
	rev := make([]byte, 0, 10*levels+64)
	rev = append(rev, 'x', 1, 0x0a) // string_value (field 1) "x", backwards
	wrap := func(num protowire.Number) {
		h := protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.BytesType), uint64(len(rev)))
		for i := len(h) - 1; i >= 0; i-- {
			rev = append(rev, h[i])
		}
	}
	for range levels {
		wrap(1) // ArrayValue values
		wrap(5) // AnyValue array_value
	}
	for _, num := range path {
		wrap(num)
	}
	out := make([]byte, len(rev))
	for i, c := range rev {
		out[len(rev)-1-i] = c
	}
	return out
}

// deepJSON returns an OTLP JSON request of signal (metrics: an attribute of
// a gauge's data point; logs: a record's body) holding levels arrays
// nested in each other.
func deepJSON(signal string, levels int) []byte {
	value := strings.Repeat(`{"arrayValue":{"values":[`, levels) + `{"stringValue":"x"}` + strings.Repeat(`]}}`, levels)
	if signal == "metrics" {
		return []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asDouble":1,"attributes":[{"key":"k","value":` + value + `}]}]}}]}]}]}`)
	}
	return []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":` + value + `}]}]}]}`)
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// countingLogsIngester counts the log entries it was sent.
type countingLogsIngester struct {
	mu      sync.Mutex
	entries int
}

func (f *countingLogsIngester) Push(_ context.Context, req *logspb.PushRequest) (*logspb.PushResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range req.Streams {
		f.entries += len(s.Entries)
	}
	return &logspb.PushResponse{}, nil
}

func (f *countingLogsIngester) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.entries
}

type countingLogsPool map[string]*countingLogsIngester

func (p countingLogsPool) LogsPusher(addr string) (LogsPusher, error) {
	if i, ok := p[addr]; ok {
		return i, nil
	}
	return nil, fmt.Errorf("no ingester at %s", addr)
}

// newTestLogs returns the logs write path of d (a distributor of
// newTestDistributor over one ingester) and its one fake logs ingester.
func newTestLogs(d *Distributor) (*Logs, *countingLogsIngester) {
	ing := &countingLogsIngester{}
	return NewLogs(d, d.ring, countingLogsPool{"ingester-0:9095": ing}, nil, log.NewNopLogger(), prometheus.NewRegistry()), ing
}

func testLogs(now time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	for i := range 3 {
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
		lr.Body().SetStr(fmt.Sprintf("order %d placed", i))
		lr.Attributes().PutStr("user", "u-1")
	}
	return ld
}

// TestOTLPHTTPNestedBodies: metrics and logs over OTLP/HTTP, in protobuf
// and in JSON, refuse bodies nesting too deep with 400 and a message
// naming the bound, and go on serving normal bodies.
func TestOTLPHTTPNestedBodies(t *testing.T) {
	now := time.Now()
	mreq := pmetricotlp.NewExportRequestFromMetrics(testMetrics(now))
	lreq := plogotlp.NewExportRequestFromLogs(testLogs(now))
	deepMetrics := deepBody(deepLevels, metricsAttrPath)
	for name, tc := range map[string]struct {
		signal  string
		body    []byte
		ct, enc string
		want    string // in the 400's message; "" for a normal body
	}{
		"metrics protobuf":      {"metrics", must(mreq.MarshalProto()), "application/x-protobuf", "", ""},
		"metrics json":          {"metrics", must(mreq.MarshalJSON()), "application/json", "", ""},
		"logs protobuf":         {"logs", must(lreq.MarshalProto()), "application/x-protobuf", "", ""},
		"logs json":             {"logs", must(lreq.MarshalJSON()), "application/json", "", ""},
		"deep metrics protobuf": {"metrics", deepMetrics, "application/x-protobuf", "", "OTLP metrics request nests more than 256 levels deep"},
		"deep metrics gzip":     {"metrics", gzipped(t, deepMetrics), "application/x-protobuf", "gzip", "OTLP metrics request nests more than 256 levels deep"},
		"deep metrics json":     {"metrics", deepJSON("metrics", deepJSONLevels), "application/json", "", "OTLP metrics request nests more than 514 levels deep"},
		"deep logs protobuf":    {"logs", deepBody(deepLevels, logBodyPath), "application/x-protobuf", "", "OTLP logs request nests more than 256 levels deep"},
		"deep logs json":        {"logs", deepJSON("logs", deepJSONLevels), "application/json", "", "OTLP logs request nests more than 514 levels deep"},
	} {
		t.Run(name, func(t *testing.T) {
			d, ings := newTestDistributor(t, 1, 1, defaultLimits())
			logs, logsIng := newTestLogs(d)
			h, stored := d.OTLPHandler(tenant.Resolver{}), ings[0].count
			if tc.signal == "logs" {
				h, stored = logs.OTLPHandler(tenant.Resolver{}), logsIng.count
			}
			post := func(body []byte, ct, enc string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodPost, "/v1/"+tc.signal, bytes.NewReader(body))
				r.Header.Set("Content-Type", ct)
				if enc != "" {
					r.Header.Set("Content-Encoding", enc)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				return rec
			}
			rec := post(tc.body, tc.ct, tc.enc)
			if tc.want == "" {
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
				require.NotZero(t, stored())
				return
			}
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.want)
			require.Zero(t, stored())
			// Still serving.
			normal := must(mreq.MarshalProto())
			if tc.signal == "logs" {
				normal = must(lreq.MarshalProto())
			}
			rec = post(normal, "application/x-protobuf", "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.NotZero(t, stored())
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// rawCodec sends and receives messages as the bytes they are, for a client
// to send what no OTLP library would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestOTLPGRPCNestedBodies: the OTLP gRPC listener answers InvalidArgument,
// naming the bound, to metrics, logs and traces requests nesting too deep
// (and to requests that are not protobuf), before pdata reads them, and
// goes on serving OTLP clients.
func TestOTLPGRPCNestedBodies(t *testing.T) {
	d, ings := newTestDistributor(t, 1, 1, defaultLimits())
	logs, logsIng := newTestLogs(d)
	tracesIng := &fakeTracesIngester{traces: map[[16]byte]int{}}
	traces := NewTraces(d, d.ring, fakeTracesPool{"ingester-0:9095": tracesIng}, nil, log.NewNopLogger(), prometheus.NewRegistry())
	cfg := defaultConfig()
	cfg.OTLPGRPCListenAddress, cfg.OTLPHTTPListenAddress = "127.0.0.1:0", ""
	o := NewOTLPListeners(cfg, d, logs, traces, tenant.Resolver{}, log.NewNopLogger())
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), o))
	t.Cleanup(func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), o)) })
	conn, err := grpc.NewClient(o.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })

	now := time.Now()
	for _, tc := range []struct {
		signal, service string
		deep            []byte
		export          func(ctx context.Context) error // a normal export by pdata's client
		stored          func() int
		requests        *prometheus.CounterVec
	}{
		{
			"metrics", "opentelemetry.proto.collector.metrics.v1.MetricsService", deepBody(deepLevels, metricsAttrPath),
			func(ctx context.Context) error {
				resp, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(testMetrics(now)))
				if err == nil && resp.PartialSuccess().RejectedDataPoints() != 0 {
					err = fmt.Errorf("rejected: %s", resp.PartialSuccess().ErrorMessage())
				}
				return err
			},
			ings[0].count, d.metrics.requests,
		},
		{
			"logs", "opentelemetry.proto.collector.logs.v1.LogsService", deepBody(deepLevels, logBodyPath),
			func(ctx context.Context) error {
				resp, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(testLogs(now)))
				if err == nil && resp.PartialSuccess().RejectedLogRecords() != 0 {
					err = fmt.Errorf("rejected: %s", resp.PartialSuccess().ErrorMessage())
				}
				return err
			},
			logsIng.count, logs.metrics.requests,
		},
		{
			"traces", "opentelemetry.proto.collector.trace.v1.TraceService", deepBody(deepLevels, spanAttrPath),
			func(ctx context.Context) error {
				resp, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(someTraces(2)))
				if err == nil && resp.PartialSuccess().RejectedSpans() != 0 {
					err = fmt.Errorf("rejected: %s", resp.PartialSuccess().ErrorMessage())
				}
				return err
			},
			func() int {
				tracesIng.mu.Lock()
				defer tracesIng.mu.Unlock()
				return len(tracesIng.traces)
			},
			traces.metrics.requests,
		},
	} {
		t.Run(tc.signal, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			send := func(body []byte) error {
				var resp []byte
				return conn.Invoke(ctx, "/"+tc.service+"/Export", body, &resp, grpc.ForceCodecV2(rawCodec{}))
			}
			refused := tc.requests.WithLabelValues("otlp_grpc", codes.InvalidArgument.String())

			err := send(tc.deep)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			if tc.signal == "traces" {
				// Traces are cut into pieces from the protobuf itself
				// (tracepush), which bounds attribute values at 64 levels.
				require.Contains(t, status.Convert(err).Message(), "nests more than 64 deep")
			} else {
				require.Contains(t, status.Convert(err).Message(), "OTLP "+tc.signal+" request nests more than 256 levels deep")
			}
			require.Zero(t, tc.stored())
			require.Equal(t, 1.0, testutil.ToFloat64(refused))

			err = send([]byte("not protobuf"))
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), "decoding OTLP "+tc.signal)
			require.Equal(t, 2.0, testutil.ToFloat64(refused))

			require.NoError(t, tc.export(ctx))
			require.NotZero(t, tc.stored())
			require.Equal(t, 1.0, testutil.ToFloat64(tc.requests.WithLabelValues("otlp_grpc", codes.OK.String())))
		})
	}
}
