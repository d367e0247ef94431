package federation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// unit is what the federator asks as one: a child, or the HA replicas of
// one cluster (children whose external labels differ only in replica
// labels), which hold the same data with different gaps.
type unit struct {
	name     string
	external map[string]string // without the replica labels
	replicas []*child
}

// unitsOf groups the children into units, in config order. A child's
// answers carry its external labels without the replica labels.
func unitsOf(cfg *Config, children []*child) []*unit {
	var units []*unit
	byKey := map[string]*unit{}
	for _, c := range children {
		ext := cfg.groupLabels(&c.cfg)
		c.external = ext
		key := labels.FromMap(ext).String()
		if u, ok := byKey[key]; ok && cfg.hasReplicaLabel(&c.cfg) {
			u.replicas = append(u.replicas, c)
			u.name += "+" + c.cfg.Name
			continue
		}
		u := &unit{name: c.cfg.Name, external: ext, replicas: []*child{c}}
		byKey[key] = u
		units = append(units, u)
	}
	return units
}

// replicaGroup answers expr for an HA group. Raw samples (steps false: a
// range selector's answer at end) are fetched from every replica and
// merged; a pushed part is evaluated here, over the merged samples,
// since each replica's own answer would carry its gaps. A replica that
// fails is a warning while another answers.
func (ev *evaluation) replicaGroup(ctx context.Context, u *unit, expr string, start, end time.Time, step time.Duration, steps bool) ([]storage.Series, []error, error) {
	if !steps {
		return ev.mergedRaw(ctx, u, expr, end)
	}
	ev.fed.mu.RLock()
	eng := ev.fed.local
	ev.fed.mu.RUnlock()
	if eng == nil {
		return nil, nil, errors.New("no engine for HA groups")
	}
	q := &groupQueryable{ev: ev, u: u}
	opts := promql.NewPrometheusQueryOpts(false, ev.lookback)
	var (
		qry promql.Query
		err error
	)
	if step == 0 {
		qry, err = eng.NewInstantQuery(ctx, q, opts, expr, start)
	} else {
		qry, err = eng.NewRangeQuery(ctx, q, opts, expr, start, end, step)
	}
	if err != nil {
		return nil, nil, &childError{u.name, err}
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	warns := slices.Clone(q.warns)
	if res.Err != nil {
		return nil, warns, &childError{u.name, res.Err}
	}
	var m promql.Matrix
	switch v := res.Value.(type) {
	case promql.Matrix:
		m = v
	case promql.Vector:
		for _, s := range v {
			m = append(m, promql.Series{Metric: s.Metric, Floats: floatsOf(s), Histograms: histogramsOf(s)})
		}
	default:
		return nil, warns, &childError{u.name, fmt.Errorf("a pushed part evaluated to a %s", res.Value.Type())}
	}
	return matrixSeries(m, u.external, end, step, steps), warns, nil
}

// matrixSeries turns the federator's own answer for a group into series
// with its external labels, as toSeries does a child's.
func matrixSeries(m promql.Matrix, ext map[string]string, end time.Time, step time.Duration, steps bool) []storage.Series {
	out := make([]storage.Series, 0, len(m))
	for _, s := range m {
		b := labels.NewBuilder(s.Metric)
		for k, v := range ext {
			if s.Metric.Get(k) == "" {
				b.Set(k, v)
			}
		}
		samples := make([]chunks.Sample, 0, len(s.Floats)+len(s.Histograms))
		i, j := 0, 0
		for i < len(s.Floats) || j < len(s.Histograms) {
			if j == len(s.Histograms) || (i < len(s.Floats) && s.Floats[i].T < s.Histograms[j].T) {
				samples = append(samples, fsample{t: s.Floats[i].T, f: s.Floats[i].F})
				i++
				continue
			}
			samples = append(samples, fsample{t: s.Histograms[j].T, fh: s.Histograms[j].H})
			j++
		}
		if steps && step > 0 {
			samples = withStaleMarkers(samples, end.UnixMilli(), step.Milliseconds())
		}
		out = append(out, newSeries(b.Labels(), samples))
	}
	return out
}

func floatsOf(s promql.Sample) []promql.FPoint {
	if s.H != nil {
		return nil
	}
	return []promql.FPoint{{T: s.T, F: s.F}}
}

func histogramsOf(s promql.Sample) []promql.HPoint {
	if s.H == nil {
		return nil
	}
	return []promql.HPoint{{T: s.T, H: s.H}}
}

// mergedRaw fetches a range selector's samples from every replica of u
// and merges each series' samples (mergeReplicas).
func (ev *evaluation) mergedRaw(ctx context.Context, u *unit, expr string, end time.Time) ([]storage.Series, []error, error) {
	type answer struct {
		res queryResult
		err error
	}
	answers := make([]answer, len(u.replicas))
	done := make(chan struct{})
	for i, c := range u.replicas {
		go func() {
			defer func() { done <- struct{}{} }()
			t0 := time.Now()
			res, err := c.queryRange(ctx, ev.tenant, expr, end, end, 0, ev.lookback)
			ev.record(c, res.bytes, time.Since(t0), err)
			answers[i] = answer{res, err}
		}()
	}
	for range u.replicas {
		<-done
	}
	var (
		warns  []error
		failed []error
		byKey  = map[string][][]chunks.Sample{}
		lsets  = map[string]labels.Labels{}
	)
	for i, a := range answers {
		c := u.replicas[i]
		for _, w := range a.res.warnings {
			warns = append(warns, fmt.Errorf("child %s: %s", c.cfg.Name, w))
		}
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		series, err := toSeries(a.res.series, u.external, end, 0, false)
		if err != nil {
			failed = append(failed, &childError{c.cfg.Name, err})
			continue
		}
		for _, s := range series {
			key := s.Labels().String()
			lsets[key] = s.Labels()
			byKey[key] = append(byKey[key], samplesOf(s))
		}
	}
	if len(failed) == len(u.replicas) {
		return nil, warns, errors.Join(failed...)
	}
	for _, err := range failed {
		warns = append(warns, fmt.Errorf("HA group %s: %w; answered from the other replicas", u.name, err))
	}
	out := make([]storage.Series, 0, len(byKey))
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		ls := lsets[key]
		out = append(out, newSeries(ls, mergeReplicas(byKey[key], isCounter(ls.Get(labels.MetricName)))))
	}
	return out, warns, nil
}

