package traceql

import (
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
)

// Field expressions compile to closures over a spanCtx. A field of the
// span, its resource or its scope has at most one value (an array is one
// value); event and link fields have one value per event or link. A
// comparison holds when it holds for some pair of values (=, <, =~ …
// match any element of an array; != and !~ need a comparable value and
// no element that matches). A missing value makes every comparison false
// except `= nil`.

// spanCtx is the span an expression is evaluated on.
type spanCtx struct {
	ti *traceInfo
	i  int
	s  *Span
}

// valueExpr is a compiled field expression. single is set when the
// expression has at most one value; multi always is.
type valueExpr struct {
	single func(c *spanCtx) (Value, bool)
	multi  func(c *spanCtx, out []Value) []Value
}

type condFn func(c *spanCtx) bool

func fromSingle(f func(c *spanCtx) (Value, bool)) valueExpr {
	return valueExpr{single: f, multi: func(c *spanCtx, out []Value) []Value {
		if v, ok := f(c); ok {
			out = append(out, v)
		}
		return out
	}}
}

// compileValue compiles a field expression to its values.
func compileValue(e FieldExpr) (valueExpr, error) {
	switch e := e.(type) {
	case *Static:
		v := e.Value
		ok := !v.IsNil()
		return fromSingle(func(*spanCtx) (Value, bool) { return v, ok }), nil
	case *Field:
		return compileField(*e), nil
	case *UnaryExpr:
		if e.Op == OpNot {
			cond, err := compileCond(e)
			if err != nil {
				return valueExpr{}, err
			}
			return fromSingle(func(c *spanCtx) (Value, bool) { return BoolValue(cond(c)), true }), nil
		}
		inner, err := compileValue(e.Expr)
		if err != nil {
			return valueExpr{}, err
		}
		if inner.single != nil {
			return fromSingle(func(c *spanCtx) (Value, bool) {
				v, ok := inner.single(c)
				if !ok {
					return v, false
				}
				return negateValue(v)
			}), nil
		}
		return valueExpr{multi: func(c *spanCtx, out []Value) []Value {
			n := len(out)
			out = inner.multi(c, out)
			w := n
			for _, v := range out[n:] {
				if nv, ok := negateValue(v); ok {
					out[w] = nv
					w++
				}
			}
			return out[:w]
		}}, nil
	case *BinaryExpr:
		if !e.Op.isArithmetic() {
			cond, err := compileCond(e)
			if err != nil {
				return valueExpr{}, err
			}
			return fromSingle(func(c *spanCtx) (Value, bool) { return BoolValue(cond(c)), true }), nil
		}
		l, err := compileValue(e.LHS)
		if err != nil {
			return valueExpr{}, err
		}
		r, err := compileValue(e.RHS)
		if err != nil {
			return valueExpr{}, err
		}
		op := e.Op
		if l.single != nil && r.single != nil {
			return fromSingle(func(c *spanCtx) (Value, bool) {
				a, ok := l.single(c)
				if !ok {
					return a, false
				}
				b, ok := r.single(c)
				if !ok {
					return b, false
				}
				return arithmetic(op, a, b)
			}), nil
		}
		return valueExpr{multi: func(c *spanCtx, out []Value) []Value {
			ls := l.multi(c, nil)
			if len(ls) == 0 {
				return out
			}
			rs := r.multi(c, nil)
			for _, a := range ls {
				for _, b := range rs {
					if v, ok := arithmetic(op, a, b); ok {
						out = append(out, v)
					}
				}
			}
			return out
		}}, nil
	}
	return valueExpr{}, fmt.Errorf("cannot evaluate %T", e)
}

// compileCond compiles a field expression to a condition: true when the
// expression is true, or when a value of it is true (a boolean attribute
// used as a condition).
func compileCond(e FieldExpr) (condFn, error) {
	switch e := e.(type) {
	case *BinaryExpr:
		switch {
		case e.Op == OpAnd || e.Op == OpOr:
			l, err := compileCond(e.LHS)
			if err != nil {
				return nil, err
			}
			r, err := compileCond(e.RHS)
			if err != nil {
				return nil, err
			}
			if e.Op == OpAnd {
				return func(c *spanCtx) bool { return l(c) && r(c) }, nil
			}
			return func(c *spanCtx) bool { return l(c) || r(c) }, nil
		case e.Op.isComparison():
			return compileComparison(e)
		}
	case *UnaryExpr:
		if e.Op == OpNot {
			if isCondition(e.Expr) {
				inner, err := compileCond(e.Expr)
				if err != nil {
					return nil, err
				}
				return func(c *spanCtx) bool { return !inner(c) }, nil
			}
			// `!attr`: true when the attribute holds false.
			v, err := compileValue(e.Expr)
			if err != nil {
				return nil, err
			}
			return anyValue(v, func(x Value) bool { return hasBool(x, false) }), nil
		}
	}
	v, err := compileValue(e)
	if err != nil {
		return nil, err
	}
	return anyValue(v, func(x Value) bool { return hasBool(x, true) }), nil
}

