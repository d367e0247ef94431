package traceblock

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// spanRow is one span of data.parquet (FORMAT.md, "data.parquet"). Rows are
// sorted by trace ID, then start time, then span ID; the trace columns
// repeat in every row of a trace, where run-length and delta encodings
// make them nearly free, so that a search reads trace-level intrinsics
// without a second file.
type spanRow struct {
	TraceID      [16]byte `parquet:"trace_id,delta"`
	SpanID       [8]byte  `parquet:"span_id"`
	ParentSpanID [8]byte  `parquet:"parent_span_id"` // zero for a root span
	Start        int64    `parquet:"start,delta"`    // Unix ns
	Duration     int64    `parquet:"duration,delta"` // ns
	Name         string   `parquet:"name,dict"`
	Kind         int32    `parquet:"kind"`
	StatusCode   int32    `parquet:"status_code"`
	StatusMsg    string   `parquet:"status_message,dict"`
	TraceState   string   `parquet:"trace_state,dict"`
	Flags        uint32   `parquet:"flags"`

	// ServiceName is the resource's service.name, which Attrs of the
	// resource then leave out.
	ServiceName     string    `parquet:"service_name,dict"`
	ResourceAttrs   []attrRow `parquet:"resource_attrs"`
	ResourceDropped uint32    `parquet:"resource_dropped"`
	ResourceSchema  string    `parquet:"resource_schema_url,dict"`
	ScopeName       string    `parquet:"scope_name,dict"`
	ScopeVersion    string    `parquet:"scope_version,dict"`
	ScopeAttrs      []attrRow `parquet:"scope_attrs"`
	ScopeDropped    uint32    `parquet:"scope_dropped"`
	ScopeSchema     string    `parquet:"scope_schema_url,dict"`

	Attrs         []attrRow  `parquet:"attrs"`
	DroppedAttrs  uint32     `parquet:"dropped_attrs"`
	Events        []eventRow `parquet:"events"`
	DroppedEvents uint32     `parquet:"dropped_events"`
	Links         []linkRow  `parquet:"links"`
	DroppedLinks  uint32     `parquet:"dropped_links"`

	// The trace's columns: the same in every row of the trace.
	TraceStart  int64  `parquet:"trace_start,delta"` // earliest span start, Unix ns
	TraceEnd    int64  `parquet:"trace_end,delta"`   // latest span end, Unix ns
	RootService string `parquet:"root_service,dict"` // of the span without a parent; "" when none is stored
	RootName    string `parquet:"root_name,dict"`
}

// Value types of attrRow.Type: pcommon.ValueType's numbering.
const (
	typeEmpty  = int32(pcommon.ValueTypeEmpty)
	typeStr    = int32(pcommon.ValueTypeStr)
	typeInt    = int32(pcommon.ValueTypeInt)
	typeDouble = int32(pcommon.ValueTypeDouble)
	typeBool   = int32(pcommon.ValueTypeBool)
)

// attrRow is one attribute. Strings, integers, doubles and booleans are in
// their typed column; maps, arrays and bytes are in Any as the OTLP
// AnyValue's protobuf (FORMAT.md).
type attrRow struct {
	Key    string  `parquet:"key,dict"`
	Type   int32   `parquet:"type"`
	Str    string  `parquet:"str,dict"`
	Int    int64   `parquet:"int"`
	Double float64 `parquet:"double"`
	Bool   bool    `parquet:"bool"`
	Any    []byte  `parquet:"any"`
}

type eventRow struct {
	TimeSinceStart int64     `parquet:"time_since_start,delta"` // ns after the span's start
	Name           string    `parquet:"name,dict"`
	Attrs          []attrRow `parquet:"attrs"`
	Dropped        uint32    `parquet:"dropped"`
}

type linkRow struct {
	TraceID    [16]byte  `parquet:"trace_id"`
	SpanID     [8]byte   `parquet:"span_id"`
	TraceState string    `parquet:"trace_state,dict"`
	Flags      uint32    `parquet:"flags"`
	Attrs      []attrRow `parquet:"attrs"`
	Dropped    uint32    `parquet:"dropped"`
}

// appendAttrs appends m's attributes, but skip, to dst.
func appendAttrs(dst []attrRow, m pcommon.Map, skip string) ([]attrRow, error) {
	var err error
	m.Range(func(k string, v pcommon.Value) bool {
		if k == skip && skip != "" {
			return true
		}
		a := attrRow{Key: k, Type: int32(v.Type())}
		switch v.Type() {
		case pcommon.ValueTypeEmpty:
		case pcommon.ValueTypeStr:
			a.Str = v.Str()
		case pcommon.ValueTypeInt:
			a.Int = v.Int()
		case pcommon.ValueTypeDouble:
			a.Double = v.Double()
		case pcommon.ValueTypeBool:
			a.Bool = v.Bool()
		default:
			a.Any, err = marshalAny(v)
			if err != nil {
				err = fmt.Errorf("attribute %q: %w", k, err)
				return false
			}
		}
		dst = append(dst, a)
		return true
	})
	return dst, err
}

// putAttrs sets attrs into m.
func putAttrs(m pcommon.Map, attrs []attrRow) error {
	m.EnsureCapacity(m.Len() + len(attrs))
	for _, a := range attrs {
		switch a.Type {
		case typeEmpty:
			m.PutEmpty(a.Key)
		case typeStr:
			m.PutStr(a.Key, a.Str)
		case typeInt:
			m.PutInt(a.Key, a.Int)
		case typeDouble:
			m.PutDouble(a.Key, a.Double)
		case typeBool:
			m.PutBool(a.Key, a.Bool)
		default:
			if err := unmarshalAny(a.Any, m.PutEmpty(a.Key)); err != nil {
				return fmt.Errorf("attribute %q: %w", a.Key, err)
			}
		}
	}
	return nil
}

