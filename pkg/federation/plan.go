package federation

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// The rewrite (README.md, "How a query is split"): every part of a query
// that each child can evaluate on its own data, with the union of the
// children's answers (external labels added) equal to the part's answer
// over all the data, is sent to the children whole; the federator
// evaluates the rest over their answers. A pushed part stands in the
// federator's query as a placeholder selector, whose series the
// federator's Queryable fetches by running the part on the children.

// Placeholder selectors: the metric name and the label that numbers the
// pushed part.
const (
	placeholderName  = "__canopy_pushdown__"
	placeholderLabel = "__canopy_part__"
)

// plan is a query rewritten for the children.
type plan struct {
	// root is what the federator's engine evaluates: the query with its
	// pushed parts replaced by placeholders.
	root parser.Expr
	// parts are the pushed parts, by placeholder number: vector
	// expressions each child evaluates at the query's steps, or (inside
	// subqueries the federator evaluates) at the steps of the subqueries
	// around the part, outermost first, in grids.
	parts []parser.Expr
	grids [][]*parser.SubqueryExpr
}

// perSeries are the functions whose result for a series depends only on
// that series (and on scalar arguments): a child computes them for its
// series as the whole would. histogram_quantile and its kin read the
// series of one histogram together, all of which live in one child.
var perSeries = map[string]bool{}

func init() {
	for _, f := range []string{
		"abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time", "ceil", "changes",
		"clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "days_in_month",
		"day_of_month", "day_of_week", "day_of_year", "deg", "delta", "deriv", "exp",
		"first_over_time", "floor", "histogram_avg", "histogram_count", "histogram_sum",
		"histogram_stddev", "histogram_stdvar", "histogram_fraction", "histogram_quantile",
		"histogram_quantiles", "double_exponential_smoothing", "hour", "idelta", "increase", "irate",
		"label_replace", "label_join", "last_over_time", "ln", "log2", "log10", "mad_over_time",
		"max_over_time", "min_over_time", "ts_of_first_over_time", "ts_of_max_over_time",
		"ts_of_min_over_time", "ts_of_last_over_time", "minute", "month", "predict_linear",
		"present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "sgn", "sin",
		"sinh", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh",
		"timestamp", "year",
	} {
		perSeries[f] = true
	}
}

// planner rewrites queries for children whose external labels have the
// names ext.
type planner struct {
	ext       []string // sorted
	selectors bool     // push selectors only (the series-fetching fallback)
	parts     []parser.Expr
	grids     [][]*parser.SubqueryExpr
}

// planQuery rewrites e (which it may modify) for children whose external
// labels have the names ext. With selectorsOnly, nothing but vector
// selectors is pushed: the children send series, the federator computes
// everything (a series-fetching federator, for comparison).
func planQuery(e parser.Expr, ext []string, selectorsOnly bool) *plan {
	p := &planner{ext: slices.Sorted(slices.Values(ext)), selectors: selectorsOnly}
	root := p.rewrite(e, nil)
	return &plan{root: root, parts: p.parts, grids: p.grids}
}

// rewrite returns e with its pushed parts replaced. grid lists the
// subqueries the federator evaluates around e (outermost first): a part
// pushed there is evaluated at their steps. Inside a subquery whose
// times are duration expressions the federator cannot compute its steps:
// selectors there read the children's samples (raw is true).
func (p *planner) rewrite(e parser.Expr, grid []*parser.SubqueryExpr) parser.Expr {
	return p.rewriteIn(e, grid, false)
}

