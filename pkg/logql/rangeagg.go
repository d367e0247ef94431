package logql

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// steps are the evaluation times of a metric query, in Unix ms.
type steps struct {
	start, step int64 // ms; step > 0
	n           int
	instant     bool
}

func (s steps) at(i int) int64 { return s.start + int64(i)*s.step }

// rangeSeries is one output series of a range aggregation while it is
// being computed.
type rangeSeries struct {
	labels labels.Labels
	// count and sum accumulate per step through difference arrays (count
	// and bytes aggregations: integer values, exact).
	count, sum []float64
	// samples are the unwrapped values, for the other aggregations.
	samples []promql.FPoint // T in ns
	sorted  bool
}

// isCountingOp says the aggregation counts lines or bytes (no unwrap).
func isCountingOp(op string) bool {
	switch op {
	case "count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time":
		return true
	}
	return false
}

// labelHints turns Pipeline.OnlyLabels on for range aggregations by
// labels; tests turn it off to check it changes no answer.
var labelHints = true

// evalRange computes a range aggregation at every step.
func (e *Engine) evalRange(ctx context.Context, src Source, r *RangeAggregation, st steps, lim Limits, stats *Stats) (promql.Matrix, error) {
	pl, err := CompilePipeline(r.Log.Pipeline)
	if err != nil {
		return nil, err
	}
	if g := r.Grouping; g != nil && !g.Without && labelHints {
		// The series are by these labels alone: the parsers need not set
		// any other.
		need := slices.Clone(g.Labels)
		if r.Unwrap != nil {
			need = append(need, r.Unwrap.Label)
			for _, f := range r.Unwrap.PostFilters {
				need = filterLabels(f, need)
			}
		}
		pl.OnlyLabels(need)
	}
	var post []labelPredicate
	var conv func(string) (float64, error)
	if r.Unwrap != nil {
		for _, f := range r.Unwrap.PostFilters {
			lp, err := compileLabelFilter(f)
			if err != nil {
				return nil, err
			}
			post = append(post, lp)
		}
		conv = unwrapConversion(r.Unwrap.Conv)
	}
	rangeNs, offNs := r.Range.Nanoseconds(), r.Offset.Nanoseconds()
	stepNs := st.step * 1e6
	firstNs := st.start * 1e6
	lastNs := st.at(st.n-1) * 1e6
	// Entries in (first-range-offset, last-offset] count at some step.
	from, through := firstNs-rangeNs-offNs+1, lastNs-offNs+1
	it, err := src.Select(ctx, SelectParams{Matchers: r.Log.Matchers, Start: from, End: through, Needles: needles(r.Log.Pipeline), Direction: Forward})
	if err != nil {
		return nil, err
	}
	defer it.Close()

	group := groupingFunc(r)
	counting := r.Unwrap == nil && isCountingOp(r.Op)
	bySeries := map[uint64]*rangeSeries{}
	var order []*rangeSeries
	var sb labels.ScratchBuilder
	proc := pl.NewProcessor()
	var nSamples int
	// lineOnly pipelines keep the stream's labels: look the series up once
	// per batch.
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		proc.SetStream(it.Labels())
		var batchSeries *rangeSeries
		for _, en := range it.Entries() {
			if en.Timestamp < from || en.Timestamp >= through {
				continue
			}
			stats.LinesProcessed++
			stats.BytesProcessed += int64(len(en.Line))
			line, ok := proc.Process(en.Timestamp, en.Line, en.Metadata)
			if !ok {
				continue
			}
			v := 1.0
			if r.Op == "bytes_over_time" || r.Op == "bytes_rate" {
				v = float64(len(line))
			}
			if r.Unwrap != nil {
				raw, _ := proc.b.get(r.Unwrap.Label)
				f, err := conv(raw)
				if err != nil {
					proc.b.setError(errSample, fmt.Sprintf("unwrap %s: %v", r.Unwrap.Label, err))
					f = 0
				}
				v = f
				kept := true
				for _, lp := range post {
					if !lp(proc) {
						kept = false
						break
					}
				}
				if !kept {
					continue
				}
			}
			s := batchSeries
			if s == nil || proc.b.changed {
				// An entry in error keeps all its labels, so that grouping
				// cannot hide the error.
				var ls labels.Labels
				if proc.b.err != "" {
					ls = proc.Labels()
				} else {
					ls = group(proc, &sb)
				}
				h := ls.Hash()
				s = bySeries[h]
				if s == nil {
					if lim.MaxSeries > 0 && len(order) == lim.MaxSeries {
						return nil, seriesLimitError(lim)
					}
					s = &rangeSeries{labels: ls, sorted: true}
					if counting {
						s.count = make([]float64, st.n+1)
						s.sum = make([]float64, st.n+1)
					}
					bySeries[h] = s
					order = append(order, s)
				}
				if !proc.b.changed {
					batchSeries = s
				}
			}
			if counting {
				lo, hi := stepSpan(en.Timestamp+offNs, rangeNs, firstNs, stepNs, st.n)
				if lo <= hi {
					s.count[lo]++
					s.count[hi+1]--
					s.sum[lo] += v
					s.sum[hi+1] -= v
				}
				continue
			}
			if n := len(s.samples); n > 0 && s.samples[n-1].T > en.Timestamp {
				s.sorted = false
			}
			s.samples = append(s.samples, promql.FPoint{T: en.Timestamp, F: v})
			if nSamples++; lim.MaxSamples > 0 && nSamples > lim.MaxSamples {
				return nil, fmt.Errorf("%w: the query holds more than %d unwrapped samples (%s); narrow the time range, the selector or the range", ErrLimit, lim.MaxSamples, lim.MaxSamplesFlag)
			}
		}
		if _, b := Skipped(it); lim.MaxBytesRead > 0 && stats.BytesProcessed+b > lim.MaxBytesRead {
			return nil, bytesLimitError(lim)
		}
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	l, b := Skipped(it)
	stats.LinesProcessed += l
	stats.BytesProcessed += b
	for _, s := range order {
		if v := s.labels.Get(ErrorLabel); v != "" {
			return nil, fmt.Errorf("pipeline error: %s for series %s; use a label filter such as | __error__=\"\" to skip the lines in error, or fix the stage", v, s.labels)
		}
	}
	if r.Op == "absent_over_time" {
		return absentOverTime(r, order, st), nil
	}
	out := make(promql.Matrix, 0, len(order))
	for _, s := range order {
		var pts []promql.FPoint
		if counting {
			pts = countingPoints(r.Op, s, st, rangeNs)
		} else {
			pts = samplePoints(r, s, st, rangeNs, offNs)
		}
		if len(pts) > 0 {
			out = append(out, promql.Series{Metric: s.labels, Floats: pts})
		}
	}
	return out, nil
}

