package traceql

import (
	"math"
)

// maxDepth bounds how deeply a query may nest: deeper ones are refused
// before they can exhaust the parser's stack.
const maxDepth = 200

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

// Parse parses and type-checks a TraceQL query. Its errors are
// *ParseError.
func Parse(src string) (*Query, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	return p.query()
}

func (p *parser) peek() token { return p.toks[p.i] }

// peekAt returns the token n places ahead (the last is tEOF).
func (p *parser) peekAt(n int) token { return p.toks[min(p.i+n, len(p.toks)-1)] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(at int, format string, args ...any) error {
	return newParseError(p.src, at, format, args...)
}

func (p *parser) expect(k tokenKind, what string) (token, error) {
	t := p.peek()
	if t.kind != k {
		return t, p.errorf(t.pos, "expected %s, found %s", what, t)
	}
	return p.next(), nil
}

func (p *parser) isIdent(word string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == word
}

// enter and leave bound the recursion.
func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf(p.peek().pos, "query nested too deeply (more than %d levels)", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) query() (*Query, error) {
	q := &Query{}
	var err error
	q.Expr, q.Metrics, err = p.pipeline(true)
	if err != nil {
		return nil, err
	}
	if p.isIdent("with") {
		if q.Hints, err = p.hints(); err != nil {
			return nil, err
		}
	}
	if t := p.peek(); t.kind != tEOF {
		if q.Metrics != nil && t.kind == tPipe {
			return nil, p.errorf(t.pos, "the metrics function must be the last stage of the query")
		}
		return nil, p.errorf(t.pos, "unexpected %s after the end of the query", t)
	}
	return q, nil
}

// pipeline parses a spanset expression and its `| stage`s. Only the
// outermost pipeline (top) may end in a metrics function.
func (p *parser) pipeline(top bool) (SpansetExpr, *MetricsAggregate, error) {
	if err := p.enter(); err != nil {
		return nil, nil, err
	}
	defer p.leave()
	src, err := p.spansetOr()
	if err != nil {
		return nil, nil, err
	}
	var stages []Stage
	var metrics *MetricsAggregate
	for p.peek().kind == tPipe {
		p.next()
		if t := p.peek(); t.kind == tIdent && metricsOps[t.text] != 0 {
			if !top {
				return nil, nil, p.errorf(t.pos, "%s() may only end the whole query, not a parenthesized pipeline", t.text)
			}
			if metrics, err = p.metrics(); err != nil {
				return nil, nil, err
			}
			break
		}
		st, err := p.stage()
		if err != nil {
			return nil, nil, err
		}
		stages = append(stages, st)
	}
	if len(stages) == 0 {
		return src, metrics, nil
	}
	if inner, ok := src.(*Pipeline); ok {
		return &Pipeline{Source: inner.Source, Stages: append(append([]Stage{}, inner.Stages...), stages...)}, metrics, nil
	}
	return &Pipeline{Source: src, Stages: stages}, metrics, nil
}

func (p *parser) spansetOr() (SpansetExpr, error) {
	l, err := p.spansetAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tOr {
		p.next()
		r, err := p.spansetAnd()
		if err != nil {
			return nil, err
		}
		l = &SpansetOperation{Op: SpansetOr, LHS: l, RHS: r}
	}
	return l, nil
}

func (p *parser) spansetAnd() (SpansetExpr, error) {
	l, err := p.spansetStructural()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tAnd {
		p.next()
		r, err := p.spansetStructural()
		if err != nil {
			return nil, err
		}
		l = &SpansetOperation{Op: SpansetAnd, LHS: l, RHS: r}
	}
	return l, nil
}

var structuralOps = map[tokenKind]SpansetOp{
	tGt: SpansetChild, tLt: SpansetParent, tDesc: SpansetDescendant, tAnc: SpansetAncestor, tTilde: SpansetSibling,
	tUChild: SpansetUnionChild, tUParent: SpansetUnionParent, tUDesc: SpansetUnionDescendant,
	tUAnc: SpansetUnionAncestor, tUSibling: SpansetUnionSibling,
	tNChild: SpansetNotChild, tNParent: SpansetNotParent, tNDesc: SpansetNotDescendant,
	tNAnc: SpansetNotAncestor, tNre: SpansetNotSibling,
}

func (p *parser) spansetStructural() (SpansetExpr, error) {
	l, err := p.spansetPrimary()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := structuralOps[p.peek().kind]
		if !ok {
			return l, nil
		}
		p.next()
		r, err := p.spansetPrimary()
		if err != nil {
			return nil, err
		}
		l = &SpansetOperation{Op: op, LHS: l, RHS: r}
	}
}