// isCondition reports whether e is a comparison or logical expression
// (always has a value), rather than a value that may be missing.
func isCondition(e FieldExpr) bool {
	switch e := e.(type) {
	case *BinaryExpr:
		return !e.Op.isArithmetic()
	case *UnaryExpr:
		return e.Op == OpNot && isCondition(e.Expr)
	}
	return false
}

// hasBool reports whether v is b, or an array holding b.
func hasBool(v Value, b bool) bool {
	switch v.Type {
	case TypeBool:
		return v.Bool() == b
	case TypeArray:
		for _, e := range v.Array {
			if e.Type == TypeBool && e.Bool() == b {
				return true
			}
		}
	}
	return false
}

func anyValue(v valueExpr, pred func(Value) bool) condFn {
	if v.single != nil {
		return func(c *spanCtx) bool {
			x, ok := v.single(c)
			return ok && pred(x)
		}
	}
	return func(c *spanCtx) bool {
		for _, x := range v.multi(c, nil) {
			if pred(x) {
				return true
			}
		}
		return false
	}
}

func compileComparison(e *BinaryExpr) (condFn, error) {
	// Comparisons with nil test for presence.
	if s, ok := e.RHS.(*Static); ok && s.Value.IsNil() {
		return compilePresence(e.Op, e.LHS)
	}
	if s, ok := e.LHS.(*Static); ok && s.Value.IsNil() {
		return compilePresence(e.Op, e.RHS)
	}
	var re *regexp.Regexp
	if e.Op == OpRegex || e.Op == OpNotRegex {
		s, ok := e.RHS.(*Static)
		if !ok || s.Value.Type != TypeString {
			return nil, fmt.Errorf("%s needs a static string", e.Op)
		}
		var err error
		if re, err = compileRegex(s.Value.Str); err != nil {
			return nil, err
		}
	}
	l, err := compileValue(e.LHS)
	if err != nil {
		return nil, err
	}
	r, err := compileValue(e.RHS)
	if err != nil {
		return nil, err
	}
	op := e.Op
	if l.single != nil && r.single != nil {
		return func(c *spanCtx) bool {
			a, ok := l.single(c)
			if !ok {
				return false
			}
			b, ok := r.single(c)
			return ok && compareValues(op, a, b, re)
		}, nil
	}
	return func(c *spanCtx) bool {
		ls := l.multi(c, nil)
		if len(ls) == 0 {
			return false
		}
		rs := r.multi(c, nil)
		for _, a := range ls {
			for _, b := range rs {
				if compareValues(op, a, b, re) {
					return true
				}
			}
		}
		return false
	}, nil
}

// compilePresence compiles `expr = nil` (absent) and `expr != nil`.
func compilePresence(op Operator, e FieldExpr) (condFn, error) {
	v, err := compileValue(e)
	if err != nil {
		return nil, err
	}
	present := anyValue(v, func(Value) bool { return true })
	if op == OpEqual {
		return func(c *spanCtx) bool { return !present(c) }, nil
	}
	return present, nil
}

// compareValues evaluates `a op b`; either may be an array.
func compareValues(op Operator, a, b Value, re *regexp.Regexp) bool {
	if re != nil {
		if a.Type == TypeString {
			return re.MatchString(a.Str) == (op == OpRegex)
		}
		return matchRegex(op == OpRegex, a, re)
	}
	if a.Type != TypeArray && b.Type != TypeArray {
		c, ok := compareScalars(a, b)
		return ok && holds(op, c)
	}
	as, bs := elements(a), elements(b)
	if op == OpNotEqual {
		comparable := false
		for _, x := range as {
			for _, y := range bs {
				c, ok := compareScalars(x, y)
				if !ok {
					continue
				}
				if c == 0 {
					return false
				}
				comparable = true
			}
		}
		return comparable
	}
	for _, x := range as {
		for _, y := range bs {
			c, ok := compareScalars(x, y)
			if ok && holds(op, c) {
				return true
			}
		}
	}
	return false
}

