package traceql

import (
	"cmp"
	"slices"
)

// Evaluator runs the search part of a query (its spanset expression or
// pipeline) over traces, one at a time. It is immutable once built: one
// Evaluator may evaluate many traces concurrently.
type Evaluator struct {
	query  *Query
	expr   spansetFn
	output []outputField
	needs  traceNeeds
}

// Spanset is a set of spans a query selected from one trace, as Tempo's
// search returns it: the spans in start order, and the spanset's own
// attributes (the values of by() and of the aggregates its scalar
// filters computed, keyed by their TraceQL text, e.g. "by(span.x)" and
// "count()").
type Spanset struct {
	Spans      []MatchedSpan
	Attributes []Attr
	// Matched is the number of spans in the spanset, of which Spans may
	// hold only the first (see EvalLimit).
	Matched int
}

// MatchedSpan is a span of a Spanset with the attributes the query read:
// every attribute or intrinsic in its conditions, aggregates, by() and
// select() that the span has, except name, duration and IDs (fields of
// their own) and trace-level intrinsics. Keys are attribute names
// without scope for span, resource and unscoped attributes
// ("http.method"), the scoped text for event, link and instrumentation
// attributes ("event.exception.message"), "status", "kind" and
// "statusMessage" for those span intrinsics and the TraceQL text of the
// others ("event:name", "nestedSetParent"). Of an event or link field,
// the first value is reported.
type MatchedSpan struct {
	// Index is the span's position in Trace.Spans.
	Index         int
	SpanID        []byte
	Name          string
	StartUnixNano uint64
	DurationNanos uint64
	Attributes    []Attr
}

type outputField struct {
	key string
	val valueExpr
}

// traceNeeds says which per-trace tables evaluation needs.
type traceNeeds struct {
	nestedSets, childCounts bool
}

// NewEvaluator compiles a parsed query's search part.
func NewEvaluator(q *Query) (*Evaluator, error) {
	e := &Evaluator{query: q}
	var err error
	if e.expr, err = compileSpanset(q.Expr); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	needs := func(f Field) {
		switch f.Intrinsic {
		case IntrinsicNestedSetLeft, IntrinsicNestedSetRight, IntrinsicNestedSetParent:
			e.needs.nestedSets = true
		case IntrinsicChildCount:
			e.needs.childCounts = true
		}
	}
	if m := q.Metrics; m != nil {
		walkFieldExpr(m.Expr, needs)
		for _, b := range m.By {
			walkFieldExpr(b, needs)
		}
	}
	walkFields(q.Expr, func(f Field) {
		needs(f)
		key := outputKey(f)
		if key == "" || seen[key] {
			return
		}
		seen[key] = true
		e.output = append(e.output, outputField{key: key, val: compileField(f)})
	})
	walkSpanset(q.Expr, func(x SpansetExpr) {
		if op, ok := x.(*SpansetOperation); ok && usesNestedSets(op.Op) {
			e.needs.nestedSets = true
		}
	})
	return e, nil
}

// Query returns the query the Evaluator runs.
func (e *Evaluator) Query() *Query { return e.query }

// Eval returns the spansets the query selects from t; none when the
// trace does not match.
func (e *Evaluator) Eval(t *Trace) []Spanset { return e.EvalLimit(t, 0) }

// EvalLimit is Eval returning at most spansPerSpanset spans of each
// spanset, the earliest (all for 0); Matched still counts them all.
func (e *Evaluator) EvalLimit(t *Trace, spansPerSpanset int) []Spanset {
	sets := e.eval(t)
	if len(sets) == 0 {
		return nil
	}
	out := make([]Spanset, 0, len(sets))
	ti := sets[0].ti
	c := &spanCtx{ti: ti}
	for _, s := range sets {
		spans := slices.Clone(s.spans)
		slices.SortFunc(spans, func(a, b int32) int {
			return cmp.Or(cmp.Compare(t.Spans[a].Start, t.Spans[b].Start), cmp.Compare(a, b))
		})
		ss := Spanset{Attributes: s.attrs, Matched: len(spans)}
		if spansPerSpanset > 0 && len(spans) > spansPerSpanset {
			spans = spans[:spansPerSpanset]
		}
		ss.Spans = make([]MatchedSpan, len(spans))
		for j, i := range spans {
			ss.Spans[j] = e.matchedSpan(c, int(i))
		}
		out = append(out, ss)
	}
	return out
}

// spansetWithTrace is an evaluated spanset and its trace's tables.
type spansetWithTrace struct {
	spanset
	ti *traceInfo
}

