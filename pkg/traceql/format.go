package traceql

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Canonical TraceQL: String() of any node prints what parses back to an
// equal node. Intrinsics print in their scope:name form, parentheses only
// where precedence needs them, one space around binary operators.

func (q *Query) String() string {
	var b strings.Builder
	writeSpanset(&b, q.Expr, 0)
	if q.Metrics != nil {
		b.WriteString(" | ")
		b.WriteString(q.Metrics.String())
	}
	if len(q.Hints) > 0 {
		b.WriteString(" with(")
		for i, h := range q.Hints {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(h.Name)
			b.WriteByte('=')
			b.WriteString(h.Value.String())
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Spanset precedence: lowest binds loosest.
const (
	precPipeline = iota
	precSpansetOr
	precSpansetAnd
	precStructural
	precSpansetPrimary
)

func spansetPrec(e SpansetExpr) int {
	switch e := e.(type) {
	case *Pipeline:
		return precPipeline
	case *SpansetOperation:
		switch e.Op {
		case SpansetOr:
			return precSpansetOr
		case SpansetAnd:
			return precSpansetAnd
		}
		return precStructural
	}
	return precSpansetPrimary
}

// writeSpanset writes e, in parentheses when its precedence is below min.
func writeSpanset(b *strings.Builder, e SpansetExpr, min int) {
	if spansetPrec(e) < min {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch e := e.(type) {
	case *SpansetFilter:
		if e.Expr == nil {
			b.WriteString("{}")
			return
		}
		b.WriteString("{ ")
		writeField(b, e.Expr, 0)
		b.WriteString(" }")
	case *SpansetOperation:
		p := spansetPrec(e)
		writeSpanset(b, e.LHS, p)
		b.WriteByte(' ')
		b.WriteString(e.Op.String())
		b.WriteByte(' ')
		writeSpanset(b, e.RHS, p+1)
	case *Pipeline:
		writeSpanset(b, e.Source, precSpansetOr)
		for _, s := range e.Stages {
			b.WriteString(" | ")
			if se, ok := s.(SpansetExpr); ok {
				writeSpanset(b, se, precSpansetOr)
			} else {
				b.WriteString(s.String())
			}
		}
	}
}

func (e *SpansetFilter) String() string    { return spansetString(e) }
func (e *SpansetOperation) String() string { return spansetString(e) }
func (e *Pipeline) String() string         { return spansetString(e) }

func spansetString(e SpansetExpr) string {
	var b strings.Builder
	writeSpanset(&b, e, 0)
	return b.String()
}

func (s *ScalarFilter) String() string {
	var b strings.Builder
	writeScalar(&b, s.LHS, precAdditive)
	b.WriteByte(' ')
	b.WriteString(s.Op.String())
	b.WriteByte(' ')
	writeScalar(&b, s.RHS, precAdditive)
	return b.String()
}

func (g *GroupBy) String() string { return "by(" + fieldList(g.By) + ")" }

func (*Coalesce) String() string { return "coalesce()" }

func (s *Select) String() string {
	var b strings.Builder
	b.WriteString("select(")
	for i := range s.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.Fields[i].String())
	}
	b.WriteByte(')')
	return b.String()
}

func fieldList(es []FieldExpr) string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString(", ")
		}
		writeField(&b, e, 0)
	}
	return b.String()
}

func (m *MetricsAggregate) String() string {
	var b strings.Builder
	b.WriteString(m.Op.String())
	b.WriteByte('(')
	if m.Expr != nil {
		writeField(&b, m.Expr, 0)
	}
	for _, q := range m.Quantiles {
		b.WriteString(", ")
		b.WriteString(formatFloat(q))
	}
	b.WriteByte(')')
	if len(m.By) > 0 {
		b.WriteString(" by(")
		b.WriteString(fieldList(m.By))
		b.WriteByte(')')
	}
	if f := m.Filter; f != nil {
		b.WriteString(" " + f.Op.String() + " " + formatFloat(f.Value))
	}
	if l := m.Limit; l != nil {
		fn := "topk"
		if l.Bottom {
			fn = "bottomk"
		}
		b.WriteString(" | " + fn + "(" + strconv.Itoa(l.K) + ")")
	}
	return b.String()
}

// Field expression precedence: lowest binds loosest.
const (
	precOr = iota + 1
	precAnd
	precComparison
	precAdditive
	precMultiplicative
	precUnary
	precPower
	precPrimary
)

