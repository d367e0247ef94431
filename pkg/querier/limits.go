package querier

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// LimitedQueryable applies the tenant's read limits to a queryable: data
// older than max_query_lookback is not read, and a query reading more than
// max_fetched_series_per_query series or max_fetched_samples_per_query
// samples fails with an error naming the limit.
type LimitedQueryable struct {
	q      storage.Queryable
	limits validation.TenantLimits
	now    func() time.Time
}

// NewLimitedQueryable wraps q.
func NewLimitedQueryable(q storage.Queryable, limits validation.TenantLimits) *LimitedQueryable {
	return &LimitedQueryable{q: q, limits: limits, now: time.Now}
}

// Querier implements storage.Queryable. Limits are per querier, which the
// PromQL engine creates once per query.
func (l *LimitedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := l.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &limitedQuerier{Querier: q, l: l, mint: mint, maxt: maxt}, nil
}

type limitedQuerier struct {
	storage.Querier
	l          *LimitedQueryable
	mint, maxt int64

	// series counts every series read; samples only under a sample limit
	// (countsSamples), as counting them costs a wrapped iterator.
	series, samples atomic.Int64
	countsSamples   atomic.Bool
}

// ErrLimit is the type of the errors of exceeded query limits.
type ErrLimit struct{ msg string }

func (e ErrLimit) Error() string { return e.msg }

func (q *limitedQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	id, err := tenant.ID(ctx)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	lim := q.l.limits.ByTenant(id)
	if lb := time.Duration(lim.MaxQueryLookback); lb > 0 {
		floor := q.l.now().Add(-lb).UnixMilli()
		start, end := q.mint, q.maxt
		if hints != nil {
			start, end = max(start, hints.Start), min(end, hints.End)
		}
		if end < floor {
			return storage.EmptySeriesSet()
		}
		if start < floor {
			h := storage.SelectHints{}
			if hints != nil {
				h = *hints
			}
			h.Start, h.End = floor, end
			hints = &h
		}
	}
	set := q.Querier.Select(ctx, sorted, hints, ms...)
	f := fetchedFrom(ctx)
	if lim.MaxFetchedSeriesPerQuery <= 0 && lim.MaxFetchedSamplesPerQuery <= 0 && f == nil {
		return set
	}
	if f != nil {
		f.add(q)
	}
	if lim.MaxFetchedSamplesPerQuery > 0 {
		q.countsSamples.Store(true)
	}
	return &limitedSet{SeriesSet: set, q: q, maxSeries: int64(lim.MaxFetchedSeriesPerQuery), maxSamples: int64(lim.MaxFetchedSamplesPerQuery)}
}

type limitedSet struct {
	storage.SeriesSet
	q                     *limitedQuerier
	maxSeries, maxSamples int64
	err                   error
}

func (s *limitedSet) Next() bool {
	if s.err != nil || !s.SeriesSet.Next() {
		return false
	}
	if n := s.q.series.Add(1); s.maxSeries > 0 && n > s.maxSeries {
		s.err = ErrLimit{fmt.Sprintf("the query read more than %d series, the tenant's limit max_fetched_series_per_query (-querier.max-fetched-series-per-query): narrow its selectors or time range", s.maxSeries)}
		return false
	}
	return true
}

func (s *limitedSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.SeriesSet.Err()
}

func (s *limitedSet) At() storage.Series {
	series := s.SeriesSet.At()
	if s.maxSamples <= 0 {
		return series
	}
	return &limitedSeries{Series: series, s: s}
}

type limitedSeries struct {
	storage.Series
	s *limitedSet
}

func (ls *limitedSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if li, ok := it.(*limitedIterator); ok {
		li.Iterator = ls.Series.Iterator(li.Iterator)
		li.err, li.started = nil, false
		return li
	}
	return &limitedIterator{Iterator: ls.Series.Iterator(it), s: ls.s}
}

// limitedIterator counts each sample it lands on once (a Seek that stays on
// the current sample does not count again).
type limitedIterator struct {
	chunkenc.Iterator
	s       *limitedSet
	err     error
	started bool
	last    int64
}

func (it *limitedIterator) landed(t chunkenc.ValueType) chunkenc.ValueType {
	if t == chunkenc.ValNone {
		return t
	}
	ts := it.Iterator.AtT()
	if it.started && ts == it.last {
		return t
	}
	it.started, it.last = true, ts
	if it.s.q.samples.Add(1) > it.s.maxSamples {
		it.err = ErrLimit{fmt.Sprintf("the query read more than %d samples, the tenant's limit max_fetched_samples_per_query (-querier.max-fetched-samples-per-query): narrow its selectors or time range", it.s.maxSamples)}
		return chunkenc.ValNone
	}
	return t
}

func (it *limitedIterator) Next() chunkenc.ValueType {
	if it.err != nil {
		return chunkenc.ValNone
	}
	return it.landed(it.Iterator.Next())
}

func (it *limitedIterator) Seek(ts int64) chunkenc.ValueType {
	if it.err != nil {
		return chunkenc.ValNone
	}
	return it.landed(it.Iterator.Seek(ts))
}

func (it *limitedIterator) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.Iterator.Err()
}
