package distributor

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv/consul"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	ingester "github.com/canopy-observability/canopy/pkg/ingester/metrics"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// The benchmarks below measure the write path stage by stage — decode,
// validate, shard — and whole (decode → validate → shard → append to a real
// ingester's TSDB, as one Canopy process does for POST /api/v1/push, without
// the HTTP server), on requests shaped like tools/loadgen's: 2,000 series of
// eight Kubernetes-style labels, one sample each. Each reports samples/s;
// BenchmarkDecodeRemoteWrite's MB/s is of the snappy-compressed body.
//
//	go test -run '^$' -bench . -benchmem ./pkg/distributor/

const benchBatch = 2000

// benchSeriesLabels returns the labels of series i (the same shape as
// tools/loadgen's series), sorted by name.
func benchSeriesLabels(i int) []prompb.Label {
	t, m := i/200, i%200
	return []prompb.Label{
		{Name: "__name__", Value: "loadgen_metric_" + strconv.Itoa(m) + "_total"},
		{Name: "cluster", Value: "cluster-" + strconv.Itoa(t%4)},
		{Name: "container", Value: "app"},
		{Name: "instance", Value: fmt.Sprintf("10.%d.%d.%d:8080", (t>>16)&0xff, (t>>8)&0xff, t&0xff)},
		{Name: "job", Value: "loadgen"},
		{Name: "namespace", Value: "namespace-" + strconv.Itoa(t%40)},
		{Name: "pod", Value: fmt.Sprintf("loadgen-%07d", t)},
		{Name: "service", Value: "service-" + strconv.Itoa(t%200)},
	}
}

// benchRequest is a remote write request of n series starting at series
// first, whose timestamps and values can be changed before each encoding.
type benchRequest struct {
	v1 prompb.WriteRequest
	v2 *writev2.Request
}

func newBenchRequest(first, n int) *benchRequest {
	r := &benchRequest{}
	for i := 0; i < n; i++ {
		r.v1.Timeseries = append(r.v1.Timeseries, prompb.TimeSeries{
			Labels:  benchSeriesLabels(first + i),
			Samples: []prompb.Sample{{Value: float64(1 + (first+i)%1000)}},
		})
	}
	r.v2 = FromV1(&r.v1)
	return r
}

