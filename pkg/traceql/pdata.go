package traceql

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FromPdata converts OTLP traces into the engine's model, one Trace per
// trace ID in the order the IDs first appear; spans keep their order.
// Spans of one resource share its attribute slice. Attributes with an
// empty value are left out; maps and bytes become strings (JSON and
// base64), arrays keep their scalar elements (nested maps and arrays
// become strings).
func FromPdata(td ptrace.Traces) []Trace {
	var traces []Trace
	index := map[pcommon.TraceID]int{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resource := attrsFromMap(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := InstrumentationScope{
				Name:    ss.Scope().Name(),
				Version: ss.Scope().Version(),
				Attrs:   attrsFromMap(ss.Scope().Attributes()),
			}
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				tid := sp.TraceID()
				ti, ok := index[tid]
				if !ok {
					ti = len(traces)
					index[tid] = ti
					traces = append(traces, Trace{ID: append([]byte(nil), tid[:]...)})
				}
				traces[ti].Spans = append(traces[ti].Spans, spanFromPdata(sp, resource, scope))
			}
		}
	}
	return traces
}

func spanFromPdata(sp ptrace.Span, resource []Attr, scope InstrumentationScope) Span {
	id := sp.SpanID()
	s := Span{
		ID:            append([]byte(nil), id[:]...),
		Name:          sp.Name(),
		Kind:          Kind(sp.Kind()),
		StatusCode:    Status(sp.Status().Code()),
		StatusMessage: sp.Status().Message(),
		Start:         uint64(sp.StartTimestamp()),
		End:           uint64(sp.EndTimestamp()),
		Attrs:         attrsFromMap(sp.Attributes()),
		Resource:      resource,
		Scope:         scope,
	}
	if pid := sp.ParentSpanID(); !pid.IsEmpty() {
		s.ParentID = append([]byte(nil), pid[:]...)
	}
	events := sp.Events()
	for i := 0; i < events.Len(); i++ {
		e := events.At(i)
		s.Events = append(s.Events, Event{Name: e.Name(), Time: uint64(e.Timestamp()), Attrs: attrsFromMap(e.Attributes())})
	}
	links := sp.Links()
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		tid, sid := l.TraceID(), l.SpanID()
		s.Links = append(s.Links, Link{
			TraceID: append([]byte(nil), tid[:]...),
			SpanID:  append([]byte(nil), sid[:]...),
			Attrs:   attrsFromMap(l.Attributes()),
		})
	}
	return s
}

func attrsFromMap(m pcommon.Map) []Attr {
	if m.Len() == 0 {
		return nil
	}
	attrs := make([]Attr, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		if val := valueFromPdata(v, true); !val.IsNil() {
			attrs = append(attrs, Attr{Key: k, Value: val})
		}
		return true
	})
	return attrs
}

// valueFromPdata converts an OTLP value; arrays only at the top.
func valueFromPdata(v pcommon.Value, top bool) Value {
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		return Value{}
	case pcommon.ValueTypeStr:
		return StringValue(v.Str())
	case pcommon.ValueTypeInt:
		return IntValue(v.Int())
	case pcommon.ValueTypeDouble:
		return FloatValue(v.Double())
	case pcommon.ValueTypeBool:
		return BoolValue(v.Bool())
	case pcommon.ValueTypeSlice:
		if top {
			sl := v.Slice()
			elems := make([]Value, 0, sl.Len())
			for i := 0; i < sl.Len(); i++ {
				if e := valueFromPdata(sl.At(i), false); !e.IsNil() {
					elems = append(elems, e)
				}
			}
			return ArrayValue(elems...)
		}
	}
	return StringValue(v.AsString())
}

// MatchesPdata reports whether the query selects a spanset from any trace
// of td (FromPdata).
func (e *Evaluator) MatchesPdata(td ptrace.Traces) bool {
	for _, tr := range FromPdata(td) {
		if len(e.Eval(&tr)) > 0 {
			return true
		}
	}
	return false
}
