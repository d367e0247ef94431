package federation

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// ExemplarQuerier implements storage.ExemplarQueryable: the exemplars
// of the children whose external labels the selectors can match, with
// those labels.
func (f *Federator) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	ev := f.newEvaluation(ctx, &plan{}, time.Time{}, time.Time{}, 0, 0)
	if r := statsFrom(ctx); r != nil {
		r.add(ev)
	}
	return &exemplarQuerier{ctx: ctx, ev: ev}, nil
}

type exemplarQuerier struct {
	ctx context.Context
	ev  *evaluation
}

// apiExemplars is one series of /api/v1/query_exemplars.
type apiExemplars struct {
	SeriesLabels map[string]string `json:"seriesLabels"`
	Exemplars    []struct {
		Labels    map[string]string `json:"labels"`
		Value     string            `json:"value"`
		Timestamp float64           `json:"timestamp"`
	} `json:"exemplars"`
}

func (q *exemplarQuerier) Select(start, end int64, sets ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	type answer struct {
		c    *child
		data []apiExemplars
		err  error
	}
	var asked []*child
	var queries []string
	for _, c := range q.ev.children {
		var sels []string
		for _, ms := range sets {
			if s, ok := childQuery(&parser.VectorSelector{LabelMatchers: ms}, c); ok {
				sels = append(sels, s)
			}
		}
		if len(sels) > 0 {
			asked = append(asked, c)
			queries = append(queries, strings.Join(sels, " or "))
		}
	}
	answers := make([]answer, len(asked))
	eachChild(asked, func(i int, c *child) {
		form := url.Values{"query": {queries[i]}, "start": {formatTime(time.UnixMilli(start))}, "end": {formatTime(time.UnixMilli(end))}}
		data, err := fetchData[[]apiExemplars](q.ctx, q.ev, c, "/api/v1/query_exemplars", form)
		answers[i] = answer{c, data, err}
	})
	byKey := map[string]*exemplar.QueryResult{}
	var failed []error
	for _, a := range answers {
		if a.err != nil {
			failed = append(failed, a.err)
			continue
		}
		for _, s := range a.data {
			for k, v := range a.c.external {
				if _, ok := s.SeriesLabels[k]; !ok {
					s.SeriesLabels[k] = v
				}
			}
			ls := labels.FromMap(s.SeriesLabels)
			key := ls.String()
			res := byKey[key]
			if res == nil {
				res = &exemplar.QueryResult{SeriesLabels: ls}
				byKey[key] = res
			}
			for _, e := range s.Exemplars {
				v, err := strconv.ParseFloat(e.Value, 64)
				if err != nil {
					failed = append(failed, &childError{a.c.cfg.Name, fmt.Errorf("exemplar value %q: %w", e.Value, err)})
					continue
				}
				ex := exemplar.Exemplar{Labels: labels.FromMap(e.Labels), Value: v, Ts: int64(e.Timestamp*1000 + 0.5), HasTs: true}
				if !slices.ContainsFunc(res.Exemplars, ex.Equals) {
					res.Exemplars = append(res.Exemplars, ex) // HA replicas hold the same ones
				}
			}
		}
	}
	var annots annotations.Annotations
	if err := q.ev.settle(failed, &annots); err != nil {
		return nil, err
	}
	out := make([]exemplar.QueryResult, 0, len(byKey))
	for _, r := range byKey {
		slices.SortFunc(r.Exemplars, func(a, b exemplar.Exemplar) int { return int(a.Ts - b.Ts) })
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return out, nil
}
