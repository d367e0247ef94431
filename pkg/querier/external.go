package querier

import (
	"context"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// ExternalLabelsQueryable gives every series of q a cluster's external
// labels (-cluster.external-labels): the labels a federator tells this
// cluster's data apart by, which its series do not store. Selectors
// match them as if stored; a label a series has of its own keeps its
// value.
type ExternalLabelsQueryable struct {
	q   storage.Queryable
	ext labels.Labels
}

// NewExternalLabelsQueryable returns q with ext on every series; with ext
// empty, q itself.
func NewExternalLabelsQueryable(q storage.Queryable, ext labels.Labels) storage.Queryable {
	if ext.IsEmpty() {
		return q
	}
	return &ExternalLabelsQueryable{q: q, ext: ext}
}

func (e *ExternalLabelsQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := e.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &externalQuerier{q: q, ext: e.ext}, nil
}

type externalQuerier struct {
	q   storage.Querier
	ext labels.Labels
}

// split takes the matchers on external labels out of ms: ok is false when
// one of them fails the cluster's value (nothing matches).
func (e *externalQuerier) split(ms []*labels.Matcher) (rest []*labels.Matcher, ok bool) {
	for _, m := range ms {
		if v := e.ext.Get(m.Name); v != "" {
			if !m.Matches(v) {
				return nil, false
			}
			continue
		}
		rest = append(rest, m)
	}
	if !slices.ContainsFunc(rest, func(m *labels.Matcher) bool { return !m.Matches("") }) {
		rest = append(rest, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	}
	return rest, true
}

func (e *externalQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	rest, ok := e.split(ms)
	if !ok {
		return storage.EmptySeriesSet()
	}
	set := &externalSet{SeriesSet: e.q.Select(ctx, sorted, hints, rest...), ext: e.ext}
	if !sorted {
		return set
	}
	// Adding labels can change the order of two series: sort again.
	var series []storage.Series
	for set.Next() {
		series = append(series, set.At())
	}
	if err := set.Err(); err != nil {
		return storage.ErrSeriesSet(err)
	}
	slices.SortFunc(series, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &sliceSet{series: series, i: -1, annots: set.Warnings()}
}

// sliceSet is a series set held in memory.
type sliceSet struct {
	series []storage.Series
	i      int
	annots annotations.Annotations
}

func (s *sliceSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *sliceSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSet) Err() error                        { return nil }
func (s *sliceSet) Warnings() annotations.Annotations { return s.annots }

func (e *externalQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	rest, ok := e.split(ms)
	if !ok {
		return nil, nil, nil
	}
	if v := e.ext.Get(name); v != "" {
		return []string{v}, nil, nil
	}
	return e.q.LabelValues(ctx, name, hints, rest...)
}

func (e *externalQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	rest, ok := e.split(ms)
	if !ok {
		return nil, nil, nil
	}
	names, annots, err := e.q.LabelNames(ctx, hints, rest...)
	if err != nil {
		return nil, annots, err
	}
	e.ext.Range(func(l labels.Label) {
		if !slices.Contains(names, l.Name) {
			names = append(names, l.Name)
		}
	})
	slices.Sort(names)
	return names, annots, nil
}

func (e *externalQuerier) Close() error { return e.q.Close() }

// externalSet adds the external labels to each series.
type externalSet struct {
	storage.SeriesSet
	ext labels.Labels
}

func (s *externalSet) At() storage.Series {
	series := s.SeriesSet.At()
	b := labels.NewBuilder(series.Labels())
	s.ext.Range(func(l labels.Label) {
		if series.Labels().Get(l.Name) == "" {
			b.Set(l.Name, l.Value)
		}
	})
	return &labeledSeries{Series: series, lset: b.Labels()}
}

type labeledSeries struct {
	storage.Series
	lset labels.Labels
}

func (s *labeledSeries) Labels() labels.Labels { return s.lset }
