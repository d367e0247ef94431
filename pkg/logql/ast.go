package logql

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// Expr is a parsed query: a log query (LogExpr) or a metric query. String
// gives its canonical form, which parses to the same tree
// (format_query).
type Expr interface {
	String() string
	expr()
}

// LogExpr is a stream selector and its pipeline: a log query.
type LogExpr struct {
	Matchers []*labels.Matcher
	Pipeline []Stage
}

// Stage is one step of a pipeline.
type Stage interface {
	String() string
	stage()
}

// LineFilter keeps (|=, |~, |>) or drops (!=, !~, !>) lines by a substring,
// a regular expression, a pattern or an IP range; Values are or-ed.
type LineFilter struct {
	Op     string
	Values []FilterValue
}

// FilterValue is one operand of a line filter.
type FilterValue struct {
	Value string
	IP    bool // ip("…")
}

// Parser extracts labels from the line: json, logfmt, regexp, pattern or
// unpack.
type Parser struct {
	Kind string
	// Param is regexp's expression or pattern's pattern.
	Param string
	// Extractions are json's and logfmt's named paths (name="path").
	Extractions []Extraction
	// Flags are logfmt's --strict and --keep-empty.
	Flags []string
}

// Extraction is one `name="path"` (or bare `name`) of json or logfmt.
type Extraction struct {
	Name, Path string
}

// LabelFilterStage keeps entries whose labels pass Filter.
type LabelFilterStage struct {
	Filter LabelFilter
}

// LabelFilter is a predicate over an entry's labels.
type LabelFilter interface {
	String() string
	labelFilter()
}

// LabelCompare compares one label with a value of a type: a string (=, !=,
// =~, !~), or a number, duration or byte size (==, !=, >, >=, <, <=; = is
// ==).
type LabelCompare struct {
	Name  string
	Op    string
	Type  ValueType
	Value string // as written, for strings unquoted
}

// ValueType is the type of a label filter's value.
type ValueType int

// Value types of label filters.
const (
	StringValue ValueType = iota
	NumberValue
	DurationValue
	BytesValue
	// IPValue is ip("…"): an address, CIDR or range (= and != only).
	IPValue
)

// LabelFilterBinary joins two filters with "and" or "or".
type LabelFilterBinary struct {
	Op   string
	L, R LabelFilter
}

// LabelFilterParen is a parenthesised filter.
type LabelFilterParen struct {
	Filter LabelFilter
}

// LineFormat replaces the line with a template's output.
type LineFormat struct{ Template string }

// LabelFormat renames labels (dst=src) or sets them from templates
// (dst="template").
type LabelFormat struct{ Items []LabelFormatItem }

// LabelFormatItem is one dst=src or dst="template".
type LabelFormatItem struct {
	Dst, Src   string
	IsTemplate bool
}

// DropKeep is drop or keep, of labels by name or by matcher.
type DropKeep struct {
	Keep  bool
	Items []DropKeepItem
}

// DropKeepItem is a bare name or a matcher.
type DropKeepItem struct {
	Name    string
	Matcher *labels.Matcher
}

// Decolorize strips ANSI colour codes from the line.
type Decolorize struct{}

// Unwrap takes a label's value as the sample of a range aggregation, as a
// number, or converted with duration()/duration_seconds()/bytes().
type Unwrap struct {
	Label string
	Conv  string // "", "duration", "duration_seconds", "bytes"
	// PostFilters are the label filters after unwrap (e.g. | __error__="").
	PostFilters []LabelFilter
}

// RangeAggregation is rate, count_over_time, … over a range of a log
// query, or over unwrapped values.
type RangeAggregation struct {
	Op       string
	Param    *float64 // quantile_over_time's φ
	Log      *LogExpr
	Unwrap   *Unwrap
	Range    time.Duration
	Offset   time.Duration
	Grouping *Grouping // by/without, for the unwrapped aggregations
}

// Grouping is by (…) or without (…).
type Grouping struct {
	Without bool
	Labels  []string
}