func seriesLimitError(l Limits) error {
	return fmt.Errorf("%w: the query has more than %d series (%s); aggregate with sum by (…), narrow the selector or drop labels", ErrLimit, l.MaxSeries, l.MaxSeriesFlag)
}

// stepSpan returns the steps whose window (t-range, t] holds a sample at ts
// (offset already added): t in [ts, ts+range).
func stepSpan(ts, rangeNs, firstNs, stepNs int64, n int) (lo, hi int) {
	l := ceilDiv(ts-firstNs, stepNs)
	h := ceilDiv(ts+rangeNs-firstNs, stepNs) - 1
	if l < 0 {
		l = 0
	}
	if h > int64(n-1) {
		h = int64(n - 1)
	}
	return int(l), int(h)
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a > 0) == (b > 0) {
		q++
	}
	return q
}

func countingPoints(op string, s *rangeSeries, st steps, rangeNs int64) []promql.FPoint {
	var pts []promql.FPoint
	var c, b float64
	secs := float64(rangeNs) / 1e9
	for i := 0; i < st.n; i++ {
		c += s.count[i]
		b += s.sum[i]
		if c <= 0 {
			continue
		}
		var v float64
		switch op {
		case "count_over_time":
			v = c
		case "rate":
			v = c / secs
		case "bytes_over_time":
			v = b
		case "bytes_rate":
			v = b / secs
		}
		pts = append(pts, promql.FPoint{T: st.at(i), F: v})
	}
	return pts
}

