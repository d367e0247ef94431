package traceblock

import (
	"cmp"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/traceql"
)

// variedTraces returns n traces of 1 to 4 spans over four services whose
// attributes take every typed column, a few of them as arrays, so that a
// query's tests meet values of every type.
func variedTraces(rng *rand.Rand, n int, start int64) ptrace.Traces {
	td := ptrace.NewTraces()
	services := []string{"frontend", "checkout", "payments", ""}
	methods := []string{"GET", "POST", "PUT"}
	for i := range n {
		var tid [16]byte
		binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], rng.Uint64())
		t0 := start + int64(i)*1_000_000
		var parent pcommon.SpanID
		for k := range 1 + rng.IntN(4) {
			rs := td.ResourceSpans().AppendEmpty()
			ra := rs.Resource().Attributes()
			if svc := services[rng.IntN(len(services))]; svc != "" {
				ra.PutStr("service.name", svc)
			} else {
				ra.PutInt("service.name", 7) // not a string: left in resource_attrs
			}
			if rng.IntN(3) == 0 {
				ra.PutStr("region", "eu")
			}
			s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(spanID(rng))
			if k > 0 {
				s.SetParentSpanID(parent)
			}
			parent = s.SpanID()
			s.SetName(methods[rng.IntN(3)] + " /item")
			s.SetKind(ptrace.SpanKind(1 + rng.IntN(3)))
			s.SetStartTimestamp(pcommon.Timestamp(t0 + int64(k)*1000))
			s.SetEndTimestamp(pcommon.Timestamp(t0 + int64(k)*1000 + rng.Int64N(2_000_000)))
			if rng.IntN(10) == 0 {
				s.Status().SetCode(ptrace.StatusCodeError)
			}
			a := s.Attributes()
			switch rng.IntN(5) {
			case 0:
				a.PutInt("http.status_code", 500)
			case 1:
				a.PutDouble("http.status_code", 500)
			case 2:
				a.PutStr("http.status_code", "500")
			case 3:
				a.PutEmptySlice("http.status_code").AppendEmpty().SetInt(int64(200 + 300*rng.IntN(2)))
			default:
				a.PutInt("http.status_code", 200)
			}
			if rng.IntN(2) == 0 {
				a.PutStr("http.method", methods[rng.IntN(3)])
			}
			if rng.IntN(4) == 0 {
				a.PutBool("cache.hit", rng.IntN(2) == 0)
			}
			if rng.IntN(5) == 0 {
				a.PutStr("region", "us")
			}
		}
	}
	return td
}

// TestScanFilter: for every query, the traces a filtered scan returns and
// the query matches are exactly those an unfiltered scan returns and the
// query matches; the filter leaves out traces when the query has tests.
func TestScanFilter(t *testing.T) {
	defer func(n int64) { rowsPerRowGroup = n }(rowsPerRowGroup)
	rowsPerRowGroup = 4096 // traces across row groups
	rng := rand.New(rand.NewPCG(7, 8))
	b, _ := writeBlock(t, variedTraces(rng, 6_000, 1_700_000_000_000_000_000), richTrace(), bigTrace(10_000))
	require.Greater(t, len(b.mustFile(t).RowGroups()), 3)
	ctx := context.Background()
	for _, tc := range []struct {
		q     string
		prune bool // the filter must leave traces out
	}{
		{`{ span.http.status_code = 500 }`, true},
		{`{ resource.service.name = "payments" && span.http.status_code = 500 }`, true},
		{`{ .service.name = "checkout" }`, true},
		{`{ .region = "eu" }`, true},
		{`{ span.http.status_code >= 400 && span.http.method = "POST" }`, true},
		{`{ span.http.status_code != 200 }`, true},
		{`{ span.http.method =~ "P.*" }`, true},
		{`{ span.http.method !~ "P.*" }`, true},
		{`{ span.cache.hit }`, true},
		{`{ !span.cache.hit }`, true},
		{`{ span:status = error }`, true},
		{`{ span:kind = client && span:name = "PUT /item" }`, true},
		{`{ span:duration > 1500us }`, true},
		{`{ trace:duration > 1900us }`, true},
		{`{ trace:rootName = "GET /item" }`, true},
		{`{ trace:rootService = "frontend" }`, true},
		{`{ span:statusMessage = "payment declined" }`, true},
		{`{ span.http.status_code = 500 } || { span:status = error }`, true},
		{`{ span.http.status_code = "500" } >> { span.http.method = "GET" }`, true},
		{`{ span.http.status_code = 500 && span:id = "0102030405060708" }`, true},
		{`{ span.http.status_code = 500 } | count() > 1`, true},
		{`{ span.http.status_code = 500 || event:name = "exception" }`, false},
		{`{ span.http.method = nil }`, false},
		{`{ }`, false},
		{`{ span.retry = false && span.cart.total > 99 }`, true},
	} {
		q, err := traceql.Parse(tc.q)
		require.NoError(t, err, tc.q)
		ev, err := traceql.NewEvaluator(q)
		require.NoError(t, err)
		flt, err := NewFilter(q)
		require.NoError(t, err)
		scan := func(flt *Filter) (visited int, matched [][16]byte) {
			require.NoError(t, b.Scan(ctx, 0, 0, flt, func(id [16]byte, td ptrace.Traces) bool {
				visited++
				if ev.MatchesPdata(td) {
					matched = append(matched, id)
				}
				return true
			}))
			return visited, matched
		}
		all, want := scan(nil)
		slices.SortFunc(want, compareIDs)
		var visited int
		for _, procs := range []int{1, 7} { // one part; parts of a row group or two
			prev := runtime.GOMAXPROCS(procs)
			var got [][16]byte
			visited, got = scan(flt)
			runtime.GOMAXPROCS(prev)
			slices.SortFunc(got, compareIDs)
			require.Equal(t, want, got, "%s with %d parts", tc.q, procs)
		}
		if tc.prune {
			require.NotNil(t, flt, tc.q)
			require.Less(t, visited, all, tc.q)
		} else {
			require.Nil(t, flt, tc.q)
		}
		t.Logf("%-80s matched %5d, read %5d of %d", tc.q, len(want), visited, all)
	}
}

