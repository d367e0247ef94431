package logql

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Range aggregations over log lines, and over unwrapped label values.
var (
	logRangeOps    = []string{"rate", "count_over_time", "bytes_rate", "bytes_over_time", "absent_over_time"}
	unwrapRangeOps = []string{"rate", "rate_counter", "sum_over_time", "avg_over_time", "min_over_time", "max_over_time",
		"first_over_time", "last_over_time", "stdvar_over_time", "stddev_over_time", "quantile_over_time", "absent_over_time"}
	vectorOps = []string{"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "sort", "sort_desc"}
	parsers   = []string{"json", "logfmt", "regexp", "pattern", "unpack"}
)

// binary operators by precedence, lowest first (as PromQL's).
var precedence = [][]string{
	{"or"},
	{"and", "unless"},
	{"==", "!=", ">", ">=", "<", "<="},
	{"+", "-"},
	{"*", "/", "%"},
	{"^"},
}

// maxDepth bounds the nesting a query may have: deeper ones are refused
// before they can exhaust the parser's stack.
const maxDepth = 256

type parser struct {
	toks  []token
	i     int
	depth int
}

// Parse parses a LogQL query.
func Parse(q string) (Expr, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errorf(t, "unexpected %s after the end of the expression", t)
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &Error{Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) is(kind tokenKind, text string) bool {
	t := p.peek()
	return t.kind == kind && (text == "" || t.text == text)
}

func (p *parser) punct(s string) bool { return p.is(tPunct, s) }
func (p *parser) ident(s string) bool { return p.is(tIdent, s) }

func (p *parser) expect(kind tokenKind, text, what string) (token, error) {
	t := p.next()
	if t.kind != kind || text != "" && t.text != text {
		return t, p.errorf(t, "expected %s, found %s", what, t)
	}
	return t, nil
}

func (p *parser) enter() error {
	if p.depth++; p.depth > maxDepth {
		return p.errorf(p.peek(), "the query nests deeper than %d levels", maxDepth)
	}
	return nil
}

// expr parses binary expressions of at least the given precedence level.
func (p *parser) expr(level int) (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if level == len(precedence) {
		return p.unary()
	}
	l, err := p.expr(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if (t.kind != tPunct && t.kind != tIdent) || !slices.Contains(precedence[level], t.text) {
			return l, nil
		}
		p.next()
		b := &BinaryExpr{Op: t.text, L: l}
		if p.ident("bool") {
			p.next()
			b.Bool = true
		}
		if p.ident("on") || p.ident("ignoring") {
			m := &VectorMatching{On: p.next().text == "on"}
			if m.Labels, err = p.labelList(); err != nil {
				return nil, err
			}
			if p.ident("group_left") || p.ident("group_right") {
				m.Group = p.next().text
				if p.punct("(") {
					if m.Include, err = p.labelList(); err != nil {
						return nil, err
					}
				}
			}
			b.Matching = m
		}
		var r Expr
		if t.text == "^" { // right-associative
			r, err = p.expr(level)
		} else {
			r, err = p.expr(level + 1)
		}
		if err != nil {
			return nil, err
		}
		b.R = r
		if b.Bool && !slices.Contains(precedence[2], b.Op) {
			return nil, p.errorf(t, "bool is only for comparison operators, not %s", b.Op)
		}
		l = b
	}
}

func (p *parser) unary() (Expr, error) {
	if p.punct("-") || p.punct("+") {
		neg := p.next().text == "-"
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		if !neg {
			return e, nil
		}
		if n, ok := e.(*NumberLiteral); ok {
			return &NumberLiteral{Value: -n.Value}, nil
		}
		return &UnaryExpr{Expr: e}, nil
	}
	return p.primary()
}

func (p *parser) primary() (Expr, error) {
	t := p.peek()
	switch {
	case t.kind == tNumber:
		p.next()
		v, err := strconv.ParseFloat(strings.ReplaceAll(t.text, "_", ""), 64)
		if err != nil {
			return nil, p.errorf(t, "invalid number %s", t)
		}
		return &NumberLiteral{Value: v}, nil
	case t.kind == tIdent && (strings.EqualFold(t.text, "inf") || strings.EqualFold(t.text, "nan")):
		p.next()
		if strings.EqualFold(t.text, "nan") {
			return &NumberLiteral{Value: math.NaN()}, nil
		}
		return &NumberLiteral{Value: math.Inf(1)}, nil
	case t.kind == tPunct && t.text == "(":
		p.next()
		e, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ")", `")"`); err != nil {
			return nil, err
		}
		return &ParenExpr{Expr: e}, nil
	case t.kind == tPunct && t.text == "{":
		return p.logExpr()
	case t.kind == tIdent && t.text == "vector":
		p.next()
		if _, err := p.expect(tPunct, "(", `"(" after vector`); err != nil {
			return nil, err
		}
		n, err := p.number()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ")", `")"`); err != nil {
			return nil, err
		}
		return &VectorExpr{Value: n}, nil
	case t.kind == tIdent && t.text == "label_replace":
		return p.labelReplace()
	case t.kind == tIdent && slices.Contains(vectorOps, t.text):
		return p.vectorAggregation()
	case t.kind == tIdent && (slices.Contains(logRangeOps, t.text) || slices.Contains(unwrapRangeOps, t.text)):
		return p.rangeAggregation()
	}
	return nil, p.errorf(t, "unexpected %s: expected a stream selector {…}, a number, an aggregation or a parenthesised expression", t)
}