// absentOverTime is 1 at the steps where no series has a sample, labelled
// with the selector's equality matchers.
func absentOverTime(r *RangeAggregation, series []*rangeSeries, st steps) promql.Matrix {
	// count holds, at i, the change of the number of samples in the window
	// of step i from that of step i-1.
	total := make([]float64, st.n+1)
	for _, s := range series {
		for i := range total {
			total[i] += s.count[i]
		}
	}
	var c float64
	inWindow := make([]bool, st.n)
	for i := range inWindow {
		c += total[i]
		inWindow[i] = c > 0
	}
	return AbsentSeries(r, Steps{Start: st.start, Step: st.step, N: st.n}, func(i int) bool { return inWindow[i] })
}

// AbsentSeries is absent_over_time's answer: 1 at the steps where present
// is false, labelled with r's selector's equality matchers.
func AbsentSeries(r *RangeAggregation, at Steps, present func(i int) bool) promql.Matrix {
	var sb labels.ScratchBuilder
	seen := map[string]bool{}
	for _, m := range r.Log.Matchers {
		if m.Type == labels.MatchEqual && !seen[m.Name] {
			seen[m.Name] = true
			sb.Add(m.Name, m.Value)
		}
	}
	sb.Sort()
	var pts []promql.FPoint
	for i := 0; i < at.N; i++ {
		if !present(i) {
			pts = append(pts, promql.FPoint{T: at.At(i), F: 1})
		}
	}
	if len(pts) == 0 {
		return promql.Matrix{}
	}
	return promql.Matrix{{Metric: sb.Labels(), Floats: pts}}
}

// samplePoints evaluates an unwrapped aggregation at every step over the
// series' samples in each window (t-offset-range, t-offset].
func samplePoints(r *RangeAggregation, s *rangeSeries, st steps, rangeNs, offNs int64) []promql.FPoint {
	if !s.sorted {
		sort.SliceStable(s.samples, func(i, j int) bool { return s.samples[i].T < s.samples[j].T })
	}
	var pts []promql.FPoint
	lo, hi := 0, 0
	for i := 0; i < st.n; i++ {
		end := st.at(i)*1e6 - offNs
		begin := end - rangeNs
		for lo < len(s.samples) && s.samples[lo].T <= begin {
			lo++
		}
		if hi < lo {
			hi = lo
		}
		for hi < len(s.samples) && s.samples[hi].T <= end {
			hi++
		}
		if lo == hi {
			continue
		}
		v, ok := aggregateWindow(r, s.samples[lo:hi], begin, end, rangeNs)
		if ok {
			pts = append(pts, promql.FPoint{T: st.at(i), F: v})
		}
	}
	return pts
}

func aggregateWindow(r *RangeAggregation, w []promql.FPoint, begin, end, rangeNs int64) (float64, bool) {
	secs := float64(rangeNs) / 1e9
	switch r.Op {
	case "rate":
		return sumOf(w) / secs, true
	case "rate_counter":
		return counterRate(w, begin, end, secs)
	case "sum_over_time":
		return sumOf(w), true
	case "avg_over_time":
		return sumOf(w) / float64(len(w)), true
	case "count_over_time":
		return float64(len(w)), true
	case "min_over_time":
		m := w[0].F
		for _, p := range w[1:] {
			if p.F < m || math.IsNaN(m) {
				m = p.F
			}
		}
		return m, true
	case "max_over_time":
		m := w[0].F
		for _, p := range w[1:] {
			if p.F > m || math.IsNaN(m) {
				m = p.F
			}
		}
		return m, true
	case "first_over_time":
		return w[0].F, true
	case "last_over_time":
		return w[len(w)-1].F, true
	case "stdvar_over_time":
		return variance(w), true
	case "stddev_over_time":
		return math.Sqrt(variance(w)), true
	case "quantile_over_time":
		vals := make([]float64, len(w))
		for i, p := range w {
			vals[i] = p.F
		}
		return quantile(*r.Param, vals), true
	}
	return 0, false
}

