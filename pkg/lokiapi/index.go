package lokiapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promparser "github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// scan reads the entries of the streams matching ms in [start, end) and
// gives fn each batch with the entries out of range removed, counting the
// lines and bytes read against -querier.logs.max-query-bytes-read.
func (a *API) scan(ctx context.Context, ms []*labels.Matcher, start, end int64, fn func(ls labels.Labels, es []logql.Entry)) (logql.Stats, error) {
	var st logql.Stats
	began := time.Now()
	it, err := storeSource{a.b}.Select(ctx, logql.SelectParams{Matchers: ms, Start: start, End: end, Direction: logql.Forward})
	if err != nil {
		return st, err
	}
	defer it.Close()
	maxBytes := int64(a.cfg.MaxQueryBytesRead)
	var kept []logql.Entry
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		kept = kept[:0]
		for _, e := range it.Entries() {
			if e.Timestamp < start || e.Timestamp >= end {
				continue
			}
			st.LinesProcessed++
			st.BytesProcessed += int64(len(e.Line))
			kept = append(kept, e)
		}
		if maxBytes > 0 && st.BytesProcessed > maxBytes {
			return st, fmt.Errorf("%w: the request would read more than %d bytes of log lines (%s); narrow the time range or the stream selector", logql.ErrLimit, maxBytes, FlagMaxQueryBytesRead)
		}
		fn(it.Labels(), kept)
	}
	st.ExecTime = time.Since(began)
	return st, it.Err()
}

// requiredSelector reads the query parameter as a stream selector that
// must be there.
func requiredSelector(r *http.Request) ([]*labels.Matcher, error) {
	ms, err := parseSelector("query", r.Form.Get("query"))
	if err == nil && ms == nil {
		err = badf("the query parameter (a stream selector such as {app=\"x\"}) is required")
	}
	return ms, err
}

// serveIndexStats is /index/stats: the bare object
// {"streams":N,"chunks":N,"entries":N,"bytes":N} of a selector's streams
// over the range, from the Backend's index if it is an IndexStatser,
// else by reading the entries.
func (a *API) serveIndexStats(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.metaBounds(r)
	if err != nil {
		return err
	}
	ms, err := requiredSelector(r)
	if err != nil {
		return err
	}
	var st IndexStats
	if is, ok := a.b.(IndexStatser); ok {
		if st, err = is.IndexStats(r.Context(), start, end, ms); err != nil {
			return &storeError{err: err}
		}
	} else {
		streams := map[uint64]struct{}{}
		_, err := a.scan(r.Context(), ms, start, end, func(ls labels.Labels, es []logql.Entry) {
			st.Chunks++
			if len(es) == 0 {
				return
			}
			streams[ls.Hash()] = struct{}{}
			st.Entries += uint64(len(es))
			for _, e := range es {
				st.Bytes += uint64(len(e.Line))
			}
		})
		if err != nil {
			return err
		}
		st.Streams = uint64(len(streams))
	}
	out := &jw{}
	out.raw(`{"streams":`)
	out.int(int64(st.Streams))
	out.raw(`,"chunks":`)
	out.int(int64(st.Chunks))
	out.raw(`,"entries":`)
	out.int(int64(st.Entries))
	out.raw(`,"bytes":`)
	out.int(int64(st.Bytes))
	out.byte('}')
	writeJSON(w, out.b)
	return nil
}

// Volume: bytes of log lines by label values (aggregateBy=series, the
// default) or by label names (aggregateBy=labels, each name with the value
// ""), over the target labels (targetLabels, or else the label names of
// the query's matchers), the largest limit (default 100) series.
const (
	defaultVolumeLimit = 100
	// maxVolumeSeries bounds limit; Logs Drilldown asks for 5000.
	maxVolumeSeries = 5000
)

type volumeParams struct {
	ms       []*labels.Matcher
	targets  []string
	byLabels bool
	limit    int
}

func parseVolume(r *http.Request) (volumeParams, error) {
	var p volumeParams
	var err error
	if p.ms, err = requiredSelector(r); err != nil {
		return p, err
	}
	for _, t := range strings.Split(r.Form.Get("targetLabels"), ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(p.targets, t) {
			p.targets = append(p.targets, t)
		}
	}
	if len(p.targets) == 0 {
		for _, m := range p.ms {
			if !slices.Contains(p.targets, m.Name) {
				p.targets = append(p.targets, m.Name)
			}
		}
	}
	switch r.Form.Get("aggregateBy") {
	case "", "series":
	case "labels":
		p.byLabels = true
	default:
		return p, badf("invalid parameter \"aggregateBy\": %q is neither series nor labels", r.Form.Get("aggregateBy"))
	}
	p.limit = defaultVolumeLimit
	if s := r.Form.Get("limit"); s != "" && s != "0" {
		if p.limit, err = positiveInt(r, "limit", defaultVolumeLimit); err != nil {
			return p, err
		}
	}
	p.limit = min(p.limit, maxVolumeSeries)
	return p, nil
}

