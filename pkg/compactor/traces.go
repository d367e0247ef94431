package compactor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/concurrency"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/traceblock"
)

// The traces side of a pass, for each tenant with traces this compactor
// owns (README.md, "Traces"):
//
//  1. blocks whose newest span is older than the tenant's
//     traces_retention_period are marked for deletion;
//  2. (compaction passes) the blocks shipped in a merge window that is
//     over are merged into one (traces_merge.go), replicas' copies of a
//     span kept once, and marked for deletion;
//  3. blocks marked for deletion longer than -compactor.deletion-delay and
//     abandoned partial uploads are deleted.

// tracesTenant is what a pass knows of one tenant's traces.
type tracesTenant struct {
	id        string
	tb        objstore.Bucket // <tenant>/traces/
	retention time.Duration   // 0: forever
	now       time.Time
}

// tracesMetrics are the compactor's metrics of trace blocks alone; blocks
// written, marked and deleted are counted with the other signals'
// (compactions_total{kind="traces_merge"}, blocks_marked_for_deletion_total).
type tracesMetrics struct {
	spansDeduplicated prometheus.Counter
}

func newTracesMetrics(reg prometheus.Registerer) *tracesMetrics {
	f := promauto.With(reg)
	return &tracesMetrics{
		spansDeduplicated: f.NewCounter(prometheus.CounterOpts{
			Name: "canopy_compactor_trace_spans_deduplicated_total",
			Help: "Spans the compactor wrote once of several copies (replicas' blocks, a trace shipped again) when it merged trace blocks.",
		}),
	}
}

// tracesPass runs the traces side of a pass over every tenant with traces
// this compactor owns, compacting when compact is true. It returns the
// blocks written and an error per failed tenant.
func (c *Compactor) tracesPass(ctx context.Context, compact bool) (int, []string) {
	tenants, err := layout.ListTenants(ctx, c.bkt, traceblock.Signal)
	if err != nil {
		return 0, []string{fmt.Sprintf("traces: listing tenants: %v", err)}
	}
	var owned []string
	for _, id := range tenants {
		ok, err := c.owns(id)
		if err != nil {
			return 0, []string{fmt.Sprintf("traces: compactor ring: %v", err)}
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
		w, err := c.tracesTenantPass(ctx, id, compact)
		mu.Lock()
		defer mu.Unlock()
		written += w
		if err != nil {
			level.Error(c.logger).Log("msg", "traces compactor pass failed", "tenant", id, "err", err)
			errs = append(errs, fmt.Sprintf("traces of tenant %s: %v", id, err))
		}
		return nil
	})
	sort.Strings(errs)
	return written, errs
}

// tracesTenantPass runs the traces side of a pass for one tenant.
func (c *Compactor) tracesTenantPass(ctx context.Context, id string, compact bool) (int, error) {
	t := &tracesTenant{
		id:        id,
		tb:        layout.TenantBucket(c.bkt, id, traceblock.Signal),
		retention: time.Duration(c.limits.ByTenant(id).TracesRetentionPeriod),
		now:       c.now(),
	}
	list, err := traceblock.List(ctx, c.bkt, id)
	if err != nil {
		return 0, err
	}
	for bid, err := range list.Corrupt {
		level.Error(c.logger).Log("msg", "trace block has an unreadable meta.json; it is skipped", "tenant", id, "block", bid, "err", err)
	}
	var live []traceblock.Meta
	for _, m := range list.Blocks {
		if _, ok := list.Deletion[m.ULID]; !ok {
			live = append(live, m)
		}
	}
	live, err = c.tracesRetention(ctx, t, live)
	if err != nil {
		return 0, err
	}
	written := 0
	if compact {
		var cands []traceblock.Meta
		for _, m := range live {
			if _, ok := list.NoCompact[m.ULID]; !ok {
				cands = append(cands, m)
			}
		}
		written, err = c.tracesCompact(ctx, t, cands)
	}
	return written, errors.Join(err, c.cleanupBlocks(ctx, t.tb, t.id, "trace", traceblock.MetaFile, list.Deletion, list.Partial, t.now, nil))
}

// tracesRetention marks for deletion the blocks whose newest span is older
// than the tenant's retention and returns the others.
func (c *Compactor) tracesRetention(ctx context.Context, t *tracesTenant, live []traceblock.Meta) ([]traceblock.Meta, error) {
	if t.retention <= 0 {
		return live, nil
	}
	cutoff := t.now.Add(-t.retention).UnixNano()
	var kept []traceblock.Meta
	for _, m := range live {
		if m.MaxTime >= cutoff {
			kept = append(kept, m)
			continue
		}
		if err := layout.WriteMark(ctx, t.tb, m.ULID, layout.DeletionMarkFilename, fmt.Sprintf("retention: every span older than %s", t.retention), t.now); err != nil {
			return nil, err
		}
		c.metrics.blocksMarked.WithLabelValues("retention").Inc()
		level.Info(c.logger).Log("msg", "trace block past retention marked for deletion", "tenant", t.id, "block", m.ULID, "retention", t.retention)
	}
	return kept, nil
}
