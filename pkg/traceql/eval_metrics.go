package traceql

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// MaxMetricsSteps bounds the steps of one metrics query.
const MaxMetricsSteps = 11000

// DefaultExemplars is how many exemplars a series keeps when the query
// asks for them (`with(exemplars=true)`) and the request names no number.
const DefaultExemplars = 100

// MetricsRequest is the time range of a metrics query. Step i covers the
// spans that start in [Start+i*Step, Start+(i+1)*Step); the last step may
// reach past End but counts only spans before End.
type MetricsRequest struct {
	Start, End uint64 // unix nanoseconds
	Step       uint64 // nanoseconds
	// Exemplars is the most exemplars a series keeps, at most one per
	// step. Zero keeps none, unless the query has with(exemplars=true),
	// which keeps DefaultExemplars; with(exemplars=false) keeps none.
	Exemplars int
}

// Steps returns the number of steps of the request.
func (r MetricsRequest) Steps() int {
	n := (r.End - r.Start) / r.Step
	if (r.End-r.Start)%r.Step != 0 {
		n++
	}
	return int(n)
}

// StepStart returns the start of step i, in unix nanoseconds.
func (r MetricsRequest) StepStart(i int) uint64 { return r.Start + uint64(i)*r.Step }

func (r MetricsRequest) validate() error {
	switch {
	case r.Step == 0:
		return errors.New("metrics query: step must be positive")
	case r.End <= r.Start:
		return errors.New("metrics query: end must be after start")
	case (r.End-r.Start)/r.Step >= MaxMetricsSteps:
		return fmt.Errorf("metrics query: more than %d steps; raise the step", MaxMetricsSteps)
	}
	return nil
}

// Series is one time series of a metrics query.
type Series struct {
	// Labels are the by() values (named by the TraceQL text of their
	// expressions, nil for spans without a value), then "p" for a
	// quantile or "__bucket" for a histogram bucket.
	Labels []Label
	// Values holds one value per step. Steps without spans are 0 for
	// rate, count_over_time and histogram_over_time and NaN for the
	// others.
	Values    []float64
	Exemplars []Exemplar
}

// Label is a series label with a typed value.
type Label struct {
	Name  string
	Value Value
}

// Exemplar is a span behind a series value.
type Exemplar struct {
	TraceID, SpanID []byte
	TimeUnixNano    uint64
	// Value is the span's measured value, or for rate and count_over_time
	// the series value at its step.
	Value float64
}

// MetricsEvaluator computes a metrics query's series over the traces it
// observes. It is not safe for concurrent use; one per query shard.
type MetricsEvaluator struct {
	eval      *Evaluator
	req       MetricsRequest
	m         *MetricsAggregate
	field     valueExpr
	by        []valueExpr
	byNames   []string
	exemplars int
	series    map[string]*seriesState
}

type seriesState struct {
	labels     []Label
	count      []float64
	sum        []float64
	min, max   []float64
	samples    [][]float64 // quantile_over_time
	exemplars  []Exemplar
	exemplarAt []bool // steps that have one
}

