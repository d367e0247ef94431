package traceql

import (
	"bufio"
	"encoding/hex"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// sampleTraces returns the traces of some case files.
func sampleTraces(t testing.TB) []Trace {
	var traces []Trace
	for _, path := range []string{"testdata/cases/filters.txt", "testdata/cases/structural.txt", "testdata/cases/pipelines.txt"} {
		f, err := os.Open(path)
		require.NoError(t, err)
		cf := &caseFile{names: map[string]string{}}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			keyword, rest, _ := strings.Cut(line, " ")
			switch keyword {
			case "trace", "resource", "scope", "span", "event", "link":
				require.NoError(t, cf.dataLine(keyword, strings.TrimSpace(rest)), line)
			}
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
		traces = append(traces, cf.traces...)
	}
	return traces
}

func TestFromPdata(t *testing.T) {
	td := ptrace.NewTraces()
	tid1 := pcommon.TraceID{1: 1, 15: 1}
	tid2 := pcommon.TraceID{15: 2}

	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib")
	ss.Scope().SetVersion("1.2")
	ss.Scope().Attributes().PutStr("lang", "go")
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(tid1)
	root.SetSpanID(pcommon.SpanID{7: 1})
	root.SetName("root")
	root.SetKind(ptrace.SpanKindServer)
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("bad")
	root.SetStartTimestamp(1000)
	root.SetEndTimestamp(5000)
	attrs := root.Attributes()
	attrs.PutStr("s", "x")
	attrs.PutInt("i", 7)
	attrs.PutDouble("f", 1.5)
	attrs.PutBool("b", true)
	attrs.PutEmpty("empty")
	sl := attrs.PutEmptySlice("arr")
	sl.AppendEmpty().SetStr("a")
	sl.AppendEmpty().SetInt(2)
	sl.AppendEmpty().SetEmptyMap().PutStr("k", "v")
	attrs.PutEmptyMap("m").PutInt("k", 1)
	attrs.PutEmptyBytes("bytes").FromRaw([]byte{1, 2})
	ev := root.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(2000)
	ev.Attributes().PutStr("exception.message", "boom")
	ln := root.Links().AppendEmpty()
	ln.SetTraceID(tid2)
	ln.SetSpanID(pcommon.SpanID{7: 9})
	ln.Attributes().PutStr("kind", "follows")

	other := ss.Spans().AppendEmpty()
	other.SetTraceID(tid2)
	other.SetSpanID(pcommon.SpanID{7: 2})
	other.SetName("other")

	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "db")
	child := rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	child.SetTraceID(tid1)
	child.SetSpanID(pcommon.SpanID{7: 3})
	child.SetParentSpanID(pcommon.SpanID{7: 1})
	child.SetName("child")

	traces := FromPdata(td)
	require.Len(t, traces, 2)
	require.Equal(t, tid1[:], traces[0].ID)
	require.Equal(t, tid2[:], traces[1].ID)
	require.Len(t, traces[0].Spans, 2)
	require.Len(t, traces[1].Spans, 1)

	r := traces[0].Spans[0]
	require.Equal(t, "root", r.Name)
	require.Equal(t, KindServer, r.Kind)
	require.Equal(t, StatusError, r.StatusCode)
	require.Equal(t, "bad", r.StatusMessage)
	require.Equal(t, uint64(1000), r.Start)
	require.Equal(t, uint64(4000), r.Duration())
	require.Nil(t, r.ParentID)
	require.Equal(t, []Attr{{Key: "service.name", Value: StringValue("api")}}, r.Resource)
	require.Equal(t, InstrumentationScope{Name: "lib", Version: "1.2", Attrs: []Attr{{Key: "lang", Value: StringValue("go")}}}, r.Scope)
	require.Equal(t, []Attr{
		{Key: "s", Value: StringValue("x")},
		{Key: "i", Value: IntValue(7)},
		{Key: "f", Value: FloatValue(1.5)},
		{Key: "b", Value: BoolValue(true)},
		{Key: "arr", Value: ArrayValue(StringValue("a"), IntValue(2), StringValue(`{"k":"v"}`))},
		{Key: "m", Value: StringValue(`{"k":1}`)},
		{Key: "bytes", Value: StringValue("AQI=")},
	}, r.Attrs)
	require.Equal(t, []Event{{Name: "exception", Time: 2000, Attrs: []Attr{{Key: "exception.message", Value: StringValue("boom")}}}}, r.Events)
	require.Equal(t, []Link{{TraceID: tid2[:], SpanID: []byte{7: 9}, Attrs: []Attr{{Key: "kind", Value: StringValue("follows")}}}}, r.Links)

	c := traces[0].Spans[1]
	require.Equal(t, []byte{7: 1}, c.ParentID)
	require.Equal(t, "db", c.Resource[0].Value.Str)

	// The converted traces answer queries.
	q, err := Parse(`{ resource.service.name = "api" } > { span:name = "child" && trace:id = "00010000000000000000000000000001" }`)
	require.NoError(t, err)
	ev2, err := NewEvaluator(q)
	require.NoError(t, err)
	got := ev2.Eval(&traces[0])
	require.Len(t, got, 1)
	require.Equal(t, "child", got[0].Spans[0].Name)
	require.Equal(t, 1, got[0].Spans[0].Index)
}