func sumOf(w []promql.FPoint) float64 {
	var s, c float64 // Kahan summation
	for _, p := range w {
		y := p.F - c
		t := s + y
		c = (t - s) - y
		s = t
	}
	return s
}

// variance is the population variance (Welford).
func variance(w []promql.FPoint) float64 {
	var mean, m2 float64
	for i, p := range w {
		d := p.F - mean
		mean += d / float64(i+1)
		m2 += d * (p.F - mean)
	}
	return m2 / float64(len(w))
}

// quantile is the φ-quantile with linear interpolation between the closest
// ranks; φ < 0 is -Inf and φ > 1 is +Inf, as in PromQL.
func quantile(q float64, vals []float64) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	slices.Sort(vals)
	n := float64(len(vals))
	rank := q * (n - 1)
	lower := math.Max(0, math.Floor(rank))
	upper := math.Min(n-1, lower+1)
	weight := rank - math.Floor(rank)
	return vals[int(lower)]*(1-weight) + vals[int(upper)]*weight
}

// counterRate is the per-second rate of a counter over a window, with
// counter resets and extrapolation to the window's edges as PromQL's rate
// does.
func counterRate(w []promql.FPoint, begin, end int64, secs float64) (float64, bool) {
	if len(w) < 2 {
		return 0, false
	}
	first, last := w[0], w[len(w)-1]
	delta := last.F - first.F
	for i := 1; i < len(w); i++ {
		if w[i].F < w[i-1].F {
			delta += w[i-1].F
		}
	}
	sampled := float64(last.T-first.T) / 1e9
	if sampled == 0 {
		return 0, false
	}
	toStart := float64(first.T-begin) / 1e9
	toEnd := float64(end-last.T) / 1e9
	avg := sampled / float64(len(w)-1)
	if delta > 0 && first.F >= 0 {
		if toZero := sampled * (first.F / delta); toZero < toStart {
			toStart = toZero
		}
	}
	threshold := avg * 1.1
	interval := sampled
	if toStart < threshold {
		interval += toStart
	} else {
		interval += avg / 2
	}
	if toEnd < threshold {
		interval += toEnd
	} else {
		interval += avg / 2
	}
	return delta * (interval / sampled) / secs, true
}

// unwrapConversion reads an unwrapped label's value.
func unwrapConversion(conv string) func(string) (float64, error) {
	switch conv {
	case "duration", "duration_seconds":
		return labelConversion(DurationValue)
	case "bytes":
		return parseBytesValue
	}
	return labelConversion(NumberValue)
}

// groupingFunc returns how an entry's labels become its series' labels:
// by/without when the aggregation has them; an unwrapped label is dropped
// from the series unless by keeps it.
func groupingFunc(r *RangeAggregation) func(p *Processor, sb *labels.ScratchBuilder) labels.Labels {
	g := r.Grouping
	var without []string
	if g != nil && g.Without {
		without = g.Labels
	}
	if r.Unwrap != nil && (g == nil || g.Without) {
		without = append(slices.Clone(without), r.Unwrap.Label)
	}
	if g != nil && !g.Without {
		by := g.Labels
		return func(p *Processor, sb *labels.ScratchBuilder) labels.Labels {
			sb.Reset()
			for _, n := range by {
				if v, ok := p.b.get(n); ok && v != "" {
					sb.Add(n, v)
				}
			}
			sb.Sort()
			return sb.Labels()
		}
	}
	if len(without) == 0 {
		return func(p *Processor, _ *labels.ScratchBuilder) labels.Labels { return p.Labels() }
	}
	return func(p *Processor, sb *labels.ScratchBuilder) labels.Labels {
		sb.Reset()
		p.b.each(func(name, value string, _ Category) {
			if !slices.Contains(without, name) {
				sb.Add(name, value)
			}
		})
		sb.Sort()
		return sb.Labels()
	}
}
