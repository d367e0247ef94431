package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/backoff"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/util/fsutil"
)

// shipperFilename records, in a tenant's TSDB directory, which local blocks
// are safely in the bucket.
const shipperFilename = "shipper.json"

// shipper uploads one tenant's local TSDB blocks to the bucket. A block is
// recorded as shipped only after its meta.json — the last object — is
// uploaded; only shipped blocks may ever be deleted locally (see
// blocksToDelete). Safe for concurrent use: Sync calls are serialised.
type shipper struct {
	bkt      objstore.Bucket // scoped to <tenant>/metrics
	dir      string
	tenant   string
	ingester string
	logger   log.Logger
	metrics  *metrics

	syncMu sync.Mutex // one Sync at a time

	mu      sync.Mutex
	shipped map[ulid.ULID]struct{}
}

type shipperFile struct {
	Version int         `json:"version"`
	Shipped []ulid.ULID `json:"shipped"`
}

func newShipper(bkt objstore.Bucket, dir, tenant, ingesterID string, logger log.Logger, m *metrics) (*shipper, error) {
	s := &shipper{
		bkt: metricsblocks.TenantBucket(bkt, tenant), dir: dir, tenant: tenant, ingester: ingesterID,
		logger: log.With(logger, "tenant", tenant), metrics: m, shipped: map[ulid.ULID]struct{}{},
	}
	b, err := os.ReadFile(filepath.Join(dir, shipperFilename))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", shipperFilename, err)
	}
	var f shipperFile
	if err := json.Unmarshal(b, &f); err != nil {
		// Losing the record only means re-uploading blocks, which is idempotent.
		level.Warn(s.logger).Log("msg", "ignoring unreadable shipper state; blocks will be uploaded again", "err", err)
		return s, nil
	}
	for _, id := range f.Shipped {
		s.shipped[id] = struct{}{}
	}
	return s, nil
}

// isShipped reports whether block id is in the bucket.
func (s *shipper) isShipped(id ulid.ULID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.shipped[id]
	return ok
}

// Sync uploads every local block not yet shipped, oldest first. It returns
// how many blocks it uploaded; on error the remaining blocks stay local and
// are tried again on the next Sync.
func (s *shipper) Sync(ctx context.Context, db *tsdb.DB) (int, error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()

	local := db.Blocks()
	slices.SortFunc(local, func(a, b *tsdb.Block) int { return a.Meta().ULID.Compare(b.Meta().ULID) })
	uploaded := 0
	var firstErr error
	for _, b := range local {
		id := b.Meta().ULID
		if s.isShipped(id) {
			continue
		}
		if err := s.upload(ctx, b.Dir()); err != nil {
			s.metrics.shipFailures.Inc()
			level.Warn(s.logger).Log("msg", "block upload failed; it stays on local disk and is retried", "block", id, "err", err)
			firstErr = err
			break // keep the bucket's blocks a prefix of the local ones
		}
		s.metrics.shippedBlocks.Inc()
		uploaded++
		s.mu.Lock()
		s.shipped[id] = struct{}{}
		s.mu.Unlock()
		if err := s.save(local); err != nil {
			return uploaded, err
		}
		level.Info(s.logger).Log("msg", "block shipped", "block", id, "min_time", b.Meta().MinTime, "max_time", b.Meta().MaxTime)
	}
	if uploaded == 0 && firstErr == nil && s.hasStale(local) {
		// Forget blocks deleted locally since the last save.
		if err := s.save(local); err != nil {
			return 0, err
		}
	}
	return uploaded, firstErr
}

// hasStale reports whether the shipped set names blocks no longer on disk.
func (s *shipper) hasStale(local []*tsdb.Block) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shipped) > countShipped(s.shipped, local)
}

func countShipped(shipped map[ulid.ULID]struct{}, local []*tsdb.Block) int {
	n := 0
	for _, b := range local {
		if _, ok := shipped[b.Meta().ULID]; ok {
			n++
		}
	}
	return n
}

// upload ships one block, retrying transient failures.
func (s *shipper) upload(ctx context.Context, dir string) error {
	bo := backoff.New(ctx, backoff.Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxRetries: 3})
	var err error
	for bo.Ongoing() {
		_, err = metricsblocks.Upload(ctx, s.bkt, dir, metricsblocks.CanopyMeta{Tenant: s.tenant, Source: metricsblocks.SourceIngester, Ingester: s.ingester})
		if err == nil {
			return nil
		}
		bo.Wait()
	}
	if err == nil {
		err = bo.Err()
	}
	return err
}

// save restricts the shipped set to the blocks in local (every block on
// disk) and writes it atomically: a temporary file renamed over the old one.
func (s *shipper) save(local []*tsdb.Block) error {
	f := shipperFile{Version: 1}
	s.mu.Lock()
	kept := make(map[ulid.ULID]struct{}, len(s.shipped))
	for _, b := range local {
		id := b.Meta().ULID
		if _, ok := s.shipped[id]; ok {
			f.Shipped = append(f.Shipped, id)
			kept[id] = struct{}{}
		}
	}
	s.shipped = kept
	s.mu.Unlock()
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, shipperFilename+".tmp")
	if err := fsutil.WriteFileSync(tmp, b); err != nil {
		return fmt.Errorf("writing %s: %w", shipperFilename, err)
	}
	return os.Rename(tmp, filepath.Join(s.dir, shipperFilename))
}

// blocksToDelete is the tenant TSDB's retention policy: a block leaves local
// disk only once it is shipped (or shipping is off) and older than the
// retention period, or once the TSDB compacted it into another block.
func blocksToDelete(s *shipper, retention time.Duration, now func() time.Time) tsdb.BlocksToDeleteFunc {
	return func(bs []*tsdb.Block) map[ulid.ULID]struct{} {
		out := map[ulid.ULID]struct{}{}
		cutoff := now().Add(-retention).UnixMilli()
		for _, b := range bs {
			m := b.Meta()
			if s != nil && !s.isShipped(m.ULID) {
				continue
			}
			if m.Compaction.Deletable || m.MaxTime < cutoff {
				out[m.ULID] = struct{}{}
			}
		}
		return out
	}
}