func TestTraceSummary(t *testing.T) {
	tr := Trace{Spans: []Span{
		{ID: []byte{2}, ParentID: []byte{1}, Start: 5, End: 50},
		{ID: []byte{3}, ParentID: []byte{0, 0}, Name: "late root", Start: 20, End: 30},
		{ID: []byte{1}, Name: "root", Start: 10, End: 40, Resource: []Attr{{Key: "service.name", Value: StringValue("svc")}}},
	}}
	require.Equal(t, "root", tr.Root().Name)
	start, end := tr.StartEnd()
	require.Equal(t, [2]uint64{5, 50}, [2]uint64{start, end})
	name, ok := tr.RootServiceName()
	require.True(t, ok)
	require.Equal(t, "svc", name)
	_, ok = (&Trace{Spans: tr.Spans[:1]}).RootServiceName()
	require.False(t, ok)
	require.Nil(t, (&Trace{}).Root())
}

// TestStoredNestedSets: nested sets stored with the spans keep structural
// queries right when spans in between are missing.
func TestStoredNestedSets(t *testing.T) {
	tr := Trace{Spans: []Span{
		{ID: []byte{1}, Name: "a", Start: 0},
		{ID: []byte{2}, ParentID: []byte{1}, Name: "b", Start: 1},
		{ID: []byte{3}, ParentID: []byte{2}, Name: "c", Start: 2},
		{ID: []byte{4}, ParentID: []byte{4}, Name: "self", Start: 3},
		{ID: []byte{5}, ParentID: []byte{6}, Name: "cycle1", Start: 4},
		{ID: []byte{6}, ParentID: []byte{5}, Name: "cycle2", Start: 5},
	}}
	ns := computeNestedSets(&tr)
	require.Equal(t, []int32{1, 2, 3, 7, 0, 0}, ns.left)
	require.Equal(t, []int32{6, 5, 4, 8, 0, 0}, ns.right)
	require.Equal(t, []int32{-1, 1, 2, -1, 0, 0}, ns.parent)

	q, err := Parse(`{ span:name = "a" } >> { span:name = "c" }`)
	require.NoError(t, err)
	ev, err := NewEvaluator(q)
	require.NoError(t, err)
	require.Len(t, ev.Eval(&tr), 1)

	stored := Trace{Spans: slicesClone(tr.Spans)}
	ComputeNestedSets(&stored)
	for i := range stored.Spans {
		if stored.Spans[i].NestedSetLeft == 0 {
			stored.Spans[i].NestedSetLeft = -1 // reached by nothing, but stored
		}
	}
	pruned := Trace{Spans: []Span{stored.Spans[0], stored.Spans[2]}}
	require.Len(t, ev.Eval(&pruned), 1, "with stored nested sets")
	unstored := Trace{Spans: []Span{tr.Spans[0], tr.Spans[2]}}
	require.Empty(t, ev.Eval(&unstored), "computed on what is left")
}

func slicesClone(s []Span) []Span { return append([]Span(nil), s...) }

