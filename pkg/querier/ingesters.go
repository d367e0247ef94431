package querier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/grafana/dskit/ring"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
)

// ClientPool returns the client of an ingester address.
type ClientPool interface {
	Client(addr string) (*client.Client, error)
}

// IngesterQueryable reads from every ingester of the ring, tolerating as many
// unreachable ingesters as the replication factor allows, and merges and
// deduplicates the replicas' series. Safe for concurrent use.
type IngesterQueryable struct {
	ring          ring.ReadRing
	pool          ClientPool
	maxFrameBytes uint64
}

// NewIngesterQueryable returns a queryable over the ingesters of r.
func NewIngesterQueryable(r ring.ReadRing, pool ClientPool, maxFrameBytes uint64) *IngesterQueryable {
	return &IngesterQueryable{ring: r, pool: pool, maxFrameBytes: maxFrameBytes}
}

// Querier implements storage.Queryable.
func (q *IngesterQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &ingesterQuerier{q: q, mint: mint, maxt: maxt}, nil
}

// ExemplarQuerier implements storage.ExemplarQueryable.
func (q *IngesterQueryable) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	return &exemplarQuerier{ctx: ctx, q: q}, nil
}

// forEach calls f for every ingester of the read replication set in parallel
// and returns the successful results. Up to MaxErrors ingesters may fail.
func forEach[T any](ctx context.Context, q *IngesterQueryable, f func(context.Context, *client.Client) (T, error)) ([]T, error) {
	rs, err := q.ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return nil, promql.ErrStorage{Err: fmt.Errorf("finding ingesters to query: %w", err)}
	}
	type result struct {
		v   T
		err error
	}
	results := make([]result, len(rs.Instances))
	var wg sync.WaitGroup
	for i, inst := range rs.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := q.pool.Client(inst.Addr)
			if err != nil {
				results[i].err = err
				return
			}
			v, err := f(ctx, c)
			if err != nil {
				err = fmt.Errorf("ingester %s (%s): %w", inst.Id, inst.Addr, err)
			}
			results[i] = result{v, err}
		}()
	}
	wg.Wait()
	var (
		out  []T
		errs []error
	)
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		out = append(out, r.v)
	}
	if len(errs) > rs.MaxErrors {
		// A server-side failure (the API answers 500), not a bad query.
		return nil, promql.ErrStorage{Err: fmt.Errorf("too many ingesters failed (%d, at most %d may): %w", len(errs), rs.MaxErrors, errors.Join(errs...))}
	}
	return out, nil
}

type ingesterQuerier struct {
	q          *IngesterQueryable
	mint, maxt int64
	streams    closers
}

// closers are the streams a querier opened, closed with it.
type closers struct {
	mu   sync.Mutex
	list []io.Closer
}

func (c *closers) add(x io.Closer) {
	c.mu.Lock()
	c.list = append(c.list, x)
	c.mu.Unlock()
}

// Close implements storage.Querier's Close for the querier holding c.
func (c *closers) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.list {
		_ = x.Close()
	}
	c.list = nil
	return nil
}

func (iq *ingesterQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := iq.mint, iq.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	query, err := remote.ToQuery(mint, maxt, matchers, hints)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	streams, err := forEach(ctx, iq.q, func(ctx context.Context, c *client.Client) (io.ReadCloser, error) {
		return c.QueryStream(ctx, query)
	})
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	sets := make([]storage.SeriesSet, 0, len(streams))
	for _, s := range streams {
		iq.streams.add(s)
		reader := remote.NewChunkedReader(s, iq.q.maxFrameBytes, nil)
		sets = append(sets, remote.NewChunkedSeriesSet(reader, s, mint, maxt, func(error) {}))
	}
	if len(sets) == 1 {
		return sets[0]
	}
	// Replicas hold the same samples: the chained merge drops duplicates.
	return storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
}

func (iq *ingesterQuerier) labelsRequest(name string, hints *storage.LabelHints, matchers []*labels.Matcher) *client.LabelsRequest {
	req := &client.LabelsRequest{Start: iq.mint, End: iq.maxt, Name: name, Matchers: client.FromMatchers(matchers)}
	if hints != nil {
		req.Limit = hints.Limit
	}
	return req
}

