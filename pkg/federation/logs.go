package federation

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// Logs through the tree. The federator serves Loki's query API with
// Canopy's LogQL engine, whose Remote is the children:
//
//   - a log query goes to every child whole, with the query's limit and
//     direction; the federator keeps the limit best of all their entries
//     (and thins them by interval), as one store would;
//   - each range aggregation of a metric query goes to the children: one
//     whose series keep the external labels (no grouping that drops them,
//     no drop, keep or label_format that removes them) is the union of
//     the children's series; one grouped without them is asked grouped by
//     them too and combined again here (sum for counts, bytes, rates and
//     sums; max and min for max_over_time and min_over_time); what lies
//     above the range aggregations (vector aggregations, binary
//     operators, …) is computed here over their series. absent_over_time
//     is 1 where no child has a line;
//   - any other range aggregation (avg_over_time, quantile_over_time, …
//     grouped without the external labels) is computed here from the
//     children's lines, at most -federation.max-fetched-log-lines of them;
//   - labels, label values, series and index stats are the children's,
//     merged, with their external labels.
//
// A stream gets its child's external labels unless it has them. An HA
// group's replicas hold the same logs: the first that answers is used.

// LogsBackend is the federator's lokiapi.Backend and its engine's
// logql.Remote.
type LogsBackend struct{ f *Federator }

// Logs returns the federator's backend for the Loki HTTP API; its engine
// must be given it as Remote (logql.Engine.WithRemote).
func (f *Federator) Logs() *LogsBackend { return &LogsBackend{f: f} }

// lokiURL is the root of a child's Loki API: loki_url, or, for a Canopy
// cluster's /prometheus URL, the host root; "" when it has none.
func (c *child) lokiURL() string {
	if c.cfg.LokiURL != "" {
		return strings.TrimSuffix(c.cfg.LokiURL, "/")
	}
	if base, ok := strings.CutSuffix(c.base, "/prometheus"); ok {
		return base
	}
	return ""
}

// lokiGet GETs the Loki API's path with form from the child; a 404 is an
// error (the child has no such API).
func (c *child) lokiGet(ctx context.Context, ev *evaluation, path string, form url.Values, h http.Header) ([]byte, error) {
	body, found, err := c.get(ctx, ev, c.lokiURL()+lokiapi.PathPrefix+path+"?"+form.Encode(), h)
	if err == nil && !found {
		err = &childError{c.cfg.Name, fmt.Errorf("HTTP 404 from %s: no Loki API there (set loki_url)", c.lokiURL()+lokiapi.PathPrefix+path)}
	}
	return body, err
}

// begin starts a logs request over [start, end) (Unix ns) and returns the
// units that have a Loki API.
func (b *LogsBackend) begin(ctx context.Context, start, end int64) (*evaluation, []*unit) {
	ev := b.f.newEvaluation(ctx, &plan{}, time.Unix(0, start), time.Unix(0, end), 0, 0)
	if r := statsFrom(ctx); r != nil {
		r.add(ev)
	}
	var units []*unit
	for _, u := range ev.units {
		if u.replicas[0].lokiURL() != "" {
			units = append(units, u)
		}
	}
	return ev, units
}

// childMatchers returns a stream selector as child c is asked it: the
// matchers on c's external labels that c's value passes left out, unless
// nothing would be left that selects (LogQL needs a matcher that does not
// match the empty value: the child's streams must then carry the label).
// ok is false when c's external labels fail the selector.
func childMatchers(ms []*labels.Matcher, ext map[string]string) (out []*labels.Matcher, ok bool) {
	selects := false
	for _, m := range ms {
		v, isExt := ext[m.Name]
		switch {
		case !isExt:
			out = append(out, m)
			selects = selects || !m.Matches("")
		case !m.Matches(v):
			return nil, false
		}
	}
	if !selects {
		return ms, true
	}
	return out, true
}

