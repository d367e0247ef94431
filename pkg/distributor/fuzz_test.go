package distributor

import (
	"context"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// FuzzDecodeRemoteWrite feeds arbitrary bodies to both remote write decoders
// and validates whatever decodes: nothing may panic.
func FuzzDecodeRemoteWrite(f *testing.F) {
	now := time.Now().UnixMilli()
	v1, _ := makeV1(3, now).Marshal()
	f.Add(snappy.Encode(nil, v1), false)
	v2, _ := (&writev2.Request{Symbols: []string{"", "__name__", "m"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: now}}}}}).Marshal()
	f.Add(snappy.Encode(nil, v2), true)
	f.Add([]byte{}, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, true)
	hist, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Schema: 0, PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1}, Timestamp: now}}}}}).Marshal()
	f.Add(snappy.Encode(nil, hist), false)
	limits := defaultLimits()
	f.Fuzz(func(t *testing.T, body []byte, isV2 bool) {
		proto := protoV1
		if isV2 {
			proto = protoV2
		}
		req, err := DecodeRemoteWrite(body, proto, 1<<20)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("decode error of type %T, want *Error: %v", err, err)
			}
			return
		}
		validateRequest(req, &limits, now)
		for _, ts := range req.Timeseries {
			_ = shardKey("t", &ts, req.Symbols)
		}
	})
}

// FuzzOTLP decodes arbitrary OTLP protobuf bodies and translates them.
func FuzzOTLP(f *testing.F) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	m.SetEmptySum().SetIsMonotonic(true)
	m.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := m.Sum().DataPoints().AppendEmpty()
	dp.SetIntValue(3)
	dp.SetTimestamp(1)
	seed, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	f.Add(seed)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	d := &Distributor{cfg: defaultConfig()}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			return
		}
		out, _ := d.TranslateOTLP(context.Background(), req.Metrics())
		limits := defaultLimits()
		validateRequest(out, &limits, time.Now().UnixMilli())
	})
}
