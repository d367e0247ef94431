package traceql

// The in-memory trace model the engine evaluates queries on. The storage
// layer fills it (FromPdata converts OTLP); the engine only reads it, so
// one Trace may be evaluated by several goroutines at once.

// Trace is the spans of one trace.
type Trace struct {
	ID    []byte
	Spans []Span
}

// Span is one span with its resource and instrumentation scope.
type Span struct {
	ID, ParentID  []byte // ParentID is empty for a root span
	Name          string
	Kind          Kind
	StatusCode    Status
	StatusMessage string
	Start, End    uint64 // unix nanoseconds
	Attrs         []Attr
	// Resource holds the attributes of the span's resource; spans of one
	// resource may share the slice.
	Resource []Attr
	Scope    InstrumentationScope
	Events   []Event
	Links    []Link

	// Nested-set numbers of the span in its trace's tree: Left and Right
	// bracket the Left and Right of every descendant, Parent is the
	// parent's Left, -1 for a root. Zero means not computed: the engine
	// computes them for a trace in which any span has NestedSetLeft == 0
	// (ComputeNestedSets stores them ahead, e.g. at ingest, so that the
	// structure survives dropping spans).
	NestedSetLeft, NestedSetRight, NestedSetParent int32
}

// InstrumentationScope is the library that produced a span.
type InstrumentationScope struct {
	Name, Version string
	Attrs         []Attr
}

// Event is a span event.
type Event struct {
	Name  string
	Time  uint64 // unix nanoseconds
	Attrs []Attr
}

// Link is a span link.
type Link struct {
	TraceID, SpanID []byte
	Attrs           []Attr
}

// Attr is an attribute: a key and a value that is not nil.
type Attr struct {
	Key   string
	Value Value
}

// Duration returns the span's duration in nanoseconds (0 when it ends
// before it starts).
func (s *Span) Duration() uint64 {
	if s.End < s.Start {
		return 0
	}
	return s.End - s.Start
}

// Root returns the trace's root span: the span without a parent that
// starts first. It is nil when no span of the trace is a root (the root
// has not arrived).
func (t *Trace) Root() *Span {
	var root *Span
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.isRoot() && (root == nil || s.Start < root.Start) {
			root = s
		}
	}
	return root
}

// StartEnd returns the earliest start and the latest end of the trace's
// spans; trace:duration is their difference.
func (t *Trace) StartEnd() (start, end uint64) {
	for i := range t.Spans {
		s := &t.Spans[i]
		if i == 0 || s.Start < start {
			start = s.Start
		}
		if s.End > end {
			end = s.End
		}
	}
	if end < start {
		end = start
	}
	return start, end
}

// RootServiceName returns the service.name resource attribute of the
// root span; ok is false without a root or without the attribute.
func (t *Trace) RootServiceName() (name string, ok bool) {
	root := t.Root()
	if root == nil {
		return "", false
	}
	v, ok := lookupAttr(root.Resource, "service.name")
	if !ok || v.Type != TypeString {
		return "", false
	}
	return v.Str, true
}

// lookupAttr returns the value of the attribute named key.
func lookupAttr(attrs []Attr, key string) (Value, bool) {
	for i := range attrs {
		if attrs[i].Key == key {
			return attrs[i].Value, attrs[i].Value.Type != TypeNil
		}
	}
	return Value{}, false
}

// isRoot reports whether a span has no parent: its ParentID is empty or
// all zeros.
func (s *Span) isRoot() bool {
	for _, b := range s.ParentID {
		if b != 0 {
			return false
		}
	}
	return true
}
