package frontend

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/grafana/dskit/user"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/tempoapi"
	"github.com/canopy-observability/canopy/pkg/traceql"
)

// tempoConfig is the queriers' Tempo API configuration by default.
func tempoConfig() tempoapi.Config {
	var c tempoapi.Config
	flagext.DefaultValues(&c)
	return c
}

// memTraces is a tempoapi.Backend over whole traces in memory, every
// tenant's the same, answering as the querier does (pkg/querier,
// traces_search.go): a search finds the traces with spans in its range
// that the query matches, with their root names and span sets from the
// whole trace; a metrics query evaluates the traces with spans in its
// range. A search without a range looks at every trace. It is read-only
// once built, so safe for concurrent use.
type memTraces struct {
	traces []traceql.Trace
}

// overlaps tells whether tr has spans in [start, end] (zero times: any).
func overlaps(tr *traceql.Trace, start, end time.Time) bool {
	if start.IsZero() {
		return true
	}
	s, e := tr.StartEnd()
	return s <= uint64(end.UnixNano()) && e >= uint64(start.UnixNano())
}

func (m *memTraces) Search(_ context.Context, _ string, req tempoapi.SearchRequest) (tempoapi.SearchResponse, error) {
	var resp tempoapi.SearchResponse
	q, err := traceql.Parse(req.Query)
	if err != nil {
		return resp, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	ev, err := traceql.NewEvaluator(q)
	if err != nil {
		return resp, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	resp.Metrics.TotalBlocks = 1
	for i := range m.traces {
		tr := &m.traces[i]
		if !overlaps(tr, req.Start, req.End) {
			continue
		}
		resp.Metrics.InspectedTraces++
		resp.Metrics.InspectedBytes += 100
		s, e := tr.StartEnd()
		d := time.Duration(e - s)
		if (req.MinDuration > 0 && d < req.MinDuration) || (req.MaxDuration > 0 && d > req.MaxDuration) {
			continue
		}
		sets := ev.Eval(tr)
		if len(sets) == 0 {
			continue
		}
		md := tempoapi.TraceSearchMetadata{TraceID: tr.ID, StartTimeUnixNano: s, DurationMs: uint32((e - s) / 1e6)}
		if root := tr.Root(); root != nil {
			md.RootTraceName = root.Name
		}
		md.RootServiceName, _ = tr.RootServiceName()
		for _, set := range sets {
			ss := tempoapi.SpanSet{Matched: uint32(set.Matched)}
			for _, sp := range set.Spans {
				ss.Spans = append(ss.Spans, tempoapi.Span{SpanID: sp.SpanID, Name: sp.Name, StartTimeUnixNano: sp.StartUnixNano, DurationNanos: sp.DurationNanos, Attributes: apiKeyValues(sp.Attributes)})
			}
			md.SpanSets = append(md.SpanSets, ss)
		}
		resp.Traces = append(resp.Traces, md)
	}
	return resp, nil
}

func apiKeyValues(attrs []traceql.Attr) []tempoapi.KeyValue {
	var out []tempoapi.KeyValue
	for _, a := range attrs {
		out = append(out, tempoapi.KeyValue{Key: a.Key, Value: apiValue(a.Value)})
	}
	return out
}

func apiValue(v traceql.Value) tempoapi.Value {
	switch v.Type {
	case traceql.TypeString:
		return tempoapi.StringValue(v.Str)
	case traceql.TypeInt:
		return tempoapi.IntValue(v.Num)
	case traceql.TypeFloat:
		return tempoapi.DoubleValue(v.Float)
	case traceql.TypeBool:
		return tempoapi.BoolValue(v.Bool())
	case traceql.TypeNil:
		return tempoapi.Value{}
	}
	return tempoapi.StringValue(v.Text())
}

// metrics evaluates a metrics query as the querier does.
func (m *memTraces) metrics(req tempoapi.MetricsRequest) ([]traceql.Series, uint32, error) {
	q, err := traceql.Parse(req.Query)
	if err != nil || !q.IsMetrics() {
		return nil, 0, fmt.Errorf("%w: %q is not a metrics query (%v)", tempoapi.ErrBadRequest, req.Query, err)
	}
	me, err := traceql.NewMetricsEvaluator(q, traceql.MetricsRequest{Start: uint64(req.Start.UnixNano()), End: uint64(req.End.UnixNano()), Step: uint64(req.Step), Exemplars: req.Exemplars})
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", tempoapi.ErrBadRequest, err)
	}
	var n uint32
	for i := range m.traces {
		if overlaps(&m.traces[i], req.Start, req.End) {
			n++
			me.Observe(&m.traces[i])
		}
	}
	return me.Series(), n, nil
}

func (m *memTraces) MetricsQueryRange(_ context.Context, _ string, req tempoapi.MetricsRequest) (tempoapi.MetricsRangeResponse, error) {
	series, n, err := m.metrics(req)
	if err != nil {
		return tempoapi.MetricsRangeResponse{}, err
	}
	resp := tempoapi.MetricsRangeResponse{Metrics: tempoapi.SearchMetrics{InspectedTraces: n}}
	for _, s := range series {
		ts := tempoapi.TimeSeries{Labels: seriesLabels(s.Labels)}
		for i, v := range s.Values {
			if !math.IsNaN(v) {
				ts.Samples = append(ts.Samples, tempoapi.Sample{TimestampMs: req.Start.Add(time.Duration(i) * req.Step).UnixMilli(), Value: v})
			}
		}
		for _, ex := range s.Exemplars {
			ts.Exemplars = append(ts.Exemplars, tempoapi.Exemplar{
				Labels:      []tempoapi.KeyValue{{Key: "trace:id", Value: tempoapi.StringValue(fmt.Sprintf("%x", ex.TraceID))}},
				Value:       ex.Value,
				TimestampMs: int64(ex.TimeUnixNano / 1e6),
			})
		}
		resp.Series = append(resp.Series, ts)
	}
	return resp, nil
}

func (m *memTraces) MetricsQueryInstant(_ context.Context, _ string, req tempoapi.MetricsRequest) (tempoapi.MetricsInstantResponse, error) {
	req.Step = req.End.Sub(req.Start)
	series, n, err := m.metrics(req)
	if err != nil {
		return tempoapi.MetricsInstantResponse{}, err
	}
	resp := tempoapi.MetricsInstantResponse{Metrics: tempoapi.SearchMetrics{InspectedTraces: n}}
	for _, s := range series {
		resp.Series = append(resp.Series, tempoapi.InstantSeries{Labels: seriesLabels(s.Labels), Value: s.Values[0]})
	}
	return resp, nil
}

func seriesLabels(ls []traceql.Label) []tempoapi.KeyValue {
	out := make([]tempoapi.KeyValue, 0, len(ls))
	for _, l := range ls {
		out = append(out, tempoapi.KeyValue{Key: l.Name, Value: apiValue(l.Value)})
	}
	return out
}

func (m *memTraces) TraceByID(_ context.Context, _ string, id []byte, _, _ time.Time) (ptrace.Traces, bool, error) {
	for _, tr := range m.traces {
		if string(tr.ID) == string(id) {
			td := ptrace.NewTraces()
			sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetName(tr.Spans[0].Name)
			sp.SetTraceID([16]byte(tr.ID))
			sp.SetSpanID([8]byte(tr.Spans[0].ID))
			return td, true, nil
		}
	}
	return ptrace.Traces{}, false, nil
}

func (m *memTraces) SearchTags(context.Context, string, tempoapi.TagsRequest) (tempoapi.TagsResponse, error) {
	return tempoapi.TagsResponse{Scopes: []tempoapi.TagScope{{Name: tempoapi.ScopeResource, Tags: []string{"service.name"}}, {Name: tempoapi.ScopeSpan, Tags: []string{"http.status_code"}}}}, nil
}

func (m *memTraces) TagValues(context.Context, string, tempoapi.TagValuesRequest) (tempoapi.TagValuesResponse, error) {
	return tempoapi.TagValuesResponse{Values: []tempoapi.TagValue{{Value: "a"}, {Value: "b"}, {Value: "c"}}}, nil
}

// traceID is the 16-byte ID of the i-th generated trace: every fourth a
// small number, whose ID has leading zeros the API leaves out.
func traceID(i int, rng *rand.Rand) []byte {
	id := make([]byte, 16)
	if i%4 == 0 {
		binary.BigEndian.PutUint64(id[8:], uint64(i+1))
	} else {
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
	}
	return id
}

// genTraces makes n traces starting over hours hours from baseNs: a root
// and one to three children, of three services, some lasting over an
// hour, some starting at the same nanosecond.
func genTraces(rng *rand.Rand, n int, hours int64) *memTraces {
	m := &memTraces{}
	services := []string{"a", "b", "c"}
	for i := range n {
		start := uint64(baseNs + rng.Int63n(hours*int64(time.Hour)))
		if rng.Intn(5) == 0 {
			start -= start % uint64(time.Minute) // ties
		}
		length := uint64(rng.Int63n(int64(2 * time.Second)))
		if rng.Intn(8) == 0 {
			length = uint64(rng.Int63n(int64(3 * time.Hour))) // over a part's boundary
		}
		tr := traceql.Trace{ID: traceID(i, rng)}
		svc := services[rng.Intn(3)]
		tr.Spans = append(tr.Spans, traceql.Span{
			ID: spanID(rng), Name: "GET /" + svc, Kind: traceql.KindServer, Start: start, End: start + length,
			Resource: []traceql.Attr{{Key: "service.name", Value: traceql.StringValue(svc)}},
			Attrs:    []traceql.Attr{{Key: "http.status_code", Value: traceql.IntValue(int64(200 + 100*rng.Intn(4)))}},
		})
		for range rng.Intn(3) + 1 {
			child := services[rng.Intn(3)]
			s := start + uint64(rng.Int63n(int64(length)+1))
			tr.Spans = append(tr.Spans, traceql.Span{
				ID: spanID(rng), ParentID: tr.Spans[0].ID, Name: "work", Start: s, End: s + uint64(rng.Int63n(int64(length-(s-start))+1)),
				Resource: []traceql.Attr{{Key: "service.name", Value: traceql.StringValue(child)}},
				Attrs:    []traceql.Attr{{Key: "size", Value: traceql.IntValue(int64(rng.Intn(5)))}},
			})
		}
		m.traces = append(m.traces, tr)
	}
	return m
}

func spanID(rng *rand.Rand) []byte {
	id := make([]byte, 8)
	binary.BigEndian.PutUint64(id, rng.Uint64()|1)
	return id
}

// tempoDownstreamOver is the querier's real Tempo API over traces, as the
// query-frontend of a single process sees it, counting its calls.
func tempoDownstreamOver(traces tempoapi.Backend) (HandlerDownstream, *callLog) {
	api := tempoapi.NewHandler(tempoConfig(), traces, nil)
	calls := &callLog{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.add(r)
		api.ServeHTTP(w, r.WithContext(user.InjectOrgID(r.Context(), r.Header.Get("X-Scope-OrgID"))))
	})
	return HandlerDownstream{Handler: func() http.Handler { return h }}, calls
}

// callTempo sends a GET of the Tempo API to h as the tenant t (in its
// context and its header).
func callTempo(h http.Handler, path string, form url.Values) *httptest.ResponseRecorder {
	return callTempoMethod(h, http.MethodGet, path, form)
}

func callTempoMethod(h http.Handler, method, path string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, tempoapi.PathPrefix+path+"?"+form.Encode(), nil)
	req.Header.Set("X-Scope-OrgID", "t")
	req = req.WithContext(user.InjectOrgID(req.Context(), "t"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// direct is what the querier answers to a request sent to it directly.
func direct(down HandlerDownstream, path string, form url.Values) *httptest.ResponseRecorder {
	return callTempo(down.Handler(), path, form)
}

// unixSeconds writes Unix ns as Grafana sends times: whole seconds.
func unixSeconds(ns int64) string { return fmt.Sprint(ns / 1e9) }