func (p *parser) number() (float64, error) {
	neg := false
	if p.punct("-") {
		p.next()
		neg = true
	}
	t, err := p.expect(tNumber, "", "a number")
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(t.text, "_", ""), 64)
	if err != nil {
		return 0, p.errorf(t, "invalid number %s", t)
	}
	if neg {
		v = -v
	}
	return v, nil
}

func (p *parser) labelList() ([]string, error) {
	if _, err := p.expect(tPunct, "(", `"("`); err != nil {
		return nil, err
	}
	var out []string
	for !p.punct(")") {
		t, err := p.expect(tIdent, "", "a label name")
		if err != nil {
			return nil, err
		}
		out = append(out, t.text)
		if !p.punct(",") {
			break
		}
		p.next()
	}
	if _, err := p.expect(tPunct, ")", `")"`); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *parser) grouping() (*Grouping, error) {
	if !p.ident("by") && !p.ident("without") {
		return nil, nil
	}
	g := &Grouping{Without: p.next().text == "without"}
	var err error
	g.Labels, err = p.labelList()
	return g, err
}

func (p *parser) vectorAggregation() (Expr, error) {
	op := p.next()
	v := &VectorAggregation{Op: op.text}
	var err error
	if v.Grouping, err = p.grouping(); err != nil {
		return nil, err
	}
	if _, err := p.expect(tPunct, "(", `"(" after `+op.text); err != nil {
		return nil, err
	}
	if op.text == "topk" || op.text == "bottomk" {
		if v.Param, err = p.expr(0); err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ",", `"," after `+op.text+"'s parameter"); err != nil {
			return nil, err
		}
	}
	if v.Expr, err = p.expr(0); err != nil {
		return nil, err
	}
	if _, err := p.expect(tPunct, ")", `")"`); err != nil {
		return nil, err
	}
	if v.Grouping == nil {
		if v.Grouping, err = p.grouping(); err != nil {
			return nil, err
		}
	}
	if v.Grouping != nil && (op.text == "sort" || op.text == "sort_desc") {
		return nil, p.errorf(op, "%s takes no grouping", op.text)
	}
	if _, ok := v.Expr.(*LogExpr); ok {
		return nil, p.errorf(op, "%s aggregates a metric query, not a log query: use e.g. %s(count_over_time(… [5m]))", op.text, op.text)
	}
	return v, nil
}