func fieldPrec(e FieldExpr) int {
	switch e := e.(type) {
	case *BinaryExpr:
		switch {
		case e.Op == OpOr:
			return precOr
		case e.Op == OpAnd:
			return precAnd
		case e.Op.isComparison():
			return precComparison
		case e.Op == OpAdd || e.Op == OpSub:
			return precAdditive
		case e.Op == OpPow:
			return precPower
		}
		return precMultiplicative
	case *UnaryExpr:
		return precUnary
	case *Static:
		return staticPrec(e)
	}
	return precPrimary
}

// staticPrec: a negative number reads as a unary minus.
func staticPrec(s *Static) int {
	if strings.HasPrefix(s.Value.String(), "-") {
		return precUnary
	}
	return precPrimary
}

// writeField writes e, in parentheses when its precedence is below min.
func writeField(b *strings.Builder, e FieldExpr, min int) {
	p := fieldPrec(e)
	if p < min {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch e := e.(type) {
	case *BinaryExpr:
		var lmin, rmin int
		switch {
		case p == precPower: // right-associative, its right side a unary
			lmin, rmin = precPower+1, precUnary
		case p == precComparison: // does not associate
			lmin, rmin = p+1, p+1
		default:
			lmin, rmin = p, p+1
		}
		writeField(b, e.LHS, lmin)
		b.WriteByte(' ')
		b.WriteString(e.Op.String())
		b.WriteByte(' ')
		writeField(b, e.RHS, rmin)
	case *UnaryExpr:
		b.WriteString(e.Op.String())
		writeField(b, e.Expr, precUnary)
	case *Static:
		b.WriteString(e.Value.String())
	case *Field:
		b.WriteString(e.String())
	}
}

func (e *BinaryExpr) String() string { return fieldString(e) }
func (e *UnaryExpr) String() string  { return fieldString(e) }
func (e *Static) String() string     { return e.Value.String() }

func fieldString(e FieldExpr) string {
	var b strings.Builder
	writeField(&b, e, 0)
	return b.String()
}

func (f *Field) String() string {
	if f.Intrinsic != IntrinsicNone {
		return f.Intrinsic.String()
	}
	prefix := "."
	if f.Scope != ScopeNone {
		prefix = f.Scope.String() + "."
	}
	if plainName(f.Name, f.Scope == ScopeNone) {
		return prefix + f.Name
	}
	return prefix + quoteName(f.Name)
}

// plainName reports whether an attribute name lexes back without quotes.
func plainName(name string, unscoped bool) bool {
	if name == "" || (unscoped && isDigit(name[0])) {
		return false
	}
	for _, r := range name {
		if r == utf8.RuneError || !isNameRune(r) {
			return false
		}
	}
	return true
}

// quoteName quotes an attribute name: only " and \ are escaped.
func quoteName(name string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(name); i++ {
		if name[i] == '"' || name[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(name[i])
	}
	b.WriteByte('"')
	return b.String()
}

// Scalar expressions share the field precedences.
func scalarPrec(e ScalarExpr) int {
	switch e := e.(type) {
	case *ScalarBinary:
		switch e.Op {
		case OpAdd, OpSub:
			return precAdditive
		case OpPow:
			return precPower
		}
		return precMultiplicative
	case *Static:
		return staticPrec(e)
	}
	return precPrimary
}

func writeScalar(b *strings.Builder, e ScalarExpr, min int) {
	p := scalarPrec(e)
	if p < min {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch e := e.(type) {
	case *ScalarBinary:
		lmin, rmin := p, p+1
		if p == precPower {
			lmin, rmin = precPower+1, precPower
		}
		writeScalar(b, e.LHS, lmin)
		b.WriteByte(' ')
		b.WriteString(e.Op.String())
		b.WriteByte(' ')
		writeScalar(b, e.RHS, rmin)
	case *Static:
		b.WriteString(e.Value.String())
	case *Aggregate:
		b.WriteString(e.String())
	}
}

func (a *Aggregate) String() string {
	if a.Expr == nil {
		return a.Op.String() + "()"
	}
	return a.Op.String() + "(" + fieldString(a.Expr) + ")"
}

func (e *ScalarBinary) String() string {
	var b strings.Builder
	writeScalar(&b, e, 0)
	return b.String()
}