func (p *planner) rewriteIn(e parser.Expr, grid []*parser.SubqueryExpr, raw bool) parser.Expr {
	if !raw && e.Type() == parser.ValueTypeVector && hasSelector(e) && (p.pushable(e)) {
		return p.push(e, grid)
	}
	switch n := e.(type) {
	case *parser.AggregateExpr:
		if !raw && !p.selectors {
			if r, ok := p.decompose(n, grid); ok {
				return r
			}
		}
		n.Expr = p.rewriteIn(n.Expr, grid, raw)
		if n.Param != nil {
			n.Param = p.rewriteIn(n.Param, grid, raw)
		}
	case *parser.Call:
		if !raw && len(n.Args) == 1 {
			if vs, ok := n.Args[0].(*parser.VectorSelector); ok && n.Func.Name == "absent" {
				return p.absent(n, vs, vs, grid)
			}
			if ms, ok := n.Args[0].(*parser.MatrixSelector); ok && n.Func.Name == "absent_over_time" && !p.selectors {
				// absent_over_time(v[r]) holds where no series has a
				// sample in range: where count_over_time(v[r]) has none.
				count := &parser.Call{Func: parser.Functions["count_over_time"], Args: parser.Expressions{ms}}
				return p.absent(&parser.Call{Func: parser.Functions["absent"], Args: parser.Expressions{count}}, count, ms.VectorSelector.(*parser.VectorSelector), grid)
			}
		}
		for i, a := range n.Args {
			if n.Func.Name == "info" && i > 0 {
				break // a label selector of info metrics, which the engine reads itself
			}
			n.Args[i] = p.rewriteIn(a, grid, raw)
		}
	case *parser.BinaryExpr:
		n.LHS = p.rewriteIn(n.LHS, grid, raw)
		n.RHS = p.rewriteIn(n.RHS, grid, raw)
	case *parser.ParenExpr:
		n.Expr = p.rewriteIn(n.Expr, grid, raw)
	case *parser.UnaryExpr:
		n.Expr = p.rewriteIn(n.Expr, grid, raw)
	case *parser.SubqueryExpr:
		inner := raw || n.RangeExpr != nil || n.StepExpr != nil || n.OriginalOffsetExpr != nil
		n.Expr = p.rewriteIn(n.Expr, append(slices.Clone(grid), n), inner)
	case *parser.StepInvariantExpr:
		n.Expr = p.rewriteIn(n.Expr, grid, raw)
	}
	return e
}

// pushable reports whether e goes to the children whole: distributable
// or, in the selectors-only mode, a vector selector.
func (p *planner) pushable(e parser.Expr) bool {
	if p.selectors {
		if c, ok := e.(*parser.Call); ok && c.Func.Name == "timestamp" && len(c.Args) == 1 {
			// timestamp of a selector reads its samples' times, which a
			// selector pushed alone answers with the steps'.
			e = unwrapParens(c.Args[0])
		}
		_, ok := e.(*parser.VectorSelector)
		return ok
	}
	return p.distributable(e)
}

func unwrapParens(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// push makes e a pushed part and returns its placeholder.
func (p *planner) push(e parser.Expr, grid []*parser.SubqueryExpr) parser.Expr {
	p.parts = append(p.parts, e)
	p.grids = append(p.grids, slices.Clone(grid))
	return placeholder(len(p.parts) - 1)
}

// absent rewrites absent(e) (absent_over_time(v[r]) as
// absent(count_over_time(v[r]))): e is pushed, and the labels absent
// takes from the selector vs (its equality matchers) are set on the
// answer by label_replace, the placeholder's taken off.
func (p *planner) absent(n *parser.Call, e parser.Expr, vs *parser.VectorSelector, grid []*parser.SubqueryExpr) parser.Expr {
	n.Args[0] = p.push(e, grid)
	var out parser.Expr = n
	set := func(name, value string) {
		out = &parser.Call{Func: parser.Functions["label_replace"], Args: parser.Expressions{
			out, &parser.StringLiteral{Val: name}, &parser.StringLiteral{Val: value}, &parser.StringLiteral{Val: ""}, &parser.StringLiteral{Val: ""},
		}}
	}
	set(placeholderLabel, "")
	absentLabels(vs.LabelMatchers).Range(func(l labels.Label) { set(l.Name, l.Value) })
	return out
}

// absentLabels are the labels absent gives its answer for a selector
// with these matchers: the equality matchers' but the metric name's, a
// label matched twice left out (Prometheus's rule).
func absentLabels(ms []*labels.Matcher) labels.Labels {
	b := labels.NewBuilder(labels.EmptyLabels())
	has := map[string]bool{}
	for _, m := range ms {
		if m.Name == labels.MetricName {
			continue
		}
		if m.Type == labels.MatchEqual && !has[m.Name] {
			b.Set(m.Name, m.Value)
			has[m.Name] = true
		} else {
			b.Del(m.Name)
		}
	}
	return b.Labels()
}

// decompose splits an aggregation the children cannot compute whole
// into one they compute per group and external labels and one the
// federator computes over their answers.
func (p *planner) decompose(n *parser.AggregateExpr, grid []*parser.SubqueryExpr) (parser.Expr, bool) {
	if !hasSelector(n.Expr) || !p.distributable(n.Expr) || (n.Param != nil && hasSelector(n.Param)) {
		return nil, false
	}
	child := func(op parser.ItemType) *parser.AggregateExpr {
		return &parser.AggregateExpr{Op: op, Expr: n.Expr, Param: n.Param, Grouping: p.widen(n.Grouping, n.Without), Without: n.Without}
	}
	root := func(op parser.ItemType, part parser.Expr, grouping []string, param parser.Expr) *parser.AggregateExpr {
		return &parser.AggregateExpr{Op: op, Expr: part, Param: param, Grouping: slices.Clone(grouping), Without: n.Without}
	}
	switch n.Op {
	case parser.SUM, parser.MIN, parser.MAX, parser.GROUP:
		return root(n.Op, p.pushIn(grid, child(n.Op)), n.Grouping, nil), true
	case parser.TOPK, parser.BOTTOMK:
		return root(n.Op, p.pushIn(grid, child(n.Op)), n.Grouping, n.Param), true
	case parser.COUNT:
		return root(parser.SUM, p.pushIn(grid, child(parser.COUNT)), n.Grouping, nil), true
	case parser.AVG:
		sum := root(parser.SUM, p.pushIn(grid, child(parser.SUM)), n.Grouping, nil)
		count := root(parser.SUM, p.pushIn(grid, child(parser.COUNT)), n.Grouping, nil)
		return &parser.BinaryExpr{Op: parser.DIV, LHS: sum, RHS: count, VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne}}, true
	case parser.COUNT_VALUES:
		if n.Without {
			return nil, false
		}
		label, ok := n.Param.(*parser.StringLiteral)
		if !ok {
			return nil, false
		}
		return &parser.AggregateExpr{Op: parser.SUM, Expr: p.pushIn(grid, child(parser.COUNT_VALUES)), Grouping: append(slices.Clone(n.Grouping), label.Val)}, true
	}
	return nil, false
}