// VectorAggregation is sum, avg, topk, … over a metric query.
type VectorAggregation struct {
	Op       string
	Param    Expr // topk's and bottomk's k
	Grouping *Grouping
	Expr     Expr
}

// BinaryExpr is an arithmetic, comparison or set operation.
type BinaryExpr struct {
	Op       string
	Bool     bool
	Matching *VectorMatching
	L, R     Expr
}

// VectorMatching is on/ignoring and group_left/group_right.
type VectorMatching struct {
	On      bool
	Labels  []string
	Group   string // "", "group_left", "group_right"
	Include []string
}

// NumberLiteral is a scalar.
type NumberLiteral struct{ Value float64 }

// VectorExpr is vector(n).
type VectorExpr struct{ Value float64 }

// ParenExpr is a parenthesised expression.
type ParenExpr struct{ Expr Expr }

// UnaryExpr is a negated expression.
type UnaryExpr struct{ Expr Expr }

// LabelReplace is label_replace(expr, dst, replacement, src, regex).
type LabelReplace struct {
	Expr                         Expr
	Dst, Replacement, Src, Regex string
}

func (*LogExpr) expr()           {}
func (*RangeAggregation) expr()  {}
func (*VectorAggregation) expr() {}
func (*BinaryExpr) expr()        {}
func (*NumberLiteral) expr()     {}
func (*VectorExpr) expr()        {}
func (*ParenExpr) expr()         {}
func (*UnaryExpr) expr()         {}
func (*LabelReplace) expr()      {}

func (*LineFilter) stage()       {}
func (*Parser) stage()           {}
func (*LabelFilterStage) stage() {}
func (*LineFormat) stage()       {}
func (*LabelFormat) stage()      {}
func (*DropKeep) stage()         {}
func (*Decolorize) stage()       {}

func (*LabelCompare) labelFilter()      {}
func (*LabelFilterBinary) labelFilter() {}
func (*LabelFilterParen) labelFilter()  {}

func quote(s string) string { return strconv.Quote(s) }

func (e *LogExpr) String() string {
	var b strings.Builder
	b.WriteString(selectorString(e.Matchers))
	for _, s := range e.Pipeline {
		b.WriteByte(' ')
		b.WriteString(s.String())
	}
	return b.String()
}