// body returns the snappy-compressed request in the given protocol with every
// sample at ts, each value a counter step further.
func (r *benchRequest) body(tb testing.TB, proto string, ts int64) []byte {
	for i := range r.v1.Timeseries {
		s := &r.v1.Timeseries[i].Samples[0]
		s.Value += float64(1 + i%7)
		s.Timestamp = ts
		r.v2.Timeseries[i].Samples[0] = writev2.Sample{Value: s.Value, Timestamp: ts}
	}
	var raw []byte
	var err error
	if proto == protoV2 {
		raw, err = r.v2.Marshal()
	} else {
		raw, err = r.v1.Marshal()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

func protoName(proto string) string {
	if proto == protoV2 {
		return "rw2"
	}
	return "rw1"
}

func reportSamples(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkDecodeRemoteWrite(b *testing.B) {
	for _, proto := range []string{protoV1, protoV2} {
		b.Run(protoName(proto), func(b *testing.B) {
			body := newBenchRequest(0, benchBatch).body(b, proto, time.Now().UnixMilli())
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req, release, err := decodeRemoteWrite(body, proto, 100<<20, nil)
				if err != nil || len(req.Timeseries) != benchBatch {
					b.Fatal(err)
				}
				release()
			}
			reportSamples(b, benchBatch)
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	limits := defaultLimits()
	now := time.Now().UnixMilli()
	req, err := DecodeRemoteWrite(newBenchRequest(0, benchBatch).body(b, protoV2, now), protoV2, 100<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Every series is valid, so validation leaves req as it was.
		if res := validateRequest(req, &limits, now); res.droppedSamples != 0 || len(req.Timeseries) != benchBatch {
			b.Fatalf("dropped %d: %s", res.droppedSamples, res.firstError)
		}
	}
	reportSamples(b, benchBatch)
}

func BenchmarkShardKey(b *testing.B) {
	req, err := DecodeRemoteWrite(newBenchRequest(0, benchBatch).body(b, protoV2, time.Now().UnixMilli()), protoV2, 100<<20)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]uint32, len(req.Timeseries))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range req.Timeseries {
			keys[j] = shardKey("anonymous", &req.Timeseries[j], req.Symbols)
		}
	}
	reportSamples(b, benchBatch)
}

// benchLimits are the defaults with the ingestion rate and series limits out
// of the way.
func benchLimits() validation.Limits {
	l := defaultLimits()
	l.IngestionRate = 1e12
	l.IngestionBurstSize = 1 << 40
	l.MaxGlobalSeriesPerTenant = 0
	return l
}

// newBenchPipeline returns a distributor whose ring holds one ingester, a
// real one with its TSDB under a temporary directory, reached in-process as
// in a single Canopy process.
func newBenchPipeline(b *testing.B) *Distributor {
	b.Helper()
	limits := validation.NewStaticOverrides(benchLimits(), nil)
	var icfg ingester.Config
	icfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	icfg.Ring.Store = "inmemory"
	ing, err := ingester.New(icfg, b.TempDir(), "", ringconfig.Instance{ID: "ingester-0", Addr: "127.0.0.1", Port: 9095}, limits, nil, nil, log.NewNopLogger(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), ing); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), ing) })

	// The distributor's own ring, with the ingester as its only instance.
	store, closer := consul.NewInMemoryClient(ring.GetCodec(), log.NewNopLogger(), nil)
	b.Cleanup(func() { _ = closer.Close() })
	desc := ring.NewDesc()
	tokens := make([]uint32, 128)
	for j := range tokens {
		tokens[j] = uint32(uint64(j) * (1 << 32) / 128)
	}
	desc.AddIngester("ingester-0", "127.0.0.1:9095", "", tokens, ring.ACTIVE, time.Now(), false, time.Time{}, nil)
	if err := store.CAS(context.Background(), "ingester", func(interface{}) (interface{}, bool, error) { return desc, true, nil }); err != nil {
		b.Fatal(err)
	}
	r, err := ring.NewWithStoreClientAndStrategy(ring.Config{HeartbeatTimeout: time.Hour, ReplicationFactor: 1}, "ingester", "ingester", store, ring.NewDefaultReplicationStrategy(), nil, log.NewNopLogger())
	if err != nil {
		b.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), r) })
	for deadline := time.Now().Add(5 * time.Second); r.InstancesCount() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("ring never saw the ingester")
		}
	}
	local := func() (IngesterPusher, string) { return ing, "ingester-0" }
	return New(defaultConfig(), limits, r, fakePool{}, local, log.NewNopLogger(), prometheus.NewRegistry())
}

// pushBody runs what the remote write handler does with a body after reading
// it: decode, then validate, shard and append.
func pushBody(b *testing.B, d *Distributor, body []byte, proto string, want int) {
	req, err := DecodeRemoteWrite(body, proto, 100<<20)
	if err != nil {
		b.Fatal(err)
	}
	res, err := d.Push(context.Background(), "anonymous", req)
	if err != nil {
		b.Fatal(err)
	}
	if res.Samples != want || res.Dropped != 0 {
		b.Fatalf("wrote %d samples, dropped %d: %s", res.Samples, res.Dropped, res.Message)
	}
}

// tsStep spaces the samples of successive iterations so that b.N of them
// stay inside the accepted time range (creation grace period 10m).
func tsStep(n int) int64 {
	return max(1, min(int64(15_000), int64(20*time.Minute/time.Millisecond)/int64(n+1)))
}

// BenchmarkPushPath appends one new sample to each of 2,000 existing series
// per operation: the steady state of remote write.
func BenchmarkPushPath(b *testing.B) {
	for _, proto := range []string{protoV1, protoV2} {
		b.Run(protoName(proto), func(b *testing.B) {
			d := newBenchPipeline(b)
			r := newBenchRequest(0, benchBatch)
			base := time.Now().Add(-15 * time.Minute).UnixMilli()
			step := tsStep(b.N)
			pushBody(b, d, r.body(b, proto, base), proto, benchBatch) // creates the series
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				body := r.body(b, proto, base+int64(i+1)*step)
				b.StartTimer()
				pushBody(b, d, body, proto, benchBatch)
			}
			reportSamples(b, benchBatch)
		})
	}
}

// BenchmarkPushPathNewSeries pushes 2,000 series never seen before per
// operation: series creation, as in the first round of a new load.
func BenchmarkPushPathNewSeries(b *testing.B) {
	d := newBenchPipeline(b)
	now := time.Now().UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		body := newBenchRequest(i*benchBatch, benchBatch).body(b, protoV1, now)
		b.StartTimer()
		pushBody(b, d, body, protoV1, benchBatch)
	}
	reportSamples(b, benchBatch)
}
