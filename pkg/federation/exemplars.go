package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
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
	var wg sync.WaitGroup
	for i, c := range asked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := map[string][]string{"query": {queries[i]}, "start": {formatTime(time.UnixMilli(start))}, "end": {formatTime(time.UnixMilli(end))}}
			t0 := time.Now()
			resp, n, err := c.call(q.ctx, q.ev.tenant, "/api/v1/query_exemplars", form)
			q.ev.record(c, n, time.Since(t0), err)
			var data []apiExemplars
			if err == nil {
				if err = json.Unmarshal(resp.Data, &data); err != nil {
					err = &childError{c.cfg.Name, fmt.Errorf("decoding the answer: %w", err)}
				}
			}
			answers[i] = answer{c, data, err}
		}()
	}
	wg.Wait()
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
	if len(failed) > 0 && !q.ev.partial {
		return nil, errors.Join(failed...)
	}
	out := make([]exemplar.QueryResult, 0, len(byKey))
	for _, r := range byKey {
		slices.SortFunc(r.Exemplars, func(a, b exemplar.Exemplar) int { return int(a.Ts - b.Ts) })
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return out, nil
}
