package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/canopy-observability/canopy/pkg/util/promjson"
)

// evaluation is one query the federator runs: its plan, its steps and
// how it treats failing children.
type evaluation struct {
	fed      *Federator
	children []*child
	units    []*unit
	plan     *plan
	tenant   string
	start    time.Time
	end      time.Time
	step     time.Duration // 0: an instant query at start
	lookback time.Duration
	partial  bool // warn rather than abort when a child fails

	mu    sync.Mutex
	stats map[string]*childStats
}

// childStats is what a query cost one child.
type childStats struct {
	Requests int           `json:"requests"`
	Bytes    int64         `json:"bytes"`
	Latency  time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	Error    string        `json:"error,omitempty"`
}

func (ev *evaluation) record(c *child, bytes int64, took time.Duration, err error) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.stats == nil {
		ev.stats = map[string]*childStats{}
	}
	s := ev.stats[c.cfg.Name]
	if s == nil {
		s = &childStats{}
		ev.stats[c.cfg.Name] = s
	}
	s.Requests++
	s.Bytes += bytes
	s.Latency = max(s.Latency, took)
	s.Seconds = s.Latency.Seconds()
	if err != nil {
		s.Error = err.Error()
	}
	ev.fed.metrics.observe(c.cfg.Name, bytes, took, err)
	ev.fed.noteHealth(c.cfg.Name, took, err)
}

// Querier implements storage.Queryable: the federator's engine reads the
// children through it.
func (ev *evaluation) Querier(mint, maxt int64) (storage.Querier, error) {
	return &fedQuerier{ev: ev, mint: mint, maxt: maxt}, nil
}

type fedQuerier struct {
	ev         *evaluation
	mint, maxt int64
}

func (q *fedQuerier) Close() error { return nil }

// Select returns a pushed part's answers (a placeholder) or the
// children's samples of a selector the federator evaluates itself. The
// children are asked at once; the set waits for them when first read.
func (q *fedQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	if part, ok := placeholderPart(ms); ok {
		if part < 0 || part >= len(q.ev.plan.parts) {
			return storage.ErrSeriesSet(fmt.Errorf("no pushed part %d", part))
		}
		start, end, step := q.ev.gridOf(part)
		if end.Before(start) {
			return storage.EmptySeriesSet()
		}
		return q.ev.fanOut(ctx, func(c *child) (string, bool) {
			return childQuery(q.ev.plan.parts[part], c)
		}, start, end, step, true)
	}
	start, end := q.mint, q.maxt
	if hints != nil {
		start, end = hints.Start, hints.End
	}
	// The samples in (start-1ms, end]: a range selector's answer at end.
	vs := &parser.VectorSelector{LabelMatchers: ms}
	ms2 := &parser.MatrixSelector{VectorSelector: vs, Range: time.Duration(end-start+1) * time.Millisecond}
	at := time.UnixMilli(end)
	return q.ev.fanOut(ctx, func(c *child) (string, bool) { return childQuery(ms2, c) }, at, at, 0, false)
}

// gridOf returns the steps the federator's engine reads pushed part i
// at: the query's, or those of the subqueries around the part, computed
// as Prometheus's engine computes them (step 0: one instant).
func (ev *evaluation) gridOf(i int) (start, end time.Time, step time.Duration) {
	s, e, st := ev.start.UnixMilli(), ev.end.UnixMilli(), ev.step.Milliseconds()
	rootStart, rootEnd := s, e
	for _, sq := range ev.plan.grids[i] {
		switch {
		case sq.Timestamp != nil:
			s, e, st = *sq.Timestamp, *sq.Timestamp, 0
		case sq.StartOrEnd == parser.START:
			s, e, st = rootStart, rootStart, 0
		case sq.StartOrEnd == parser.END:
			s, e, st = rootEnd, rootEnd, 0
		}
		offset, rng := sq.OriginalOffset.Milliseconds(), sq.Range.Milliseconds()
		parentEnd := e
		if st > 0 {
			parentEnd = s + ((e-s)/st)*st
		}
		interval := sq.Step.Milliseconds()
		if interval == 0 {
			interval = ev.fed.subqueryStep.Milliseconds()
		}
		start := interval * ((s - offset - rng) / interval)
		if start <= s-offset-rng {
			start += interval
		}
		s, e, st = start, parentEnd-offset, interval
	}
	return time.UnixMilli(s), time.UnixMilli(e), time.Duration(st) * time.Millisecond
}

