package compactor

import (
	"context"
	"sort"
	"time"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// cleanupBlocks deletes, in tb (a tenant's signal prefix), the blocks
// marked for deletion longer than the deletion delay (meta.json first) and
// the partial uploads untouched for the partial block deletion delay.
// kind names the blocks in log lines ("log", "trace"); deleted, when set,
// is told of each marked block deleted.
func (c *Compactor) cleanupBlocks(ctx context.Context, tb objstore.Bucket, tenant, kind, metaFile string, deletion map[ulid.ULID]layout.Mark, partial []ulid.ULID, now time.Time, deleted func(ulid.ULID)) error {
	ids := make([]ulid.ULID, 0, len(deletion))
	for id := range deletion {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Compare(ids[j]) < 0 })
	for _, id := range ids {
		m := deletion[id]
		if now.Sub(time.Unix(m.Time, 0)) < c.cfg.DeletionDelay {
			continue
		}
		if err := layout.DeleteBlock(ctx, tb, id, metaFile); err != nil {
			return err
		}
		if deleted != nil {
			deleted(id)
		}
		c.metrics.blocksDeleted.Inc()
		level.Info(c.logger).Log("msg", "deleted "+kind+" block", "tenant", tenant, "block", id, "reason", m.Reason)
	}
	for _, id := range partial {
		if _, ok := deletion[id]; ok {
			continue // deleted above, or once its delay has passed
		}
		newest, err := lastModified(ctx, tb, id.String())
		if err != nil {
			return err
		}
		if now.Sub(newest) < c.cfg.PartialBlockDeletionDelay {
			continue
		}
		if err := layout.DeleteBlock(ctx, tb, id, metaFile); err != nil {
			return err
		}
		c.metrics.partialsDeleted.Inc()
		level.Warn(c.logger).Log("msg", "deleted abandoned partial "+kind+" block", "tenant", tenant, "block", id, "last_modified", newest)
	}
	return nil
}