// each runs ask on every unit whose external labels pass matchers, the
// replicas of an HA group in turn until one answers, in parallel; it
// returns the answers of the units that answered and the failures.
func each[T any](units []*unit, matchers []*labels.Matcher, ask func(c *child, ms []*labels.Matcher) (T, error)) ([]T, []*unit, []error) {
	type answer struct {
		v   T
		u   *unit
		err error
		ok  bool
	}
	answers := make([]answer, len(units))
	var wg sync.WaitGroup
	for i, u := range units {
		ms, ok := childMatchers(matchers, u.external)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := answer{u: u, ok: true}
			for _, c := range u.replicas {
				if a.v, a.err = ask(c, ms); a.err == nil {
					break
				}
			}
			answers[i] = a
		}()
	}
	wg.Wait()
	var (
		out    []T
		asked  []*unit
		failed []error
	)
	for _, a := range answers {
		switch {
		case !a.ok:
		case a.err != nil:
			failed = append(failed, a.err)
		default:
			out = append(out, a.v)
			asked = append(asked, a.u)
		}
	}
	return out, asked, failed
}

// finish settles the children's failures (abort: the error; warn: the
// answer's warnings) and adds their warnings.
func finish(ev *evaluation, failed []error, res *logql.Result, answers []*logql.Result) error {
	var annots annotations.Annotations
	if err := settleLogs(ev, failed, &annots); err != nil {
		return err
	}
	for _, a := range answers {
		res.Warnings = append(res.Warnings, a.Warnings...)
	}
	warnings, _ := annots.AsStrings("", 0, 0)
	res.Warnings = append(res.Warnings, warnings...)
	return nil
}

// settleLogs is settle, its error the store's (500) unless every child
// refused the request (4xx: a limit of theirs, which is the query's).
func settleLogs(ev *evaluation, failed []error, annots *annotations.Annotations) error {
	err := ev.settle(failed, annots)
	if err == nil {
		return nil
	}
	for _, f := range failed {
		var se *statusError
		if !errors.As(f, &se) || se.code < 400 || se.code >= 500 {
			return lokiapi.Unavailable(err)
		}
	}
	return err
}

// queryForm is the form of a query or query_range request to a child.
func queryForm(q string, start, end int64, at logql.Steps) url.Values {
	if at.Instant {
		return url.Values{"query": {q}, "time": {formatNanos(at.Start * 1e6)}}
	}
	form := url.Values{"query": {q}, "start": {formatNanos(start)}, "end": {formatNanos(end)}}
	if at.Step > 0 {
		form.Set("step", strconv.FormatFloat(float64(at.Step)/1000, 'f', -1, 64))
	}
	return form
}

