package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/canopy-observability/canopy/pkg/util/queryshard"
)

// The partial results of sharded PromQL queries: decoded from the shards'
// answers and served to the frontend's engine.

// errNotShardable makes a part run unsharded after all: a partial result
// the frontend cannot evaluate exactly (native histograms, whose JSON form
// does not carry their schema, or two series with one label set).
var errNotShardable = errors.New("partial results cannot be merged")

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
