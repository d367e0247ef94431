package frontend

import (
	"context"
	"math"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promparser "github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
)

// LogQL sharding. A querier evaluates a query over one shard of a tenant's
// streams when asked with lokiapi.ShardParam; every stream is in one shard.
// An aggregation over a range aggregation is the same aggregation of its
// results over the shards when the range aggregation's series split
// cleanly by shard:
//
//   - sum of a counting aggregation (count_over_time, rate, bytes_over_time,
//     bytes_rate; sum_over_time and rate of unwrapped values) is the sum of
//     the shards' sums, whatever the pipeline does to labels: a series
//     drawn from streams of several shards is the sum of its parts;
//   - sum, count, min, max, avg (as sum / count), topk and bottomk of any
//     range aggregation whose every series comes from one stream — no
//     label_format, drop or keep in the pipeline, no grouping and no
//     unwrap (which drops the unwrapped label) — are the sum of the sums
//     and counts, the min of the mins, the max of the maxes, and topk or
//     bottomk again over the shards' topk or bottomk.
//
// Anything else (binary operations, nested aggregations, absent_over_time)
// runs unsharded. One edge is left: structured metadata named like a stream
// label replaces it in the series' labels, so two streams that differ only
// there would make one series of two shards; Loki refuses such metadata at
// ingestion.

// lokiShards is the ShardPlan of a sharded LogQL query.
type lokiShards struct {
	op       string          // the query's aggregation
	grouping *logql.Grouping // its by or without
	k        int             // topk's and bottomk's k
	// queries are the shard queries: the aggregation itself, or avg's sum
	// and count.
	queries []string
	codec   *lokiCodec
}

// planLokiSharding returns how expr runs sharded, nil when it cannot be.
func planLokiSharding(expr logql.Expr, c *lokiCodec) ShardPlan {
	agg, ok := unparenLogQL(expr).(*logql.VectorAggregation)
	if !ok {
		return nil
	}
	ra, ok := unparenLogQL(agg.Expr).(*logql.RangeAggregation)
	if !ok || ra.Op == "absent_over_time" {
		return nil
	}
	whole := seriesPerStream(ra)
	plan := &lokiShards{op: agg.Op, grouping: agg.Grouping, codec: c}
	partial := func(op string) string {
		return (&logql.VectorAggregation{Op: op, Param: agg.Param, Grouping: agg.Grouping, Expr: agg.Expr}).String()
	}
	switch agg.Op {
	case "sum":
		if !whole && !additive(ra) {
			return nil
		}
	case "count", "min", "max":
		if !whole {
			return nil
		}
	case "avg":
		if !whole {
			return nil
		}
		plan.queries = []string{partial("sum"), partial("count")}
		return plan
	case "topk", "bottomk":
		n, ok := agg.Param.(*logql.NumberLiteral)
		if !whole || !ok || n.Value < 1 || n.Value > 1e6 || n.Value != math.Trunc(n.Value) {
			return nil
		}
		plan.k = int(n.Value)
	default:
		return nil
	}
	plan.queries = []string{partial(agg.Op)}
	return plan
}

