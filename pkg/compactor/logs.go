package compactor

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kit/log/level"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/logblock"
)

// logsRetention deletes the log blocks of the tenants this compactor owns
// whose newest entry is older than the tenant's logs_retention_period
// (-compactor.logs.retention-period; 0 keeps them). A block's meta.json
// goes first, so queriers stop listing it before its chunks go. It
// returns how many blocks it deleted.
func (c *Compactor) logsRetention(ctx context.Context) (int, error) {
	tenants, err := layout.ListTenants(ctx, c.bkt, logblock.Signal)
	if err != nil {
		return 0, fmt.Errorf("listing tenants with logs: %w", err)
	}
	deleted := 0
	for _, id := range tenants {
		p := time.Duration(c.limits.ByTenant(id).LogsRetentionPeriod)
		if p <= 0 {
			continue
		}
		if ok, err := c.owns(id); err != nil || !ok {
			if err != nil {
				return deleted, fmt.Errorf("compactor ring: %w", err)
			}
			continue
		}
		metas, err := logblock.ListBlocks(ctx, c.bkt, id)
		if err != nil {
			return deleted, fmt.Errorf("tenant %s: listing log blocks: %w", id, err)
		}
		cutoff := c.now().Add(-p).UnixNano()
		tb := layout.TenantBucket(c.bkt, id, logblock.Signal)
		for _, m := range metas {
			if m.MaxTime >= cutoff {
				continue
			}
			if err := layout.DeleteBlock(ctx, tb, m.ULID, logblock.MetaFile); err != nil {
				return deleted, fmt.Errorf("tenant %s: %w", id, err)
			}
			deleted++
			c.metrics.blocksDeleted.Inc()
			level.Info(c.logger).Log("msg", "deleted log block past retention", "tenant", id, "block", m.ULID, "retention", p)
		}
	}
	return deleted, nil
}