func (p *parser) spansetPrimary() (SpansetExpr, error) {
	t := p.peek()
	switch t.kind {
	case tLBrace:
		return p.spansetFilter()
	case tLParen:
		p.next()
		e, _, err := p.pipeline(false)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, `")"`); err != nil {
			return nil, err
		}
		return e, nil
	}
	return nil, p.errorf(t.pos, "expected a spanset filter { … } or a parenthesized spanset expression, found %s", t)
}

func (p *parser) spansetFilter() (SpansetExpr, error) {
	open := p.next()
	if p.peek().kind == tRBrace {
		p.next()
		return &SpansetFilter{}, nil
	}
	e, err := p.fieldExpr()
	if err != nil {
		return nil, err
	}
	if e.typ != TypeBool && e.typ != typeAny {
		return nil, p.errorf(e.pos, "a spanset filter must be a condition, not a %s value", typeName(e.typ))
	}
	if t := p.peek(); t.kind != tRBrace {
		if comparisonOps[t.kind] != 0 {
			return nil, p.errorf(t.pos, "comparisons do not chain: use && between them")
		}
		return nil, p.errorf(t.pos, "expected \"}\" closing the filter opened at offset %d, found %s", open.pos, t)
	}
	p.next()
	return &SpansetFilter{Expr: e.expr}, nil
}

// stage parses one pipeline stage after `|` (not a metrics function).
func (p *parser) stage() (Stage, error) {
	t := p.peek()
	switch t.kind {
	case tLBrace:
		return p.spansetOr()
	case tLParen:
		// A parenthesized spanset expression, or a scalar filter that
		// starts with a parenthesis.
		n := 0
		for p.peekAt(n).kind == tLParen {
			n++
		}
		if p.peekAt(n).kind == tLBrace {
			return p.spansetOr()
		}
		return p.scalarFilter()
	case tIdent:
		switch t.text {
		case "by":
			p.next()
			by, err := p.fieldList("by")
			if err != nil {
				return nil, err
			}
			return &GroupBy{By: by}, nil
		case "coalesce":
			p.next()
			if err := p.emptyArgs("coalesce"); err != nil {
				return nil, err
			}
			return &Coalesce{}, nil
		case "select":
			p.next()
			return p.selectStage()
		}
		if aggregateOps[t.text] != 0 {
			return p.scalarFilter()
		}
		return nil, p.errorf(t.pos, "unknown pipeline stage %q: want a spanset filter, by(), select(), coalesce(), an aggregate (count, avg, min, max, sum) or a metrics function", t.text)
	case tInt, tFloat, tDuration, tSub:
		return p.scalarFilter()
	}
	return nil, p.errorf(t.pos, "expected a pipeline stage after |, found %s", t)
}

func (p *parser) emptyArgs(fn string) error {
	if _, err := p.expect(tLParen, `"(" after `+fn); err != nil {
		return err
	}
	_, err := p.expect(tRParen, fn+"() takes no arguments: \")\"")
	return err
}