func placeholderPart(ms []*labels.Matcher) (int, bool) {
	name, part := false, -1
	for _, m := range ms {
		switch m.Name {
		case labels.MetricName:
			name = m.Type == labels.MatchEqual && m.Value == placeholderName
		case placeholderLabel:
			p, err := strconv.Atoi(m.Value)
			if err != nil {
				return -1, true
			}
			part = p
		}
	}
	return part, name
}

// LabelNames and LabelValues come from every child, with the external
// labels.
func (q *fedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.ev.labels(ctx, "", q.mint, q.maxt, hints, ms)
}

func (q *fedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.ev.labels(ctx, name, q.mint, q.maxt, hints, ms)
}

// childQuery returns e as child c evaluates it: matchers on c's external
// labels taken out when c's value passes them; a selector whose matchers
// c's labels fail selects nothing. ok is false when no selector of e can
// select anything of c's: c is not asked.
func childQuery(e parser.Expr, c *child) (string, bool) {
	cp, err := parser.NewParser(parser.Options{EnableExperimentalFunctions: true, ExperimentalDurationExpr: true, EnableExtendedRangeSelectors: true, EnableBinopFillModifiers: true}).ParseExpr(e.String())
	if err != nil {
		// Printed by the parser's own String: cannot happen; ask as is.
		return e.String(), true
	}
	any := false
	parser.Inspect(cp, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		kept := vs.LabelMatchers[:0]
		matches := true
		for _, m := range vs.LabelMatchers {
			v, ext := c.external[m.Name]
			if !ext {
				kept = append(kept, m)
				continue
			}
			if !m.Matches(v) {
				matches = false
			}
		}
		if !matches {
			kept = append(kept[:0], labels.MustNewMatcher(labels.MatchEqual, "__canopy_no_match__", "1"))
		} else {
			any = true
		}
		if !slices.ContainsFunc(kept, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			kept = append(kept, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
		}
		vs.LabelMatchers = kept
		if vs.Name != "" && !slices.ContainsFunc(kept, func(m *labels.Matcher) bool { return m.Name == labels.MetricName }) {
			vs.Name = ""
		}
		return nil
	})
	return cp.String(), any
}

// fanOut runs the query each child's expression names on every unit
// (a child, or an HA group of replicas) with a child that has one, in
// parallel, and returns their answers as one set, each unit's series
// with its external labels. With steps (a pushed part), a series missing
// at a step gets a staleness marker there, so that the federator's
// engine does not carry its last value forward.
func (ev *evaluation) fanOut(ctx context.Context, exprOf func(*child) (string, bool), start, end time.Time, step time.Duration, steps bool) storage.SeriesSet {
	type answer struct {
		u      *unit
		series []storage.Series
		warns  []error
		err    error
	}
	var asked []*unit
	var exprs []string
	for _, u := range ev.units {
		if e, ok := exprOf(u.replicas[0]); ok {
			asked = append(asked, u)
			exprs = append(exprs, e)
		}
	}
	answers := make([]answer, len(asked))
	var wg sync.WaitGroup
	for i, u := range asked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := answer{u: u}
			if len(u.replicas) == 1 {
				c := u.replicas[0]
				t0 := time.Now()
				res, err := c.queryRange(ctx, ev.tenant, exprs[i], start, end, step, ev.lookback)
				ev.record(c, res.bytes, time.Since(t0), err)
				for _, w := range res.warnings {
					a.warns = append(a.warns, fmt.Errorf("child %s: %s", c.cfg.Name, w))
				}
				if a.err = err; err == nil {
					if a.series, err = toSeries(res.series, c.external, end, step, steps); err != nil {
						a.err = &childError{c.cfg.Name, err}
					}
				}
			} else {
				a.series, a.warns, a.err = ev.replicaGroup(ctx, u, exprs[i], start, end, step, steps)
			}
			answers[i] = a
		}()
	}
	return &lazySet{wait: func() ([]storage.Series, annotations.Annotations, error) {
		wg.Wait()
		var (
			out    []storage.Series
			annots annotations.Annotations
			failed []error
		)
		for _, a := range answers {
			for _, w := range a.warns {
				annots.Add(w)
			}
			if a.err != nil {
				failed = append(failed, a.err)
				continue
			}
			out = append(out, a.series...)
		}
		if err := ev.settle(failed, &annots); err != nil {
			return nil, annots, err
		}
		sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels(), out[j].Labels()) < 0 })
		return out, annots, nil
	}}
}

