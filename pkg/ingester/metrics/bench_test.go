package metrics

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// The append stage of the write path alone: Ingester.Push of an already
// decoded and validated request of 2,000 series (tools/loadgen's shape) into
// a tenant's TSDB (head, WAL).
//
//	go test -run '^$' -bench . -benchmem ./pkg/ingester/

const benchBatch = 2000

func newBenchIngester(b *testing.B) *Ingester {
	b.Helper()
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.InstanceID = "ingester-bench"
	cfg.Ring.InstanceAddr = "127.0.0.1"
	limits := defaultLimits()
	limits.MaxGlobalSeriesPerTenant = 0
	i, err := New(cfg, b.TempDir(), "", ringconfig.Instance{ID: "ingester-bench", Addr: "127.0.0.1", Port: 9095}, validation.NewStaticOverrides(limits, nil), nil, nil, log.NewNopLogger(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), i); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), i) })
	return i
}

// benchRequest returns n series starting at series first, one sample each,
// with Kubernetes-style labels sorted by name.
func benchRequest(first, n int) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: make([]writev2.TimeSeries, n)}
	for k := range req.Timeseries {
		i := first + k
		t, m := i/200, i%200
		ls := [][2]string{
			{"__name__", "loadgen_metric_" + strconv.Itoa(m) + "_total"},
			{"cluster", "cluster-" + strconv.Itoa(t%4)},
			{"container", "app"},
			{"instance", fmt.Sprintf("10.%d.%d.%d:8080", (t>>16)&0xff, (t>>8)&0xff, t&0xff)},
			{"job", "loadgen"},
			{"namespace", "namespace-" + strconv.Itoa(t%40)},
			{"pod", fmt.Sprintf("loadgen-%07d", t)},
			{"service", "service-" + strconv.Itoa(t%200)},
		}
		refs := make([]uint32, 0, 2*len(ls))
		for _, l := range ls {
			refs = append(refs, st.Symbolize(l[0]), st.Symbolize(l[1]))
		}
		req.Timeseries[k] = writev2.TimeSeries{LabelsRefs: refs, Samples: []writev2.Sample{{Value: float64(1 + i%1000)}}}
	}
	req.Symbols = st.Symbols()
	return req
}

func setSamples(req *writev2.Request, ts int64) {
	for i := range req.Timeseries {
		s := &req.Timeseries[i].Samples[0]
		s.Value += float64(1 + i%7)
		s.Timestamp = ts
	}
}

func benchPush(b *testing.B, ctx context.Context, ing *Ingester, req *writev2.Request) {
	resp, err := ing.Push(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	if len(resp.Rejected) > 0 {
		b.Fatalf("rejected %v: %s", resp.Rejected, resp.FirstError)
	}
}

// BenchmarkIngesterPush appends one sample to each of 2,000 existing series
// per operation.
func BenchmarkIngesterPush(b *testing.B) {
	ing := newBenchIngester(b)
	ctx := user.InjectOrgID(context.Background(), "anonymous")
	req := benchRequest(0, benchBatch)
	base := time.Now().Add(-15 * time.Minute).UnixMilli()
	step := max(1, min(int64(15_000), int64(20*time.Minute/time.Millisecond)/int64(b.N+1)))
	setSamples(req, base)
	benchPush(b, ctx, ing, req) // creates the series
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		setSamples(req, base+int64(i+1)*step)
		benchPush(b, ctx, ing, req)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkIngesterPushNewSeries creates 2,000 series per operation.
func BenchmarkIngesterPushNewSeries(b *testing.B) {
	ing := newBenchIngester(b)
	ctx := user.InjectOrgID(context.Background(), "anonymous")
	now := time.Now().UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		req := benchRequest(i*benchBatch, benchBatch)
		setSamples(req, now)
		b.StartTimer()
		benchPush(b, ctx, ing, req)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "samples/s") // = new series/s
}
