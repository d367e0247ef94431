package traceql

import (
	"math"
	"regexp"
)

// Types known only to the type checker, besides the ValueTypes.
const (
	typeAny    ValueType = 200 // an attribute: any type, known at run time
	typeNumber ValueType = 201 // a number whose type is known at run time
)

func typeName(t ValueType) string {
	switch t {
	case typeAny:
		return "attribute"
	case typeNumber:
		return "number"
	}
	return t.String()
}

func isNumericish(t ValueType) bool { return isNumericType(t) || t == typeNumber || t == typeAny }
func isBoolish(t ValueType) bool    { return t == TypeBool || t == typeAny }

// comparableTypes reports whether values of the two static types may be
// compared.
func comparableTypes(a, b ValueType) bool {
	if a == typeAny || b == typeAny || a == b {
		return true
	}
	return isNumericish(a) && isNumericish(b)
}

// typedExpr is a field expression with its static type and position.
type typedExpr struct {
	expr FieldExpr
	typ  ValueType
	pos  int
}

// identValues are the words that stand for values.
var identValues = map[string]Value{
	"true": BoolValue(true), "false": BoolValue(false), "nil": {},
	"ok": StatusValue(StatusOk), "error": StatusValue(StatusError), "unset": StatusValue(StatusUnset),
	"unspecified": KindValue(KindUnspecified), "internal": KindValue(KindInternal), "server": KindValue(KindServer),
	"client": KindValue(KindClient), "producer": KindValue(KindProducer), "consumer": KindValue(KindConsumer),
	"minInt": IntValue(math.MinInt64), "maxInt": IntValue(math.MaxInt64),
}

var comparisonOps = map[tokenKind]Operator{
	tEq: OpEqual, tNeq: OpNotEqual, tGt: OpGreater, tGte: OpGreaterEqual, tLt: OpLess, tLte: OpLessEqual,
	tRe: OpRegex, tNre: OpNotRegex,
}

func (p *parser) fieldExpr() (typedExpr, error) {
	if err := p.enter(); err != nil {
		return typedExpr{}, err
	}
	defer p.leave()
	return p.fieldOr()
}

func (p *parser) fieldOr() (typedExpr, error) {
	l, err := p.fieldAnd()
	if err != nil {
		return l, err
	}
	for p.peek().kind == tOr {
		op := p.next()
		r, err := p.fieldAnd()
		if err != nil {
			return r, err
		}
		if l, err = p.logical(OpOr, l, r, op.pos); err != nil {
			return l, err
		}
	}
	return l, nil
}

func (p *parser) fieldAnd() (typedExpr, error) {
	l, err := p.fieldComparison()
	if err != nil {
		return l, err
	}
	for p.peek().kind == tAnd {
		op := p.next()
		r, err := p.fieldComparison()
		if err != nil {
			return r, err
		}
		if l, err = p.logical(OpAnd, l, r, op.pos); err != nil {
			return l, err
		}
	}
	return l, nil
}

func (p *parser) logical(op Operator, l, r typedExpr, at int) (typedExpr, error) {
	for _, side := range []typedExpr{l, r} {
		if !isBoolish(side.typ) {
			return side, p.errorf(side.pos, "%s needs conditions on both sides, not a %s value", op, typeName(side.typ))
		}
	}
	return typedExpr{expr: &BinaryExpr{Op: op, LHS: l.expr, RHS: r.expr}, typ: TypeBool, pos: l.pos}, nil
}

func (p *parser) fieldComparison() (typedExpr, error) {
	l, err := p.fieldAdditive()
	if err != nil {
		return l, err
	}
	opTok := p.peek()
	op, ok := comparisonOps[opTok.kind]
	if !ok {
		return l, nil
	}
	p.next()
	r, err := p.fieldAdditive()
	if err != nil {
		return r, err
	}
	if err := p.checkComparison(op, l, r, opTok.pos); err != nil {
		return l, err
	}
	return typedExpr{expr: &BinaryExpr{Op: op, LHS: l.expr, RHS: r.expr}, typ: TypeBool, pos: l.pos}, nil
}

