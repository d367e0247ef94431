package traceblock

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/traceql"
)

// BenchmarkWrite writes 100,000 telemetrygen-like traces (200,000 spans)
// as one block: spans/s written and bytes per span in data.parquet and
// the bloom file.
func BenchmarkWrite(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	td := telemetrygenLike(rng, 100_000, 1_700_000_000_000_000_000)
	spans := td.SpanCount()
	b.ReportAllocs()
	var m Meta
	for b.Loop() {
		var err error
		m, err = Write(b.TempDir(), ulid.MustNew(1, nil), []ptrace.Traces{td}, "ingester", "")
		require.NoError(b, err)
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(m.Stats.DataBytes)/float64(spans), "data-B/span")
	b.ReportMetric(float64(m.Stats.BloomBytes)/float64(spans), "bloom-B/span")
}

// BenchmarkFindTrace looks traces up by ID in a block of 500,000
// telemetrygen-like traces in a filesystem bucket.
func BenchmarkFindTrace(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	td := telemetrygenLike(rng, 500_000, 1_700_000_000_000_000_000)
	blk, _ := writeBlock(b, td)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	ctx := context.Background()
	var worst time.Duration
	i := 0
	for b.Loop() {
		tid := [16]byte(spans.At(2 * (i * 7919 % 500_000)).TraceID())
		i++
		t0 := time.Now()
		_, ok, err := blk.FindTrace(ctx, tid)
		worst = max(worst, time.Since(t0))
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
	_ = binary.LittleEndian
}

// BenchmarkScan searches a block of 100,000 varied traces (about 250,000
// spans) for `{ resource.service.name = "payments" && span:status = error
// }` (about 5 % of the traces): read whole and evaluated by the caller
// (unfiltered), and with the query's Filter tested on its columns first.
func BenchmarkScan(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	td := variedTraces(rng, 100_000, 1_700_000_000_000_000_000)
	spans := td.SpanCount()
	blk, _ := writeBlock(b, td)
	q, err := traceql.Parse(`{ resource.service.name = "payments" && span:status = error }`)
	require.NoError(b, err)
	ev, err := traceql.NewEvaluator(q)
	require.NoError(b, err)
	flt, err := NewFilter(q)
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		flt  *Filter
	}{{"unfiltered", nil}, {"filtered", flt}} {
		b.Run(bc.name, func(b *testing.B) {
			matched := 0
			for b.Loop() {
				matched = 0
				require.NoError(b, blk.Scan(context.Background(), 0, 0, bc.flt, func(_ [16]byte, td ptrace.Traces) bool {
					if ev.MatchesPdata(td) {
						matched++
					}
					return true
				}))
			}
			b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(matched), "traces-matched")
		})
	}
}
