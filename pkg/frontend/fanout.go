package frontend

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"

	"github.com/canopy-observability/canopy/pkg/util/queryshard"
)

// Fan-out: every part of a query that the results cache did not answer is
// run on the downstream through the fair queue, as one call or, when its
// codec plans sharding, as one call per shard and shard query. The calls of
// one query fail fast together: the first that fails, answers other than
// 200 or takes the query over its Budget is the query's answer, and the
// others are canceled.

// requestEncoder is the part of a Codec the fan-out uses.
type requestEncoder interface {
	EncodeRequest(req *Request) (path string, form url.Values)
	Prefix() string
	EncodeError(code int, typ, msg string) *Response
}

// queryCalls are the downstream calls of one query. It is safe for
// concurrent use.
type queryCalls struct {
	ctx    context.Context // canceled once a call failed
	cancel context.CancelFunc
	budget Budget

	mu     sync.Mutex
	failed bool
	resp   *Response // the first failure: a non-200 answer,
	err    error     // or an error
}

func newQueryCalls(ctx context.Context, b Budget) *queryCalls {
	ctx, cancel := context.WithCancel(ctx)
	return &queryCalls{ctx: ctx, cancel: cancel, budget: b}
}

// fail records the query's first failure and cancels its other calls.
func (q *queryCalls) fail(resp *Response, err error) {
	q.mu.Lock()
	if !q.failed {
		q.failed, q.resp, q.err = true, resp, err
	}
	q.mu.Unlock()
	q.cancel()
}

// failure returns the query's first failure, if one was recorded.
func (q *queryCalls) failure() (resp *Response, err error, failed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.resp, q.err, q.failed
}

// send queues req as one downstream call and waits for its answer.
func (s *stages) send(q *queryCalls, id string, enc requestEncoder, req *Request) (*Response, error) {
	path, form := enc.EncodeRequest(req)
	resp, err := s.run(q.ctx, id, enc.Prefix()+path, form, req.Header)
	switch {
	case err != nil:
		q.fail(nil, err)
	case resp.Status != http.StatusOK:
		q.fail(resp, nil)
	case q.budget != nil:
		if err := q.budget.Spend(resp); err != nil {
			q.fail(nil, err)
			return nil, err
		}
	}
	return resp, err
}

// shards returns how many shards each shard query of plan runs on for
// tenant id, or 0 when the query runs unsharded.
func (s *stages) shards(id string, plan ShardPlan) int {
	if plan == nil {
		return 0
	}
	n := s.limits.ByTenant(id).QueryShardingTotalShards
	n = min(n, s.maxShardedQueries/plan.Queries(), queryshard.MaxShards)
	if n < 2 {
		return 0
	}
	return n
}

// runParts runs the parts of req that have no body yet, at once, and
// returns their answers (or errors) by part.
func (s *stages) runParts(q *queryCalls, id string, enc requestEncoder, req *Request, parts []part, bodies [][]byte, shards int) ([]*Response, []error) {
	responses := make([]*Response, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		if bodies[i] != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			responses[i], errs[i] = s.execute(q, id, enc, withRange(req, p), shards)
			if errs[i] != nil {
				q.fail(nil, errs[i])
			} else if responses[i].Status != http.StatusOK {
				q.fail(responses[i], nil)
			}
		}()
	}
	wg.Wait()
	return responses, errs
}

// execute runs one query (or part of a split one) on the downstream,
// sharded when shards > 0.
func (s *stages) execute(q *queryCalls, id string, enc requestEncoder, part *Request, shards int) (*Response, error) {
	if shards == 0 {
		return s.sendCounted(q, id, enc, part)
	}
	resp, err := s.runSharded(q, id, enc, part, shards)
	if errors.Is(err, errNotShardable) {
		s.shardFallbacks.Inc()
		return s.sendCounted(q, id, enc, part)
	}
	return resp, err
}

// sendCounted is send, remembering the series a shardable part read.
func (s *stages) sendCounted(q *queryCalls, id string, enc requestEncoder, part *Request) (*Response, error) {
	resp, err := s.send(q, id, enc, part)
	if err == nil && resp.Status == http.StatusOK && part.seriesKey != "" {
		var f fetched
		if f.add(resp.Header) {
			s.estimates.set(part.seriesKey, f.series)
		}
	}
	return resp, err
}

// runSharded runs every shard query of part on every shard, at once, and
// merges their answers. A failed call, non-200 answer or undecodable
// answer is the part's; the shards together are held to the per-query
// fetched limits.
func (s *stages) runSharded(q *queryCalls, id string, enc requestEncoder, part *Request, shards int) (*Response, error) {
	s.shardedParts.Inc()
	plan := part.Sharding
	type result struct {
		resp *Response
		err  error
	}
	results := make([][]result, plan.Queries())
	var wg sync.WaitGroup
	for k := range results {
		results[k] = make([]result, shards)
		for i := range shards {
			sub := plan.Shard(part, k, i, shards)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.send(q, id, enc, sub)
				results[k][i] = result{r, err}
			}()
		}
	}
	wg.Wait()

	m := plan.Merger(part)
	var f fetched
	reported := true
	for k, rs := range results {
		for i, r := range rs {
			if r.err != nil {
				return nil, r.err
			}
			if r.resp.Status != http.StatusOK {
				return r.resp, nil
			}
			if err := m.Add(k, i, r.resp.Body); err != nil {
				return nil, err
			}
			reported = f.add(r.resp.Header) && reported
		}
	}
	if resp := f.overLimit(enc, s.limits.ByTenant(id), shards); resp != nil {
		return resp, nil
	}
	if reported && part.seriesKey != "" {
		s.estimates.set(part.seriesKey, f.series)
	}
	return m.Merge(q.ctx)
}