func selectorString(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.Name + m.Type.String() + quote(m.Value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (f *LineFilter) String() string {
	parts := make([]string, len(f.Values))
	for i, v := range f.Values {
		if v.IP {
			parts[i] = "ip(" + quote(v.Value) + ")"
		} else {
			parts[i] = quote(v.Value)
		}
	}
	return f.Op + " " + strings.Join(parts, " or ")
}

func (p *Parser) String() string {
	var b strings.Builder
	b.WriteString("| ")
	b.WriteString(p.Kind)
	for _, f := range p.Flags {
		b.WriteByte(' ')
		b.WriteString(f)
	}
	if p.Kind == "regexp" || p.Kind == "pattern" {
		b.WriteByte(' ')
		b.WriteString(quote(p.Param))
	}
	for i, x := range p.Extractions {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(x.Name)
		if x.Path != "" {
			b.WriteByte('=')
			b.WriteString(quote(x.Path))
		}
	}
	return b.String()
}

func (s *LabelFilterStage) String() string { return "| " + s.Filter.String() }

func (c *LabelCompare) String() string {
	v := c.Value
	switch c.Type {
	case StringValue:
		v = quote(v)
	case IPValue:
		v = "ip(" + quote(v) + ")"
	}
	return c.Name + c.Op + v
}

func (f *LabelFilterBinary) String() string { return f.L.String() + " " + f.Op + " " + f.R.String() }
func (f *LabelFilterParen) String() string  { return "(" + f.Filter.String() + ")" }

func (l *LineFormat) String() string { return "| line_format " + quote(l.Template) }

func (l *LabelFormat) String() string {
	parts := make([]string, len(l.Items))
	for i, it := range l.Items {
		if it.IsTemplate {
			parts[i] = it.Dst + "=" + quote(it.Src)
		} else {
			parts[i] = it.Dst + "=" + it.Src
		}
	}
	return "| label_format " + strings.Join(parts, ", ")
}

func (d *DropKeep) String() string {
	parts := make([]string, len(d.Items))
	for i, it := range d.Items {
		if it.Matcher != nil {
			parts[i] = it.Matcher.Name + it.Matcher.Type.String() + quote(it.Matcher.Value)
		} else {
			parts[i] = it.Name
		}
	}
	word := "drop"
	if d.Keep {
		word = "keep"
	}
	return "| " + word + " " + strings.Join(parts, ", ")
}

func (*Decolorize) String() string { return "| decolorize" }

func (u *Unwrap) String() string {
	s := "| unwrap "
	if u.Conv != "" {
		s += u.Conv + "(" + u.Label + ")"
	} else {
		s += u.Label
	}
	for _, f := range u.PostFilters {
		s += " | " + f.String()
	}
	return s
}

func durationString(d time.Duration) string { return model.Duration(d).String() }

func (r *RangeAggregation) String() string {
	var b strings.Builder
	b.WriteString(r.Op)
	b.WriteByte('(')
	if r.Param != nil {
		b.WriteString(strconv.FormatFloat(*r.Param, 'g', -1, 64))
		b.WriteString(", ")
	}
	b.WriteString(r.Log.String())
	if r.Unwrap != nil {
		b.WriteByte(' ')
		b.WriteString(r.Unwrap.String())
	}
	b.WriteString(" [")
	b.WriteString(durationString(r.Range))
	b.WriteByte(']')
	if r.Offset != 0 {
		b.WriteString(" offset ")
		b.WriteString(durationString(r.Offset))
	}
	b.WriteByte(')')
	if r.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(r.Grouping.String())
	}
	return b.String()
}

func (g *Grouping) String() string {
	word := "by"
	if g.Without {
		word = "without"
	}
	return word + " (" + strings.Join(g.Labels, ", ") + ")"
}

func (v *VectorAggregation) String() string {
	var b strings.Builder
	b.WriteString(v.Op)
	if v.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(v.Grouping.String())
		b.WriteByte(' ')
	}
	b.WriteByte('(')
	if v.Param != nil {
		b.WriteString(v.Param.String())
		b.WriteString(", ")
	}
	b.WriteString(v.Expr.String())
	b.WriteByte(')')
	return b.String()
}

func (e *BinaryExpr) String() string {
	var b strings.Builder
	b.WriteString(e.L.String())
	b.WriteByte(' ')
	b.WriteString(e.Op)
	if e.Bool {
		b.WriteString(" bool")
	}
	if m := e.Matching; m != nil {
		if m.On {
			b.WriteString(" on (")
		} else {
			b.WriteString(" ignoring (")
		}
		b.WriteString(strings.Join(m.Labels, ", "))
		b.WriteByte(')')
		if m.Group != "" {
			b.WriteString(" " + m.Group + " (")
			b.WriteString(strings.Join(m.Include, ", "))
			b.WriteByte(')')
		}
	}
	b.WriteByte(' ')
	b.WriteString(e.R.String())
	return b.String()
}

func (n *NumberLiteral) String() string { return strconv.FormatFloat(n.Value, 'g', -1, 64) }
func (v *VectorExpr) String() string {
	return "vector(" + strconv.FormatFloat(v.Value, 'g', -1, 64) + ")"
}
func (p *ParenExpr) String() string { return "(" + p.Expr.String() + ")" }
func (u *UnaryExpr) String() string { return "-" + u.Expr.String() }
func (l *LabelReplace) String() string {
	return "label_replace(" + l.Expr.String() + ", " + quote(l.Dst) + ", " + quote(l.Replacement) + ", " + quote(l.Src) + ", " + quote(l.Regex) + ")"
}
