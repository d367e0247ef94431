package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/canopy-observability/canopy/pkg/util/queryshard"
)

// The PromQL side of sharding at run time: the shard queries of a
// shardPlan, and the evaluation of what is left of the query by a local
// PromQL engine over the shards' partial results.

// promShards is the ShardPlan of a PromQL query.
type promShards struct {
	plan   *shardPlan
	engine *promql.Engine
}

// Queries implements ShardPlan: one per embedded query.
func (s promShards) Queries() int { return len(s.plan.embedded) }

// Shard implements ShardPlan.
func (s promShards) Shard(part *Request, k, i, n int) *Request {
	sub := *part
	sub.Query = s.plan.shardQuery(k, i, n)
	sub.CacheKey, sub.Sharding = "", nil
	return &sub
}

// Merger implements ShardPlan.
func (s promShards) Merger(part *Request) ShardMerger {
	return &promShardMerger{
		promShards: s,
		start:      part.Start, end: part.End, step: part.Step,
		series: make([][]embeddedSeries, len(s.plan.embedded)),
	}
}

// promShardMerger evaluates the outer query of a plan over one part's
// partial results.
type promShardMerger struct {
	promShards
	start, end, step int64 // step 0: an instant query
	series           [][]embeddedSeries
	warnings, infos  []string
}

// Add implements ShardMerger.
func (m *promShardMerger) Add(k, i int, body []byte) error {
	shard := -1
	if m.plan.labelled[k] {
		shard = i
	}
	ss, w, in, err := decodeShard(body, shard)
	if err != nil {
		return err
	}
	m.series[k] = append(m.series[k], ss...)
	m.warnings, m.infos = append(m.warnings, w...), append(m.infos, in...)
	return nil
}

// Merge implements ShardMerger.
func (m *promShardMerger) Merge(ctx context.Context) (*Response, error) {
	q, err := newEmbeddedQueryable(m.series, m.start, m.end, m.step)
	if err != nil {
		return nil, err
	}
	var query promql.Query
	if m.step == 0 {
		query, err = m.engine.NewInstantQuery(ctx, q, nil, m.plan.outer, time.UnixMilli(m.start))
	} else {
		query, err = m.engine.NewRangeQuery(ctx, q, nil, m.plan.outer, time.UnixMilli(m.start), time.UnixMilli(m.end), time.Duration(m.step)*time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("evaluating the sharded query %q: %w", m.plan.outer, err)
	}
	defer query.Close()
	res := query.Exec(ctx)
	if res.Err != nil {
		if errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded) {
			return nil, res.Err
		}
		return jsonResponse(http.StatusUnprocessableEntity, &v1.Response{Status: "error", ErrorType: "execution", Error: res.Err.Error()})
	}
	w, in := res.Warnings.AsStrings(m.plan.outer, 0, 0)
	return jsonResponse(http.StatusOK, &v1.Response{
		Status:   "success",
		Data:     &v1.QueryData{ResultType: res.Value.Type(), Result: res.Value},
		Warnings: dedup(append(m.warnings, w...)),
		Infos:    dedup(append(m.infos, in...)),
	})
}

func jsonResponse(code int, r *v1.Response) (*Response, error) {
	b, err := v1.JSONCodec{}.Encode(r)
	if err != nil {
		return nil, err
	}
	return &Response{Status: code, Header: http.Header{"Content-Type": []string{"application/json"}}, Body: b}, nil
}

