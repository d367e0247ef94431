package tracegen

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// collect is an AppenderV2 keeping the last value and exemplars of every
// series.
type collect struct {
	values map[string]float64
	ex     map[string][]exemplar.Exemplar
}

func (c *collect) Append(_ storage.SeriesRef, ls labels.Labels, _, _ int64, v float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, o storage.AppendV2Options) (storage.SeriesRef, error) {
	key := ls.Get(labels.MetricName) + labels.NewBuilder(ls).Del(labels.MetricName).Labels().String()
	c.values[key] = v
	c.ex[key] = o.Exemplars
	return 0, nil
}
func (c *collect) Commit() error   { return nil }
func (c *collect) Rollback() error { return nil }

// call returns a trace of a client span in service "frontend" calling a
// server span in "checkout" taking d, failing when fail.
func call(tid byte, d time.Duration, fail bool) ptrace.Traces {
	td := ptrace.NewTraces()
	fe := td.ResourceSpans().AppendEmpty()
	fe.Resource().Attributes().PutStr("service.name", "frontend")
	c := fe.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	c.SetTraceID(pcommon.TraceID{tid})
	c.SetSpanID(pcommon.SpanID{tid, 1})
	c.SetName("GET /checkout")
	c.SetKind(ptrace.SpanKindClient)
	c.SetStartTimestamp(1e18)
	c.SetEndTimestamp(pcommon.Timestamp(1e18 + int64(d) + int64(time.Millisecond)))
	co := td.ResourceSpans().AppendEmpty()
	co.Resource().Attributes().PutStr("service.name", "checkout")
	s := co.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{tid})
	s.SetSpanID(pcommon.SpanID{tid, 2})
	s.SetParentSpanID(c.SpanID())
	s.SetName("POST /checkout")
	s.SetKind(ptrace.SpanKindServer)
	s.SetStartTimestamp(1e18)
	s.SetEndTimestamp(pcommon.Timestamp(1e18 + int64(d)))
	if fail {
		s.Status().SetCode(ptrace.StatusCodeError)
	}
	return td
}

func flush(t *testing.T, g *Generator) map[string]*collect {
	t.Helper()
	out := map[string]*collect{}
	g.appendTo = func(_ context.Context, tenant string, build func(storage.AppenderV2) error) error {
		c := &collect{values: map[string]float64{}, ex: map[string][]exemplar.Exemplar{}}
		out[tenant] = c
		return build(c)
	}
	require.NoError(t, g.Flush(context.Background()))
	return out
}

func TestSpanMetricsAndServiceGraph(t *testing.T) {
	g := New(Config{}, nil)
	g.Observe("t", call(1, 3*time.Millisecond, false))
	g.Observe("t", call(2, 100*time.Millisecond, true))
	g.Observe("t", call(3, 3*time.Millisecond, false))
	got := flush(t, g)["t"].values
	server := `{service="checkout", span_kind="SPAN_KIND_SERVER", span_name="POST /checkout"`
	require.Equal(t, 2.0, got[`traces_spanmetrics_calls_total`+server+`, status_code="STATUS_CODE_UNSET"}`])
	require.Equal(t, 1.0, got[`traces_spanmetrics_calls_total`+server+`, status_code="STATUS_CODE_ERROR"}`])
	require.Equal(t, 3.0, got[`traces_spanmetrics_calls_total{service="frontend", span_kind="SPAN_KIND_CLIENT", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`])
	// Latency: 3 ms falls in le=0.004, not in le=0.002.
	require.Equal(t, 2.0, got[`traces_spanmetrics_latency_bucket{le="0.004", service="checkout", span_kind="SPAN_KIND_SERVER", span_name="POST /checkout", status_code="STATUS_CODE_UNSET"}`])
	require.Equal(t, 0.0, got[`traces_spanmetrics_latency_bucket{le="0.002", service="checkout", span_kind="SPAN_KIND_SERVER", span_name="POST /checkout", status_code="STATUS_CODE_UNSET"}`])
	require.Equal(t, 2.0, got[`traces_spanmetrics_latency_count{service="checkout", span_kind="SPAN_KIND_SERVER", span_name="POST /checkout", status_code="STATUS_CODE_UNSET"}`])
	require.InDelta(t, 0.006, got[`traces_spanmetrics_latency_sum{service="checkout", span_kind="SPAN_KIND_SERVER", span_name="POST /checkout", status_code="STATUS_CODE_UNSET"}`], 1e-9)

	edge := `{client="frontend", server="checkout"}` // connection_type "" is no label
	require.Equal(t, 3.0, got[`traces_service_graph_request_total`+edge])
	require.Equal(t, 1.0, got[`traces_service_graph_request_failed_total`+edge])
	require.Equal(t, 3.0, got[`traces_service_graph_request_server_seconds_count`+edge])
	require.Equal(t, 3.0, got[`traces_service_graph_request_client_seconds_count`+edge])
	require.Equal(t, 3.0, got[`traces_service_graph_request_server_seconds_bucket{client="frontend", le="+Inf", server="checkout"}`])

	// Exemplars carry the trace ID of a recent span.
	ex := flush(t, g)["t"].ex[`traces_service_graph_request_total`+edge]
	require.Len(t, ex, 1)
	require.Equal(t, "03000000000000000000000000000000", ex[0].Labels.Get("traceID"))

	// Counters are cumulative over flushes.
	g.Observe("t", call(4, time.Second, false))
	require.Equal(t, 4.0, flush(t, g)["t"].values[`traces_service_graph_request_total`+edge])
}

func TestSeriesLimitAndStaleness(t *testing.T) {
	g := New(Config{MaxSeriesPerTenant: 20, StaleAfter: time.Minute}, nil)
	now := time.Unix(1e9, 0)
	g.now = func() time.Time { return now }
	for i := range 5 {
		td := call(byte(i), time.Millisecond, false)
		td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0).SetName("op-" + string(rune('a'+i)))
		g.Observe("t", td)
	}
	got := flush(t, g)["t"].values
	// The client's calls series and latency histogram (1 + 17 series) and
	// the first server calls series fit in 20; the four other servers'
	// calls go to the overflow series.
	require.Equal(t, 4.0, got[`traces_spanmetrics_calls_total{metric_overflow="true"}`])
	require.Equal(t, 5.0, got[`traces_spanmetrics_calls_total{service="frontend", span_kind="SPAN_KIND_CLIENT", span_name="GET /checkout", status_code="STATUS_CODE_UNSET"}`])
	now = now.Add(2 * time.Minute)
	require.NoError(t, g.Flush(context.Background())) // drops the stale series
	require.Empty(t, flush(t, g)["t"].values)
}
