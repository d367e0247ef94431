package frontend

import (
	"fmt"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/util/queryshard"
)

// Query sharding. An associative aggregation over series, sum by (job)
// (rate(x[5m])) say, gives the same answer as the same aggregation of its
// partial results over disjoint sets of series. The frontend rewrites such
// an aggregation into "embedded" queries, each run by a querier once per
// shard with the shard matcher added to every selector, and evaluates what
// is left of the query (the outer aggregation and anything around it) with a
// local PromQL engine over the partial results.

const (
	// embeddedName is the metric name of a selector standing for the
	// results of an embedded query; embeddedLabel says which one.
	embeddedName  = "__canopy_embedded__"
	embeddedLabel = "__canopy_embedded_query__"
)

// shardPlan is a query rewritten for sharding.
type shardPlan struct {
	// outer is what the frontend evaluates over the embedded results.
	outer string
	// embedded are the partial aggregations, run once per shard.
	embedded []parser.Expr
	// labelled says which embedded results get the shard label added: the
	// partial results of one group from different shards share a label set
	// (sum, count…), while topk and bottomk return input series, which are
	// in one shard each.
	labelled []bool
	parser   parser.Parser
}

// shardQuery renders embedded query k for shard i of n.
func (p *shardPlan) shardQuery(k, i, n int) string {
	e, err := p.parser.ParseExpr(p.embedded[k].String())
	if err != nil {
		// Cannot happen: it was parsed from a query and rendered back.
		panic(fmt.Sprintf("re-parsing embedded query %q: %v", p.embedded[k], err))
	}
	m := queryshard.Matcher(i, n)
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			vs.LabelMatchers = append(vs.LabelMatchers, m)
		}
		return nil
	})
	return e.String()
}

// planSharding rewrites expr for sharding. It returns nil when nothing in
// expr can be sharded, or when a selector would be left outside the embedded
// queries (the frontend holds no series).
func planSharding(expr parser.Expr, p parser.Parser) *shardPlan {
	// The rewrite changes nodes in place: work on a copy.
	cp, err := p.ParseExpr(expr.String())
	if err != nil {
		return nil
	}
	plan := &shardPlan{parser: p}
	outer := plan.rewrite(cp)
	if len(plan.embedded) == 0 || hasSelector(outer, true) || readsStorage(outer) {
		return nil
	}
	plan.outer = outer.String()
	return plan
}

func (p *shardPlan) rewrite(e parser.Expr) parser.Expr {
	switch n := e.(type) {
	case *parser.AggregateExpr:
		if r := p.shard(n); r != nil {
			return r
		}
		n.Expr = p.rewrite(n.Expr)
		if n.Param != nil {
			n.Param = p.rewrite(n.Param)
		}
	case *parser.BinaryExpr:
		n.LHS, n.RHS = p.rewrite(n.LHS), p.rewrite(n.RHS)
	case *parser.Call:
		for i, a := range n.Args {
			n.Args[i] = p.rewrite(a)
		}
	case *parser.ParenExpr:
		n.Expr = p.rewrite(n.Expr)
	case *parser.UnaryExpr:
		n.Expr = p.rewrite(n.Expr)
	}
	// Subqueries are left whole: their steps are not the query's.
	return e
}

// shard returns what replaces agg when it can be sharded, else nil.
func (p *shardPlan) shard(agg *parser.AggregateExpr) parser.Expr {
	switch agg.Op {
	case parser.SUM, parser.MIN, parser.MAX, parser.COUNT, parser.GROUP, parser.AVG, parser.TOPK, parser.BOTTOMK:
	default:
		return nil
	}
	if !perSeries(agg.Expr) || (agg.Param != nil && hasSelector(agg.Param, false)) {
		return nil
	}
	partial := func(op parser.ItemType) parser.Expr {
		return &parser.AggregateExpr{Op: op, Expr: agg.Expr, Param: agg.Param, Grouping: agg.Grouping, Without: agg.Without}
	}
	// combine aggregates the embedded results of k with op.
	combine := func(op parser.ItemType, k int) parser.Expr {
		out := &parser.AggregateExpr{Op: op, Param: agg.Param, Grouping: agg.Grouping, Without: agg.Without, Expr: embeddedSelector(k)}
		if agg.Without && p.labelled[k] {
			out.Grouping = append(append([]string(nil), agg.Grouping...), queryshard.Label)
		}
		return out
	}
	add := func(e parser.Expr, labelled bool) int {
		p.embedded = append(p.embedded, e)
		p.labelled = append(p.labelled, labelled)
		return len(p.embedded) - 1
	}
	switch agg.Op {
	case parser.COUNT:
		return combine(parser.SUM, add(partial(parser.COUNT), true))
	case parser.AVG:
		sum := combine(parser.SUM, add(partial(parser.SUM), true))
		count := combine(parser.SUM, add(partial(parser.COUNT), true))
		return &parser.ParenExpr{Expr: &parser.BinaryExpr{
			Op: parser.DIV, LHS: sum, RHS: count,
			VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne},
		}}
	case parser.TOPK, parser.BOTTOMK:
		return combine(agg.Op, add(partial(agg.Op), false))
	default:
		return combine(agg.Op, add(partial(agg.Op), true))
	}
}