func (p *parser) checkComparison(op Operator, l, r typedExpr, at int) error {
	if l.typ == TypeNil || r.typ == TypeNil {
		other := l
		if l.typ == TypeNil {
			other = r
		}
		if op != OpEqual && op != OpNotEqual {
			return p.errorf(at, "nil compares only with = and !=")
		}
		if _, ok := other.expr.(*Field); !ok {
			return p.errorf(other.pos, "nil compares only with an attribute or intrinsic, not %s", other.expr)
		}
		return nil
	}
	if op == OpRegex || op == OpNotRegex {
		s, ok := r.expr.(*Static)
		if !ok || s.Value.Type != TypeString {
			return p.errorf(r.pos, "%s needs a string regular expression on its right, not %s", op, r.expr)
		}
		if l.typ != TypeString && l.typ != typeAny {
			return p.errorf(l.pos, "%s matches strings, not a %s value", op, typeName(l.typ))
		}
		if _, err := compileRegex(s.Value.Str); err != nil {
			return p.errorf(r.pos, "invalid regular expression %s: %v", s, err)
		}
		return nil
	}
	if !comparableTypes(l.typ, r.typ) {
		return p.errorf(at, "cannot compare a %s value with a %s value%s", typeName(l.typ), typeName(r.typ), enumHint(l.typ, r.typ))
	}
	if op != OpEqual && op != OpNotEqual {
		for _, side := range []typedExpr{l, r} {
			switch side.typ {
			case TypeBool, TypeStatus, TypeKind:
				return p.errorf(at, "%s does not order %s values", op, typeName(side.typ))
			}
		}
	}
	return nil
}

// enumHint explains what an enum compares with.
func enumHint(a, b ValueType) string {
	switch {
	case a == TypeStatus || b == TypeStatus:
		return " (a status compares with ok, error or unset)"
	case a == TypeKind || b == TypeKind:
		return " (a kind compares with server, client, producer, consumer, internal or unspecified)"
	}
	return ""
}

// compileRegex compiles a TraceQL regular expression: Go's RE2 syntax,
// anchored at both ends.
func compileRegex(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + pattern + ")$")
}

func (p *parser) fieldAdditive() (typedExpr, error) {
	l, err := p.fieldMultiplicative()
	if err != nil {
		return l, err
	}
	for {
		var op Operator
		switch p.peek().kind {
		case tAdd:
			op = OpAdd
		case tSub:
			op = OpSub
		default:
			return l, nil
		}
		opTok := p.next()
		r, err := p.fieldMultiplicative()
		if err != nil {
			return r, err
		}
		if l, err = p.arithmetic(op, l, r, opTok.pos); err != nil {
			return l, err
		}
	}
}

func (p *parser) fieldMultiplicative() (typedExpr, error) {
	l, err := p.fieldUnary()
	if err != nil {
		return l, err
	}
	for {
		var op Operator
		switch p.peek().kind {
		case tMul:
			op = OpMul
		case tDiv:
			op = OpDiv
		case tMod:
			op = OpMod
		default:
			return l, nil
		}
		opTok := p.next()
		r, err := p.fieldUnary()
		if err != nil {
			return r, err
		}
		if l, err = p.arithmetic(op, l, r, opTok.pos); err != nil {
			return l, err
		}
	}
}

func (p *parser) arithmetic(op Operator, l, r typedExpr, at int) (typedExpr, error) {
	for _, side := range []typedExpr{l, r} {
		if !isNumericish(side.typ) {
			return side, p.errorf(side.pos, "%s needs numbers on both sides, not a %s value", op, typeName(side.typ))
		}
	}
	return typedExpr{expr: &BinaryExpr{Op: op, LHS: l.expr, RHS: r.expr}, typ: arithmeticType(op, l.typ, r.typ), pos: l.pos}, nil
}

// arithmeticType is the type of `a op b`; the engine computes values of
// this type. Ints stay ints except under / and ^; a float makes a float;
// durations stay durations when added, subtracted, scaled or divided by
// a number.
func arithmeticType(op Operator, a, b ValueType) ValueType {
	if !isNumericType(a) || !isNumericType(b) {
		return typeNumber
	}
	switch {
	case a == TypeFloat || b == TypeFloat || op == OpPow:
		return TypeFloat
	case a == TypeInt && b == TypeInt:
		if op == OpDiv {
			return TypeFloat
		}
		return TypeInt
	case a == TypeDuration && b == TypeDuration && op == OpDiv:
		return TypeFloat
	}
	return TypeDuration
}