// fieldList parses `( expr, … )` with at least one expression.
func (p *parser) fieldList(fn string) ([]FieldExpr, error) {
	if _, err := p.expect(tLParen, `"(" after `+fn); err != nil {
		return nil, err
	}
	var out []FieldExpr
	for {
		e, err := p.fieldExpr()
		if err != nil {
			return nil, err
		}
		if e.typ == TypeNil {
			return nil, p.errorf(e.pos, "%s() of nil", fn)
		}
		out = append(out, e.expr)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if _, err := p.expect(tRParen, `"," or ")"`); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *parser) selectStage() (Stage, error) {
	if _, err := p.expect(tLParen, `"(" after select`); err != nil {
		return nil, err
	}
	s := &Select{}
	for {
		e, err := p.fieldExpr()
		if err != nil {
			return nil, err
		}
		f, ok := e.expr.(*Field)
		if !ok {
			return nil, p.errorf(e.pos, "select() takes attributes and intrinsics, not %s", e.expr)
		}
		s.Fields = append(s.Fields, *f)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if _, err := p.expect(tRParen, `"," or ")"`); err != nil {
		return nil, err
	}
	return s, nil
}

var metricsOps = map[string]MetricsOp{
	"rate": MetricsRate, "count_over_time": MetricsCountOverTime, "min_over_time": MetricsMinOverTime,
	"max_over_time": MetricsMaxOverTime, "avg_over_time": MetricsAvgOverTime, "sum_over_time": MetricsSumOverTime,
	"quantile_over_time": MetricsQuantileOverTime, "histogram_over_time": MetricsHistogramOverTime,
}

func (p *parser) metrics() (*MetricsAggregate, error) {
	name := p.next()
	m := &MetricsAggregate{Op: metricsOps[name.text]}
	if !m.Op.hasField() {
		if err := p.emptyArgs(name.text); err != nil {
			return nil, err
		}
	} else {
		if _, err := p.expect(tLParen, `"(" after `+name.text); err != nil {
			return nil, err
		}
		e, err := p.fieldExpr()
		if err != nil {
			return nil, err
		}
		if !isNumericish(e.typ) {
			return nil, p.errorf(e.pos, "%s() needs a numeric field, not a %s value", name.text, typeName(e.typ))
		}
		m.Expr = e.expr
		if m.Op == MetricsQuantileOverTime {
			for p.peek().kind == tComma {
				p.next()
				t := p.next()
				q, ok := t.val.AsFloat()
				if (t.kind != tInt && t.kind != tFloat) || !ok || q < 0 || q > 1 || math.IsNaN(q) {
					return nil, p.errorf(t.pos, "a quantile is a number between 0 and 1, found %s", t)
				}
				m.Quantiles = append(m.Quantiles, q)
			}
			if len(m.Quantiles) == 0 {
				return nil, p.errorf(p.peek().pos, "quantile_over_time() needs at least one quantile after the field")
			}
		}
		if _, err := p.expect(tRParen, `")"`); err != nil {
			return nil, err
		}
	}
	if p.isIdent("by") {
		p.next()
		by, err := p.fieldList("by")
		if err != nil {
			return nil, err
		}
		m.By = by
	}
	if op, ok := comparisonOps[p.peek().kind]; ok && op != OpRegex && op != OpNotRegex {
		p.next()
		v, err := p.signedNumber()
		if err != nil {
			return nil, err
		}
		f, _ := v.AsFloat()
		m.Filter = &MetricsFilter{Op: op, Value: f}
	}
	if p.peek().kind == tPipe {
		if t := p.peekAt(1); t.kind == tIdent && (t.text == "topk" || t.text == "bottomk") {
			p.next()
			p.next()
			if _, err := p.expect(tLParen, `"(" after `+t.text); err != nil {
				return nil, err
			}
			k := p.next()
			if k.kind != tInt || k.val.Num < 1 || k.val.Num > math.MaxInt32 {
				return nil, p.errorf(k.pos, "%s() takes a positive integer, found %s", t.text, k)
			}
			if _, err := p.expect(tRParen, `")"`); err != nil {
				return nil, err
			}
			m.Limit = &MetricsLimit{Bottom: t.text == "bottomk", K: int(k.val.Num)}
		}
	}
	return m, nil
}

// signedNumber reads an int or float with an optional minus.
func (p *parser) signedNumber() (Value, error) {
	t := p.next()
	neg := t.kind == tSub
	if neg {
		t = p.next()
	}
	if t.kind != tInt && t.kind != tFloat {
		return Value{}, p.errorf(t.pos, "expected a number, found %s", t)
	}
	v := t.val
	if neg {
		v, _ = negate(v)
	}
	return v, nil
}

// hints parses `with (name=value, …)`.
func (p *parser) hints() ([]Hint, error) {
	p.next()
	if _, err := p.expect(tLParen, `"(" after with`); err != nil {
		return nil, err
	}
	var hints []Hint
	for {
		name, err := p.expect(tIdent, "a hint name")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tEq, `"=" after the hint name`); err != nil {
			return nil, err
		}
		v, err := p.hintValue()
		if err != nil {
			return nil, err
		}
		hints = append(hints, Hint{Name: name.text, Value: v})
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if _, err := p.expect(tRParen, `"," or ")"`); err != nil {
		return nil, err
	}
	return hints, nil
}

func (p *parser) hintValue() (Value, error) {
	t := p.next()
	switch t.kind {
	case tString, tInt, tFloat, tDuration:
		return t.val, nil
	case tSub:
		n := p.next()
		if n.kind == tInt || n.kind == tFloat || n.kind == tDuration {
			if v, ok := negate(n.val); ok {
				return v, nil
			}
		}
		return Value{}, p.errorf(n.pos, "expected a number after -, found %s", n)
	case tIdent:
		if v, ok := identValues[t.text]; ok && v.Type != TypeStatus && v.Type != TypeKind && v.Type != TypeNil {
			return v, nil
		}
	}
	return Value{}, p.errorf(t.pos, "a hint's value is a string, number, duration or boolean, found %s", t)
}
