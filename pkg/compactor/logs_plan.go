package compactor

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
)

// logsJob is a set of a tenant's log blocks to write as one.
type logsJob struct {
	blocks []logblock.Meta
	// kind is "merge" (the blocks of a merge window that is over) or
	// "rewrite" (one block holding entries to drop).
	kind string
}

// shippedAt is the time a block's data was shipped, by which blocks are
// grouped into merge windows: the time part of its ULID, which for a block
// the compactor wrote is the oldest of its sources' (so a merged block
// stays in the windows of its sources). Log and trace blocks alike.
func shippedAt(id ulid.ULID) int64 { return int64(id.Time()) }

// planLogs returns the jobs for a tenant's blocks (none marked for
// deletion or no-compact): the merges of mergeWindowGroups, then the
// blocks in rewrite that no merge takes, each rewritten on its own.
// windows are smallest first.
func planLogs(bs []logblock.Meta, windows []time.Duration, now time.Time, rewrite map[ulid.ULID]bool) []logsJob {
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b logblock.Meta) int { return a.ULID.Compare(b.ULID) })
	taken := map[ulid.ULID]bool{}
	var jobs []logsJob
	for _, g := range mergeWindowGroups(bs, func(m logblock.Meta) ulid.ULID { return m.ULID }, windows, now) {
		for _, m := range g {
			taken[m.ULID] = true
		}
		jobs = append(jobs, logsJob{blocks: g, kind: "merge"})
	}
	for _, m := range bs {
		if rewrite[m.ULID] && !taken[m.ULID] {
			jobs = append(jobs, logsJob{blocks: []logblock.Meta{m}, kind: "rewrite"})
		}
	}
	return jobs
}

// mergeWindowGroups returns the groups of blocks to merge, each in ULID
// order: for each merge window, largest first, the blocks shipped in a
// window that ended logsMergeGrace before now, when there are at least
// two; a block in a group leaves the smaller windows' plans. windows are
// smallest first; id is a block's ULID. Shared by log and trace blocks.
func mergeWindowGroups[B any](bs []B, id func(B) ulid.ULID, windows []time.Duration, now time.Time) [][]B {
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b B) int { return id(a).Compare(id(b)) })
	taken := map[ulid.ULID]bool{}
	var out [][]B
	nowMs := now.UnixMilli()
	for i := len(windows) - 1; i >= 0; i-- {
		w := windows[i].Milliseconds()
		groups := map[int64][]B{}
		var order []int64
		for _, m := range bs {
			if taken[id(m)] {
				continue
			}
			k := floorDiv(shippedAt(id(m)), w)
			if (k+1)*w+logsMergeGrace.Milliseconds() > nowMs {
				continue // the window is not over
			}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], m)
		}
		for _, k := range order {
			g := groups[k]
			if len(g) < 2 {
				continue
			}
			for _, m := range g {
				taken[id(m)] = true
			}
			out = append(out, g)
		}
	}
	return out
}

// blockExpiry says when a block's entries are past their streams'
// retention, Unix ns (math.MaxInt64: never).
type blockExpiry struct {
	// all is when every entry of the block is: it is then deleted whole.
	all int64
	// partial is when every entry of some stream is whose retention is
	// shorter than the block's longest: the block is then rewritten
	// without it. math.MaxInt64 when all streams are kept alike.
	partial int64
}

type cachedExpiry struct {
	rules string // the retention limits it was computed with
	x     blockExpiry
}

