package traceql

import (
	"fmt"
	"regexp"
)

// Condition is what a storage layer needs to know about one field a query
// reads: which column to fetch and, when Op is not OpNone, a test of the
// field against a static Operand it may evaluate itself to skip spans or
// traces. The tests mean what they mean in TraceQL:
//
//   - an unscoped field (ScopeNone) is the span's attribute, else the
//     resource's;
//   - event and link fields hold when some event or link satisfies them;
//   - on arrays, = < <= > >= =~ hold when some element does; != and !~
//     when there are elements of the operand's kind and none is equal or
//     matches;
//   - values of another type than the operand (ints, floats and durations
//     are one kind) satisfy no test, != included;
//   - regular expressions (=~, !~) are Go RE2 patterns anchored at both
//     ends;
//   - with a nil Operand, = means the field is absent and != present.
type Condition struct {
	Field   Field
	Op      Operator
	Operand Value
}

func (c Condition) String() string {
	if c.Op == OpNone {
		return c.Field.String()
	}
	return c.Field.String() + " " + c.Op.String() + " " + c.Operand.String()
}

// Test compiles c's test of one value of its field, as the engine
// evaluates it (arrays included); it is nil when c has no test (OpNone)
// and for presence tests (a nil Operand), which concern a field's absence
// rather than a value.
func (c Condition) Test() (func(Value) bool, error) {
	if c.Op == OpNone || c.Operand.IsNil() {
		return nil, nil
	}
	var re *regexp.Regexp
	if c.Op == OpRegex || c.Op == OpNotRegex {
		if c.Operand.Type != TypeString {
			return nil, fmt.Errorf("%s needs a static string", c.Op)
		}
		var err error
		if re, err = compileRegex(c.Operand.Str); err != nil {
			return nil, err
		}
	}
	op, operand := c.Op, c.Operand
	return func(v Value) bool { return compareValues(op, v, operand, re) }, nil
}

// ConditionsOf returns every field the query reads, and the tests a
// storage layer may push down, for fetching only what a query needs.
//
// conds lists each field the query reads at least once; fields without a
// test come with OpNone. Spans always need their ID, parent ID, name,
// start and end besides.
//
// When allConditions is true, a span belongs to the query's first filter
// exactly when it passes every test in conds: the storage layer may drop
// the other spans (and traces left without spans) before evaluation.
//
// When allConditions is false, the tests are alternatives: a trace in
// which no span passes any of them cannot match and may be skipped, but
// the traces that remain must be evaluated whole. Without tests, no
// trace may be skipped.
//
// A query reading whole-trace fields (trace:*, span:childCount, the
// nested-set intrinsics) never has allConditions: those fields are
// computed from all the spans of a trace.
func ConditionsOf(q *Query) (conds []Condition, allConditions bool) {
	var tests []Condition
	tests, allConditions = conjunctionOf(q)
	if !allConditions {
		var ok bool
		if tests, ok = requiredOf(q.Expr); !ok {
			tests = nil
		}
	}
	seen := map[string]bool{}
	tested := map[Field]bool{}
	for _, c := range tests {
		key := c.String()
		if !seen[key] {
			seen[key] = true
			tested[c.Field] = true
			conds = append(conds, c)
		}
	}
	wholeTrace := false
	read := func(f Field) {
		switch f.Intrinsic {
		case IntrinsicChildCount, IntrinsicNestedSetLeft, IntrinsicNestedSetRight, IntrinsicNestedSetParent:
			wholeTrace = true
		default:
			if f.IsIntrinsic() && intrinsics[f.Intrinsic].level == levelTrace {
				wholeTrace = true
			}
		}
		if !tested[f] {
			tested[f] = true
			conds = append(conds, Condition{Field: f})
		}
	}
	walkFields(q.Expr, read)
	if m := q.Metrics; m != nil {
		walkFieldExpr(m.Expr, read)
		for _, b := range m.By {
			walkFieldExpr(b, read)
		}
	}
	return conds, allConditions && !wholeTrace
}

// conjunctionOf returns the tests of a query made of one filter that is a
// conjunction of simple tests, followed only by stages that look at no
// other spans (filters, aggregates, by, coalesce, select); ok is false for
// other queries.
func conjunctionOf(q *Query) ([]Condition, bool) {
	src := q.Expr
	if p, ok := src.(*Pipeline); ok {
		for _, s := range p.Stages {
			switch s.(type) {
			case *SpansetFilter, *ScalarFilter, *GroupBy, *Coalesce, *Select:
			default:
				return nil, false
			}
		}
		src = p.Source
	}
	f, ok := src.(*SpansetFilter)
	if !ok {
		return nil, false
	}
	var tests []Condition
	var collect func(e FieldExpr) bool
	collect = func(e FieldExpr) bool {
		if b, ok := e.(*BinaryExpr); ok && b.Op == OpAnd {
			return collect(b.LHS) && collect(b.RHS)
		}
		if s, ok := e.(*Static); ok && s.Value.Type == TypeBool && s.Value.Bool() {
			return true // { true }
		}
		c, ok := simpleTest(e)
		if ok {
			tests = append(tests, c)
		}
		return ok
	}
	if f.Expr != nil && !collect(f.Expr) {
		return nil, false
	}
	return tests, true
}

// requiredOf returns tests of which, when e selects spans from a trace,
// some span of the trace passes at least one; ok is false when there are
// no such tests.
func requiredOf(e SpansetExpr) ([]Condition, bool) {
	switch e := e.(type) {
	case *SpansetFilter:
		if e.Expr == nil {
			return nil, false
		}
		return requiredOfField(e.Expr)
	case *Pipeline:
		return requiredOf(e.Source)
	case *SpansetOperation:
		switch e.Op {
		case SpansetOr:
			l, ok := requiredOf(e.LHS)
			if !ok {
				return nil, false
			}
			r, ok := requiredOf(e.RHS)
			if !ok {
				return nil, false
			}
			return append(l, r...), true
		case SpansetNotChild, SpansetNotParent, SpansetNotDescendant, SpansetNotAncestor, SpansetNotSibling:
			return requiredOf(e.RHS)
		}
		// Both sides must select spans.
		if l, ok := requiredOf(e.LHS); ok {
			return l, true
		}
		return requiredOf(e.RHS)
	}
	return nil, false
}

func requiredOfField(e FieldExpr) ([]Condition, bool) {
	if b, ok := e.(*BinaryExpr); ok {
		switch b.Op {
		case OpAnd:
			if l, ok := requiredOfField(b.LHS); ok {
				return l, true
			}
			return requiredOfField(b.RHS)
		case OpOr:
			l, ok := requiredOfField(b.LHS)
			if !ok {
				return nil, false
			}
			r, ok := requiredOfField(b.RHS)
			if !ok {
				return nil, false
			}
			return append(l, r...), true
		}
	}
	c, ok := simpleTest(e)
	if !ok {
		return nil, false
	}
	return []Condition{c}, true
}

var flipped = map[Operator]Operator{
	OpEqual: OpEqual, OpNotEqual: OpNotEqual, OpGreater: OpLess, OpGreaterEqual: OpLessEqual,
	OpLess: OpGreater, OpLessEqual: OpGreaterEqual,
}

// simpleTest returns e as a test of a field against a static: `field op
// static`, `static op field`, a boolean attribute alone (= true) or
// negated (= false).
func simpleTest(e FieldExpr) (Condition, bool) {
	switch e := e.(type) {
	case *Field:
		if !e.IsIntrinsic() {
			return Condition{Field: *e, Op: OpEqual, Operand: BoolValue(true)}, true
		}
	case *UnaryExpr:
		if f, ok := e.Expr.(*Field); ok && e.Op == OpNot && !f.IsIntrinsic() {
			return Condition{Field: *f, Op: OpEqual, Operand: BoolValue(false)}, true
		}
	case *BinaryExpr:
		if !e.Op.isComparison() {
			return Condition{}, false
		}
		if f, ok := e.LHS.(*Field); ok {
			if s, ok := e.RHS.(*Static); ok {
				return Condition{Field: *f, Op: e.Op, Operand: s.Value}, true
			}
		}
		if s, ok := e.LHS.(*Static); ok {
			if f, ok := e.RHS.(*Field); ok {
				if op, ok := flipped[e.Op]; ok {
					return Condition{Field: *f, Op: op, Operand: s.Value}, true
				}
			}
		}
	}
	return Condition{}, false
}