func dedup(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// embeddedSeries is one series of an embedded query's partial results.
type embeddedSeries struct {
	lset labels.Labels
	ts   []int64
	fs   []float64
}

// decodeShard reads one downstream answer (a matrix or a vector) into
// series; with shard >= 0 the shard label is added to each.
func decodeShard(body []byte, shard int) ([]embeddedSeries, []string, []string, error) {
	var r struct {
		Data struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
		Infos    []string `json:"infos"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding a shard's answer: %w", err)
	}
	type point [2]json.RawMessage
	var rows []struct {
		Metric     map[string]string `json:"metric"`
		Values     []point           `json:"values"`
		Value      *point            `json:"value"`
		Histograms json.RawMessage   `json:"histograms"`
		Histogram  json.RawMessage   `json:"histogram"`
	}
	switch r.Data.ResultType {
	case "matrix", "vector":
		if err := json.Unmarshal(r.Data.Result, &rows); err != nil {
			return nil, nil, nil, fmt.Errorf("decoding a shard's %s: %w", r.Data.ResultType, err)
		}
	default:
		return nil, nil, nil, fmt.Errorf("a shard answered a %q, not a vector or matrix", r.Data.ResultType)
	}
	out := make([]embeddedSeries, 0, len(rows))
	for _, row := range rows {
		if len(row.Histograms) > 0 || len(row.Histogram) > 0 {
			return nil, nil, nil, errNotShardable
		}
		b := labels.NewBuilder(labels.FromMap(row.Metric))
		if shard >= 0 {
			b.Set(queryshard.Label, strconv.Itoa(shard))
		}
		s := embeddedSeries{lset: b.Labels()}
		if row.Value != nil {
			row.Values = append(row.Values, *row.Value)
		}
		for _, p := range row.Values {
			t, err := parseTime(string(p[0]))
			if err != nil {
				return nil, nil, nil, fmt.Errorf("a shard's sample time: %w", err)
			}
			var v string
			if err := json.Unmarshal(p[1], &v); err != nil {
				return nil, nil, nil, fmt.Errorf("a shard's sample value: %w", err)
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("a shard's sample value: %w", err)
			}
			s.ts, s.fs = append(s.ts, t), append(s.fs, f)
		}
		out = append(out, s)
	}
	return out, r.Warnings, r.Infos, nil
}

// embeddedQueryable serves the partial results to the frontend's engine.
// Each series has a sample at every step of the query: a step where the
// partial result has none holds a stale marker, so the engine's lookback
// does not carry the previous step's value over.
type embeddedQueryable struct {
	results [][]embeddedSeries // by embedded query, sorted by labels
}

func newEmbeddedQueryable(results [][]embeddedSeries, start, end, step int64) (*embeddedQueryable, error) {
	for k, rs := range results {
		sort.Slice(rs, func(i, j int) bool { return labels.Compare(rs[i].lset, rs[j].lset) < 0 })
		for i := range rs {
			if i > 0 && labels.Equal(rs[i].lset, rs[i-1].lset) {
				return nil, errNotShardable
			}
			rs[i] = fillSteps(rs[i], start, end, step)
		}
		results[k] = rs
	}
	return &embeddedQueryable{results: results}, nil
}

func fillSteps(s embeddedSeries, start, end, step int64) embeddedSeries {
	if step <= 0 {
		return s
	}
	n := int((end-start)/step) + 1
	out := embeddedSeries{lset: s.lset, ts: make([]int64, 0, n), fs: make([]float64, 0, n)}
	j := 0
	for t := start; t <= end; t += step {
		for j < len(s.ts) && s.ts[j] < t {
			j++
		}
		v := math.Float64frombits(value.StaleNaN)
		if j < len(s.ts) && s.ts[j] == t {
			v = s.fs[j]
		}
		out.ts, out.fs = append(out.ts, t), append(out.fs, v)
	}
	return out
}

func (q *embeddedQueryable) Querier(_, _ int64) (storage.Querier, error) { return q, nil }

func (q *embeddedQueryable) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	for _, m := range ms {
		if m.Name != embeddedLabel {
			continue
		}
		k, err := strconv.Atoi(m.Value)
		if err != nil || k < 0 || k >= len(q.results) {
			return storage.ErrSeriesSet(fmt.Errorf("no embedded query %q", m.Value))
		}
		return &embeddedSet{series: q.results[k], i: -1}
	}
	return storage.EmptySeriesSet()
}

func (q *embeddedQueryable) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *embeddedQueryable) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *embeddedQueryable) Close() error { return nil }

type embeddedSet struct {
	series []embeddedSeries
	i      int
}

func (s *embeddedSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *embeddedSet) At() storage.Series                { return embeddedSeriesAt(s.series[s.i]) }
func (s *embeddedSet) Err() error                        { return nil }
func (s *embeddedSet) Warnings() annotations.Annotations { return nil }

func embeddedSeriesAt(e embeddedSeries) storage.Series {
	samples := make([]chunks.Sample, len(e.ts))
	for i := range e.ts {
		samples[i] = floatSample{e.ts[i], e.fs[i]}
	}
	return storage.NewListSeries(e.lset, samples)
}

type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }
