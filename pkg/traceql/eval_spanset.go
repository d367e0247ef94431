package traceql

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// spanset is an internal spanset: indexes into Trace.Spans, ascending,
// and the spanset's attributes.
type spanset struct {
	spans []int32
	attrs []Attr
}

// spansetFn evaluates a spanset expression over the spans of universe
// (ascending indexes); relations between spans are those of the whole
// trace.
type spansetFn func(ti *traceInfo, universe []int32) []spanset

// stageFn runs a pipeline stage over spansets.
type stageFn func(ti *traceInfo, in []spanset) []spanset

func compileSpanset(e SpansetExpr) (spansetFn, error) {
	switch e := e.(type) {
	case *SpansetFilter:
		return compileFilter(e)
	case *SpansetOperation:
		l, err := compileSpanset(e.LHS)
		if err != nil {
			return nil, err
		}
		r, err := compileSpanset(e.RHS)
		if err != nil {
			return nil, err
		}
		op := e.Op
		return func(ti *traceInfo, universe []int32) []spanset {
			lhs := flatten(l(ti, universe))
			if op == SpansetAnd && len(lhs) == 0 {
				return nil
			}
			rhs := flatten(r(ti, universe))
			return single(spansetOp(ti, op, lhs, rhs))
		}, nil
	case *Pipeline:
		src, err := compileSpanset(e.Source)
		if err != nil {
			return nil, err
		}
		stages := make([]stageFn, len(e.Stages))
		for i, s := range e.Stages {
			if stages[i], err = compileStage(s); err != nil {
				return nil, err
			}
		}
		return func(ti *traceInfo, universe []int32) []spanset {
			sets := src(ti, universe)
			for _, st := range stages {
				if len(sets) == 0 {
					return nil
				}
				sets = st(ti, sets)
			}
			return sets
		}, nil
	}
	return nil, fmt.Errorf("cannot evaluate %T", e)
}

func compileFilter(f *SpansetFilter) (spansetFn, error) {
	if f.Expr == nil {
		return func(_ *traceInfo, universe []int32) []spanset {
			return single(universe)
		}, nil
	}
	cond, err := compileCond(f.Expr)
	if err != nil {
		return nil, err
	}
	return func(ti *traceInfo, universe []int32) []spanset {
		var out []int32
		c := &spanCtx{ti: ti}
		for _, i := range universe {
			c.i, c.s = int(i), &ti.t.Spans[i]
			if cond(c) {
				out = append(out, i)
			}
		}
		return single(out)
	}, nil
}

func single(spans []int32) []spanset {
	if len(spans) == 0 {
		return nil
	}
	return []spanset{{spans: spans}}
}

// flatten returns the spans of all sets, ascending, each once.
func flatten(sets []spanset) []int32 {
	switch len(sets) {
	case 0:
		return nil
	case 1:
		return sets[0].spans
	}
	var all []int32
	for _, s := range sets {
		all = append(all, s.spans...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// union merges two ascending index lists.
func union(a, b []int32) []int32 {
	out := make([]int32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func usesNestedSets(op SpansetOp) bool {
	switch op {
	case SpansetDescendant, SpansetAncestor, SpansetUnionDescendant, SpansetUnionAncestor,
		SpansetNotDescendant, SpansetNotAncestor:
		return true
	}
	return false
}

// spansetOp applies a spanset operator to the flattened sides.
func spansetOp(ti *traceInfo, op SpansetOp, lhs, rhs []int32) []int32 {
	switch op {
	case SpansetAnd:
		if len(lhs) == 0 || len(rhs) == 0 {
			return nil
		}
		return union(lhs, rhs)
	case SpansetOr:
		return union(lhs, rhs)
	}
	var rel, inverse relation
	switch op {
	case SpansetChild, SpansetUnionChild, SpansetNotChild:
		rel, inverse = hasParentIn, hasChildIn
	case SpansetParent, SpansetUnionParent, SpansetNotParent:
		rel, inverse = hasChildIn, hasParentIn
	case SpansetDescendant, SpansetUnionDescendant, SpansetNotDescendant:
		rel, inverse = hasAncestorIn, hasDescendantIn
	case SpansetAncestor, SpansetUnionAncestor, SpansetNotAncestor:
		rel, inverse = hasDescendantIn, hasAncestorIn
	default:
		rel, inverse = hasSiblingIn, hasSiblingIn
	}
	switch op {
	case SpansetNotChild, SpansetNotParent, SpansetNotDescendant, SpansetNotAncestor, SpansetNotSibling:
		test := rel(ti, lhs)
		return filterSpans(rhs, func(i int32) bool { return !test(i) })
	case SpansetUnionChild, SpansetUnionParent, SpansetUnionDescendant, SpansetUnionAncestor, SpansetUnionSibling:
		right := filterSpans(rhs, rel(ti, lhs))
		left := filterSpans(lhs, inverse(ti, rhs))
		return union(left, right)
	}
	return filterSpans(rhs, rel(ti, lhs))
}

func filterSpans(spans []int32, keep func(int32) bool) []int32 {
	var out []int32
	for _, i := range spans {
		if keep(i) {
			out = append(out, i)
		}
	}
	return out
}

// A relation builds, from a set of spans, the test of whether a span
// stands in the relation to one of them.
type relation func(ti *traceInfo, set []int32) func(int32) bool

// hasParentIn: the span's parent is in the set.
func hasParentIn(ti *traceInfo, set []int32) func(int32) bool {
	ids := make(map[string]struct{}, len(set))
	for _, i := range set {
		ids[string(ti.t.Spans[i].ID)] = struct{}{}
	}
	return func(i int32) bool {
		s := &ti.t.Spans[i]
		if s.isRoot() {
			return false
		}
		_, ok := ids[string(s.ParentID)]
		return ok
	}
}

// hasChildIn: a span of the set is the span's child.
func hasChildIn(ti *traceInfo, set []int32) func(int32) bool {
	parents := make(map[string]struct{}, len(set))
	for _, i := range set {
		if s := &ti.t.Spans[i]; !s.isRoot() {
			parents[string(s.ParentID)] = struct{}{}
		}
	}
	return func(i int32) bool {
		_, ok := parents[string(ti.t.Spans[i].ID)]
		return ok
	}
}

// hasSiblingIn: another span of the set has the span's parent.
func hasSiblingIn(ti *traceInfo, set []int32) func(int32) bool {
	counts := make(map[string]int, len(set))
	for _, i := range set {
		if s := &ti.t.Spans[i]; !s.isRoot() {
			counts[string(s.ParentID)]++
		}
	}
	return func(i int32) bool {
		s := &ti.t.Spans[i]
		if s.isRoot() {
			return false
		}
		n := counts[string(s.ParentID)]
		if _, self := slices.BinarySearch(set, i); self {
			n--
		}
		return n > 0
	}
}

// hasAncestorIn: a span of the set is the span's ancestor. Nested sets
// are laminar, so the set's outermost intervals are disjoint and a span
// descends from a span of the set iff it lies strictly inside one.
func hasAncestorIn(ti *traceInfo, set []int32) func(int32) bool {
	ns := ti.nested
	type interval struct{ l, r int32 }
	var ivs []interval
	for _, i := range set {
		if ns.left[i] > 0 {
			ivs = append(ivs, interval{ns.left[i], ns.right[i]})
		}
	}
	slices.SortFunc(ivs, func(a, b interval) int { return int(a.l) - int(b.l) })
	outer := ivs[:0]
	for _, iv := range ivs {
		if len(outer) > 0 && iv.r < outer[len(outer)-1].r {
			continue // inside the previous one
		}
		outer = append(outer, iv)
	}
	return func(i int32) bool {
		l, r := ns.left[i], ns.right[i]
		if l == 0 {
			return false
		}
		k := sort.Search(len(outer), func(k int) bool { return outer[k].l >= l }) - 1
		return k >= 0 && r < outer[k].r
	}
}

// hasDescendantIn: a span of the set descends from the span, i.e. has
// its Left strictly between the span's Left and Right.
func hasDescendantIn(ti *traceInfo, set []int32) func(int32) bool {
	ns := ti.nested
	var lefts []int32
	for _, i := range set {
		if ns.left[i] > 0 {
			lefts = append(lefts, ns.left[i])
		}
	}
	slices.Sort(lefts)
	return func(i int32) bool {
		l, r := ns.left[i], ns.right[i]
		if l == 0 {
			return false
		}
		k, _ := slices.BinarySearch(lefts, l+1)
		return k < len(lefts) && lefts[k] < r
	}
}

func compileStage(s Stage) (stageFn, error) {
	switch s := s.(type) {
	case SpansetExpr:
		fn, err := compileSpanset(s)
		if err != nil {
			return nil, err
		}
		return func(ti *traceInfo, in []spanset) []spanset {
			var out []spanset
			for _, ss := range in {
				for _, r := range fn(ti, ss.spans) {
					r.attrs = append(slices.Clip(ss.attrs), r.attrs...)
					out = append(out, r)
				}
			}
			return out
		}, nil
	case *ScalarFilter:
		return compileScalarFilter(s)
	case *GroupBy:
		return compileGroupBy(s)
	case *Coalesce:
		return func(_ *traceInfo, in []spanset) []spanset {
			return single(flatten(in))
		}, nil
	case *Select:
		return func(_ *traceInfo, in []spanset) []spanset { return in }, nil
	}
	return nil, fmt.Errorf("cannot evaluate stage %T", s)
}

func compileGroupBy(g *GroupBy) (stageFn, error) {
	vals := make([]valueExpr, len(g.By))
	keys := make([]string, len(g.By))
	for i, b := range g.By {
		var err error
		if vals[i], err = compileValue(b); err != nil {
			return nil, err
		}
		keys[i] = "by(" + b.String() + ")"
	}
	return func(ti *traceInfo, in []spanset) []spanset {
		var out []spanset
		c := &spanCtx{ti: ti}
		for _, ss := range in {
			groups := map[string]int{} // group key → index in out
			for _, i := range ss.spans {
				c.i, c.s = int(i), &ti.t.Spans[i]
				var b strings.Builder
				attrs := make([]Attr, len(vals))
				for k, v := range vals {
					val := firstValue(v, c)
					attrs[k] = Attr{Key: keys[k], Value: val}
					b.WriteString(groupKey(val))
					b.WriteByte(0)
				}
				key := b.String()
				g, ok := groups[key]
				if !ok {
					g = len(out)
					groups[key] = g
					out = append(out, spanset{attrs: append(slices.Clip(ss.attrs), attrs...)})
				}
				out[g].spans = append(out[g].spans, i)
			}
		}
		return out
	}, nil
}

// firstValue returns the first value of v on the span; nil when it has
// none.
func firstValue(v valueExpr, c *spanCtx) Value {
	if v.single != nil {
		x, _ := v.single(c)
		return x
	}
	if xs := v.multi(c, nil); len(xs) > 0 {
		return xs[0]
	}
	return Value{}
}

// groupKey renders a value for grouping: different values (types
// included) render differently.
func groupKey(v Value) string {
	return v.Type.String() + ":" + v.String()
}

func compileScalarFilter(f *ScalarFilter) (stageFn, error) {
	var aggs []*Aggregate
	collectAggregates(f.LHS, &aggs)
	collectAggregates(f.RHS, &aggs)
	l, err := compileScalar(f.LHS)
	if err != nil {
		return nil, err
	}
	r, err := compileScalar(f.RHS)
	if err != nil {
		return nil, err
	}
	aggFns := make([]scalarFn, len(aggs))
	for i, a := range aggs {
		if aggFns[i], err = compileScalar(a); err != nil {
			return nil, err
		}
	}
	op := f.Op
	return func(ti *traceInfo, in []spanset) []spanset {
		var out []spanset
		for _, ss := range in {
			a, ok := l(ti, ss.spans)
			if !ok {
				continue
			}
			b, ok := r(ti, ss.spans)
			if !ok || !compareValues(op, a, b, nil) {
				continue
			}
			attrs := slices.Clip(ss.attrs)
			for i, agg := range aggs {
				if v, ok := aggFns[i](ti, ss.spans); ok {
					attrs = append(attrs, Attr{Key: agg.String(), Value: v})
				}
			}
			out = append(out, spanset{spans: ss.spans, attrs: attrs})
		}
		return out
	}, nil
}

func collectAggregates(e ScalarExpr, out *[]*Aggregate) {
	switch e := e.(type) {
	case *Aggregate:
		*out = append(*out, e)
	case *ScalarBinary:
		collectAggregates(e.LHS, out)
		collectAggregates(e.RHS, out)
	}
}

// scalarFn computes a scalar over a spanset's spans.
type scalarFn func(ti *traceInfo, spans []int32) (Value, bool)

func compileScalar(e ScalarExpr) (scalarFn, error) {
	switch e := e.(type) {
	case *Static:
		v := e.Value
		return func(*traceInfo, []int32) (Value, bool) { return v, true }, nil
	case *ScalarBinary:
		l, err := compileScalar(e.LHS)
		if err != nil {
			return nil, err
		}
		r, err := compileScalar(e.RHS)
		if err != nil {
			return nil, err
		}
		op := e.Op
		return func(ti *traceInfo, spans []int32) (Value, bool) {
			a, ok := l(ti, spans)
			if !ok {
				return a, false
			}
			b, ok := r(ti, spans)
			if !ok {
				return b, false
			}
			return arithmetic(op, a, b)
		}, nil
	case *Aggregate:
		if e.Op == AggregateCount {
			return func(_ *traceInfo, spans []int32) (Value, bool) { return IntValue(int64(len(spans))), true }, nil
		}
		v, err := compileValue(e.Expr)
		if err != nil {
			return nil, err
		}
		op := e.Op
		return func(ti *traceInfo, spans []int32) (Value, bool) {
			var acc aggregator
			c := &spanCtx{ti: ti}
			var buf []Value
			for _, i := range spans {
				c.i, c.s = int(i), &ti.t.Spans[i]
				buf = v.multi(c, buf[:0])
				for _, x := range buf {
					acc.add(x)
				}
			}
			return acc.result(op)
		}, nil
	}
	return nil, fmt.Errorf("cannot evaluate %T", e)
}

// aggregator accumulates numbers for avg, min, max and sum. Results keep
// the type of the values when they all have one type (an int or duration
// sum stays exact); otherwise they are floats. avg is a float, or a
// duration of durations.
type aggregator struct {
	n        int
	typ      ValueType // of all values so far; TypeFloat once mixed
	sumInt   int64
	sumFloat float64
	min, max Value
}

func (a *aggregator) add(v Value) {
	if !v.isNumeric() {
		return
	}
	f, _ := v.AsFloat()
	if a.n == 0 {
		a.typ, a.min, a.max = v.Type, v, v
	} else {
		if v.Type != a.typ {
			a.typ = TypeFloat
		}
		if c, _ := compareScalars(v, a.min); c < 0 {
			a.min = v
		}
		if c, _ := compareScalars(v, a.max); c > 0 {
			a.max = v
		}
	}
	a.n++
	a.sumInt += v.Num
	a.sumFloat += f
}

func (a *aggregator) result(op AggregateOp) (Value, bool) {
	if a.n == 0 {
		return Value{}, false
	}
	switch op {
	case AggregateMin:
		return a.min, true
	case AggregateMax:
		return a.max, true
	case AggregateSum:
		if a.typ == TypeInt || a.typ == TypeDuration {
			return Value{Type: a.typ, Num: a.sumInt}, true
		}
		return FloatValue(a.sumFloat), true
	case AggregateAvg:
		avg := a.sumFloat / float64(a.n)
		if a.typ == TypeDuration {
			return Value{Type: TypeDuration, Num: int64(avg)}, true
		}
		return FloatValue(avg), true
	}
	return Value{}, false
}