// NewMetricsEvaluator compiles a metrics query for one time range.
func NewMetricsEvaluator(q *Query, req MetricsRequest) (*MetricsEvaluator, error) {
	if q.Metrics == nil {
		return nil, errors.New("not a metrics query")
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	ev, err := NewEvaluator(q)
	if err != nil {
		return nil, err
	}
	me := &MetricsEvaluator{eval: ev, req: req, m: q.Metrics, series: map[string]*seriesState{}}
	if q.Metrics.Expr != nil {
		if me.field, err = compileValue(q.Metrics.Expr); err != nil {
			return nil, err
		}
	}
	for _, b := range q.Metrics.By {
		v, err := compileValue(b)
		if err != nil {
			return nil, err
		}
		me.by = append(me.by, v)
		me.byNames = append(me.byNames, b.String())
	}
	me.exemplars = req.Exemplars
	if v, ok := q.Hint("exemplars"); ok {
		switch {
		case !v.Bool():
			me.exemplars = 0
		case me.exemplars == 0:
			me.exemplars = DefaultExemplars
		}
	}
	return me, nil
}

// Observe adds the spans the query selects from t.
func (me *MetricsEvaluator) Observe(t *Trace) {
	sets := me.eval.eval(t)
	if len(sets) == 0 {
		return
	}
	ti := sets[0].ti
	plain := make([]spanset, len(sets))
	for i, s := range sets {
		plain[i] = s.spanset
	}
	c := &spanCtx{ti: ti}
	var buf []Value
	for _, i := range flatten(plain) {
		s := &t.Spans[i]
		if s.Start < me.req.Start || s.Start >= me.req.End {
			continue
		}
		step := int((s.Start - me.req.Start) / me.req.Step)
		c.i, c.s = int(i), s
		labels := make([]Label, len(me.by))
		for k, b := range me.by {
			labels[k] = Label{Name: me.byNames[k], Value: firstValue(b, c)}
		}
		if !me.m.Op.hasField() {
			st := me.state(labels, nil)
			st.count[step]++
			me.exemplar(st, step, t, s, math.NaN())
			continue
		}
		buf = me.field.multi(c, buf[:0])
		for _, v := range buf {
			x, ok := metricValue(v)
			if !ok {
				continue
			}
			var extra []Label
			if me.m.Op == MetricsHistogramOverTime {
				extra = []Label{{Name: "__bucket", Value: FloatValue(log2Bucket(x))}}
			}
			st := me.state(labels, extra)
			st.add(me.m.Op, step, x)
			me.exemplar(st, step, t, s, x)
		}
	}
}

// metricValue is the number a value counts as: durations in seconds.
func metricValue(v Value) (float64, bool) {
	switch v.Type {
	case TypeDuration:
		return float64(v.Num) / 1e9, true
	case TypeInt, TypeFloat:
		return v.AsFloat()
	}
	return 0, false
}

// log2Bucket is the histogram bucket of x: the least power of two not
// below it; 0 for values up to 0.
func log2Bucket(x float64) float64 {
	if x <= 0 || math.IsNaN(x) {
		return 0
	}
	return math.Exp2(math.Ceil(math.Log2(x)))
}

func (me *MetricsEvaluator) state(labels, extra []Label) *seriesState {
	all := append(labels, extra...)
	key := labelsKey(all)
	st, ok := me.series[key]
	if ok {
		return st
	}
	n := me.req.Steps()
	st = &seriesState{labels: slices.Clone(all), count: make([]float64, n)}
	switch me.m.Op {
	case MetricsAvgOverTime, MetricsSumOverTime:
		st.sum = make([]float64, n)
	case MetricsMinOverTime, MetricsMaxOverTime:
		st.min, st.max = make([]float64, n), make([]float64, n)
	case MetricsQuantileOverTime:
		st.samples = make([][]float64, n)
	}
	me.series[key] = st
	return st
}

func (st *seriesState) add(op MetricsOp, step int, x float64) {
	first := st.count[step] == 0
	st.count[step]++
	switch op {
	case MetricsAvgOverTime, MetricsSumOverTime:
		st.sum[step] += x
	case MetricsMinOverTime, MetricsMaxOverTime:
		if first || x < st.min[step] {
			st.min[step] = x
		}
		if first || x > st.max[step] {
			st.max[step] = x
		}
	case MetricsQuantileOverTime:
		st.samples[step] = append(st.samples[step], x)
	}
}

func (me *MetricsEvaluator) exemplar(st *seriesState, step int, t *Trace, s *Span, x float64) {
	if me.exemplars == 0 || len(st.exemplars) >= me.exemplars {
		return
	}
	if st.exemplarAt == nil {
		st.exemplarAt = make([]bool, len(st.count))
	}
	if st.exemplarAt[step] {
		return
	}
	st.exemplarAt[step] = true
	st.exemplars = append(st.exemplars, Exemplar{TraceID: t.ID, SpanID: s.ID, TimeUnixNano: s.Start, Value: x})
}

// Series returns the series computed so far, ordered by labels.
func (me *MetricsEvaluator) Series() []Series {
	var out []Series
	step := float64(me.req.Step) / 1e9
	for _, st := range me.series {
		n := len(st.count)
		if me.m.Op == MetricsQuantileOverTime {
			for _, q := range me.m.Quantiles {
				s := Series{Labels: append(slices.Clone(st.labels), Label{Name: "p", Value: FloatValue(q)}), Values: make([]float64, n)}
				for i := range n {
					s.Values[i] = quantile(st.samples[i], q)
				}
				s.Exemplars = st.exemplars
				out = append(out, s)
			}
			continue
		}
		s := Series{Labels: st.labels, Values: make([]float64, n)}
		for i := range n {
			c := st.count[i]
			switch me.m.Op {
			case MetricsRate:
				s.Values[i] = c / step
			case MetricsCountOverTime, MetricsHistogramOverTime:
				s.Values[i] = c
			default:
				if c == 0 {
					s.Values[i] = math.NaN()
					continue
				}
				switch me.m.Op {
				case MetricsAvgOverTime:
					s.Values[i] = st.sum[i] / c
				case MetricsSumOverTime:
					s.Values[i] = st.sum[i]
				case MetricsMinOverTime:
					s.Values[i] = st.min[i]
				case MetricsMaxOverTime:
					s.Values[i] = st.max[i]
				}
			}
		}
		for _, e := range st.exemplars {
			if math.IsNaN(e.Value) {
				e.Value = s.Values[int((e.TimeUnixNano-me.req.Start)/me.req.Step)]
			}
			s.Exemplars = append(s.Exemplars, e)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Series) int { return compareLabels(a.Labels, b.Labels) })
	if f := me.m.Filter; f != nil {
		for _, s := range out {
			for i, v := range s.Values {
				if c, ok := compareScalars(FloatValue(v), FloatValue(f.Value)); math.IsNaN(v) || !ok || !holds(f.Op, c) {
					s.Values[i] = math.NaN()
				}
			}
		}
		out = me.dropEmpty(out)
	}
	if l := me.m.Limit; l != nil {
		limit(out, l)
		out = me.dropEmpty(out)
	}
	return out
}

// limit keeps, at each step, the values of the k highest (lowest for
// bottomk) series; ties go to the series that sorts first.
func limit(series []Series, l *MetricsLimit) {
	if len(series) == 0 {
		return
	}
	var idx []int
	for i := range series[0].Values {
		idx = idx[:0]
		for k := range series {
			if !math.IsNaN(series[k].Values[i]) {
				idx = append(idx, k)
			}
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			c := cmp.Compare(series[b].Values[i], series[a].Values[i])
			if l.Bottom {
				c = -c
			}
			return c
		})
		for _, k := range idx[min(l.K, len(idx)):] {
			series[k].Values[i] = math.NaN()
		}
	}
}

