package logql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promparser "github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// A metric query is evaluated in two parts. Canopy computes every range
// aggregation (the part that reads logs) at the query's steps; what lies
// above them — vector aggregations, binary operators, label_replace,
// vector(), literals — has PromQL's semantics, so it is handed to
// Prometheus's own engine as a PromQL expression whose selectors read the
// computed series, each sample sitting exactly on its step (a lookback of
// 1 ms sees only that step's sample).

const placeholderPrefix = "__logql_range_"

func (e *Engine) execMetric(ctx context.Context, src Source, expr Expr, p Params) (*Result, error) {
	st, err := stepsOf(p)
	if err != nil {
		return nil, err
	}
	var nodes []*RangeAggregation
	qs, err := toPromQL(expr, &nodes)
	if err != nil {
		return nil, err
	}
	var stats Stats
	computed := make(map[string]promql.Matrix, len(nodes))
	var warnings []string
	for i, r := range nodes {
		m, err := e.rangeOf(ctx, src, r, st, p.Limits, &stats, &warnings)
		if err != nil {
			return nil, err
		}
		computed[placeholderPrefix+strconv.Itoa(i)] = m
	}
	res := &Result{Stats: stats, Warnings: warnings}
	if r, ok := unparen(expr).(*RangeAggregation); ok && len(nodes) == 1 && nodes[0] == r {
		m := computed[placeholderPrefix+"0"]
		sort.Sort(m)
		setResult(res, m, p.Instant)
		return res, nil
	}
	q := &computedQueryable{series: computed}
	opts := promql.NewPrometheusQueryOpts(false, time.Millisecond)
	var query promql.Query
	if p.Instant {
		query, err = e.prom.NewInstantQuery(ctx, q, opts, qs, time.UnixMilli(st.start))
	} else {
		query, err = e.prom.NewRangeQuery(ctx, q, opts, qs, time.UnixMilli(st.start), time.UnixMilli(st.at(st.n-1)), time.Duration(st.step)*time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", expr, err)
	}
	// Close gives the result's memory back to the engine's pools: what is
	// returned is a copy.
	defer query.Close()
	out := query.Exec(ctx)
	if out.Err != nil {
		return nil, out.Err
	}
	switch v := out.Value.(type) {
	case promql.Matrix:
		if p.Limits.MaxSeries > 0 && len(v) > p.Limits.MaxSeries {
			return nil, seriesLimitError(p.Limits)
		}
		m := make(promql.Matrix, len(v))
		for i, s := range v {
			m[i] = promql.Series{Metric: s.Metric, Floats: slices.Clone(s.Floats)}
		}
		res.Type, res.Matrix = promparser.ValueTypeMatrix, m
	case promql.Vector:
		res.Type, res.Vector = promparser.ValueTypeVector, slices.Clone(v)
	case promql.Scalar:
		res.Type, res.Scalar = promparser.ValueTypeScalar, v
	default:
		return nil, fmt.Errorf("unexpected result type %s", out.Value.Type())
	}
	return res, nil
}

func setResult(res *Result, m promql.Matrix, instant bool) {
	if !instant {
		res.Type, res.Matrix = promparser.ValueTypeMatrix, m
		return
	}
	res.Type, res.Vector = promparser.ValueTypeVector, promql.Vector{}
	for _, s := range m {
		for _, pt := range s.Floats {
			res.Vector = append(res.Vector, promql.Sample{Metric: s.Metric, T: pt.T, F: pt.F})
		}
	}
}

// stepsOf returns a metric query's evaluation times, whole milliseconds as
// PromQL has them.
func stepsOf(p Params) (steps, error) {
	if p.Instant {
		return steps{start: p.End / 1e6, step: 1, n: 1, instant: true}, nil
	}
	step := p.Step.Milliseconds()
	if step <= 0 {
		return steps{}, errors.New("a metric range query needs a step of at least 1ms")
	}
	start, end := p.Start/1e6, p.End/1e6
	if end < start {
		return steps{}, errors.New("the end of the query is before its start")
	}
	return steps{start: start, step: step, n: int((end-start)/step) + 1}, nil
}

func unparen(e Expr) Expr {
	for {
		p, ok := e.(*ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// toPromQL writes expr as PromQL, each range aggregation replaced by a
// selector of its computed series (appended to nodes in order).
func toPromQL(e Expr, nodes *[]*RangeAggregation) (string, error) {
	switch e := e.(type) {
	case *RangeAggregation:
		*nodes = append(*nodes, e)
		return placeholderPrefix + strconv.Itoa(len(*nodes)-1), nil
	case *LogExpr:
		return "", fmt.Errorf("a log query (%s) cannot be used where a metric is expected: wrap it in a range aggregation such as count_over_time", e)
	case *NumberLiteral:
		return formatNumber(e.Value), nil
	case *VectorExpr:
		return "vector(" + formatNumber(e.Value) + ")", nil
	case *ParenExpr:
		s, err := toPromQL(e.Expr, nodes)
		return "(" + s + ")", err
	case *UnaryExpr:
		s, err := toPromQL(e.Expr, nodes)
		return "-(" + s + ")", err
	case *LabelReplace:
		s, err := toPromQL(e.Expr, nodes)
		return fmt.Sprintf("label_replace(%s, %s, %s, %s, %s)", s, quote(e.Dst), quote(e.Replacement), quote(e.Src), quote(e.Regex)), err
	case *VectorAggregation:
		var inner string
		var err error
		if r := pushDownSum(e); r != nil {
			inner, err = toPromQL(r, nodes)
		} else {
			inner, err = toPromQL(e.Expr, nodes)
		}
		if err != nil {
			return "", err
		}
		switch e.Op {
		case "sort", "sort_desc":
			return e.Op + "(" + inner + ")", nil
		}
		var b strings.Builder
		b.WriteString(e.Op)
		if e.Grouping != nil {
			b.WriteString(" " + e.Grouping.String() + " ")
		}
		b.WriteByte('(')
		if e.Param != nil {
			ps, err := toPromQL(e.Param, nodes)
			if err != nil {
				return "", err
			}
			b.WriteString(ps + ", ")
		}
		b.WriteString(inner + ")")
		return b.String(), nil
	case *BinaryExpr:
		l, err := toPromQL(e.L, nodes)
		if err != nil {
			return "", err
		}
		r, err := toPromQL(e.R, nodes)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		b.WriteString("(" + l + ") " + e.Op)
		if e.Bool {
			b.WriteString(" bool")
		}
		if m := e.Matching; m != nil {
			if m.On {
				b.WriteString(" on(")
			} else {
				b.WriteString(" ignoring(")
			}
			b.WriteString(strings.Join(m.Labels, ", ") + ")")
			if m.Group != "" {
				b.WriteString(" " + m.Group + "(" + strings.Join(m.Include, ", ") + ")")
			}
		}
		b.WriteString(" (" + r + ")")
		return b.String(), nil
	}
	return "", fmt.Errorf("unsupported expression %s", e)
}

// pushDownSum returns, for sum by/without (…) of an additive range
// aggregation (line counts, bytes, sums of unwrapped values, and their
// rates), that range aggregation grouped the same way itself: the sum of
// per-stream counts is the count per group, and the range aggregation then
// holds one series per group instead of one per distinct label set (which
// after a parser can be one per line). It returns nil when the rewrite does
// not apply.
func pushDownSum(v *VectorAggregation) *RangeAggregation {
	if v.Op != "sum" || v.Param != nil {
		return nil
	}
	r, ok := unparen(v.Expr).(*RangeAggregation)
	if !ok || r.Grouping != nil {
		return nil
	}
	switch {
	case r.Unwrap == nil && r.Op != "absent_over_time":
	case r.Unwrap != nil && (r.Op == "sum_over_time" || r.Op == "rate"):
	default:
		return nil
	}
	g := &Grouping{}
	if v.Grouping != nil {
		g = &Grouping{Without: v.Grouping.Without, Labels: v.Grouping.Labels}
	}
	pushed := *r
	pushed.Grouping = g
	return &pushed
}

func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// computedQueryable serves the computed series of range aggregations to
// the PromQL engine, by their placeholder name.
type computedQueryable struct {
	series map[string]promql.Matrix
}

func (q *computedQueryable) Querier(int64, int64) (storage.Querier, error) { return q, nil }

func (q *computedQueryable) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			mat := q.series[m.Value]
			sort.Sort(mat)
			return &matrixSet{m: mat, i: -1}
		}
	}
	return storage.EmptySeriesSet()
}

func (q *computedQueryable) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *computedQueryable) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *computedQueryable) Close() error { return nil }