func embeddedSelector(k int) *parser.VectorSelector {
	return &parser.VectorSelector{
		Name: embeddedName,
		LabelMatchers: []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, embeddedName),
			labels.MustNewMatcher(labels.MatchEqual, embeddedLabel, strconv.Itoa(k)),
		},
	}
}

// hasSelector reports whether e selects series; with skipEmbedded, the
// embedded results' selectors do not count.
func hasSelector(e parser.Expr, skipEmbedded bool) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			found = found || !skipEmbedded || n.Name != embeddedName
		case *parser.MatrixSelector:
			found = found || !skipEmbedded || n.VectorSelector.(*parser.VectorSelector).Name != embeddedName
		}
		return nil
	})
	return found
}

// readsStorage reports whether e calls a function that selects series of its
// own (info joins target_info), which the frontend does not hold.
func readsStorage(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if c, ok := n.(*parser.Call); ok && c.Func.Name == "info" {
			found = true
		}
		return nil
	})
	return found
}

// perSeriesFuncs are the functions whose every output series depends on one
// input series only. Left out: those that make series from nothing (vector,
// time…), join or compare series (histogram_quantile over classic buckets,
// info, absent…) or return scalars.
var perSeriesFuncs = map[string]bool{}

func init() {
	for _, f := range []string{
		"abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time", "ceil", "changes",
		"clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "days_in_month",
		"day_of_month", "day_of_week", "day_of_year", "deg", "delta", "deriv", "exp", "first_over_time",
		"floor", "histogram_avg", "histogram_count", "histogram_sum", "histogram_stddev",
		"histogram_stdvar", "histogram_fraction", "double_exponential_smoothing", "hour", "idelta",
		"increase", "irate", "label_replace", "label_join", "last_over_time", "ln", "log10", "log2",
		"mad_over_time", "max_over_time", "min_over_time", "ts_of_first_over_time", "ts_of_max_over_time",
		"ts_of_min_over_time", "ts_of_last_over_time", "minute", "month", "predict_linear",
		"present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "sgn", "sin", "sinh",
		"sort", "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt", "stddev_over_time",
		"stdvar_over_time", "sum_over_time", "tan", "tanh", "timestamp", "year",
	} {
		perSeriesFuncs[f] = true
	}
}

// perSeries reports whether every series e returns is computed from one
// input series, so e over a shard's series returns exactly e's series of
// that shard.
func perSeries(e parser.Expr) bool {
	switch n := e.(type) {
	case *parser.VectorSelector, *parser.MatrixSelector:
		return true
	case *parser.ParenExpr:
		return perSeries(n.Expr)
	case *parser.UnaryExpr:
		return perSeries(n.Expr)
	case *parser.SubqueryExpr:
		return perSeries(n.Expr)
	case *parser.BinaryExpr:
		// A vector with a constant scalar; two vectors join series.
		l, r := isConstant(n.LHS), isConstant(n.RHS)
		return (l && !r && perSeries(n.RHS)) || (r && !l && perSeries(n.LHS))
	case *parser.Call:
		if !perSeriesFuncs[n.Func.Name] {
			return false
		}
		vectors := 0
		for _, a := range n.Args {
			switch a.Type() {
			case parser.ValueTypeVector, parser.ValueTypeMatrix:
				if !perSeries(a) {
					return false
				}
				vectors++
			default:
				if hasSelector(a, false) {
					return false
				}
			}
		}
		return vectors == 1
	}
	return false
}

// isConstant reports whether e is a scalar or string computed without
// series.
func isConstant(e parser.Expr) bool {
	t := e.Type()
	return (t == parser.ValueTypeScalar || t == parser.ValueTypeString) && !hasSelector(e, false)
}