func (p *parser) fieldUnary() (typedExpr, error) {
	if err := p.enter(); err != nil {
		return typedExpr{}, err
	}
	defer p.leave()
	t := p.peek()
	switch t.kind {
	case tNot:
		p.next()
		e, err := p.fieldUnary()
		if err != nil {
			return e, err
		}
		if !isBoolish(e.typ) {
			return e, p.errorf(e.pos, "! negates conditions, not a %s value", typeName(e.typ))
		}
		return typedExpr{expr: &UnaryExpr{Op: OpNot, Expr: e.expr}, typ: TypeBool, pos: t.pos}, nil
	case tSub:
		p.next()
		e, err := p.fieldUnary()
		if err != nil {
			return e, err
		}
		if !isNumericish(e.typ) {
			return e, p.errorf(e.pos, "- negates numbers, not a %s value", typeName(e.typ))
		}
		if s, ok := e.expr.(*Static); ok {
			if v, ok := negate(s.Value); ok {
				return typedExpr{expr: &Static{Value: v}, typ: v.Type, pos: t.pos}, nil
			}
		}
		return typedExpr{expr: &UnaryExpr{Op: OpSub, Expr: e.expr}, typ: e.typ, pos: t.pos}, nil
	}
	return p.fieldPower()
}

// negate returns -v for a number or duration; ok is false for other types
// and when the result would overflow.
func negate(v Value) (Value, bool) {
	switch v.Type {
	case TypeInt, TypeDuration:
		if v.Num == math.MinInt64 {
			return v, false
		}
		v.Num = -v.Num
		return v, true
	case TypeFloat:
		v.Float = -v.Float
		return v, true
	}
	return v, false
}

func (p *parser) fieldPower() (typedExpr, error) {
	base, err := p.fieldPrimary()
	if err != nil {
		return base, err
	}
	if p.peek().kind != tPow {
		return base, nil
	}
	opTok := p.next()
	exp, err := p.fieldUnary()
	if err != nil {
		return exp, err
	}
	return p.arithmetic(OpPow, base, exp, opTok.pos)
}

func (p *parser) fieldPrimary() (typedExpr, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		e, err := p.fieldExpr()
		if err != nil {
			return e, err
		}
		if _, err := p.expect(tRParen, `")"`); err != nil {
			return e, err
		}
		return e, nil
	case tString, tInt, tFloat, tDuration:
		return typedExpr{expr: &Static{Value: t.val}, typ: t.val.Type, pos: t.pos}, nil
	case tAttribute:
		return typedExpr{expr: &Field{Scope: t.scope, Name: t.name}, typ: typeAny, pos: t.pos}, nil
	case tIntrinsic:
		return typedExpr{expr: &Field{Intrinsic: t.intrinsic}, typ: intrinsics[t.intrinsic].typ, pos: t.pos}, nil
	case tIdent:
		if in, ok := bareIntrinsics[t.text]; ok {
			return typedExpr{expr: &Field{Intrinsic: in}, typ: intrinsics[in].typ, pos: t.pos}, nil
		}
		if v, ok := identValues[t.text]; ok {
			return typedExpr{expr: &Static{Value: v}, typ: v.Type, pos: t.pos}, nil
		}
		return typedExpr{}, p.errorf(t.pos, "unknown identifier %q: attributes are written span.%s, resource.%s or .%s", t.text, t.text, t.text, t.text)
	case tEOF:
		return typedExpr{}, p.errorf(t.pos, "unexpected end of query: expected a value, attribute or intrinsic")
	}
	return typedExpr{}, p.errorf(t.pos, "expected a value, attribute or intrinsic, found %s", t)
}

var aggregateOps = map[string]AggregateOp{
	"count": AggregateCount, "avg": AggregateAvg, "min": AggregateMin, "max": AggregateMax, "sum": AggregateSum,
}

