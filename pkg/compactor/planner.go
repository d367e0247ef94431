package compactor

import (
	"slices"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// job is a set of blocks of one tenant to compact into one.
type job struct {
	Blocks []layout.BlockRef
	// Kind is "vertical" (overlapping blocks, e.g. replicas of the same
	// data) or "level" (adjacent blocks into the next range).
	Kind string
}

// plan returns the compaction jobs for a tenant's blocks (already without
// blocks marked for deletion or no-compact). Overlapping blocks are merged
// first; blocks taking part in such a merge wait for the next pass before
// they are considered for the next range. ranges are in milliseconds,
// smallest first.
func plan(bs []layout.BlockRef, ranges []int64) []job {
	if len(bs) == 0 {
		return nil
	}
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b layout.BlockRef) int {
		if a.MinTime != b.MinTime {
			return cmpInt(a.MinTime, b.MinTime)
		}
		return a.ID.Compare(b.ID)
	})

	var jobs []job
	busy := map[int]bool{}
	// Overlaps: connected runs of blocks whose [min, max) ranges intersect.
	for i := 0; i < len(bs); {
		end, j := bs[i].MaxTime, i+1
		for j < len(bs) && bs[j].MinTime < end {
			end = max(end, bs[j].MaxTime)
			j++
		}
		if j-i > 1 {
			jobs = append(jobs, job{Blocks: slices.Clone(bs[i:j]), Kind: "vertical"})
			for k := i; k < j; k++ {
				busy[k] = true
			}
		}
		i = j
	}

	newest := int64(0)
	for _, b := range bs {
		newest = max(newest, b.MaxTime)
	}
	// Levels: for each range after the first, the blocks lying wholly in one
	// aligned window of that range, once the window has been passed by
	// newer data (so no more ingester blocks are expected inside it).
	for _, r := range ranges[1:] {
		groups := map[int64][]int{}
		var order []int64
		for k, b := range bs {
			if busy[k] || b.MaxTime-b.MinTime >= r {
				continue
			}
			w := floorDiv(b.MinTime, r) * r
			if b.MaxTime > w+r {
				continue // crosses the window's end
			}
			if _, ok := groups[w]; !ok {
				order = append(order, w)
			}
			groups[w] = append(groups[w], k)
		}
		for _, w := range order {
			g := groups[w]
			if len(g) < 2 || newest < w+r {
				continue
			}
			j := job{Kind: "level"}
			for _, k := range g {
				j.Blocks = append(j.Blocks, bs[k])
				busy[k] = true
			}
			jobs = append(jobs, j)
		}
	}
	return jobs
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
