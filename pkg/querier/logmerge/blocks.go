package logmerge

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
)

// blockReadConcurrency is how many blocks SelectBlocks opens and moves to
// their first stream at once: a needle search tests the block's chunk
// filters there, a few reads each, which wait on the bucket more than on
// the CPU.
const blockReadConcurrency = 8

// SelectBlocks opens the streams of each block matching p and moves each
// to its first stream. primed are the sources with a stream, for New; all
// are every source, for Iterator.Count.
func SelectBlocks(ctx context.Context, blocks []*logblock.Block, p logql.SelectParams) (primed []Source, all []*BlockSource, err error) {
	all = make([]*BlockSource, len(blocks))
	ok := make([]bool, len(blocks))
	var g errgroup.Group
	g.SetLimit(blockReadConcurrency)
	for i, b := range blocks {
		g.Go(func() error {
			it, err := b.Streams(ctx, p.Matchers, p.Start, p.End, p.Needles, logblock.Shard{Index: p.ShardIndex, Count: p.ShardCount})
			if err != nil {
				return fmt.Errorf("reading log block %s: %w", b.Meta.ULID, err)
			}
			src := NewBlockSource(it)
			ok[i] = src.Next()
			if err := src.Err(); err != nil {
				return fmt.Errorf("reading log block %s: %w", b.Meta.ULID, err)
			}
			all[i] = src
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for i, src := range all {
		if ok[i] {
			primed = append(primed, src)
		}
	}
	return primed, all, nil
}

// Counters returns srcs as skip counters, for Iterator.Count.
func Counters[S logql.SkipCounter](srcs []S) []logql.SkipCounter {
	out := make([]logql.SkipCounter, len(srcs))
	for i, s := range srcs {
		out[i] = s
	}
	return out
}
