package tempoapi

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// bigTrace is a trace of n spans in 10 services, from a fixed seed.
func bigTrace(n int) ptrace.Traces {
	rng := rand.New(rand.NewPCG(1, 2))
	td := ptrace.NewTraces()
	var scopes []ptrace.SpanSlice
	for i := range 10 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("service-%d", i))
		scopes = append(scopes, rs.ScopeSpans().AppendEmpty().Spans())
	}
	for i := range n {
		sp := scopes[i%10].AppendEmpty()
		sp.SetTraceID(pcommon.TraceID(testTraceID))
		var id [8]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		sp.SetSpanID(id)
		sp.SetName(fmt.Sprintf("operation-%d", i%50))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i+5) * time.Millisecond)))
		sp.Attributes().PutStr("http.method", "GET")
		sp.Attributes().PutInt("http.status_code", 200)
	}
	return td
}

// BenchmarkTraceByID measures answering a 10,000-span trace, which is all
// encoding once the Backend has it.
func BenchmarkTraceByID(b *testing.B) {
	const spans = 10_000
	f := newFake()
	f.traces[string(testTraceID)] = bigTrace(spans)
	h := newTestAPI(b, testConfig(), f)
	for _, accept := range []string{"application/protobuf", "application/json"} {
		b.Run(accept, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, PathPrefix+"v2/traces/abcdef012345678", nil)
			req.Header.Set("X-Scope-OrgID", "team-a")
			req.Header.Set("Accept", accept)
			b.ReportAllocs()
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				require.Equal(b, http.StatusOK, rec.Code)
				size = rec.Body.Len()
			}
			b.SetBytes(int64(size))
			b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// BenchmarkSearch measures a search answer of 200 traces of 3 span sets
// of 10 spans (Traces Drilldown's limit and spss), sorted and encoded.
func BenchmarkSearch(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := newFake()
	for i := range 200 {
		tr := TraceSearchMetadata{
			TraceID: id16(byte(i), byte(i>>8), 7), RootServiceName: "frontend", RootTraceName: "GET /cart",
			StartTimeUnixNano: uint64(t0.UnixNano()) + rng.Uint64N(1e12), DurationMs: rng.Uint32N(1000),
		}
		for range 3 {
			ss := SpanSet{Matched: 12}
			for k := range 10 {
				ss.Spans = append(ss.Spans, Span{
					SpanID: []byte{0, 0, 0, 0, 0, 0, byte(k), byte(i)}, Name: "op", StartTimeUnixNano: tr.StartTimeUnixNano + rng.Uint64N(1e9),
					DurationNanos: rng.Uint64N(1e9), Attributes: []KeyValue{{"http.status_code", IntValue(200)}, {"http.method", StringValue("GET")}},
				})
			}
			tr.SpanSets = append(tr.SpanSets, ss)
		}
		f.search.Traces = append(f.search.Traces, tr)
	}
	h := newTestAPI(b, testConfig(), f)
	req := httptest.NewRequest(http.MethodGet, PathPrefix+"search?q=%7B%7D&limit=200&spss=10", nil)
	req.Header.Set("X-Scope-OrgID", "team-a")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(b, http.StatusOK, rec.Code)
	}
	b.ReportMetric(200*float64(b.N)/b.Elapsed().Seconds(), "traces/s")
}
