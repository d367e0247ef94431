package metrics

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

// handleIdle frees what tenants that stopped pushing hold. A tenant idle for
// -ingester.idle-tenant-timeout has its head cut into blocks and shipped, so
// its recent data reaches the bucket and its memory is freed; once its head
// is empty and the local retention has deleted its last (shipped) block,
// its TSDB is closed, its directory removed and its per-tenant metrics
// dropped. It runs in the ingester's running loop only.
func (i *Ingester) handleIdle(ctx context.Context) {
	if i.cfg.IdleTenantTimeout <= 0 {
		return
	}
	for id, db := range i.tenantsSnapshot() {
		if !i.idle(db) {
			continue
		}
		if db.Head().NumSeries() > 0 {
			i.flushIdle(ctx, id, db)
			continue
		}
		if len(db.Blocks()) == 0 {
			i.closeIdle(id, db)
		}
	}
}

func (i *Ingester) idle(db *userTSDB) bool {
	return i.now().Sub(time.Unix(0, db.lastPush.Load())) >= i.cfg.IdleTenantTimeout
}

// flushIdle cuts an idle tenant's head into blocks and ships them.
func (i *Ingester) flushIdle(ctx context.Context, id string, db *userTSDB) {
	db.use.RLock()
	defer db.use.RUnlock()
	if db.closed {
		return
	}
	err := i.flushHead(ctx, db.DB)
	if err == nil && db.shipper != nil {
		_, err = db.shipper.Sync(ctx, db.DB)
	}
	if err != nil {
		level.Warn(i.logger).Log("msg", "flushing an idle tenant", "tenant", id, "err", err)
		return
	}
	level.Info(i.logger).Log("msg", "flushed an idle tenant's head", "tenant", id)
}

// closeIdle closes an idle tenant's TSDB once no push or query uses it. A
// push arriving meanwhile waits and then opens a new TSDB.
func (i *Ingester) closeIdle(id string, db *userTSDB) {
	db.use.Lock()
	defer db.use.Unlock()
	// Checked again under the lock: a push may have come since.
	if db.closed || !i.idle(db) || db.Head().NumSeries() > 0 || len(db.Blocks()) > 0 {
		return
	}
	db.closed = true
	if err := db.Close(); err != nil {
		level.Warn(i.logger).Log("msg", "closing an idle tenant's TSDB", "tenant", id, "err", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	// Removed while the map still holds the closed database, so a new one
	// cannot be opened in the directory before it is gone.
	if err := os.RemoveAll(filepath.Join(i.dir, id)); err != nil {
		level.Warn(i.logger).Log("msg", "removing an idle tenant's directory", "tenant", id, "err", err)
	}
	delete(i.tenants, id)
	i.metrics.tenants.Set(float64(len(i.tenants)))
	i.metrics.forgetTenant(id)
	level.Info(i.logger).Log("msg", "closed the TSDB of an idle tenant", "tenant", id)
}

// forgetTenant drops a tenant's series from the per-tenant metrics.
func (m *metrics) forgetTenant(id string) {
	m.appendedSamples.DeleteLabelValues(id)
	m.appendedExemplars.DeleteLabelValues(id)
	m.rejectedSamples.DeletePartialMatch(prometheus.Labels{"tenant": id})
}