type matrixSet struct {
	m promql.Matrix
	i int
}

func (s *matrixSet) Next() bool                        { s.i++; return s.i < len(s.m) }
func (s *matrixSet) At() storage.Series                { return pointSeries(s.m[s.i]) }
func (s *matrixSet) Err() error                        { return nil }
func (s *matrixSet) Warnings() annotations.Annotations { return nil }

type pointSeries promql.Series

func (s pointSeries) Labels() labels.Labels { return s.Metric }
func (s pointSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return &pointIterator{pts: s.Floats, i: -1}
}

// pointIterator iterates float points.
type pointIterator struct {
	pts []promql.FPoint
	i   int
}

func (it *pointIterator) Next() chunkenc.ValueType {
	if it.i++; it.i < len(it.pts) {
		return chunkenc.ValFloat
	}
	it.i = len(it.pts)
	return chunkenc.ValNone
}

func (it *pointIterator) Seek(t int64) chunkenc.ValueType {
	if it.i < 0 {
		it.i = 0
	}
	for ; it.i < len(it.pts); it.i++ {
		if it.pts[it.i].T >= t {
			return chunkenc.ValFloat
		}
	}
	return chunkenc.ValNone
}

func (it *pointIterator) At() (int64, float64) { p := it.pts[it.i]; return p.T, p.F }
func (it *pointIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	return it.pts[it.i].T, nil
}

func (it *pointIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.pts[it.i].T, nil
}
func (it *pointIterator) AtT() int64  { return it.pts[it.i].T }
func (it *pointIterator) AtST() int64 { return 0 }
func (it *pointIterator) Err() error  { return nil }