// elements returns an array's elements, or v itself.
func elements(v Value) []Value {
	if v.Type == TypeArray {
		return v.Array
	}
	return []Value{v}
}

func holds(op Operator, c int) bool {
	switch op {
	case OpEqual:
		return c == 0
	case OpNotEqual:
		return c != 0
	case OpGreater:
		return c > 0
	case OpGreaterEqual:
		return c >= 0
	case OpLess:
		return c < 0
	case OpLessEqual:
		return c <= 0
	}
	return false
}

// matchRegex: =~ holds when a string (or an element) matches; !~ when
// there is a string and none matches.
func matchRegex(positive bool, v Value, re *regexp.Regexp) bool {
	sawString := false
	for _, x := range elements(v) {
		if x.Type != TypeString {
			continue
		}
		sawString = true
		if re.MatchString(x.Str) {
			return positive
		}
	}
	return !positive && sawString
}

func negateValue(v Value) (Value, bool) {
	switch v.Type {
	case TypeInt, TypeDuration:
		v.Num = -v.Num
		return v, true
	case TypeFloat:
		v.Float = -v.Float
		return v, true
	}
	return v, false
}

// arithmetic computes `a op b` for numbers, with the result types of
// arithmeticType. A remainder by zero has no value; a division by zero is
// an infinity or NaN.
func arithmetic(op Operator, a, b Value) (Value, bool) {
	if !a.isNumeric() || !b.isNumeric() {
		return Value{}, false
	}
	switch arithmeticType(op, a.Type, b.Type) {
	case TypeInt, TypeDuration:
		x, y := a.Num, b.Num
		var r int64
		switch op {
		case OpAdd:
			r = x + y
		case OpSub:
			r = x - y
		case OpMul:
			r = x * y
		case OpDiv:
			if y == 0 {
				return Value{}, false
			}
			r = x / y
		case OpMod:
			if y == 0 {
				return Value{}, false
			}
			r = x % y
		}
		t := TypeInt
		if a.Type == TypeDuration || b.Type == TypeDuration {
			t = TypeDuration
		}
		return Value{Type: t, Num: r}, true
	}
	x, _ := a.AsFloat()
	y, _ := b.AsFloat()
	var r float64
	switch op {
	case OpAdd:
		r = x + y
	case OpSub:
		r = x - y
	case OpMul:
		r = x * y
	case OpDiv:
		r = x / y
	case OpMod:
		if y == 0 {
			return Value{}, false
		}
		r = math.Mod(x, y)
	case OpPow:
		r = math.Pow(x, y)
	}
	return FloatValue(r), true
}

// compileField compiles an attribute or intrinsic.
func compileField(f Field) valueExpr {
	if f.Intrinsic != IntrinsicNone {
		return compileIntrinsic(f.Intrinsic)
	}
	name := f.Name
	switch f.Scope {
	case ScopeSpan:
		return fromSingle(func(c *spanCtx) (Value, bool) { return lookupAttr(c.s.Attrs, name) })
	case ScopeResource:
		return fromSingle(func(c *spanCtx) (Value, bool) { return lookupAttr(c.s.Resource, name) })
	case ScopeInstrumentation:
		return fromSingle(func(c *spanCtx) (Value, bool) { return lookupAttr(c.s.Scope.Attrs, name) })
	case ScopeEvent:
		return valueExpr{multi: func(c *spanCtx, out []Value) []Value {
			for i := range c.s.Events {
				if v, ok := lookupAttr(c.s.Events[i].Attrs, name); ok {
					out = append(out, v)
				}
			}
			return out
		}}
	case ScopeLink:
		return valueExpr{multi: func(c *spanCtx, out []Value) []Value {
			for i := range c.s.Links {
				if v, ok := lookupAttr(c.s.Links[i].Attrs, name); ok {
					out = append(out, v)
				}
			}
			return out
		}}
	}
	// Unscoped: the span's attribute, else the resource's.
	return fromSingle(func(c *spanCtx) (Value, bool) {
		if v, ok := lookupAttr(c.s.Attrs, name); ok {
			return v, true
		}
		return lookupAttr(c.s.Resource, name)
	})
}