func samplesOf(s storage.Series) []chunks.Sample {
	var out []chunks.Sample
	it := s.Iterator(nil)
	for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
		switch typ {
		case chunkenc.ValFloat:
			t, f := it.At()
			out = append(out, fsample{t: t, f: f})
		default:
			t, fh := it.AtFloatHistogram(nil)
			out = append(out, fsample{t: t, fh: fh})
		}
	}
	return out
}

// isCounter tells counters by their conventional names: only they are
// kept from going down where the merge switches replicas.
func isCounter(name string) bool {
	for _, suffix := range []string{"_total", "_count", "_sum", "_bucket"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// mergeReplicas merges the samples replicas hold of one series: it
// follows one replica and switches to another only across a gap of the
// one it follows (a step more than 1.5 of its usual interval), taking
// the other's first sample after the last one taken. So the merged
// series has one replica's sampling everywhere (no doubled samples, no
// doubled counts) and holes only where every replica has one. Where it
// switches, a counter never goes down: a replica whose count lags the
// other's would otherwise look like a reset and inflate rate() and
// increase() (a real reset exactly at a switch is then seen one sample
// late).
func mergeReplicas(replicas [][]chunks.Sample, counter bool) []chunks.Sample {
	live := replicas[:0:0]
	for _, r := range replicas {
		if len(r) > 0 {
			live = append(live, r)
		}
	}
	if len(live) == 1 {
		return live[0]
	}
	intervals := make([]int64, len(live))
	for i, r := range live {
		intervals[i] = usualInterval(r)
	}
	var (
		out  []chunks.Sample
		pos  = make([]int, len(live))
		cur  = -1
		last int64
	)
	// Start with the replica that has the earliest sample.
	for i, r := range live {
		if cur < 0 || r[0].T() < live[cur][0].T() {
			cur = i
		}
	}
	for {
		// Skip what every replica holds up to the last sample taken.
		for i, r := range live {
			for pos[i] < len(r) && len(out) > 0 && r[pos[i]].T() <= last {
				pos[i]++
			}
		}
		next := -1
		if pos[cur] < len(live[cur]) && (len(out) == 0 || live[cur][pos[cur]].T()-last <= intervals[cur]*3/2) {
			next = cur
		} else {
			// A gap (or the end) of the current replica: the earliest
			// sample of any replica after the last taken.
			for i, r := range live {
				if pos[i] < len(r) && (next < 0 || r[pos[i]].T() < live[next][pos[next]].T()) {
					next = i
				}
			}
			if next < 0 {
				return out
			}
		}
		s := live[next][pos[next]]
		if next != cur && counter && len(out) > 0 && s.FH() == nil && out[len(out)-1].FH() == nil && s.F() < out[len(out)-1].F() {
			s = fsample{t: s.T(), f: out[len(out)-1].F()}
		}
		cur = next
		out = append(out, s)
		last = s.T()
		pos[next]++
	}
}

// usualInterval is the median step between a replica's samples (1ms at
// least).
func usualInterval(r []chunks.Sample) int64 {
	if len(r) < 2 {
		return 1
	}
	d := make([]int64, len(r)-1)
	for i := range d {
		d[i] = r[i+1].T() - r[i].T()
	}
	slices.Sort(d)
	return max(d[len(d)/2], 1)
}

// groupQueryable reads an HA group's merged samples for the federator's
// own evaluation of a pushed part.
type groupQueryable struct {
	ev    *evaluation
	u     *unit
	warns []error
}

func (g *groupQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &groupQuerier{g: g, mint: mint, maxt: maxt}, nil
}

type groupQuerier struct {
	g          *groupQueryable
	mint, maxt int64
}

func (q *groupQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	start, end := q.mint, q.maxt
	if hints != nil {
		start, end = hints.Start, hints.End
	}
	sel := &parser.MatrixSelector{VectorSelector: &parser.VectorSelector{LabelMatchers: ms}, Range: time.Duration(end-start+1) * time.Millisecond}
	series, warns, err := q.g.ev.mergedRaw(ctx, q.g.u, sel.String(), time.UnixMilli(end))
	q.g.warns = append(q.g.warns, warns...)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	// The group's own series, without its external labels: the pushed
	// part was written for one child.
	out := make([]storage.Series, len(series))
	for i, s := range series {
		b := labels.NewBuilder(s.Labels())
		for k := range q.g.u.external {
			b.Del(k)
		}
		out[i] = newSeries(b.Labels(), samplesOf(s))
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &lazySet{wait: func() ([]storage.Series, annotations.Annotations, error) { return out, nil, nil }}
}

func (q *groupQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *groupQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *groupQuerier) Close() error { return nil }