// eval runs the query on t and returns its internal spansets.
func (e *Evaluator) eval(t *Trace) []spansetWithTrace {
	if len(t.Spans) == 0 {
		return nil
	}
	ti := newTraceInfo(t, e.needs)
	universe := make([]int32, len(t.Spans))
	for i := range universe {
		universe[i] = int32(i)
	}
	sets := e.expr(ti, universe)
	out := make([]spansetWithTrace, len(sets))
	for i, s := range sets {
		out[i] = spansetWithTrace{spanset: s, ti: ti}
	}
	return out
}

func (e *Evaluator) matchedSpan(c *spanCtx, i int) MatchedSpan {
	s := &c.ti.t.Spans[i]
	m := MatchedSpan{Index: i, SpanID: s.ID, Name: s.Name, StartUnixNano: s.Start, DurationNanos: s.Duration()}
	c.i, c.s = i, s
	for _, f := range e.output {
		var v Value
		var ok bool
		if f.val.single != nil {
			v, ok = f.val.single(c)
		} else if vs := f.val.multi(c, nil); len(vs) > 0 {
			v, ok = vs[0], true
		}
		if ok {
			m.Attributes = append(m.Attributes, Attr{Key: f.key, Value: v})
		}
	}
	return m
}

// outputKey names a field among a matched span's attributes; "" for the
// fields not reported there.
func outputKey(f Field) string {
	if f.Intrinsic != IntrinsicNone {
		return intrinsics[f.Intrinsic].key
	}
	switch f.Scope {
	case ScopeNone, ScopeSpan, ScopeResource:
		return f.Name
	}
	return f.String()
}

// traceInfo holds what evaluation needs about one trace beyond its spans.
type traceInfo struct {
	t              *Trace
	start, end     uint64
	root           *Span
	rootService    Value
	hasRootService bool
	nested         nestedSets // when needed
	childCount     []int32    // when needed
}

func newTraceInfo(t *Trace, needs traceNeeds) *traceInfo {
	ti := &traceInfo{t: t, root: t.Root()}
	ti.start, ti.end = t.StartEnd()
	if name, ok := t.RootServiceName(); ok {
		ti.rootService, ti.hasRootService = StringValue(name), true
	}
	if needs.nestedSets {
		var ok bool
		if ti.nested, ok = storedNestedSets(t); !ok {
			ti.nested = computeNestedSets(t)
		}
	}
	if needs.childCounts {
		ti.childCount = make([]int32, len(t.Spans))
		byID := make(map[string]int, len(t.Spans))
		for i := range t.Spans {
			if _, dup := byID[string(t.Spans[i].ID)]; !dup {
				byID[string(t.Spans[i].ID)] = i
			}
		}
		for i := range t.Spans {
			if s := &t.Spans[i]; !s.isRoot() {
				if p, ok := byID[string(s.ParentID)]; ok && p != i {
					ti.childCount[p]++
				}
			}
		}
	}
	return ti
}

// walkSpanset calls fn on e and every spanset expression inside it.
func walkSpanset(e Stage, fn func(SpansetExpr)) {
	switch e := e.(type) {
	case *SpansetFilter:
		fn(e)
	case *SpansetOperation:
		fn(e)
		walkSpanset(e.LHS, fn)
		walkSpanset(e.RHS, fn)
	case *Pipeline:
		fn(e)
		walkSpanset(e.Source, fn)
		for _, s := range e.Stages {
			walkSpanset(s, fn)
		}
	}
}

// walkFields calls fn on every field the search part reads, in query
// order.
func walkFields(e Stage, fn func(Field)) {
	switch e := e.(type) {
	case *SpansetFilter:
		walkFieldExpr(e.Expr, fn)
	case *SpansetOperation:
		walkFields(e.LHS, fn)
		walkFields(e.RHS, fn)
	case *Pipeline:
		walkFields(e.Source, fn)
		for _, s := range e.Stages {
			walkFields(s, fn)
		}
	case *ScalarFilter:
		walkScalarFields(e.LHS, fn)
		walkScalarFields(e.RHS, fn)
	case *GroupBy:
		for _, b := range e.By {
			walkFieldExpr(b, fn)
		}
	case *Select:
		for _, f := range e.Fields {
			fn(f)
		}
	}
}

func walkScalarFields(e ScalarExpr, fn func(Field)) {
	switch e := e.(type) {
	case *Aggregate:
		walkFieldExpr(e.Expr, fn)
	case *ScalarBinary:
		walkScalarFields(e.LHS, fn)
		walkScalarFields(e.RHS, fn)
	}
}

func walkFieldExpr(e FieldExpr, fn func(Field)) {
	switch e := e.(type) {
	case *Field:
		fn(*e)
	case *BinaryExpr:
		walkFieldExpr(e.LHS, fn)
		walkFieldExpr(e.RHS, fn)
	case *UnaryExpr:
		walkFieldExpr(e.Expr, fn)
	}
}