// expiry returns when a block's entries expire. With stream rules, it
// reads the block's index, once for given rules.
func (c *Compactor) expiry(ctx context.Context, t *logsTenant, m logblock.Meta) (blockExpiry, error) {
	never := blockExpiry{all: math.MaxInt64, partial: math.MaxInt64}
	if !t.hasRules() {
		p := time.Duration(t.limits.LogsRetentionPeriod)
		if p <= 0 {
			return never, nil
		}
		return blockExpiry{all: addNs(m.MaxTime, p), partial: math.MaxInt64}, nil
	}
	key := fmt.Sprintf("%s/%v", time.Duration(t.limits.LogsRetentionPeriod), t.limits.LogsRetentionStream)
	c.expiryMu.Lock()
	ce, ok := c.expiries[m.ULID]
	c.expiryMu.Unlock()
	if ok && ce.rules == key {
		return ce.x, nil
	}
	b, err := logblock.OpenBlock(ctx, c.bkt, t.id, m)
	if err != nil {
		return never, err
	}
	defer b.Close() //nolint:errcheck // read-only
	it, err := b.Refs(ctx)
	if err != nil {
		return never, err
	}
	type stream struct {
		period time.Duration
		exp    int64
	}
	var (
		streams []stream
		longest time.Duration // the longest positive period
		forever bool          // some stream is kept forever
	)
	for it.Next() {
		p := t.limits.RetentionFor(it.Labels(), t.rules)
		refs := it.Chunks()
		exp := int64(math.MaxInt64)
		if p > 0 {
			exp = addNs(refs[len(refs)-1].MaxTime, p)
			longest = max(longest, p)
		} else {
			forever = true
		}
		streams = append(streams, stream{p, exp})
	}
	if err := it.Err(); err != nil {
		return never, err
	}
	x := blockExpiry{all: math.MinInt64, partial: math.MaxInt64}
	for _, s := range streams {
		x.all = max(x.all, s.exp)
		if s.period > 0 && (forever || s.period < longest) {
			x.partial = min(x.partial, s.exp)
		}
	}
	if len(streams) == 0 {
		x.all = math.MaxInt64
	}
	c.expiryMu.Lock()
	c.expiries[m.ULID] = cachedExpiry{rules: key, x: x}
	c.expiryMu.Unlock()
	return x, nil
}

// forgetExpiry drops what expiry remembers of a deleted block.
func (c *Compactor) forgetExpiry(id ulid.ULID) {
	c.expiryMu.Lock()
	delete(c.expiries, id)
	c.expiryMu.Unlock()
}

// addNs returns t + d, Unix ns, saturating.
func addNs(t int64, d time.Duration) int64 {
	if t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return t + int64(d)
}

// logsCompact plans and runs the tenant's merges and rewrites, then marks
// the ripe deletion requests processed when every block they concern has
// been rewritten. It returns the blocks written.
func (c *Compactor) logsCompact(ctx context.Context, t *logsTenant, live []logblock.Meta, noCompact map[ulid.ULID]layout.Mark) (int, error) {
	var (
		cands   []logblock.Meta
		rewrite = map[ulid.ULID]bool{}
		blocked bool // a ripe request concerns a block that cannot be rewritten
	)
	for _, m := range live {
		hit, err := c.deleteHits(ctx, t, m)
		if err != nil {
			return 0, err
		}
		if _, ok := noCompact[m.ULID]; ok {
			if hit {
				blocked = true
				level.Error(c.logger).Log("msg", "a log deletion request cannot be applied to a block marked no-compact; the request stays pending until the block is deleted", "tenant", t.id, "block", m.ULID, "reason", noCompact[m.ULID].Reason)
			}
			continue
		}
		cands = append(cands, m)
		x, err := c.expiry(ctx, t, m)
		if err != nil {
			return 0, err
		}
		if hit || t.now.UnixNano() > x.partial {
			rewrite[m.ULID] = true
		}
	}
	written := 0
	for _, j := range planLogs(cands, c.cfg.LogsMergeWindows, t.now, rewrite) {
		n, err := c.runLogsJob(ctx, t, j)
		if err == errCorruptBlock {
			for _, m := range j.blocks {
				if rewrite[m.ULID] {
					blocked = true
				}
			}
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	if blocked {
		return written, nil
	}
	for _, r := range t.ripe {
		if err := c.deletes.MarkProcessed(ctx, t.id, r, t.now); err != nil {
			return written, err
		}
		c.metrics.logDeletesProcessed.Inc()
		level.Info(c.logger).Log("msg", "log deletion request processed", "tenant", t.id, "request_id", r.ID, "query", r.Query)
	}
	return written, nil
}

// deleteHits says whether block m holds streams a ripe deletion request
// selects, with chunks in its range (from the block's index).
func (c *Compactor) deleteHits(ctx context.Context, t *logsTenant, m logblock.Meta) (bool, error) {
	var fs []int
	for i, f := range t.filters {
		if f.Overlaps(m.MinTime, m.MaxTime) {
			fs = append(fs, i)
		}
	}
	if len(fs) == 0 {
		return false, nil
	}
	b, err := logblock.OpenBlock(ctx, c.bkt, t.id, m)
	if err != nil {
		return false, err
	}
	defer b.Close() //nolint:errcheck // read-only
	for _, i := range fs {
		start, end := t.filters[i].Range()
		ss, err := b.Series(ctx, t.filters[i].Matchers(), start, end+1)
		if err != nil {
			return false, err
		}
		if len(ss) > 0 {
			return true, nil
		}
	}
	return false, nil
}