// toSeries turns a child's answer into series with the external labels
// ext (a label the child already gives keeps its value).
func toSeries(m model.Matrix, ext map[string]string, end time.Time, step time.Duration, steps bool) ([]storage.Series, error) {
	out := make([]storage.Series, 0, len(m))
	for _, ss := range m {
		b := labels.NewScratchBuilder(len(ss.Metric) + len(ext))
		for k, v := range ss.Metric {
			b.Add(string(k), string(v))
		}
		for k, v := range ext {
			if _, ok := ss.Metric[model.LabelName(k)]; !ok {
				b.Add(k, v)
			}
		}
		b.Sort()
		samples := make([]chunks.Sample, 0, len(ss.Values)+len(ss.Histograms))
		i, j := 0, 0
		for i < len(ss.Values) || j < len(ss.Histograms) {
			if j == len(ss.Histograms) || (i < len(ss.Values) && ss.Values[i].Timestamp < ss.Histograms[j].Timestamp) {
				samples = append(samples, fsample{t: int64(ss.Values[i].Timestamp), f: float64(ss.Values[i].Value)})
				i++
				continue
			}
			fh, err := promjson.FloatHistogram(ss.Histograms[j].Histogram)
			if err != nil {
				return nil, err
			}
			samples = append(samples, fsample{t: int64(ss.Histograms[j].Timestamp), fh: fh})
			j++
		}
		if steps && step > 0 {
			samples = withStaleMarkers(samples, end.UnixMilli(), step.Milliseconds())
		}
		out = append(out, newSeries(b.Labels(), samples))
	}
	return out, nil
}

// withStaleMarkers adds a staleness marker one step after each sample
// not followed by one at the next step (and before the end).
func withStaleMarkers(samples []chunks.Sample, end, step int64) []chunks.Sample {
	out := make([]chunks.Sample, 0, len(samples)+1)
	for i, s := range samples {
		out = append(out, s)
		next := s.T() + step
		if next <= end && (i+1 == len(samples) || samples[i+1].T() > next) {
			out = append(out, fsample{t: next, f: math.Float64frombits(value.StaleNaN)})
		}
	}
	return out
}

// lazySet is a series set whose series arrive when first read.
type lazySet struct {
	wait   func() ([]storage.Series, annotations.Annotations, error)
	series []storage.Series
	annots annotations.Annotations
	err    error
	done   bool
	i      int
}

func (s *lazySet) Next() bool {
	if !s.done {
		s.series, s.annots, s.err = s.wait()
		s.done, s.i = true, -1
	}
	if s.err != nil {
		return false
	}
	s.i++
	return s.i < len(s.series)
}

func (s *lazySet) At() storage.Series { return s.series[s.i] }
func (s *lazySet) Err() error         { return s.err }
func (s *lazySet) Warnings() annotations.Annotations {
	if !s.done {
		s.series, s.annots, s.err = s.wait()
		s.done, s.i = true, -1
	}
	return s.annots
}

// fsample is one sample: a float, or a float histogram when fh is set.
type fsample struct {
	t  int64
	f  float64
	fh *histogram.FloatHistogram
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return s.fh }
func (s fsample) Type() chunkenc.ValueType {
	if s.fh != nil {
		return chunkenc.ValFloatHistogram
	}
	return chunkenc.ValFloat
}
func (s fsample) Copy() chunks.Sample {
	c := s
	if s.fh != nil {
		c.fh = s.fh.Copy()
	}
	return c
}

