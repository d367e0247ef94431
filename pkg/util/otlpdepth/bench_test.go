package otlpdepth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// The benchmarks check requests shaped like an OpenTelemetry SDK's or
// Collector's exports: a Kubernetes resource, then metrics with a few
// attributes per data point (histograms with exemplars), or log records
// with a sentence of a body and a few attributes. Each reports MB/s of the
// decompressed body, and requests/s; BenchmarkPdataUnmarshal decodes the
// same bodies with pdata, for scale.
//
//	go test -run '^$' -bench . -benchmem ./pkg/util/otlpdepth/

func resource(attrs pcommon.Map) {
	attrs.PutStr("service.name", "checkout")
	attrs.PutStr("service.namespace", "shop")
	attrs.PutStr("service.instance.id", "checkout-7d9f8b6c5-x2x4q")
	attrs.PutStr("k8s.namespace.name", "shop-prod")
	attrs.PutStr("k8s.pod.name", "checkout-7d9f8b6c5-x2x4q")
	attrs.PutStr("k8s.node.name", "ip-10-0-12-34.eu-west-1.compute.internal")
	attrs.PutStr("cloud.region", "eu-west-1")
	attrs.PutStr("telemetry.sdk.language", "go")
	attrs.PutStr("telemetry.sdk.name", "opentelemetry")
	attrs.PutStr("telemetry.sdk.version", "1.36.0")
}

var (
	routes  = []string{"/api/cart", "/api/cart/items", "/api/checkout", "/api/orders/{id}", "/healthz"}
	methods = []string{"GET", "POST", "PUT", "DELETE"}
	words   = strings.Fields("the a order cart item user payment request failed succeeded retry timeout upstream service latency cache miss hit database query")
)

// metricsBody returns an ExportMetricsServiceRequest in protobuf: metrics
// sums, gauges and histograms of points data points each.
func metricsBody(tb testing.TB, metrics, points int) []byte {
	b, err := pmetricotlp.NewExportRequestFromMetrics(benchMetrics(metrics, points)).MarshalProto()
	require.NoError(tb, err)
	return b
}

func benchMetrics(metrics, points int) pmetric.Metrics {
	rnd := rand.New(rand.NewPCG(1, 2))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	resource(rm.Resource().Attributes())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	sm.Scope().SetVersion("0.61.0")
	attrs := func(m pcommon.Map, i int) {
		m.PutStr("http.request.method", methods[i%len(methods)])
		m.PutStr("http.route", routes[i%len(routes)])
		m.PutInt("http.response.status_code", int64(200+i%3*100))
		m.PutStr("server.address", "checkout.shop-prod.svc.cluster.local")
	}
	for i := range metrics {
		m := sm.Metrics().AppendEmpty()
		m.SetName(fmt.Sprintf("http.server.metric_%d", i))
		m.SetDescription("Measures an aspect of the HTTP server.")
		switch i % 3 {
		case 0:
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for j := range points {
				dp := s.DataPoints().AppendEmpty()
				dp.SetStartTimestamp(1_700_000_000_000_000_000)
				dp.SetTimestamp(1_700_000_060_000_000_000)
				dp.SetIntValue(rnd.Int64N(1e6))
				attrs(dp.Attributes(), j)
			}
		case 1:
			g := m.SetEmptyGauge()
			for j := range points {
				dp := g.DataPoints().AppendEmpty()
				dp.SetTimestamp(1_700_000_060_000_000_000)
				dp.SetDoubleValue(rnd.Float64())
				attrs(dp.Attributes(), j)
			}
		case 2:
			m.SetUnit("s")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for j := range points {
				dp := h.DataPoints().AppendEmpty()
				dp.SetStartTimestamp(1_700_000_000_000_000_000)
				dp.SetTimestamp(1_700_000_060_000_000_000)
				dp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
				counts := make([]uint64, 12)
				for k := range counts {
					counts[k] = rnd.Uint64N(100)
				}
				dp.BucketCounts().FromRaw(counts)
				dp.SetCount(uint64(rnd.IntN(1200)))
				dp.SetSum(rnd.Float64() * 100)
				attrs(dp.Attributes(), j)
				ex := dp.Exemplars().AppendEmpty()
				ex.SetTimestamp(1_700_000_059_000_000_000)
				ex.SetDoubleValue(rnd.Float64())
				ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(j)})
				ex.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(j)})
			}
		}
	}
	return md
}

// logsBody returns an ExportLogsServiceRequest in protobuf of n records.
func logsBody(tb testing.TB, n int) []byte {
	b, err := plogotlp.NewExportRequestFromLogs(benchLogs(n)).MarshalProto()
	require.NoError(tb, err)
	return b
}

func benchLogs(n int) plog.Logs {
	rnd := rand.New(rand.NewPCG(3, 4))
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	resource(rl.Resource().Attributes())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("go.opentelemetry.io/contrib/bridges/otelslog")
	var line strings.Builder
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		lr.SetObservedTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		line.Reset()
		for line.Len() < 120 {
			line.WriteString(words[rnd.IntN(len(words))])
			line.WriteByte(' ')
		}
		lr.Body().SetStr(line.String())
		lr.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, byte(i >> 8), byte(i)})
		lr.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, byte(i >> 8), byte(i)})
		a := lr.Attributes()
		a.PutStr("http.request.method", methods[i%len(methods)])
		a.PutStr("http.route", routes[i%len(routes)])
		a.PutInt("http.response.status_code", int64(200+i%3*100))
		a.PutStr("user.id", fmt.Sprintf("u-%06d", rnd.IntN(1e6)))
		a.PutDouble("duration_ms", rnd.Float64()*300)
	}
	return ld
}

// benchBodies returns the benchmarks' bodies by name: protobuf, and the
// same requests in JSON.
func benchBodies(b *testing.B) map[string][]byte {
	mjs, err := pmetricotlp.NewExportRequestFromMetrics(benchMetrics(60, 20)).MarshalJSON()
	require.NoError(b, err)
	ljs, err := plogotlp.NewExportRequestFromLogs(benchLogs(2000)).MarshalJSON()
	require.NoError(b, err)
	return map[string][]byte{
		"metrics/protobuf": metricsBody(b, 60, 20),
		"logs/protobuf":    logsBody(b, 2000),
		"metrics/json":     mjs,
		"logs/json":        ljs,
	}
}

func BenchmarkCheck(b *testing.B) {
	bodies := benchBodies(b)
	for _, name := range []string{"metrics/protobuf", "logs/protobuf", "metrics/json", "logs/json"} {
		body := bodies[name]
		check := CheckProto
		if strings.HasSuffix(name, "json") {
			check = CheckJSON
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := check(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
		})
	}
}

// BenchmarkPdataUnmarshal decodes the same bodies with pdata, to put
// BenchmarkCheck's figures in proportion.
func BenchmarkPdataUnmarshal(b *testing.B) {
	bodies := benchBodies(b)
	for _, name := range []string{"metrics/protobuf", "logs/protobuf", "metrics/json", "logs/json"} {
		body := bodies[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var err error
				switch name {
				case "metrics/protobuf":
					err = pmetricotlp.NewExportRequest().UnmarshalProto(body)
				case "logs/protobuf":
					err = plogotlp.NewExportRequest().UnmarshalProto(body)
				case "metrics/json":
					err = pmetricotlp.NewExportRequest().UnmarshalJSON(body)
				case "logs/json":
					err = plogotlp.NewExportRequest().UnmarshalJSON(body)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
		})
	}
}