// volumeKeys returns the series a stream's bytes count toward.
func (p volumeParams) volumeKeys(ls labels.Labels) []labels.Labels {
	if p.byLabels {
		var out []labels.Labels
		for _, t := range p.targets {
			if ls.Has(t) {
				out = append(out, labels.FromStrings(t, ""))
			}
		}
		return out
	}
	var b labels.ScratchBuilder
	n := 0
	for _, t := range p.targets {
		if v := ls.Get(t); v != "" {
			b.Add(t, v)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	b.Sort()
	return []labels.Labels{b.Labels()}
}

type volumeSeries struct {
	metric labels.Labels
	total  float64
	points []float64 // per step, volume_range only
}

// volume sums the bytes of the streams into series; with step > 0 also
// per step: a step at t counts the entries in (t-step, t].
func (a *API) volume(ctx context.Context, p volumeParams, start, end int64, step time.Duration) ([]*volumeSeries, logql.Stats, error) {
	n := 0
	from, to := start, end
	if step > 0 {
		n = int((end-start)/int64(step)) + 1
		from, to = start-int64(step)+1, start+int64(n-1)*int64(step)+1
	}
	bySeries := map[string]*volumeSeries{}
	keysOf := map[uint64][]*volumeSeries{}
	st, err := a.scan(ctx, p.ms, from, to, func(ls labels.Labels, es []logql.Entry) {
		h := ls.Hash()
		series, ok := keysOf[h]
		if !ok {
			for _, k := range p.volumeKeys(ls) {
				s := bySeries[k.String()]
				if s == nil {
					s = &volumeSeries{metric: k}
					if n > 0 {
						s.points = make([]float64, n)
					}
					bySeries[k.String()] = s
				}
				series = append(series, s)
			}
			keysOf[h] = series
		}
		for _, e := range es {
			b := float64(len(e.Line))
			i := 0
			if n > 0 {
				// the step at or after the entry
				i = int((e.Timestamp - start + int64(step) - 1) / int64(step))
				if e.Timestamp < start {
					i = 0
				}
			}
			for _, s := range series {
				s.total += b
				if n > 0 {
					s.points[i] += b
				}
			}
		}
	})
	if err != nil {
		return nil, st, err
	}
	out := make([]*volumeSeries, 0, len(bySeries))
	for _, s := range bySeries {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *volumeSeries) int {
		if x.total != y.total {
			if x.total > y.total {
				return -1
			}
			return 1
		}
		return labels.Compare(x.metric, y.metric)
	})
	if len(out) > p.limit {
		out = out[:p.limit]
	}
	return out, st, nil
}

// serveVolume is /index/volume: a vector of each series' bytes over
// [start, end), at end.
func (a *API) serveVolume(w http.ResponseWriter, r *http.Request) error {
	start, end, err := a.metaBounds(r)
	if err != nil {
		return err
	}
	p, err := parseVolume(r)
	if err != nil {
		return err
	}
	series, st, err := a.volume(r.Context(), p, start, end, 0)
	if err != nil {
		return err
	}
	res := &logql.Result{Type: promparser.ValueTypeVector, Vector: promql.Vector{}, Stats: st}
	for _, s := range series {
		res.Vector = append(res.Vector, promql.Sample{Metric: s.metric, T: end / 1e6, F: s.total})
	}
	writeJSON(w, EncodeQueryResult(res, false, logql.Backward))
	return nil
}

// serveVolumeRange is /index/volume_range: a matrix of each series' bytes
// per step.
func (a *API) serveVolumeRange(w http.ResponseWriter, r *http.Request) error {
	start, end, step, err := a.rangeStep(r)
	if err != nil {
		return err
	}
	p, err := parseVolume(r)
	if err != nil {
		return err
	}
	series, st, err := a.volume(r.Context(), p, start, end, step)
	if err != nil {
		return err
	}
	slices.SortFunc(series, func(x, y *volumeSeries) int { return labels.Compare(x.metric, y.metric) })
	res := &logql.Result{Type: promparser.ValueTypeMatrix, Matrix: promql.Matrix{}, Stats: st}
	for _, s := range series {
		ps := promql.Series{Metric: s.metric}
		for i, v := range s.points {
			if v != 0 {
				ps.Floats = append(ps.Floats, promql.FPoint{T: (start + int64(i)*int64(step)) / 1e6, F: v})
			}
		}
		res.Matrix = append(res.Matrix, ps)
	}
	writeJSON(w, EncodeQueryResult(res, false, logql.Backward))
	return nil
}