// rowOf fills r with span s of resource res and scope sc; the trace
// columns are the writer's.
func rowOf(r *spanRow, res pcommon.Resource, resSchema string, sc pcommon.InstrumentationScope, scSchema string, s ptrace.Span) error {
	var err error
	*r = spanRow{
		TraceID:         s.TraceID(),
		SpanID:          s.SpanID(),
		ParentSpanID:    s.ParentSpanID(),
		Start:           int64(s.StartTimestamp()),
		Duration:        int64(s.EndTimestamp()) - int64(s.StartTimestamp()),
		Name:            s.Name(),
		Kind:            int32(s.Kind()),
		StatusCode:      int32(s.Status().Code()),
		StatusMsg:       s.Status().Message(),
		TraceState:      s.TraceState().AsRaw(),
		Flags:           s.Flags(),
		ResourceDropped: res.DroppedAttributesCount(),
		ResourceSchema:  resSchema,
		ScopeName:       sc.Name(),
		ScopeVersion:    sc.Version(),
		ScopeDropped:    sc.DroppedAttributesCount(),
		ScopeSchema:     scSchema,
		DroppedAttrs:    s.DroppedAttributesCount(),
		DroppedEvents:   s.DroppedEventsCount(),
		DroppedLinks:    s.DroppedLinksCount(),
	}
	if v, ok := res.Attributes().Get(serviceNameKey); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
		r.ServiceName = v.Str()
		r.ResourceAttrs, err = appendAttrs(nil, res.Attributes(), serviceNameKey)
	} else {
		r.ResourceAttrs, err = appendAttrs(nil, res.Attributes(), "")
	}
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	if r.ScopeAttrs, err = appendAttrs(nil, sc.Attributes(), ""); err != nil {
		return fmt.Errorf("scope: %w", err)
	}
	if r.Attrs, err = appendAttrs(nil, s.Attributes(), ""); err != nil {
		return err
	}
	for i := range s.Events().Len() {
		e := s.Events().At(i)
		er := eventRow{TimeSinceStart: int64(e.Timestamp()) - r.Start, Name: e.Name(), Dropped: e.DroppedAttributesCount()}
		if er.Attrs, err = appendAttrs(nil, e.Attributes(), ""); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		r.Events = append(r.Events, er)
	}
	for i := range s.Links().Len() {
		l := s.Links().At(i)
		lr := linkRow{TraceID: l.TraceID(), SpanID: l.SpanID(), TraceState: l.TraceState().AsRaw(), Flags: l.Flags(), Dropped: l.DroppedAttributesCount()}
		if lr.Attrs, err = appendAttrs(nil, l.Attributes(), ""); err != nil {
			return fmt.Errorf("link %d: %w", i, err)
		}
		r.Links = append(r.Links, lr)
	}
	return nil
}

// serviceNameKey is the resource attribute with a column of its own.
const serviceNameKey = "service.name"

// putSpan sets s from r.
func putSpan(s ptrace.Span, r *spanRow) error {
	s.SetTraceID(r.TraceID)
	s.SetSpanID(r.SpanID)
	s.SetParentSpanID(r.ParentSpanID)
	s.SetStartTimestamp(pcommon.Timestamp(r.Start))
	s.SetEndTimestamp(pcommon.Timestamp(r.Start + r.Duration))
	s.SetName(r.Name)
	s.SetKind(ptrace.SpanKind(r.Kind))
	s.Status().SetCode(ptrace.StatusCode(r.StatusCode))
	s.Status().SetMessage(r.StatusMsg)
	s.TraceState().FromRaw(r.TraceState)
	s.SetFlags(r.Flags)
	s.SetDroppedAttributesCount(r.DroppedAttrs)
	s.SetDroppedEventsCount(r.DroppedEvents)
	s.SetDroppedLinksCount(r.DroppedLinks)
	if err := putAttrs(s.Attributes(), r.Attrs); err != nil {
		return err
	}
	for i, er := range r.Events {
		e := s.Events().AppendEmpty()
		e.SetTimestamp(pcommon.Timestamp(r.Start + er.TimeSinceStart))
		e.SetName(er.Name)
		e.SetDroppedAttributesCount(er.Dropped)
		if err := putAttrs(e.Attributes(), er.Attrs); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	for i, lr := range r.Links {
		l := s.Links().AppendEmpty()
		l.SetTraceID(lr.TraceID)
		l.SetSpanID(lr.SpanID)
		l.TraceState().FromRaw(lr.TraceState)
		l.SetFlags(lr.Flags)
		l.SetDroppedAttributesCount(lr.Dropped)
		if err := putAttrs(l.Attributes(), lr.Attrs); err != nil {
			return fmt.Errorf("link %d: %w", i, err)
		}
	}
	return nil
}

// putResource sets res from r's resource columns.
func putResource(res pcommon.Resource, r *spanRow) error {
	if r.ServiceName != "" {
		res.Attributes().PutStr(serviceNameKey, r.ServiceName)
	}
	res.SetDroppedAttributesCount(r.ResourceDropped)
	return putAttrs(res.Attributes(), r.ResourceAttrs)
}

// putScope sets sc from r's scope columns.
func putScope(sc pcommon.InstrumentationScope, r *spanRow) error {
	sc.SetName(r.ScopeName)
	sc.SetVersion(r.ScopeVersion)
	sc.SetDroppedAttributesCount(r.ScopeDropped)
	return putAttrs(sc.Attributes(), r.ScopeAttrs)
}