func (p *parser) rangeAggregation() (Expr, error) {
	op := p.next()
	r := &RangeAggregation{Op: op.text}
	if _, err := p.expect(tPunct, "(", `"(" after `+op.text); err != nil {
		return nil, err
	}
	if op.text == "quantile_over_time" {
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		r.Param = &v
		if _, err := p.expect(tPunct, ",", `"," after quantile_over_time's φ`); err != nil {
			return nil, err
		}
	}
	if !p.punct("{") {
		return nil, p.errorf(p.peek(), "%s takes a log query with a range, e.g. %s({app=\"x\"} [5m]); found %s", op.text, op.text, p.peek())
	}
	matchers, err := p.selector()
	if err != nil {
		return nil, err
	}
	r.Log = &LogExpr{Matchers: matchers}
	rangeSeen := false
	if p.punct("[") { // the range may follow the selector
		if r.Range, err = p.rangeDuration(); err != nil {
			return nil, err
		}
		rangeSeen = true
	}
	if r.Log.Pipeline, r.Unwrap, err = p.pipeline(true); err != nil {
		return nil, err
	}
	if !rangeSeen {
		if !p.punct("[") {
			return nil, p.errorf(p.peek(), "%s needs a range, e.g. [5m]; found %s", op.text, p.peek())
		}
		if r.Range, err = p.rangeDuration(); err != nil {
			return nil, err
		}
	}
	if p.ident("offset") {
		p.next()
		t, err := p.expect(tDuration, "", "a duration after offset")
		if err != nil {
			return nil, err
		}
		if r.Offset, err = ParseDuration(t.text); err != nil {
			return nil, p.errorf(t, "%v", err)
		}
	}
	if _, err := p.expect(tPunct, ")", `")"`); err != nil {
		return nil, err
	}
	if r.Grouping, err = p.grouping(); err != nil {
		return nil, err
	}
	switch {
	case r.Unwrap == nil && !slices.Contains(logRangeOps, op.text):
		return nil, p.errorf(op, "%s needs an unwrapped label: add | unwrap <label>", op.text)
	case r.Unwrap != nil && !slices.Contains(unwrapRangeOps, op.text):
		return nil, p.errorf(op, "%s counts log lines and takes no unwrap", op.text)
	case r.Grouping != nil && (r.Unwrap == nil || op.text == "rate" || op.text == "rate_counter" || op.text == "absent_over_time"):
		return nil, p.errorf(op, "%s takes no by/without; group with an aggregation around it, e.g. sum by (…) (%s(…))", op.text, op.text)
	}
	return r, nil
}

func (p *parser) rangeDuration() (time.Duration, error) {
	p.next() // [
	t, err := p.expect(tDuration, "", "a duration such as 5m")
	if err != nil {
		return 0, err
	}
	d, err := ParseDuration(t.text)
	if err != nil {
		return 0, p.errorf(t, "%v", err)
	}
	if d <= 0 {
		return 0, p.errorf(t, "the range must be positive")
	}
	if _, err := p.expect(tPunct, "]", `"]"`); err != nil {
		return 0, err
	}
	return d, nil
}

func (p *parser) labelReplace() (Expr, error) {
	p.next()
	if _, err := p.expect(tPunct, "(", `"(" after label_replace`); err != nil {
		return nil, err
	}
	e, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	lr := &LabelReplace{Expr: e}
	for _, dst := range []*string{&lr.Dst, &lr.Replacement, &lr.Src, &lr.Regex} {
		if _, err := p.expect(tPunct, ",", `","`); err != nil {
			return nil, err
		}
		t, err := p.expect(tString, "", "a string")
		if err != nil {
			return nil, err
		}
		*dst = t.text
	}
	if _, err := p.expect(tPunct, ")", `")"`); err != nil {
		return nil, err
	}
	if _, err := labels.NewMatcher(labels.MatchRegexp, "x", lr.Regex); err != nil {
		return nil, fmt.Errorf("label_replace: invalid regular expression %q: %v", lr.Regex, err)
	}
	return lr, nil
}

func (p *parser) logExpr() (Expr, error) {
	ms, err := p.selector()
	if err != nil {
		return nil, err
	}
	stages, unwrap, err := p.pipeline(false)
	if err != nil {
		return nil, err
	}
	if unwrap != nil {
		return nil, fmt.Errorf("unwrap is only for range aggregations such as sum_over_time")
	}
	return &LogExpr{Matchers: ms, Pipeline: stages}, nil
}