// scalarFilter parses `scalar op scalar`, where one side at least holds
// an aggregate.
func (p *parser) scalarFilter() (Stage, error) {
	start := p.peek().pos
	l, lAgg, err := p.scalarAdditive()
	if err != nil {
		return nil, err
	}
	opTok := p.peek()
	op, ok := comparisonOps[opTok.kind]
	if !ok || op == OpRegex || op == OpNotRegex {
		return nil, p.errorf(opTok.pos, "expected a comparison (=, !=, <, <=, >, >=) after %s, found %s", l, opTok)
	}
	p.next()
	r, rAgg, err := p.scalarAdditive()
	if err != nil {
		return nil, err
	}
	if !lAgg && !rAgg {
		return nil, p.errorf(start, "a scalar filter compares an aggregate (count(), avg(), min(), max(), sum())")
	}
	return &ScalarFilter{Op: op, LHS: l, RHS: r}, nil
}

func (p *parser) scalarAdditive() (ScalarExpr, bool, error) {
	l, agg, err := p.scalarMultiplicative()
	if err != nil {
		return nil, false, err
	}
	for {
		var op Operator
		switch p.peek().kind {
		case tAdd:
			op = OpAdd
		case tSub:
			op = OpSub
		default:
			return l, agg, nil
		}
		p.next()
		r, rAgg, err := p.scalarMultiplicative()
		if err != nil {
			return nil, false, err
		}
		l, agg = &ScalarBinary{Op: op, LHS: l, RHS: r}, agg || rAgg
	}
}

func (p *parser) scalarMultiplicative() (ScalarExpr, bool, error) {
	l, agg, err := p.scalarPower()
	if err != nil {
		return nil, false, err
	}
	for {
		var op Operator
		switch p.peek().kind {
		case tMul:
			op = OpMul
		case tDiv:
			op = OpDiv
		case tMod:
			op = OpMod
		default:
			return l, agg, nil
		}
		p.next()
		r, rAgg, err := p.scalarPower()
		if err != nil {
			return nil, false, err
		}
		l, agg = &ScalarBinary{Op: op, LHS: l, RHS: r}, agg || rAgg
	}
}

func (p *parser) scalarPower() (ScalarExpr, bool, error) {
	if err := p.enter(); err != nil {
		return nil, false, err
	}
	defer p.leave()
	base, agg, err := p.scalarPrimary()
	if err != nil {
		return nil, false, err
	}
	if p.peek().kind != tPow {
		return base, agg, nil
	}
	p.next()
	exp, eAgg, err := p.scalarPower()
	if err != nil {
		return nil, false, err
	}
	return &ScalarBinary{Op: OpPow, LHS: base, RHS: exp}, agg || eAgg, nil
}

func (p *parser) scalarPrimary() (ScalarExpr, bool, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		e, agg, err := p.scalarAdditive()
		if err != nil {
			return nil, false, err
		}
		if _, err := p.expect(tRParen, `")"`); err != nil {
			return nil, false, err
		}
		return e, agg, nil
	case tInt, tFloat, tDuration:
		return &Static{Value: t.val}, false, nil
	case tSub:
		n := p.next()
		if n.kind == tInt || n.kind == tFloat || n.kind == tDuration {
			if v, ok := negate(n.val); ok {
				return &Static{Value: v}, false, nil
			}
		}
		return nil, false, p.errorf(n.pos, "expected a number after -, found %s", n)
	case tIdent:
		if v, ok := identValues[t.text]; ok && v.Type == TypeInt {
			return &Static{Value: v}, false, nil
		}
		op, ok := aggregateOps[t.text]
		if !ok {
			break
		}
		a := &Aggregate{Op: op}
		if op == AggregateCount {
			if err := p.emptyArgs("count"); err != nil {
				return nil, false, err
			}
			return a, true, nil
		}
		if _, err := p.expect(tLParen, `"(" after `+t.text); err != nil {
			return nil, false, err
		}
		e, err := p.fieldExpr()
		if err != nil {
			return nil, false, err
		}
		if !isNumericish(e.typ) {
			return nil, false, p.errorf(e.pos, "%s() needs a numeric field, not a %s value", t.text, typeName(e.typ))
		}
		if _, err := p.expect(tRParen, `")"`); err != nil {
			return nil, false, err
		}
		a.Expr = e.expr
		return a, true, nil
	}
	return nil, false, p.errorf(t.pos, "expected an aggregate or a number, found %s", t)
}
