package lokiapi

import (
	"context"
	"net/http"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/util/queryshard"
)

// ShardParam is the parameter of query and query_range that evaluates the
// query over one shard of the tenant's streams: "<i>_of_<n>" (i from 1, n
// at most queryshard.MaxShards, as queryshard.Format writes it) keeps the
// streams whose stable label hash (labels.StableHash, as Prometheus shards
// series) is i-1 modulo n. Every stream is in exactly one shard of n, so an
// associative aggregation of the shards' answers is the whole query's: the
// query-frontend shards metric queries with it.
const ShardParam = "shard"

// shard is one shard of a tenant's streams; the zero shard is all of them.
type shard struct{ index, count uint64 }

// parseShard reads ShardParam.
func parseShard(r *http.Request) (shard, error) {
	v := r.Form.Get(ShardParam)
	if v == "" {
		return shard{}, nil
	}
	i, n, err := queryshard.Parse(v)
	if err != nil {
		return shard{}, badf("invalid parameter %q: %q is not <shard>_of_<count> with 1 <= shard <= count <= %d", ShardParam, v, queryshard.MaxShards)
	}
	return shard{index: i, count: n}, nil
}

// source returns src restricted to the shard's streams.
func (s shard) source(src logql.Source) logql.Source {
	if s.count <= 1 {
		return src
	}
	return shardSource{src: src, shard: s}
}

// shardSource keeps the streams of one shard. It tells the Backend which
// (SelectParams.ShardIndex, ShardCount), so that Canopy's reads only the
// shard's streams, and filters what comes back.
type shardSource struct {
	src   logql.Source
	shard shard
}

func (s shardSource) Select(ctx context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	// The Backend may skip the other shards' streams before reading them;
	// the iterator keeps only the shard's either way.
	p.ShardIndex, p.ShardCount = s.shard.index, s.shard.count
	it, err := s.src.Select(ctx, p)
	if err != nil {
		return nil, err
	}
	return &shardIterator{StreamIterator: it, shard: s.shard}, nil
}

// shardIterator skips the batches of streams of other shards.
type shardIterator struct {
	logql.StreamIterator
	shard shard
	// last and in cache the decision for the last stream seen: a stream
	// often comes in several batches in a row.
	last labels.Labels
	in   bool
}

func (it *shardIterator) Skipped() (lines, bytes int64) { return logql.Skipped(it.StreamIterator) }

func (it *shardIterator) Next() bool {
	for it.StreamIterator.Next() {
		ls := it.Labels()
		if it.last.IsEmpty() || !labels.Equal(ls, it.last) {
			it.last, it.in = ls, labels.StableHash(ls)%it.shard.count == it.shard.index
		}
		if it.in {
			return true
		}
	}
	return false
}