func unparenLogQL(e logql.Expr) logql.Expr {
	for {
		p, ok := e.(*logql.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// additive reports whether a series of r over several streams is the sum
// of the series over each.
func additive(r *logql.RangeAggregation) bool {
	if r.Unwrap != nil {
		return r.Op == "sum_over_time" || r.Op == "rate"
	}
	switch r.Op {
	case "count_over_time", "rate", "bytes_over_time", "bytes_rate":
		return true
	}
	return false
}

// seriesPerStream reports whether every series of r comes from one stream:
// the pipeline only adds labels to the stream's.
func seriesPerStream(r *logql.RangeAggregation) bool {
	if r.Grouping != nil || r.Unwrap != nil {
		return false
	}
	for _, s := range r.Log.Pipeline {
		switch s.(type) {
		case *logql.LabelFormat, *logql.DropKeep:
			return false
		}
	}
	return true
}

// Queries implements ShardPlan.
func (p *lokiShards) Queries() int { return len(p.queries) }

// Shard implements ShardPlan.
func (p *lokiShards) Shard(part *Request, k, i, n int) *Request {
	sub := *part
	st := *part.State.(*lokiRequest)
	st.shard = queryshard.Format(i, n)
	sub.Query, sub.State = p.queries[k], &st
	sub.CacheKey, sub.Sharding = "", nil
	return &sub
}

// Merger implements ShardPlan.
func (p *lokiShards) Merger(part *Request) ShardMerger {
	return &lokiShardMerger{plan: p, part: part, results: make([][]*logql.Result, len(p.queries))}
}

// lokiShardMerger computes a part's answer from its shards'.
type lokiShardMerger struct {
	plan    *lokiShards
	part    *Request
	results [][]*logql.Result // by shard query
	stats   logql.Stats
}

// Add implements ShardMerger.
func (m *lokiShardMerger) Add(k, _ int, body []byte) error {
	res, err := decodeLokiResult(body)
	if err != nil {
		return err
	}
	if res.Type != promparser.ValueTypeMatrix && res.Type != promparser.ValueTypeVector {
		return errNotShardable
	}
	m.results[k] = append(m.results[k], res)
	m.stats.BytesProcessed += res.Stats.BytesProcessed
	m.stats.LinesProcessed += res.Stats.LinesProcessed
	m.stats.ExecTime += res.Stats.ExecTime
	return nil
}

// point is a sample of a series, for the merge.
type point struct {
	t int64
	f float64
}

// shardSeries are the samples of the shards' answers by series.
type shardSeries struct {
	order  []labels.Labels
	points map[string]map[int64]float64 // by series, by time
}

// collect adds up the samples of answers into series, combining the
// samples two shards give one series at one time with combine.
func collect(answers []*logql.Result, combine func(a, b float64) float64) *shardSeries {
	s := &shardSeries{points: map[string]map[int64]float64{}}
	add := func(ls labels.Labels, t int64, f float64) {
		key := ls.String()
		ps, ok := s.points[key]
		if !ok {
			ps = map[int64]float64{}
			s.points[key] = ps
			s.order = append(s.order, ls)
		}
		if old, ok := ps[t]; ok {
			f = combine(old, f)
		}
		ps[t] = f
	}
	for _, a := range answers {
		for _, ser := range a.Matrix {
			for _, p := range ser.Floats {
				add(ser.Metric, p.T, p.F)
			}
		}
		for _, smp := range a.Vector {
			add(smp.Metric, smp.T, smp.F)
		}
	}
	return s
}

func (s *shardSeries) sorted(ls labels.Labels) []point {
	ps := s.points[ls.String()]
	out := make([]point, 0, len(ps))
	for t, f := range ps {
		out = append(out, point{t, f})
	}
	slices.SortFunc(out, func(a, b point) int { return int(sign(a.t - b.t)) })
	return out
}

func sign(n int64) int64 {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// Merge implements ShardMerger.
func (m *lokiShardMerger) Merge(context.Context) (*Response, error) {
	var series []promql.Series
	switch m.plan.op {
	case "sum", "count":
		series = m.combined(collect(m.results[0], func(a, b float64) float64 { return a + b }))
	case "min":
		series = m.combined(collect(m.results[0], minNaN))
	case "max":
		series = m.combined(collect(m.results[0], maxNaN))
	case "avg":
		sums := collect(m.results[0], func(a, b float64) float64 { return a + b })
		counts := collect(m.results[1], func(a, b float64) float64 { return a + b })
		for _, ls := range sums.order {
			cs := counts.points[ls.String()]
			var fs []promql.FPoint
			for _, p := range sums.sorted(ls) {
				if c, ok := cs[p.t]; ok {
					fs = append(fs, promql.FPoint{T: p.t, F: p.f / c})
				}
			}
			if len(fs) > 0 {
				series = append(series, promql.Series{Metric: ls, Floats: fs})
			}
		}
	case "topk", "bottomk":
		series = m.topk(collect(m.results[0], func(a, _ float64) float64 { return a }))
	}
	res := &logql.Result{Stats: m.stats}
	if m.part.Step == 0 {
		res.Type, res.Vector = promparser.ValueTypeVector, promql.Vector{}
		for _, s := range series {
			for _, p := range s.Floats {
				res.Vector = append(res.Vector, promql.Sample{Metric: s.Metric, T: p.T, F: p.F})
			}
		}
		if m.plan.op == "topk" || m.plan.op == "bottomk" {
			// As the engine orders an instant topk: by value.
			sort.SliceStable(res.Vector, func(i, j int) bool {
				a, b := res.Vector[i].F, res.Vector[j].F
				if m.plan.op == "topk" {
					return a > b
				}
				return a < b
			})
		}
	} else {
		res.Type, res.Matrix = promparser.ValueTypeMatrix, series
	}
	return m.plan.codec.EncodeResponse(m.part, res)
}

// combined is every series of s, in label order.
func (m *lokiShardMerger) combined(s *shardSeries) []promql.Series {
	out := make([]promql.Series, 0, len(s.order))
	for _, ls := range s.order {
		ps := s.sorted(ls)
		fs := make([]promql.FPoint, len(ps))
		for i, p := range ps {
			fs[i] = promql.FPoint{T: p.t, F: p.f}
		}
		out = append(out, promql.Series{Metric: ls, Floats: fs})
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}

// topk applies topk or bottomk again over the shards' answers: at each
// time, the k largest (smallest) samples of each group; NaN comes last
// either way, as in PromQL.
func (m *lokiShardMerger) topk(s *shardSeries) []promql.Series {
	type sample struct {
		ls labels.Labels
		f  float64
	}
	byTime := map[int64]map[string][]sample{}
	for _, ls := range s.order {
		g := groupKey(ls, m.plan.grouping)
		for t, f := range s.points[ls.String()] {
			if byTime[t] == nil {
				byTime[t] = map[string][]sample{}
			}
			byTime[t][g] = append(byTime[t][g], sample{ls, f})
		}
	}
	kept := map[string][]promql.FPoint{}
	for t, groups := range byTime {
		for _, ss := range groups {
			slices.SortStableFunc(ss, func(a, b sample) int {
				switch an, bn := math.IsNaN(a.f), math.IsNaN(b.f); {
				case an && bn:
					return 0
				case an:
					return 1
				case bn:
					return -1
				}
				if m.plan.op == "topk" {
					return cmpFloat(b.f, a.f)
				}
				return cmpFloat(a.f, b.f)
			})
			for _, smp := range ss[:min(m.plan.k, len(ss))] {
				k := smp.ls.String()
				kept[k] = append(kept[k], promql.FPoint{T: t, F: smp.f})
			}
		}
	}
	var out []promql.Series
	for _, ls := range s.order {
		fs := kept[ls.String()]
		if len(fs) == 0 {
			continue
		}
		slices.SortFunc(fs, func(a, b promql.FPoint) int { return int(sign(a.T - b.T)) })
		out = append(out, promql.Series{Metric: ls, Floats: fs})
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// groupKey is the group of a series' labels under by or without.
func groupKey(ls labels.Labels, g *logql.Grouping) string {
	if g == nil {
		return ""
	}
	b := labels.NewBuilder(ls)
	if g.Without {
		b.Del(g.Labels...)
	} else {
		b.Keep(g.Labels...)
	}
	return b.Labels().String()
}

// minNaN and maxNaN combine as PromQL's min and max do: NaN only when both
// are.
func minNaN(a, b float64) float64 {
	if math.IsNaN(a) || b < a {
		return b
	}
	return a
}

func maxNaN(a, b float64) float64 {
	if math.IsNaN(a) || b > a {
		return b
	}
	return a
}