func (b *Block) mustFile(t *testing.T) *parquet.File {
	f, err := b.parquetFile(context.Background())
	require.NoError(t, err)
	return f
}

// bigTrace is one trace of n spans (over several row groups of 4,096),
// one of which has http.status_code 500.
func bigTrace(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "batch")
	ss := rs.ScopeSpans().AppendEmpty()
	tid := pcommon.TraceID{0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	for i := range n {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(tid)
		var id [8]byte
		binary.BigEndian.PutUint64(id[:], uint64(i+1))
		s.SetSpanID(id)
		s.SetName("step")
		s.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000))
		s.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1000 + 500))
		s.Attributes().PutInt("http.status_code", 200)
		if i == n/2 {
			s.Attributes().PutInt("http.status_code", 500)
		}
	}
	return td
}

// TestScanNewest: the newest limit traces a query matches are among those
// ScanNewest finds matching, which reads few more than it must.
func TestScanNewest(t *testing.T) {
	defer func(n int64) { rowsPerRowGroup = n }(rowsPerRowGroup)
	rowsPerRowGroup = 4096
	rng := rand.New(rand.NewPCG(9, 10))
	b, _ := writeBlock(t, variedTraces(rng, 6_000, 1_700_000_000_000_000_000), bigTrace(10_000))
	ctx := context.Background()
	startOf := func(td ptrace.Traces) uint64 {
		first := uint64(math.MaxUint64)
		for i := range td.ResourceSpans().Len() {
			for j := range td.ResourceSpans().At(i).ScopeSpans().Len() {
				spans := td.ResourceSpans().At(i).ScopeSpans().At(j).Spans()
				for k := range spans.Len() {
					first = min(first, uint64(spans.At(k).StartTimestamp()))
				}
			}
		}
		return first
	}
	type found struct {
		id    [16]byte
		start uint64
	}
	for _, src := range []string{
		`{ span.http.status_code = 500 }`,
		`{ span.http.status_code = 500 } | count() > 2`, // the filter lets through traces the query does not match
		`{ span:status = error && resource.service.name = "checkout" }`,
		`{ }`,
	} {
		q, err := traceql.Parse(src)
		require.NoError(t, err)
		ev, err := traceql.NewEvaluator(q)
		require.NoError(t, err)
		flt, err := NewFilter(q)
		require.NoError(t, err)
		var all []found
		require.NoError(t, b.Scan(ctx, 0, 0, nil, func(id [16]byte, td ptrace.Traces) bool {
			if ev.MatchesPdata(td) {
				all = append(all, found{id, startOf(td)})
			}
			return true
		}))
		slices.SortFunc(all, func(a, b found) int { return cmp.Compare(b.start, a.start) })
		for _, limit := range []int{1, 7, 100} {
			for _, procs := range []int{1, 3} {
				prev := runtime.GOMAXPROCS(procs)
				got := map[[16]byte]bool{}
				read := 0
				require.NoError(t, b.ScanNewest(ctx, 0, 0, flt, limit, func(id [16]byte, td ptrace.Traces) bool {
					read++
					m := ev.MatchesPdata(td)
					if m {
						got[id] = true
					}
					return m
				}))
				runtime.GOMAXPROCS(prev)
				for _, f := range all[:min(limit, len(all))] {
					require.True(t, got[f.id], "%s, limit %d: trace %x (start %d) missing", src, limit, f.id, f.start)
				}
				require.GreaterOrEqual(t, len(got), min(limit, len(all)))
				t.Logf("%-70s limit %3d: %d matched, %d read", src, limit, len(got), read)
			}
		}
	}
}