// TestEvaluatorConcurrent: one Evaluator, one trace, many goroutines.
func TestEvaluatorConcurrent(t *testing.T) {
	traces := sampleTraces(t)
	q, err := Parse(`{ status = error } >> {} | by(resource.service.name) | select(span:childCount, nestedSetLeft)`)
	require.NoError(t, err)
	ev, err := NewEvaluator(q)
	require.NoError(t, err)
	want := make([][]Spanset, len(traces))
	for i := range traces {
		want[i] = ev.Eval(&traces[i])
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				for i := range traces {
					if got := ev.Eval(&traces[i]); !assertEqualSpansets(want[i], got) {
						t.Errorf("trace %d: concurrent result differs", i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func assertEqualSpansets(a, b []Spanset) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i].Spans) != len(b[i].Spans) {
			return false
		}
		for j := range a[i].Spans {
			if a[i].Spans[j].Index != b[i].Spans[j].Index {
				return false
			}
		}
	}
	return true
}

func TestEvalLimit(t *testing.T) {
	tr := Trace{Spans: []Span{
		{ID: []byte{1}, Start: 30}, {ID: []byte{2}, Start: 10}, {ID: []byte{3}, Start: 20},
	}}
	q, err := Parse(`{}`)
	require.NoError(t, err)
	ev, err := NewEvaluator(q)
	require.NoError(t, err)
	got := ev.EvalLimit(&tr, 2)
	require.Len(t, got, 1)
	require.Equal(t, 3, got[0].Matched)
	require.Equal(t, [][]byte{{2}, {3}}, spanIDs(got[0]))
	require.Len(t, ev.Eval(&tr)[0].Spans, 3)
}

func TestEvalEmptyTrace(t *testing.T) {
	q, err := Parse(`{}`)
	require.NoError(t, err)
	ev, err := NewEvaluator(q)
	require.NoError(t, err)
	require.Empty(t, ev.Eval(&Trace{}))
}

func TestMetricsExemplars(t *testing.T) {
	tr := Trace{ID: []byte{0xab}, Spans: []Span{
		{ID: []byte{1}, Start: uint64(1 * time.Second), End: uint64(2 * time.Second)},
		{ID: []byte{2}, Start: uint64(2 * time.Second), End: uint64(2500 * time.Millisecond)},
		{ID: []byte{3}, Start: uint64(12 * time.Second), End: uint64(13 * time.Second)},
	}}
	req := MetricsRequest{Start: 0, End: uint64(30 * time.Second), Step: uint64(10 * time.Second)}
	for _, tc := range []struct {
		query     string
		exemplars int
		want      []Exemplar
	}{
		{`{} | rate()`, 0, nil},
		{`{} | rate() with(exemplars=true)`, 0, []Exemplar{
			{TraceID: []byte{0xab}, SpanID: []byte{1}, TimeUnixNano: uint64(time.Second), Value: 0.2},
			{TraceID: []byte{0xab}, SpanID: []byte{3}, TimeUnixNano: uint64(12 * time.Second), Value: 0.1},
		}},
		{`{} | max_over_time(duration)`, 1, []Exemplar{
			{TraceID: []byte{0xab}, SpanID: []byte{1}, TimeUnixNano: uint64(time.Second), Value: 1},
		}},
		{`{} | max_over_time(duration) with(exemplars=false)`, 5, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := Parse(tc.query)
			require.NoError(t, err)
			r := req
			r.Exemplars = tc.exemplars
			me, err := NewMetricsEvaluator(q, r)
			require.NoError(t, err)
			me.Observe(&tr)
			series := me.Series()
			require.Len(t, series, 1)
			require.Equal(t, tc.want, series[0].Exemplars)
		})
	}
}

func TestMetricsRequest(t *testing.T) {
	q, err := Parse(`{} | rate()`)
	require.NoError(t, err)
	for _, tc := range []struct {
		req MetricsRequest
		err string
	}{
		{MetricsRequest{Start: 0, End: 10, Step: 0}, "step must be positive"},
		{MetricsRequest{Start: 10, End: 10, Step: 1}, "end must be after start"},
		{MetricsRequest{Start: 0, End: 1e9, Step: 1}, "more than 11000 steps"},
	} {
		_, err := NewMetricsEvaluator(q, tc.req)
		require.ErrorContains(t, err, tc.err)
	}
	search, err := Parse(`{}`)
	require.NoError(t, err)
	_, err = NewMetricsEvaluator(search, MetricsRequest{End: 10, Step: 1})
	require.ErrorContains(t, err, "not a metrics query")

	r := MetricsRequest{Start: 100, End: 125, Step: 10}
	require.Equal(t, 3, r.Steps())
	require.Equal(t, uint64(120), r.StepStart(2))
	me, err := NewMetricsEvaluator(q, r)
	require.NoError(t, err)
	me.Observe(&Trace{Spans: []Span{{Start: 99}, {Start: 124}, {Start: 125}}})
	s := me.Series()
	require.Len(t, s, 1)
	require.Equal(t, []float64{0, 0, 1e8}, s[0].Values, "one span per 10ns is 1e8/s")
}

func TestQuantile(t *testing.T) {
	require.True(t, math.IsNaN(quantile(nil, 0.5)))
	require.Equal(t, 3.0, quantile([]float64{3}, 0.99))
	require.Equal(t, 2.5, quantile([]float64{4, 1, 3, 2}, 0.5))
	require.Equal(t, 1.0, quantile([]float64{4, 1, 3, 2}, 0))
	require.Equal(t, 4.0, quantile([]float64{4, 1, 3, 2}, 1))
}

func TestLog2Bucket(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{0, 0}, {-1, 0}, {1, 1}, {0.001, 1.0 / 512}, {0.5, 0.5}, {3, 4}, {1024, 1024}, {1025, 2048},
	} {
		require.Equal(t, tc.want, log2Bucket(tc.in), "%v", tc.in)
	}
}

func TestValueString(t *testing.T) {
	require.Equal(t, `["a", 1, 1.5, true, 1ms, error, server, nil]`, ArrayValue(
		StringValue("a"), IntValue(1), FloatValue(1.5), BoolValue(true), DurationValue(time.Millisecond),
		StatusValue(StatusError), KindValue(KindServer), Value{}).String())
	require.Equal(t, "a", StringValue("a").Text())
	require.Equal(t, "2.0", FloatValue(2).String())
	require.Equal(t, "minInt", IntValue(math.MinInt64).String())
	require.Equal(t, hex.EncodeToString([]byte{1}), "01")
}