// selector parses {name op "value", …}.
func (p *parser) selector() ([]*labels.Matcher, error) {
	open := p.next() // {
	var ms []*labels.Matcher
	for !p.punct("}") {
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		if !p.punct(",") {
			break
		}
		p.next()
	}
	if _, err := p.expect(tPunct, "}", `"}" or ","`); err != nil {
		return nil, err
	}
	nonEmpty := false
	for _, m := range ms {
		if !m.Matches("") {
			nonEmpty = true
		}
	}
	if !nonEmpty {
		return nil, p.errorf(open, "a stream selector needs at least one matcher that does not match an empty value, e.g. {app=\"x\"}")
	}
	return ms, nil
}

func (p *parser) matcher() (*labels.Matcher, error) {
	name, err := p.expect(tIdent, "", "a label name")
	if err != nil {
		return nil, err
	}
	op := p.next()
	var typ labels.MatchType
	switch op.text {
	case "=":
		typ = labels.MatchEqual
	case "!=":
		typ = labels.MatchNotEqual
	case "=~":
		typ = labels.MatchRegexp
	case "!~":
		typ = labels.MatchNotRegexp
	default:
		return nil, p.errorf(op, "expected =, !=, =~ or !~ after %s, found %s", name.text, op)
	}
	v, err := p.expect(tString, "", "a quoted value")
	if err != nil {
		return nil, err
	}
	m, err := labels.NewMatcher(typ, name.text, v.text)
	if err != nil {
		return nil, p.errorf(v, "invalid regular expression %s: %v", v, err)
	}
	return m, nil
}

// pipeline parses the stages after a selector; in a range aggregation
// (inRange) it also takes unwrap and what follows it.
func (p *parser) pipeline(inRange bool) ([]Stage, *Unwrap, error) {
	var stages []Stage
	for {
		t := p.peek()
		switch {
		case t.kind == tPunct && slices.Contains([]string{"|=", "!=", "|~", "!~", "|>", "!>"}, t.text):
			f, err := p.lineFilter()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, f)
		case t.kind == tPunct && t.text == "|":
			p.next()
			if p.ident("unwrap") {
				if !inRange {
					return nil, nil, p.errorf(p.peek(), "unwrap is only for range aggregations such as sum_over_time")
				}
				u, err := p.unwrap()
				return stages, u, err
			}
			s, err := p.stage()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, s)
		default:
			return stages, nil, nil
		}
	}
}

func (p *parser) lineFilter() (*LineFilter, error) {
	op := p.next()
	f := &LineFilter{Op: op.text}
	for {
		var v FilterValue
		if p.ident("ip") {
			p.next()
			if _, err := p.expect(tPunct, "(", `"(" after ip`); err != nil {
				return nil, err
			}
			s, err := p.expect(tString, "", "an IP address, range or CIDR in quotes")
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(tPunct, ")", `")"`); err != nil {
				return nil, err
			}
			v = FilterValue{Value: s.text, IP: true}
		} else {
			s, err := p.expect(tString, "", "a quoted string after "+op.text)
			if err != nil {
				return nil, err
			}
			v = FilterValue{Value: s.text}
			if op.text == "|~" || op.text == "!~" {
				if _, err := labels.NewMatcher(labels.MatchRegexp, "line", s.text); err != nil {
					return nil, p.errorf(s, "invalid regular expression %s: %v", s, err)
				}
			}
		}
		f.Values = append(f.Values, v)
		if !p.ident("or") || p.toks[p.i+1].kind != tString && !(p.toks[p.i+1].kind == tIdent && p.toks[p.i+1].text == "ip") {
			return f, nil
		}
		p.next() // or
	}
}

