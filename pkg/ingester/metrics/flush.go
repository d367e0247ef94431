package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/concurrency"
	"github.com/grafana/dskit/ring"
	"github.com/prometheus/prometheus/tsdb"
)

// FlushAndShip cuts every tenant's in-memory data into blocks and uploads
// every block not yet in the bucket. It returns how many tenants it flushed,
// how many blocks it uploaded, and one error per tenant whose data could
// not all be shipped (errors.Join): that data stays on local disk.
func (i *Ingester) FlushAndShip(ctx context.Context) (tenants, shipped int, err error) {
	var (
		mu   sync.Mutex
		errs []error
	)
	tenants = i.forEachTenant(ctx, func(ctx context.Context, id string, db *userTSDB) {
		err := i.flushHead(ctx, db.DB)
		n := 0
		if err == nil && db.shipper != nil {
			n, err = db.shipper.Sync(ctx, db.DB)
		}
		mu.Lock()
		defer mu.Unlock()
		shipped += n
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", id, err))
		}
	})
	sort.Slice(errs, func(a, b int) bool { return errs[a].Error() < errs[b].Error() })
	if i.bkt == nil {
		errs = append(errs, errors.New("shipping is off (-ingester.ship-interval=0): blocks were cut but stay on local disk"))
	}
	return tenants, shipped, errors.Join(errs...)
}

// flushHead writes everything in the head (and the out-of-order head) to
// blocks within the block range's aligned windows, then truncates the head
// and WAL. Afterwards the head accepts samples newer than the flushed ones
// (older ones only within the out-of-order window).
func (i *Ingester) flushHead(ctx context.Context, db *tsdb.DB) error {
	h := db.Head()
	mint, maxt := h.MinTime(), h.MaxTime()
	if mint != math.MaxInt64 && maxt != math.MinInt64 && mint <= maxt {
		r := i.cfg.BlockRange.Milliseconds()
		start := mint - mint%r
		if mint < 0 && mint%r != 0 {
			start -= r
		}
		for ; start <= maxt; start += r {
			if err := ctx.Err(); err != nil {
				return err
			}
			// Blocks stay inside aligned windows (the compactor builds on
			// that) and the last one ends at the newest sample, so samples
			// newer than it are still accepted after the flush.
			from, end := max(start, mint), min(start+r-1, maxt)
			if err := db.CompactHead(tsdb.NewRangeHead(h, from, end)); err != nil {
				return fmt.Errorf("cutting head block [%d, %d]: %w", from, end, err)
			}
		}
	}
	if err := db.CompactOOOHead(ctx); err != nil {
		return fmt.Errorf("cutting out-of-order head: %w", err)
	}
	return nil
}

// shipAll uploads every tenant's unshipped blocks; failures are logged and
// retried on the next tick.
func (i *Ingester) shipAll(ctx context.Context) {
	i.forEachTenant(ctx, func(ctx context.Context, id string, db *userTSDB) {
		if db.shipper == nil {
			return
		}
		if _, err := db.shipper.Sync(ctx, db.DB); err != nil && !errors.Is(err, context.Canceled) {
			level.Warn(i.logger).Log("msg", "shipping blocks", "tenant", id, "err", err)
		}
	})
}

// forEachTenant calls f for every open tenant database, in tenant order,
// -ingester.ship-concurrency at a time, and returns how many there were.
func (i *Ingester) forEachTenant(ctx context.Context, f func(ctx context.Context, id string, db *userTSDB)) int {
	dbs := i.tenantsSnapshot()
	ids := make([]string, 0, len(dbs))
	for id := range dbs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	_ = concurrency.ForEachJob(ctx, len(ids), i.cfg.ShipConcurrency, func(ctx context.Context, n int) error {
		db := dbs[ids[n]]
		db.use.RLock()
		defer db.use.RUnlock()
		if !db.closed {
			f(ctx, ids[n], db)
		}
		return nil
	})
	return len(ids)
}

// flusher is the lifecycler's FlushTransferer: on shutdown, while the
// instance is LEAVING the ring, it flushes and ships every tenant.
type flusher struct{ i *Ingester }

func (f flusher) Flush() {
	ctx, cancel := context.WithTimeout(context.Background(), f.i.cfg.ShutdownFlushTimeout)
	defer cancel()
	tenants, shipped, err := f.i.FlushAndShip(ctx)
	if err != nil {
		level.Warn(f.i.logger).Log("msg", "flush on shutdown left data on local disk; it is uploaded at the next start", "err", err)
		return
	}
	level.Info(f.i.logger).Log("msg", "flushed and shipped every tenant on shutdown", "tenants", tenants, "blocks", shipped)
}

func (flusher) TransferOut(context.Context) error { return ring.ErrTransferDisabled }