func (iq *ingesterQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	req := iq.labelsRequest(name, hints, matchers)
	res, err := forEach(ctx, iq.q, func(ctx context.Context, c *client.Client) (*client.LabelsResponse, error) {
		return c.LabelValues(ctx, req)
	})
	return mergeLabels(res, req.Limit, err)
}

func (iq *ingesterQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	req := iq.labelsRequest("", hints, matchers)
	res, err := forEach(ctx, iq.q, func(ctx context.Context, c *client.Client) (*client.LabelsResponse, error) {
		return c.LabelNames(ctx, req)
	})
	return mergeLabels(res, req.Limit, err)
}

func mergeLabels(res []*client.LabelsResponse, limit int, err error) ([]string, annotations.Annotations, error) {
	if err != nil {
		return nil, nil, err
	}
	var annots annotations.Annotations
	seen := map[string]struct{}{}
	var out []string
	for _, r := range res {
		for _, v := range r.Values {
			if _, ok := seen[v]; !ok {
				seen[v] = struct{}{}
				out = append(out, v)
			}
		}
		for _, w := range r.Warnings {
			annots.Add(errors.New(w))
		}
	}
	sort.Strings(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, annots, nil
}

func (iq *ingesterQuerier) Close() error { return iq.streams.Close() }

type exemplarQuerier struct {
	ctx context.Context
	q   *IngesterQueryable
}

func (e *exemplarQuerier) Select(start, end int64, matchers ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	req := &client.ExemplarsRequest{Start: start, End: end}
	for _, ms := range matchers {
		req.Matchers = append(req.Matchers, client.FromMatchers(ms))
	}
	res, err := forEach(e.ctx, e.q, func(ctx context.Context, c *client.Client) ([]exemplar.QueryResult, error) {
		r, err := c.Exemplars(ctx, req)
		if err != nil {
			return nil, err
		}
		return r.ToExemplarResults()
	})
	if err != nil {
		return nil, err
	}
	return mergeExemplars(res), nil
}

// mergeExemplars combines replicas' results: one entry per series, exemplars
// deduplicated and sorted by time.
func mergeExemplars(res [][]exemplar.QueryResult) []exemplar.QueryResult {
	bySeries := map[string]*exemplar.QueryResult{}
	var order []string
	for _, rs := range res {
		for _, r := range rs {
			key := r.SeriesLabels.String()
			cur, ok := bySeries[key]
			if !ok {
				cp := exemplar.QueryResult{SeriesLabels: r.SeriesLabels}
				cur = &cp
				bySeries[key] = cur
				order = append(order, key)
			}
			cur.Exemplars = append(cur.Exemplars, r.Exemplars...)
		}
	}
	sort.Strings(order)
	out := make([]exemplar.QueryResult, 0, len(order))
	for _, k := range order {
		r := bySeries[k]
		sort.Slice(r.Exemplars, func(i, j int) bool { return r.Exemplars[i].Ts < r.Exemplars[j].Ts })
		dedup := r.Exemplars[:0]
		for i, e := range r.Exemplars {
			if i > 0 && e.Ts == dedup[len(dedup)-1].Ts && e.Value == dedup[len(dedup)-1].Value && labels.Equal(e.Labels, dedup[len(dedup)-1].Labels) {
				continue
			}
			dedup = append(dedup, e)
		}
		r.Exemplars = dedup
		out = append(out, *r)
	}
	return out
}

// Metadata returns the tenant's metric metadata merged over ingesters.
func (q *IngesterQueryable) Metadata(ctx context.Context, req *client.MetadataRequest) (map[string][]metadata.Metadata, error) {
	res, err := forEach(ctx, q, func(ctx context.Context, c *client.Client) (*client.MetadataResponse, error) {
		return c.Metadata(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]metadata.Metadata{}
	for _, r := range res {
		for name, list := range r.Metadata {
		next:
			for _, m := range list {
				for _, have := range out[name] {
					if have == m {
						continue next
					}
				}
				out[name] = append(out[name], m)
			}
		}
	}
	return out, nil
}