// stage parses what follows a "|".
func (p *parser) stage() (Stage, error) {
	t := p.peek()
	if t.kind == tPunct && t.text == "(" {
		f, err := p.labelFilterOr()
		if err != nil {
			return nil, err
		}
		return &LabelFilterStage{Filter: f}, nil
	}
	if t.kind != tIdent {
		return nil, p.errorf(t, "expected a parser, a label filter or a formatting stage after |, found %s", t)
	}
	next := p.toks[p.i+1]
	isFilter := next.kind == tPunct && slices.Contains([]string{"=", "!=", "=~", "!~", ">", ">=", "<", "<=", "=="}, next.text)
	switch {
	case isFilter:
		f, err := p.labelFilterOr()
		if err != nil {
			return nil, err
		}
		return &LabelFilterStage{Filter: f}, nil
	case slices.Contains(parsers, t.text):
		return p.parserStage()
	case t.text == "line_format":
		p.next()
		s, err := p.expect(tString, "", "a template string after line_format")
		if err != nil {
			return nil, err
		}
		return &LineFormat{Template: s.text}, nil
	case t.text == "label_format":
		return p.labelFormat()
	case t.text == "drop" || t.text == "keep":
		return p.dropKeep()
	case t.text == "decolorize":
		p.next()
		return &Decolorize{}, nil
	}
	return nil, p.errorf(t, "unknown stage %s: expected json, logfmt, regexp, pattern, unpack, line_format, label_format, drop, keep, decolorize, unwrap or a label filter", t)
}

func (p *parser) parserStage() (Stage, error) {
	kind := p.next()
	ps := &Parser{Kind: kind.text}
	switch kind.text {
	case "regexp", "pattern":
		s, err := p.expect(tString, "", "a quoted "+kind.text+" after "+kind.text)
		if err != nil {
			return nil, err
		}
		ps.Param = s.text
		if kind.text == "regexp" {
			if _, err := labels.NewMatcher(labels.MatchRegexp, "x", s.text); err != nil {
				return nil, p.errorf(s, "invalid regular expression %s: %v", s, err)
			}
		}
		return ps, nil
	case "unpack":
		return ps, nil
	}
	for kind.text == "logfmt" && (p.ident("--strict") || p.ident("--keep-empty")) {
		ps.Flags = append(ps.Flags, p.next().text)
	}
	// Named extractions: name="path", or a bare name, comma-separated.
	for p.peek().kind == tIdent && !p.isKeywordHere() {
		name := p.next()
		x := Extraction{Name: name.text}
		if p.punct("=") {
			p.next()
			s, err := p.expect(tString, "", "a quoted path")
			if err != nil {
				return nil, err
			}
			x.Path = s.text
		}
		ps.Extractions = append(ps.Extractions, x)
		if !p.punct(",") {
			break
		}
		p.next()
	}
	return ps, nil
}

// isKeywordHere says the identifier ahead ends a stage (an operator
// keyword of the enclosing expression).
func (p *parser) isKeywordHere() bool {
	switch p.peek().text {
	case "or", "and", "unless", "by", "without", "offset", "bool", "on", "ignoring":
		return true
	}
	return false
}

func (p *parser) labelFormat() (Stage, error) {
	p.next()
	lf := &LabelFormat{}
	for {
		dst, err := p.expect(tIdent, "", "a label name")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, "=", `"="`); err != nil {
			return nil, err
		}
		it := LabelFormatItem{Dst: dst.text}
		switch t := p.next(); t.kind {
		case tString:
			it.Src, it.IsTemplate = t.text, true
		case tIdent:
			it.Src = t.text
		default:
			return nil, p.errorf(t, "expected a label name or a template string, found %s", t)
		}
		lf.Items = append(lf.Items, it)
		if !p.punct(",") {
			return lf, nil
		}
		p.next()
	}
}

func (p *parser) dropKeep() (Stage, error) {
	d := &DropKeep{Keep: p.next().text == "keep"}
	for {
		name, err := p.expect(tIdent, "", "a label name")
		if err != nil {
			return nil, err
		}
		it := DropKeepItem{Name: name.text}
		if p.punct("=") || p.punct("!=") || p.punct("=~") || p.punct("!~") {
			p.i-- // back to the name: parse it as a matcher
			if it.Matcher, err = p.matcher(); err != nil {
				return nil, err
			}
		}
		d.Items = append(d.Items, it)
		if !p.punct(",") {
			return d, nil
		}
		p.next()
	}
}

// labelFilterOr parses filters joined by "or", the loosest.
func (p *parser) labelFilterOr() (LabelFilter, error) {
	l, err := p.labelFilterAnd()
	if err != nil {
		return nil, err
	}
	for p.ident("or") {
		p.next()
		r, err := p.labelFilterAnd()
		if err != nil {
			return nil, err
		}
		l = &LabelFilterBinary{Op: "or", L: l, R: r}
	}
	return l, nil
}

