package traceql

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzEval: no query that parses panics the engine, searching or
// computing metrics over the case files' traces.
func FuzzEval(f *testing.F) {
	for _, tc := range validQueries {
		f.Add(tc.in)
	}
	traces := sampleTraces(f)
	f.Fuzz(func(t *testing.T, src string) {
		q, err := Parse(src)
		if err != nil {
			return
		}
		ConditionsOf(q)
		if q.IsMetrics() {
			me, err := NewMetricsEvaluator(q, MetricsRequest{End: uint64(time.Minute), Step: uint64(time.Second)})
			if err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			for i := range traces {
				me.Observe(&traces[i])
			}
			me.Series()
			return
		}
		ev, err := NewEvaluator(q)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		for i := range traces {
			ev.Eval(&traces[i])
		}
	})
}

var benchQueries = []string{
	`{ resource.service.name = "svc-3" && span.http.status_code >= 500 }`,
	`{ span:name =~ "GET /api/.*" && span:duration > 10ms }`,
	`{ .http.method = "POST" } >> { status = error }`,
	`{ span:kind = server } | by(resource.service.name) | count() > 2`,
}

func BenchmarkParse(b *testing.B) {
	for _, src := range benchQueries {
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchTrace builds a trace of n spans with a fixed seed: a random tree
// over ten services.
func benchTrace(n int) Trace {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := Trace{ID: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
	resources := make([][]Attr, 10)
	for i := range resources {
		resources[i] = []Attr{{Key: "service.name", Value: StringValue(fmt.Sprintf("svc-%d", i))}}
	}
	methods := []string{"GET", "POST", "PUT"}
	for i := range n {
		s := Span{
			ID:         []byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 0, 0, 0, 1},
			Name:       fmt.Sprintf("GET /api/v%d", i%7),
			Kind:       Kind(1 + rng.IntN(5)),
			StatusCode: Status(rng.IntN(3)),
			Start:      uint64(i) * 1000,
			End:        uint64(i)*1000 + uint64(rng.IntN(50_000_000)),
			Resource:   resources[rng.IntN(len(resources))],
			Attrs: []Attr{
				{Key: "http.method", Value: StringValue(methods[rng.IntN(len(methods))])},
				{Key: "http.status_code", Value: IntValue(int64(200 + 100*rng.IntN(4)))},
			},
		}
		if i > 0 {
			p := rng.IntN(i)
			s.ParentID = []byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p), 0, 0, 0, 1}
		}
		tr.Spans = append(tr.Spans, s)
	}
	return tr
}

func BenchmarkEval(b *testing.B) {
	tr := benchTrace(1000)
	for _, src := range benchQueries {
		b.Run(src, func(b *testing.B) {
			q, err := Parse(src)
			require.NoError(b, err)
			ev, err := NewEvaluator(q)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				ev.Eval(&tr)
			}
			b.ReportMetric(float64(b.N)*float64(len(tr.Spans))/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

func BenchmarkMetrics(b *testing.B) {
	tr := benchTrace(1000)
	q, err := Parse(`{ span:kind = server } | quantile_over_time(duration, 0.5, 0.99) by (resource.service.name)`)
	require.NoError(b, err)
	req := MetricsRequest{End: uint64(time.Second), Step: uint64(100 * time.Millisecond)}
	b.ReportAllocs()
	for b.Loop() {
		me, err := NewMetricsEvaluator(q, req)
		require.NoError(b, err)
		me.Observe(&tr)
		me.Series()
	}
	b.ReportMetric(float64(b.N)*float64(len(tr.Spans))/b.Elapsed().Seconds(), "spans/s")
}