// labels returns the label names (name empty) or the values of label
// name of every child whose external labels ms can match, in [mint,
// maxt], with the children's external labels.
func (ev *evaluation) labels(ctx context.Context, name string, mint, maxt int64, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
	path := "/api/v1/labels"
	if name != "" {
		path = "/api/v1/label/" + name + "/values"
	}
	type answer struct {
		c      *child
		values []string
		err    error
	}
	var asked []*child
	var selectors []string
	for _, c := range ev.children {
		sel := ""
		if len(ms) > 0 {
			s, ok := childQuery(&parser.VectorSelector{LabelMatchers: ms}, c)
			if !ok {
				continue
			}
			sel = s
		}
		asked = append(asked, c)
		selectors = append(selectors, sel)
	}
	answers := make([]answer, len(asked))
	eachChild(asked, func(i int, c *child) {
		form := url.Values{"start": {formatTime(time.UnixMilli(mint))}, "end": {formatTime(time.UnixMilli(maxt))}}
		if selectors[i] != "" {
			form.Set("match[]", selectors[i])
		}
		p := path
		if _, ok := c.external[name]; ok {
			// The values of an external label: the child's if it has a
			// series that matches.
			p = "/api/v1/labels"
		} else if hints != nil && hints.Limit > 0 {
			form.Set("limit", strconv.Itoa(hints.Limit))
		}
		vals, err := fetchData[[]string](ctx, ev, c, p, form)
		answers[i] = answer{c, vals, err}
	})
	seen := map[string]bool{}
	var annots annotations.Annotations
	var failed []error
	for _, a := range answers {
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		addNames(seen, name, a.values, a.c.external)
	}
	if err := ev.settle(failed, &annots); err != nil {
		return nil, annots, err
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	if hints != nil && hints.Limit > 0 && len(out) > hints.Limit {
		out = out[:hints.Limit]
	}
	return out, annots, nil
}

// addNames adds to seen a child's answer to a label names (name empty)
// or label values request, and its external labels' names or value: for
// an external label, the child was asked its label names, which say
// whether it has a matching series at all.
func addNames(seen map[string]bool, name string, answer []string, external map[string]string) {
	if len(answer) == 0 {
		return // nothing of the child's matches
	}
	if _, ok := external[name]; !ok {
		for _, v := range answer {
			seen[v] = true
		}
	}
	for k, v := range external {
		switch {
		case name == "":
			seen[k] = true
		case name == k:
			seen[v] = true
		}
	}
}

// newSeries is a series of samples in memory whose iterator hands out
// copies of its histograms: PromQL's engine reuses and changes the
// histograms it is given, which must not change the samples (a range
// query reads them at several steps).
func newSeries(ls labels.Labels, samples []chunks.Sample) storage.Series {
	return &storage.SeriesEntry{Lset: ls, SampleIteratorFn: func(chunkenc.Iterator) chunkenc.Iterator {
		return storage.NewListSeriesIteratorWithCopy(storage.Samples(sampleList(samples)))
	}}
}

// sampleList is a slice of samples as storage.Samples.
type sampleList []chunks.Sample

func (s sampleList) Get(i int) chunks.Sample { return s[i] }
func (s sampleList) Len() int                { return len(s) }

// fetchData calls path on c with form and decodes the answer's data into
// a T, recording what it cost.
func fetchData[T any](ctx context.Context, ev *evaluation, c *child, path string, form url.Values) (T, error) {
	var out T
	t0 := time.Now()
	resp, n, err := c.call(ctx, ev.tenant, path, form)
	ev.record(c, n, time.Since(t0), err)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		return out, &childError{c.cfg.Name, fmt.Errorf("decoding the answer: %w", err)}
	}
	return out, nil
}

// eachChild runs f for every child in parallel and waits for them.
func eachChild(children []*child, f func(i int, c *child)) {
	var wg sync.WaitGroup
	for i, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, c)
		}()
	}
	wg.Wait()
}

// settle makes the children's failures the answer's error (abort) or
// its warnings (warn).
func (ev *evaluation) settle(failed []error, annots *annotations.Annotations) error {
	if len(failed) == 0 {
		return nil
	}
	if !ev.partial {
		return fmt.Errorf("%w (partial_response=abort: no answer without every child)", errors.Join(failed...))
	}
	for _, err := range failed {
		annots.Add(fmt.Errorf("partial response: %w; the answer leaves its data out", err))
	}
	return nil
}