// labelFilterAnd parses filters joined by "and", "," or nothing.
func (p *parser) labelFilterAnd() (LabelFilter, error) {
	l, err := p.labelFilterPrimary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.ident("and"):
			p.next()
		case p.punct(","):
			p.next()
		case p.peek().kind == tIdent && !p.isKeywordHere() && p.i+1 < len(p.toks) && p.toks[p.i+1].kind == tPunct &&
			slices.Contains([]string{"=", "!=", "=~", "!~", ">", ">=", "<", "<=", "=="}, p.toks[p.i+1].text):
		case p.punct("("):
		default:
			return l, nil
		}
		r, err := p.labelFilterPrimary()
		if err != nil {
			return nil, err
		}
		l = &LabelFilterBinary{Op: "and", L: l, R: r}
	}
}

func (p *parser) labelFilterPrimary() (LabelFilter, error) {
	if p.punct("(") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		p.next()
		f, err := p.labelFilterOr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ")", `")"`); err != nil {
			return nil, err
		}
		return &LabelFilterParen{Filter: f}, nil
	}
	name, err := p.expect(tIdent, "", "a label name")
	if err != nil {
		return nil, err
	}
	op := p.next()
	c := &LabelCompare{Name: name.text, Op: op.text}
	v := p.next()
	switch v.kind {
	case tString:
		if !slices.Contains([]string{"=", "!=", "=~", "!~"}, op.text) {
			return nil, p.errorf(op, "%s compares numbers, durations or byte sizes, not the string %s", op.text, v)
		}
		c.Type, c.Value = StringValue, v.text
		if op.text == "=~" || op.text == "!~" {
			if _, err := labels.NewMatcher(labels.MatchRegexp, "x", v.text); err != nil {
				return nil, p.errorf(v, "invalid regular expression %s: %v", v, err)
			}
		}
	case tNumber, tDuration, tBytes:
		if !slices.Contains([]string{"==", "=", "!=", ">", ">=", "<", "<="}, op.text) {
			return nil, p.errorf(op, "%s needs a quoted string, not %s", op.text, v)
		}
		if op.text == "=" {
			c.Op = "=="
		}
		c.Type = map[tokenKind]ValueType{tNumber: NumberValue, tDuration: DurationValue, tBytes: BytesValue}[v.kind]
		c.Value = v.text
	case tIdent:
		if v.text != "ip" || !p.punct("(") {
			return nil, p.errorf(v, "expected a value after %s %s, found %s", name.text, op.text, v)
		}
		if op.text != "=" && op.text != "!=" {
			return nil, p.errorf(op, "ip() compares with = or !=, not %s", op.text)
		}
		p.next()
		s, err := p.expect(tString, "", "an IP address, range or CIDR in quotes")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ")", `")"`); err != nil {
			return nil, err
		}
		if _, err := ipMatcher(s.text); err != nil {
			return nil, p.errorf(s, "%v", err)
		}
		c.Type, c.Value = IPValue, s.text
	case tPunct:
		if v.text == "-" && p.peek().kind == tNumber {
			n := p.next()
			c.Type, c.Value = NumberValue, "-"+n.text
			if op.text == "=" {
				c.Op = "=="
			}
			break
		}
		fallthrough
	default:
		return nil, p.errorf(v, "expected a value after %s %s, found %s", name.text, op.text, v)
	}
	return c, nil
}

func (p *parser) unwrap() (*Unwrap, error) {
	p.next() // unwrap
	u := &Unwrap{}
	t, err := p.expect(tIdent, "", "a label name after unwrap")
	if err != nil {
		return nil, err
	}
	if (t.text == "duration" || t.text == "duration_seconds" || t.text == "bytes") && p.punct("(") {
		p.next()
		l, err := p.expect(tIdent, "", "a label name")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ")", `")"`); err != nil {
			return nil, err
		}
		u.Conv, u.Label = t.text, l.text
	} else {
		u.Label = t.text
	}
	for p.punct("|") {
		p.next()
		f, err := p.labelFilterOr()
		if err != nil {
			return nil, err
		}
		u.PostFilters = append(u.PostFilters, f)
	}
	return u, nil
}
