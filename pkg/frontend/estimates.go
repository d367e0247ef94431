package frontend

import (
	"strconv"
	"sync"
)

// seriesEstimates remembers how many series recent sharded queries read,
// by tenant, query text and step, so the next run of the same query (a
// rule evaluated every minute, a dashboard refreshed) gets as many shards
// as its series need: a shard costs a querier call, an engine and a walk
// of the index whatever it reads, so a query over a few series runs
// unsharded. Only answers that report their series (the queriers'
// Canopy-Fetched-Series header) are remembered. Safe for concurrent use.
type seriesEstimates struct {
	mu     sync.Mutex
	series map[string]int64
	max    int
}

// maxEstimates bounds the queries remembered; beyond it an arbitrary one
// is forgotten for each new one.
const maxEstimates = 50_000

func newSeriesEstimates(max int) *seriesEstimates {
	return &seriesEstimates{series: map[string]int64{}, max: max}
}

func estimateKey(id string, req *Request) string {
	return id + "\x00" + strconv.FormatInt(req.Step, 10) + "\x00" + req.Query
}

// get returns the series the query read last, and whether it is known.
func (e *seriesEstimates) get(key string) (int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.series[key]
	return n, ok
}

// set remembers that one part of the query read n series.
func (e *seriesEstimates) set(key string, n int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.series[key]; !ok && len(e.series) >= e.max {
		for k := range e.series {
			delete(e.series, k)
			break
		}
	}
	e.series[key] = n
}

// shardsFor sizes the shards of one query of tenant id: every shard the
// limits allow, fewer when its last run read few series for the target per
// shard, none (0) when fewer than two are worth it. req.seriesKey names
// the query (empty: every shard).
func (s *stages) shardsFor(id string, req *Request) int {
	n := s.shards(id, req.Sharding)
	target := int64(s.limits.ByTenant(id).QueryShardingTargetSeriesPerShard)
	if n == 0 || target <= 0 || req.seriesKey == "" {
		return n
	}
	last, ok := s.estimates.get(req.seriesKey)
	if !ok {
		return n
	}
	want := int((last + target - 1) / target)
	if want < 2 {
		s.shardingSkipped.Inc()
		return 0
	}
	return min(n, want)
}