// dropEmpty drops the series without values and the exemplars of steps
// without a value.
func (me *MetricsEvaluator) dropEmpty(series []Series) []Series {
	out := series[:0]
	for _, s := range series {
		if !slices.ContainsFunc(s.Values, func(v float64) bool { return !math.IsNaN(v) }) {
			continue
		}
		var ex []Exemplar
		for _, e := range s.Exemplars {
			if !math.IsNaN(s.Values[int((e.TimeUnixNano-me.req.Start)/me.req.Step)]) {
				ex = append(ex, e)
			}
		}
		s.Exemplars = ex
		out = append(out, s)
	}
	return out
}

// compareLabels orders label lists by name, then value (numbers
// numerically), then length.
func compareLabels(a, b []Label) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c, ok := compareScalars(a[i].Value, b[i].Value); ok && c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value.String(), b[i].Value.String()); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// quantile returns the q-quantile of xs, interpolating linearly between
// the closest ranks ((n-1)·q); NaN without values. xs is sorted in place.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	rank := q * float64(len(xs)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(xs)-1)
	frac := rank - float64(lo)
	return xs[lo] + (xs[hi]-xs[lo])*frac
}

// labelsKey renders labels for identity and ordering.
func labelsKey(ls []Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(l.Value.String())
	}
	b.WriteByte('}')
	return b.String()
}

// String renders a series' labels as `{name=value, …}`.
func (s Series) String() string { return labelsKey(s.Labels) }