func placeholder(i int) *parser.VectorSelector {
	return &parser.VectorSelector{
		Name: placeholderName,
		LabelMatchers: []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, placeholderName),
			labels.MustNewMatcher(labels.MatchEqual, placeholderLabel, strconv.Itoa(i)),
		},
	}
}

func (p *planner) pushIn(grid []*parser.SubqueryExpr, e parser.Expr) parser.Expr {
	return p.push(e, grid)
}

// widen returns the grouping a child aggregates by: with `by`, the
// external labels added; with `without`, taken out.
func (p *planner) widen(grouping []string, without bool) []string {
	if without {
		return slices.DeleteFunc(slices.Clone(grouping), func(l string) bool { return slices.Contains(p.ext, l) })
	}
	out := slices.Clone(grouping)
	for _, l := range p.ext {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// keepsExternal reports whether groups or matches by these labels never
// mix series of two children: by (on) every external label, or without
// (ignoring) none.
func (p *planner) keepsExternal(ls []string, on bool) bool {
	for _, l := range p.ext {
		if slices.Contains(ls, l) != on {
			return false
		}
	}
	return true
}

// distributable reports whether every child can evaluate e on its own
// data, the union of their answers being e's answer over all the data.
func (p *planner) distributable(e parser.Expr) bool {
	switch n := e.(type) {
	case *parser.VectorSelector, *parser.MatrixSelector, *parser.NumberLiteral, *parser.StringLiteral:
		return true
	case *parser.ParenExpr:
		return p.distributable(n.Expr)
	case *parser.UnaryExpr:
		return p.distributable(n.Expr)
	case *parser.StepInvariantExpr:
		return p.distributable(n.Expr)
	case *parser.SubqueryExpr:
		return p.distributable(n.Expr)
	case *parser.Call:
		if !perSeries[n.Func.Name] {
			return false
		}
		if n.Func.Name == "label_replace" || n.Func.Name == "label_join" {
			// The labels they read and write must be the child's own.
			for _, a := range n.Args[1:] {
				if s, ok := a.(*parser.StringLiteral); ok && slices.Contains(p.ext, s.Val) {
					return false
				}
			}
		}
		for i, a := range n.Args {
			if !p.distributable(a) {
				return false
			}
			// Scalar arguments are the same everywhere only when they
			// read no series.
			if i < len(n.Func.ArgTypes) && n.Func.ArgTypes[i] == parser.ValueTypeScalar && hasSelector(a) {
				return false
			}
		}
		return true
	case *parser.AggregateExpr:
		if n.Param != nil && hasSelector(n.Param) {
			return false
		}
		// Whole only when no group spans two children.
		return p.keepsExternal(n.Grouping, !n.Without) && p.distributable(n.Expr)
	case *parser.BinaryExpr:
		lv, rv := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
		switch {
		case lv && rv:
			m := n.VectorMatching
			if m == nil || !p.keepsExternal(m.MatchingLabels, m.On) {
				return false
			}
		case lv:
			if hasSelector(n.RHS) {
				return false
			}
		case rv:
			if hasSelector(n.LHS) {
				return false
			}
		default:
			return !hasSelector(n)
		}
		return p.distributable(n.LHS) && p.distributable(n.RHS)
	}
	return false
}

// hasSelector reports whether e reads series.
func hasSelector(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n.(type) {
		case *parser.VectorSelector, *parser.MatrixSelector:
			found = true
			return fmt.Errorf("found")
		}
		return nil
	})
	return found
}
