package compactor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/concurrency"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// The logs side of a pass, for each tenant with logs this compactor owns
// (README.md, "Logs"):
//
//  1. blocks whose entries are all past their streams' retention are
//     marked for deletion, whole;
//  2. (compaction passes) blocks are merged and rewritten: the blocks
//     shipped in a merge window that is over become one, and blocks that
//     hold entries of a ripe deletion request or a stream past a shorter
//     retention than the block's other streams are rewritten without them;
//     the blocks replaced are marked for deletion;
//  3. ripe deletion requests are marked processed once every block they
//     concern is rewritten;
//  4. blocks marked for deletion longer than -compactor.deletion-delay and
//     abandoned partial uploads are deleted.

// logsMergeGrace is how long after a merge window ends its blocks are
// merged: blocks shipped at its very end have been uploaded by then. A
// block uploaded later still is merged with the window's block at the next
// pass.
const logsMergeGrace = 10 * time.Minute

// logsTenant is what a pass knows of one tenant's logs.
type logsTenant struct {
	id     string
	tb     objstore.Bucket // <tenant>/logs/
	limits *validation.Limits
	rules  [][]*labels.Matcher // the logs_retention_stream selectors
	now    time.Time
	// ripe are the deletion requests pending for longer than the cancel
	// period: those this pass applies.
	ripe    []logdelete.Request
	filters []*logdelete.Filter
}

// cutoff returns the oldest timestamp (Unix ns) of stream ls that is kept:
// entries before it are past the stream's retention.
func (t *logsTenant) cutoff(ls labels.Labels) int64 {
	p := t.limits.RetentionFor(ls, t.rules)
	if p <= 0 {
		return math.MinInt64
	}
	return t.now.Add(-p).UnixNano()
}

// hasRules says whether retention may differ between the tenant's streams.
func (t *logsTenant) hasRules() bool { return len(t.limits.LogsRetentionStream) > 0 }

// logsPass runs the logs side of a pass over every tenant with logs this
// compactor owns, compacting when compact is true. It returns the blocks
// written and an error per failed tenant.
func (c *Compactor) logsPass(ctx context.Context, compact bool) (int, []string) {
	tenants, err := layout.ListTenants(ctx, c.bkt, logblock.Signal)
	if err != nil {
		return 0, []string{fmt.Sprintf("logs: listing tenants: %v", err)}
	}
	var owned []string
	for _, id := range tenants {
		ok, err := c.owns(id)
		if err != nil {
			return 0, []string{fmt.Sprintf("logs: compactor ring: %v", err)}
		}
		if ok {
			owned = append(owned, id)
		}
	}
	var (
		mu      sync.Mutex
		written int
		errs    []string
	)
	_ = concurrency.ForEachJob(ctx, len(owned), c.cfg.TenantConcurrency, func(ctx context.Context, n int) error {
		id := owned[n]
		w, err := c.logsTenantPass(ctx, id, compact)
		mu.Lock()
		defer mu.Unlock()
		written += w
		if err != nil {
			level.Error(c.logger).Log("msg", "logs compactor pass failed", "tenant", id, "err", err)
			errs = append(errs, fmt.Sprintf("logs of tenant %s: %v", id, err))
		}
		return nil
	})
	sort.Strings(errs)
	return written, errs
}

// logsTenantPass runs the logs side of a pass for one tenant.
func (c *Compactor) logsTenantPass(ctx context.Context, id string, compact bool) (int, error) {
	t := &logsTenant{id: id, tb: layout.TenantBucket(c.bkt, id, logblock.Signal), limits: c.limits.ByTenant(id), now: c.now()}
	var err error
	if t.rules, err = t.limits.RetentionMatchers(); err != nil {
		return 0, err
	}
	list, err := logblock.List(ctx, c.bkt, id)
	if err != nil {
		return 0, err
	}
	for bid, err := range list.Corrupt {
		level.Error(c.logger).Log("msg", "log block has an unreadable meta.json; it is skipped", "tenant", id, "block", bid, "err", err)
	}
	live := liveLogBlocks(list)
	live, err = c.logsRetention(ctx, t, live)
	if err != nil {
		return 0, err
	}
	written, err := 0, error(nil)
	if compact {
		if err := c.loadDeletes(ctx, t); err != nil {
			return 0, err
		}
		written, err = c.logsCompact(ctx, t, live, list.NoCompact)
	}
	return written, errors.Join(err, c.cleanupBlocks(ctx, t.tb, t.id, "log", logblock.MetaFile, list.Deletion, list.Partial, t.now, c.forgetExpiry))
}

// liveLogBlocks are the listed blocks not marked for deletion.
func liveLogBlocks(l logblock.Listing) []logblock.Meta {
	var out []logblock.Meta
	for _, m := range l.Blocks {
		if _, ok := l.Deletion[m.ULID]; !ok {
			out = append(out, m)
		}
	}
	return out
}

// loadDeletes reads the tenant's deletion requests and keeps the ripe
// ones.
func (c *Compactor) loadDeletes(ctx context.Context, t *logsTenant) error {
	reqs, err := c.deletes.List(ctx, t.id)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if r.Processed() || t.now.Sub(time.UnixMilli(r.CreatedAt)) < c.cfg.LogsDeleteCancelPeriod {
			continue
		}
		f, err := r.Filter()
		if err != nil {
			// The API accepts only queries that compile; this one was
			// written by another version.
			level.Error(c.logger).Log("msg", "log deletion request cannot be applied", "tenant", t.id, "request_id", r.ID, "err", err)
			continue
		}
		t.ripe = append(t.ripe, r)
		t.filters = append(t.filters, f)
	}
	return nil
}

// logsRetention marks for deletion the blocks all of whose entries are
// past their streams' retention and returns the others.
func (c *Compactor) logsRetention(ctx context.Context, t *logsTenant, live []logblock.Meta) ([]logblock.Meta, error) {
	var kept []logblock.Meta
	for _, m := range live {
		x, err := c.expiry(ctx, t, m)
		if err != nil {
			return nil, err
		}
		if x.all == math.MaxInt64 || t.now.UnixNano() <= x.all {
			kept = append(kept, m)
			continue
		}
		if err := layout.WriteMark(ctx, t.tb, m.ULID, layout.DeletionMarkFilename, "retention: every entry past its stream's retention", t.now); err != nil {
			return nil, err
		}
		c.metrics.blocksMarked.WithLabelValues("retention").Inc()
		level.Info(c.logger).Log("msg", "log block past retention marked for deletion", "tenant", t.id, "block", m.ULID)
	}
	return kept, nil
}