func hexID(id []byte) (Value, bool) {
	if len(id) == 0 {
		return Value{}, false
	}
	return StringValue(hex.EncodeToString(id)), true
}

func compileIntrinsic(in Intrinsic) valueExpr {
	switch in {
	case IntrinsicName:
		return fromSingle(func(c *spanCtx) (Value, bool) { return StringValue(c.s.Name), true })
	case IntrinsicStatus:
		return fromSingle(func(c *spanCtx) (Value, bool) { return StatusValue(c.s.StatusCode), true })
	case IntrinsicStatusMessage:
		return fromSingle(func(c *spanCtx) (Value, bool) { return StringValue(c.s.StatusMessage), true })
	case IntrinsicKind:
		return fromSingle(func(c *spanCtx) (Value, bool) { return KindValue(c.s.Kind), true })
	case IntrinsicDuration:
		return fromSingle(func(c *spanCtx) (Value, bool) {
			return Value{Type: TypeDuration, Num: int64(c.s.Duration())}, true
		})
	case IntrinsicSpanID:
		return fromSingle(func(c *spanCtx) (Value, bool) { return hexID(c.s.ID) })
	case IntrinsicParentID:
		return fromSingle(func(c *spanCtx) (Value, bool) {
			if c.s.isRoot() {
				return Value{}, false
			}
			return hexID(c.s.ParentID)
		})
	case IntrinsicChildCount:
		return fromSingle(func(c *spanCtx) (Value, bool) { return IntValue(int64(c.ti.childCount[c.i])), true })
	case IntrinsicTraceDuration:
		return fromSingle(func(c *spanCtx) (Value, bool) {
			return Value{Type: TypeDuration, Num: int64(c.ti.end - c.ti.start)}, true
		})
	case IntrinsicTraceRootName:
		return fromSingle(func(c *spanCtx) (Value, bool) {
			if c.ti.root == nil {
				return Value{}, false
			}
			return StringValue(c.ti.root.Name), true
		})
	case IntrinsicTraceRootService:
		return fromSingle(func(c *spanCtx) (Value, bool) { return c.ti.rootService, c.ti.hasRootService })
	case IntrinsicTraceID:
		return fromSingle(func(c *spanCtx) (Value, bool) { return hexID(c.ti.t.ID) })
	case IntrinsicEventName:
		return valueExpr{multi: func(c *spanCtx, out []Value) []Value {
			for i := range c.s.Events {
				out = append(out, StringValue(c.s.Events[i].Name))
			}
			return out
		}}
	case IntrinsicEventTimeSinceStart:
		return valueExpr{multi: func(c *spanCtx, out []Value) []Value {
			for i := range c.s.Events {
				out = append(out, Value{Type: TypeDuration, Num: int64(c.s.Events[i].Time - c.s.Start)})
			}
			return out
		}}
	case IntrinsicLinkTraceID, IntrinsicLinkSpanID:
		return valueExpr{multi: func(c *spanCtx, out []Value) []Value {
			for i := range c.s.Links {
				id := c.s.Links[i].SpanID
				if in == IntrinsicLinkTraceID {
					id = c.s.Links[i].TraceID
				}
				if v, ok := hexID(id); ok {
					out = append(out, v)
				}
			}
			return out
		}}
	case IntrinsicInstrumentationName:
		return fromSingle(func(c *spanCtx) (Value, bool) {
			return StringValue(c.s.Scope.Name), c.s.Scope.Name != ""
		})
	case IntrinsicInstrumentationVersion:
		return fromSingle(func(c *spanCtx) (Value, bool) {
			return StringValue(c.s.Scope.Version), c.s.Scope.Version != ""
		})
	case IntrinsicNestedSetParent:
		return fromSingle(func(c *spanCtx) (Value, bool) { return IntValue(int64(c.ti.nested.parent[c.i])), true })
	case IntrinsicNestedSetLeft:
		return fromSingle(func(c *spanCtx) (Value, bool) { return IntValue(int64(c.ti.nested.left[c.i])), true })
	case IntrinsicNestedSetRight:
		return fromSingle(func(c *spanCtx) (Value, bool) { return IntValue(int64(c.ti.nested.right[c.i])), true })
	}
	return valueExpr{multi: func(_ *spanCtx, out []Value) []Value { return out }}
}
