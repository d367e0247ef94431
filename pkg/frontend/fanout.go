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
// codec plans sharding, as one call per shard and shard query.

// requestEncoder is the part of a Codec the fan-out uses.
type requestEncoder interface {
	EncodeRequest(req *Request) (path string, form url.Values)
}

// send queues req as one downstream call and waits for its answer.
func (s *stages) send(ctx context.Context, id string, enc requestEncoder, req *Request) (*Response, error) {
	path, form := enc.EncodeRequest(req)
	return s.run(ctx, id, path, form)
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
func (s *stages) runParts(ctx context.Context, id string, enc requestEncoder, req *Request, parts []part, bodies [][]byte, shards int) ([]*Response, []error) {
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
			responses[i], errs[i] = s.execute(ctx, id, enc, withRange(req, p), shards)
		}()
	}
	wg.Wait()
	return responses, errs
}

// execute runs one query (or part of a split one) on the downstream,
// sharded when shards > 0.
func (s *stages) execute(ctx context.Context, id string, enc requestEncoder, part *Request, shards int) (*Response, error) {
	if shards == 0 {
		return s.send(ctx, id, enc, part)
	}
	resp, err := s.runSharded(ctx, id, enc, part, shards)
	if errors.Is(err, errNotShardable) {
		s.shardFallbacks.Inc()
		return s.send(ctx, id, enc, part)
	}
	return resp, err
}

// runSharded runs every shard query of part on every shard, at once, and
// merges their answers. The first failed call, non-200 answer or undecodable
// answer, in order of query then shard, is the part's; the shards together
// are held to the per-query fetched limits.
func (s *stages) runSharded(ctx context.Context, id string, enc requestEncoder, part *Request, shards int) (*Response, error) {
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
				r, err := s.send(ctx, id, enc, sub)
				results[k][i] = result{r, err}
			}()
		}
	}
	wg.Wait()

	m := plan.Merger(part)
	var f fetched
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
			f.add(r.resp.Header)
		}
	}
	if resp, err := f.overLimit(s.limits.ByTenant(id), shards); resp != nil || err != nil {
		return resp, err
	}
	return m.Merge(ctx)
}