// formatNanos writes Unix ns as RFC 3339 (a small integer would be read as
// seconds).
func formatNanos(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// askQuery runs a query on child c and decodes its answer, each stream or
// series given c's external labels.
func askQuery(ctx context.Context, ev *evaluation, c *child, form url.Values, categorize bool) (*logql.Result, error) {
	path := "query_range"
	if form.Has("time") {
		path = "query"
	}
	h := http.Header{}
	if categorize {
		h.Set(lokiapi.EncodingFlagsHeader, "categorize-labels")
	}
	body, err := c.lokiGet(ctx, ev, path, form, h)
	if err != nil {
		return nil, err
	}
	res, err := lokiapi.DecodeQueryResult(body)
	if err != nil {
		return nil, &childError{c.cfg.Name, err}
	}
	for i := range res.Streams {
		res.Streams[i].Labels = withLabels(res.Streams[i].Labels, c.external)
	}
	for i := range res.Matrix {
		res.Matrix[i].Metric = withLabels(res.Matrix[i].Metric, c.external)
	}
	for i := range res.Vector {
		res.Vector[i].Metric = withLabels(res.Vector[i].Metric, c.external)
	}
	for i, w := range res.Warnings {
		res.Warnings[i] = "child " + c.cfg.Name + ": " + w
	}
	return res, nil
}

// withLabels returns ls with the labels of ext it lacks.
func withLabels(ls labels.Labels, ext map[string]string) labels.Labels {
	missing := false
	for k := range ext {
		if !ls.Has(k) {
			missing = true
			break
		}
	}
	if !missing {
		return ls
	}
	b := labels.NewBuilder(ls)
	for k, v := range ext {
		if !ls.Has(k) {
			b.Set(k, v)
		}
	}
	return b.Labels()
}

// Logs implements logql.Remote: the children's entries, the limit best of
// them all.
func (b *LogsBackend) Logs(ctx context.Context, e *logql.LogExpr, p logql.Params) (*logql.Result, error) {
	b.f.mu.RLock()
	ext := b.f.ext
	b.f.mu.RUnlock()
	if !keepsLabels(e.Pipeline, nil, ext) {
		return nil, nil // the pipeline reads the external labels: here, over the children's lines
	}
	ev, units := b.begin(ctx, p.Start, p.End)
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	answers, _, failed := each(units, e.Matchers, func(c *child, ms []*labels.Matcher) (*logql.Result, error) {
		q := (&logql.LogExpr{Matchers: ms, Pipeline: e.Pipeline}).String()
		form := queryForm(q, p.Start, p.End, logql.Steps{})
		form.Set("limit", strconv.Itoa(limit))
		form.Set("direction", directionName(p.Direction))
		return askQuery(ctx, ev, c, form, p.Categorize)
	})
	res := &logql.Result{Type: logql.ValueTypeStreams}
	if err := finish(ev, failed, res, answers); err != nil {
		return nil, err
	}
	for _, a := range answers {
		res.Stats.BytesProcessed += a.Stats.BytesProcessed
		res.Stats.LinesProcessed += a.Stats.LinesProcessed
	}
	res.Streams, res.Stats.EntriesReturned = logql.MergeStreams(answers, limit, p.Direction, p.Interval)
	if p.Limits.MaxSeries > 0 && len(res.Streams) > p.Limits.MaxSeries {
		return nil, fmt.Errorf("%w: the result has more than %d streams (%s); narrow the query", logql.ErrLimit, p.Limits.MaxSeries, p.Limits.MaxSeriesFlag)
	}
	return res, nil
}

func directionName(d logql.Direction) string {
	if d == logql.Forward {
		return "forward"
	}
	return "backward"
}

// Range implements logql.Remote.
func (b *LogsBackend) Range(ctx context.Context, r *logql.RangeAggregation, at logql.Steps, lim logql.Limits) (*logql.Result, error) {
	b.f.mu.RLock()
	ext := b.f.ext
	b.f.mu.RUnlock()
	if r.Op == "absent_over_time" {
		return b.absent(ctx, r, at)
	}
	if !keepsLabels(r.Log.Pipeline, r.Unwrap, ext) {
		return nil, nil
	}
	child := *r
	combine := func(a, _ float64) float64 { return a }
	regroup := func(ls labels.Labels) labels.Labels { return ls }
	if g := r.Grouping; g != nil {
		wide := widen(g, ext)
		if !slices.Equal(wide.Labels, g.Labels) {
			switch {
			case r.Unwrap == nil || r.Op == "sum_over_time" || r.Op == "rate":
				combine = func(a, b float64) float64 { return a + b }
			case r.Op == "max_over_time":
				combine = func(a, b float64) float64 { return max(a, b) }
			case r.Op == "min_over_time":
				combine = func(a, b float64) float64 { return min(a, b) }
			default:
				return nil, nil // computed here from the children's lines
			}
			regroup = func(ls labels.Labels) labels.Labels {
				b := labels.NewBuilder(ls)
				if g.Without {
					b.Del(g.Labels...)
				} else {
					b.Keep(g.Labels...)
				}
				return b.Labels()
			}
		}
		child.Grouping = wide
	}
	res, err := b.ranges(ctx, &child, at, lim)
	if err != nil {
		return nil, err
	}
	res.Matrix = regroupMatrix(res.Matrix, regroup, combine)
	return res, nil
}

// ranges asks the children for the range aggregation r and joins their
// series.
func (b *LogsBackend) ranges(ctx context.Context, r *logql.RangeAggregation, at logql.Steps, lim logql.Limits) (*logql.Result, error) {
	start, end := (at.Start-r.Range.Milliseconds()-r.Offset.Milliseconds())*1e6, (at.At(at.N-1)+1)*1e6
	ev, units := b.begin(ctx, start, end)
	answers, _, failed := each(units, r.Log.Matchers, func(c *child, ms []*labels.Matcher) (*logql.Result, error) {
		return askQuery(ctx, ev, c, queryForm(childRangeQuery(r, ms), at.Start*1e6, at.At(at.N-1)*1e6, at), false)
	})
	res := &logql.Result{}
	if err := finish(ev, failed, res, answers); err != nil {
		return nil, err
	}
	for _, a := range answers {
		res.Stats.BytesProcessed += a.Stats.BytesProcessed
		res.Stats.LinesProcessed += a.Stats.LinesProcessed
		res.Matrix = append(res.Matrix, a.Matrix...)
		for _, s := range a.Vector {
			res.Matrix = append(res.Matrix, promql.Series{Metric: s.Metric, Floats: []promql.FPoint{{T: s.T, F: s.F}}})
		}
	}
	if lim.MaxSeries > 0 && len(res.Matrix) > lim.MaxSeries {
		return nil, fmt.Errorf("%w: the query has more than %d series (%s); aggregate with sum by (…), narrow the selector or drop labels", logql.ErrLimit, lim.MaxSeries, lim.MaxSeriesFlag)
	}
	return res, nil
}

// childRangeQuery writes r as a child is asked it, over the matchers ms:
// a grouped counting aggregation (which LogQL's grammar groups only from
// outside) as a sum by that grouping.
func childRangeQuery(r *logql.RangeAggregation, ms []*labels.Matcher) string {
	c := *r
	c.Log = &logql.LogExpr{Matchers: ms, Pipeline: r.Log.Pipeline}
	if g := c.Grouping; g != nil && c.Unwrap == nil {
		c.Grouping = nil
		return (&logql.VectorAggregation{Op: "sum", Grouping: g, Expr: &c}).String()
	}
	return c.String()
}

// absent is absent_over_time: 1 at the steps where no child has a line
// the pipeline keeps.
func (b *LogsBackend) absent(ctx context.Context, r *logql.RangeAggregation, at logql.Steps) (*logql.Result, error) {
	if r.Unwrap != nil {
		return nil, nil
	}
	count := *r
	count.Op, count.Grouping = "count_over_time", &logql.Grouping{}
	res, err := b.ranges(ctx, &count, at, logql.Limits{})
	if err != nil {
		return nil, err
	}
	present := map[int64]bool{}
	for _, s := range res.Matrix {
		for _, p := range s.Floats {
			present[p.T] = present[p.T] || p.F > 0
		}
	}
	res.Matrix = logql.AbsentSeries(r, at, func(i int) bool { return present[at.At(i)] })
	return res, nil
}

// keepsLabels reports whether a pipeline (and unwrap) can run on a child
// whose streams lack the external labels ext: none of its stages but
// line filters and parsers names them (drop, keep, label_format,
// line_format, a label filter), and unwrap does not take one.
func keepsLabels(pipeline []logql.Stage, unwrap *logql.Unwrap, ext []string) bool {
	for _, st := range pipeline {
		switch st := st.(type) {
		case *logql.LineFilter, *logql.Decolorize:
			continue
		case *logql.Parser:
			if st.Param == "" && len(st.Extractions) == 0 {
				continue
			}
		}
		if namesAny(st.String(), ext) {
			return false
		}
	}
	return unwrap == nil || !namesAny(unwrap.Label, ext)
}

// namesAny reports whether s holds one of names as a word.
func namesAny(s string, names []string) bool {
	for _, n := range names {
		for i := strings.Index(s, n); i >= 0; {
			end := i + len(n)
			if (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end])) {
				return true
			}
			next := strings.Index(s[i+1:], n)
			if next < 0 {
				break
			}
			i += 1 + next
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// widen returns g with the external labels kept: by them too, or not
// without them.
func widen(g *logql.Grouping, ext []string) *logql.Grouping {
	w := &logql.Grouping{Without: g.Without}
	if g.Without {
		for _, l := range g.Labels {
			if !slices.Contains(ext, l) {
				w.Labels = append(w.Labels, l)
			}
		}
		return w
	}
	w.Labels = slices.Clone(g.Labels)
	for _, l := range ext {
		if !slices.Contains(w.Labels, l) {
			w.Labels = append(w.Labels, l)
		}
	}
	return w
}

// regroupMatrix gives each series the labels regroup makes of its own
// and combines the samples of series that then have the same labels at
// the same time.
func regroupMatrix(m promql.Matrix, regroup func(labels.Labels) labels.Labels, combine func(a, b float64) float64) promql.Matrix {
	byKey := map[string]int{}
	points := []map[int64]float64{}
	var out promql.Matrix
	for _, s := range m {
		ls := regroup(s.Metric)
		k := ls.String()
		i, ok := byKey[k]
		if !ok {
			i = len(out)
			byKey[k] = i
			out = append(out, promql.Series{Metric: ls})
			points = append(points, map[int64]float64{})
		}
		for _, p := range s.Floats {
			if old, ok := points[i][p.T]; ok {
				p.F = combine(old, p.F)
			}
			points[i][p.T] = p.F
		}
	}
	for i := range out {
		out[i].Floats = make([]promql.FPoint, 0, len(points[i]))
		for t, f := range points[i] {
			out[i].Floats = append(out[i].Floats, promql.FPoint{T: t, F: f})
		}
		slices.SortFunc(out[i].Floats, func(a, b promql.FPoint) int { return cmp.Compare(a.T, b.T) })
	}
	slices.SortFunc(out, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
	return out
}

// Labels implements lokiapi.Backend: the children's label names and
// their external labels' names.
func (b *LogsBackend) Labels(ctx context.Context, start, end int64, matchers []*labels.Matcher) ([]string, error) {
	return b.names(ctx, "labels", "", start, end, matchers)
}

// LabelValues implements lokiapi.Backend.
func (b *LogsBackend) LabelValues(ctx context.Context, name string, start, end int64, matchers []*labels.Matcher) ([]string, error) {
	return b.names(ctx, "label/"+url.PathEscape(name)+"/values", name, start, end, matchers)
}

// names asks the children's labels or label values (of name) and merges
// them with their external labels'.
func (b *LogsBackend) names(ctx context.Context, path, name string, start, end int64, matchers []*labels.Matcher) ([]string, error) {
	ev, units := b.begin(ctx, start, end)
	answers, asked, failed := each(units, matchers, func(c *child, ms []*labels.Matcher) ([]string, error) {
		form := url.Values{"start": {formatNanos(start)}, "end": {formatNanos(end)}}
		if len(ms) > 0 {
			form.Set("query", (&logql.LogExpr{Matchers: ms}).String())
		}
		if _, ok := c.external[name]; ok {
			// The values of an external label: the child's if it has a
			// stream that matches.
			return fetchLoki[[]string](ctx, ev, c, "labels", form)
		}
		return fetchLoki[[]string](ctx, ev, c, path, form)
	})
	var annots annotations.Annotations
	if err := settleLogs(ev, failed, &annots); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, vals := range answers {
		addNames(seen, name, vals, asked[i].external)
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// fetchLoki GETs path of c's Loki API and decodes the answer's data.
func fetchLoki[T any](ctx context.Context, ev *evaluation, c *child, path string, form url.Values) (T, error) {
	var env struct {
		Status string `json:"status"`
		Data   T      `json:"data"`
	}
	body, err := c.lokiGet(ctx, ev, path, form, nil)
	if err != nil {
		return env.Data, err
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return env.Data, &childError{c.cfg.Name, fmt.Errorf("decoding the answer: %w", err)}
	}
	return env.Data, nil
}

// Series implements lokiapi.Backend: the children's streams, with their
// external labels.
func (b *LogsBackend) Series(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher) ([]labels.Labels, error) {
	seen := map[string]labels.Labels{}
	var failed []error
	var ev *evaluation
	for _, ms := range matcherSets {
		var units []*unit
		ev, units = b.begin(ctx, start, end)
		answers, asked, errs := each(units, ms, func(c *child, ms []*labels.Matcher) ([]map[string]string, error) {
			form := url.Values{"start": {formatNanos(start)}, "end": {formatNanos(end)}, "match[]": {(&logql.LogExpr{Matchers: ms}).String()}}
			return fetchLoki[[]map[string]string](ctx, ev, c, "series", form)
		})
		failed = append(failed, errs...)
		for i, set := range answers {
			for _, m := range set {
				ls := withLabels(labels.FromMap(m), asked[i].external)
				seen[ls.String()] = ls
			}
		}
	}
	if ev != nil {
		var annots annotations.Annotations
		if err := settleLogs(ev, failed, &annots); err != nil {
			return nil, err
		}
	}
	out := make([]labels.Labels, 0, len(seen))
	for _, ls := range seen {
		out = append(out, ls)
	}
	slices.SortFunc(out, labels.Compare)
	return out, nil
}

// IndexStats implements lokiapi.IndexStatser: the children's, added up.
func (b *LogsBackend) IndexStats(ctx context.Context, start, end int64, matchers []*labels.Matcher) (lokiapi.IndexStats, error) {
	ev, units := b.begin(ctx, start, end)
	answers, _, failed := each(units, matchers, func(c *child, ms []*labels.Matcher) (lokiapi.IndexStats, error) {
		form := url.Values{"start": {formatNanos(start)}, "end": {formatNanos(end)}, "query": {(&logql.LogExpr{Matchers: ms}).String()}}
		body, err := c.lokiGet(ctx, ev, "index/stats", form, nil)
		if err != nil {
			return lokiapi.IndexStats{}, err
		}
		var st struct{ Streams, Chunks, Entries, Bytes uint64 }
		if err := json.Unmarshal(body, &st); err != nil {
			return lokiapi.IndexStats{}, &childError{c.cfg.Name, fmt.Errorf("decoding the answer: %w", err)}
		}
		return lokiapi.IndexStats(st), nil
	})
	var annots annotations.Annotations
	if err := settleLogs(ev, failed, &annots); err != nil {
		return lokiapi.IndexStats{}, err
	}
	var sum lokiapi.IndexStats
	for _, a := range answers {
		sum.Streams += a.Streams
		sum.Chunks += a.Chunks
		sum.Entries += a.Entries
		sum.Bytes += a.Bytes
	}
	return sum, nil
}

// Select implements logql.Source: the lines of the streams matching
// p.Matchers from every child, for what the children cannot compute
// whole. Each child is asked in pages of its oldest lines, at most
// -federation.max-fetched-log-lines in all.
func (b *LogsBackend) Select(ctx context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	b.f.mu.RLock()
	limit := b.f.cfg.MaxFetchedLogLines
	b.f.mu.RUnlock()
	var filters []logql.Stage
	for _, n := range p.Needles {
		filters = append(filters, &logql.LineFilter{Op: "|=", Values: []logql.FilterValue{{Value: n}}})
	}
	ev, units := b.begin(ctx, p.Start, p.End)
	var fetched atomic.Int64
	answers, _, failed := each(units, p.Matchers, func(c *child, ms []*labels.Matcher) ([]logql.Stream, error) {
		q := (&logql.LogExpr{Matchers: ms, Pipeline: filters}).String()
		return fetchLines(ctx, ev, c, q, p.Start, p.End, limit, &fetched)
	})
	var annots annotations.Annotations
	if err := settleLogs(ev, failed, &annots); err != nil {
		return nil, err
	}
	var streams []logql.Stream
	for _, a := range answers {
		streams = append(streams, a...)
	}
	return &streamsIterator{streams: streams, i: -1}, nil
}

// fetchPage is how many lines a page of fetched lines holds: Loki's
// default max_entries_limit_per_query (a test makes pages small).
var fetchPage = 5000

// fetchLines reads the lines of query q in [start, end) from child c,
// oldest first, a page at a time: each page starts at the last one's
// newest time, leaving out the lines of that time already read.
func fetchLines(ctx context.Context, ev *evaluation, c *child, q string, start, end int64, limit int, fetched *atomic.Int64) ([]logql.Stream, error) {
	byStream := map[string]*logql.Stream{}
	var order []string
	seenAt := map[string]bool{} // the lines read at the newest time so far
	from := start
	for {
		form := url.Values{"query": {q}, "start": {formatNanos(from)}, "end": {formatNanos(end)}, "limit": {strconv.Itoa(fetchPage)}, "direction": {"forward"}}
		res, err := askQuery(ctx, ev, c, form, true)
		if err != nil {
			return nil, err
		}
		n, added, newest := 0, 0, from
		for _, s := range res.Streams {
			for _, e := range s.Entries {
				newest = max(newest, e.Timestamp)
			}
		}
		next := map[string]bool{}
		for _, s := range res.Streams {
			key := s.Labels.String()
			for _, e := range s.Entries {
				n++
				id := key + "\x00" + e.Line + "\x00" + e.Metadata.String()
				if e.Timestamp == from && seenAt[id] {
					continue
				}
				if e.Timestamp == newest {
					next[id] = true
				}
				st, ok := byStream[key]
				if !ok {
					st = &logql.Stream{Labels: s.Labels}
					byStream[key] = st
					order = append(order, key)
				}
				st.Entries = append(st.Entries, e)
				added++
			}
		}
		if total := fetched.Add(int64(added)); total > int64(limit) {
			return nil, fmt.Errorf("%w: the query needs more than %d log lines from the children (-federation.max-fetched-log-lines): its aggregation is computed on the federator from their lines; narrow the time range or the selector, or aggregate with sum, min, max or count by labels that include the external labels", logql.ErrLimit, limit)
		}
		if n < fetchPage {
			break
		}
		if added == 0 {
			return nil, &childError{c.cfg.Name, fmt.Errorf("more than %d lines at one time (%s): they cannot be read in pages", fetchPage, formatNanos(newest))}
		}
		if newest != from {
			seenAt = next
		} else {
			for id := range next {
				seenAt[id] = true
			}
		}
		from = newest
	}
	out := make([]logql.Stream, len(order))
	for i, key := range order {
		st := byStream[key]
		slices.SortStableFunc(st.Entries, func(a, b logql.Entry) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
		out[i] = *st
	}
	return out, nil
}

// streamsIterator walks streams in memory, a stream a batch.
type streamsIterator struct {
	streams []logql.Stream
	i       int
}

func (it *streamsIterator) Next() bool             { it.i++; return it.i < len(it.streams) }
func (it *streamsIterator) Labels() labels.Labels  { return it.streams[it.i].Labels }
func (it *streamsIterator) Entries() []logql.Entry { return it.streams[it.i].Entries }
func (it *streamsIterator) Err() error             { return nil }
func (it *streamsIterator) Close() error           { return nil }
