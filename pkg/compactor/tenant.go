package compactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
)

// maxPlanRounds bounds the compaction rounds of one tenant in one pass:
// each round can take blocks one range further (2h → 12h → 24h …).
const maxPlanRounds = 16

var errCorruptBlock = errors.New("corrupt block")

// runTenant compacts (when compact is true) and cleans up one tenant, then
// writes its bucket index. It returns how many blocks compaction wrote.
func (c *Compactor) runTenant(ctx context.Context, id string, compact bool) (int, error) {
	tb := metricsblocks.TenantBucket(c.bkt, id)
	old, err := layout.ReadBucketIndex(ctx, tb)
	if err != nil && !errors.Is(err, layout.ErrNoBucketIndex) {
		// An unreadable index is rebuilt from the bucket, never fatal.
		level.Warn(c.logger).Log("msg", "rebuilding unreadable bucket index", "tenant", id, "err", err)
		old = nil
	}
	x, scan, err := metricsblocks.UpdateBucketIndex(ctx, tb, old, c.now())
	if err != nil {
		return 0, err
	}
	written := 0
	if compact {
		for round := 0; round < maxPlanRounds; round++ {
			jobs := plan(compactable(x), c.cfg.BlockRanges.Millis())
			if len(jobs) == 0 {
				break
			}
			progressed := false
			for _, j := range jobs {
				n, err := c.runJob(ctx, id, tb, j)
				if errors.Is(err, errCorruptBlock) {
					continue // marked no-compact; the rest of the tenant goes on
				}
				if err != nil {
					return written, err
				}
				written += n
				progressed = true
			}
			if x, scan, err = metricsblocks.UpdateBucketIndex(ctx, tb, x, c.now()); err != nil {
				return written, err
			}
			if !progressed {
				break
			}
		}
	}
	if err := c.cleanup(ctx, id, tb, x, scan); err != nil {
		return written, err
	}
	if x, scan, err = metricsblocks.UpdateBucketIndex(ctx, tb, x, c.now()); err != nil {
		return written, err
	}
	c.reportCorrupt(id, x, scan)
	if old == nil && len(x.Blocks) == 0 && len(x.DeletionMarks) == 0 {
		return written, nil // no metrics for this tenant (yet)
	}
	return written, layout.WriteBucketIndex(ctx, tb, x)
}

// compactable are the index's blocks not marked for deletion or no-compact.
func compactable(x *layout.BucketIndex) []layout.BlockRef {
	skip := map[ulid.ULID]bool{}
	for _, m := range x.DeletionMarks {
		skip[m.ID] = true
	}
	for _, m := range x.NoCompactMarks {
		skip[m.ID] = true
	}
	var out []layout.BlockRef
	for _, b := range x.Blocks {
		if !skip[b.ID] {
			out = append(out, b)
		}
	}
	return out
}

func (c *Compactor) reportCorrupt(id string, x *layout.BucketIndex, scan layout.ScanResult) {
	for bid, err := range scan.Corrupt {
		level.Error(c.logger).Log("msg", "block has an unreadable meta.json; it is skipped", "tenant", id, "block", bid, "err", err)
	}
	n := len(scan.Corrupt)
	for _, m := range x.NoCompactMarks {
		if strings.HasPrefix(m.Reason, "corrupt") {
			n++
		}
	}
	c.metrics.corrupt.WithLabelValues(id).Set(float64(n))
}

// runJob downloads a job's blocks, checks them, compacts them into one
// block, uploads it and marks the sources for deletion.
func (c *Compactor) runJob(ctx context.Context, id string, tb objstore.Bucket, j job) (int, error) {
	if err := os.MkdirAll(c.tenantDir(id), 0o750); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp(c.tenantDir(id), "job-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // scratch space, also wiped at start

	dirs := make([]string, 0, len(j.Blocks))
	for _, b := range j.Blocks {
		bd := filepath.Join(dir, b.ID.String())
		if err := objstore.DownloadDir(ctx, c.logger, tb, b.ID.String(), b.ID.String(), bd); err != nil {
			return 0, fmt.Errorf("downloading block %s: %w", b.ID, err)
		}
		if err := verifyBlock(ctx, bd); err != nil {
			level.Error(c.logger).Log("msg", "block is corrupt: marked no-compact and skipped; queries still read it where they can", "tenant", id, "block", b.ID, "err", err)
			if merr := layout.WriteMark(ctx, tb, b.ID, layout.NoCompactMarkFilename, "corrupt: "+err.Error(), c.now()); merr != nil {
				return 0, merr
			}
			return 0, errCorruptBlock
		}
		dirs = append(dirs, bd)
	}
	comp, err := tsdb.NewLeveledCompactorWithOptions(ctx, nil, c.slogger, c.cfg.BlockRanges.Millis(), nil, tsdb.LeveledCompactorOptions{
		MergeFunc:                   storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge),
		EnableOverlappingCompaction: true,
		Metrics:                     c.tsdbMets,
	})
	if err != nil {
		return 0, err
	}
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o750); err != nil {
		return 0, err
	}
	ids, err := comp.Compact(out, dirs, nil)
	if err != nil {
		return 0, fmt.Errorf("compacting blocks %s: %w", blockIDs(j.Blocks), err)
	}
	for _, nid := range ids {
		if _, err := metricsblocks.Upload(ctx, tb, filepath.Join(out, nid.String()), metricsblocks.CanopyMeta{Tenant: id, Source: metricsblocks.SourceCompactor}); err != nil {
			return 0, err
		}
	}
	reason := fmt.Sprintf("compacted into %v", ids)
	for _, b := range j.Blocks {
		if err := layout.WriteMark(ctx, tb, b.ID, layout.DeletionMarkFilename, reason, c.now()); err != nil {
			return len(ids), err
		}
		c.metrics.blocksMarked.WithLabelValues("compacted").Inc()
	}
	c.metrics.compactions.WithLabelValues(j.Kind).Add(float64(len(ids)))
	level.Info(c.logger).Log("msg", "compacted blocks", "tenant", id, "kind", j.Kind, "sources", blockIDs(j.Blocks), "block", fmt.Sprint(ids))
	return len(ids), nil
}

func blockIDs(bs []layout.BlockRef) string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = b.ID.String()
	}
	return strings.Join(s, ",")
}

// verifyBlock opens a downloaded block and reads every series and chunk, so
// a damaged block is found — and named — before it can fail a compaction.
func verifyBlock(ctx context.Context, dir string) (err error) {
	b, err := tsdb.OpenBlock(nil, dir, nil, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	ir, err := b.Index()
	if err != nil {
		return err
	}
	defer ir.Close() //nolint:errcheck // read-only
	cr, err := b.Chunks()
	if err != nil {
		return err
	}
	defer cr.Close() //nolint:errcheck // read-only
	k, v := index.AllPostingsKey()
	p, err := ir.Postings(ctx, k, v)
	if err != nil {
		return err
	}
	var (
		builder labels.ScratchBuilder
		metas   []chunks.Meta
		it      chunkenc.Iterator
	)
	meta := b.Meta()
	for p.Next() {
		if err := ir.Series(p.At(), &builder, &metas); err != nil {
			return fmt.Errorf("reading series %d: %w", p.At(), err)
		}
		for _, m := range metas {
			if m.MinTime < meta.MinTime || m.MaxTime >= meta.MaxTime {
				return fmt.Errorf("series %s has a chunk [%d, %d] outside the block's range [%d, %d)", builder.Labels(), m.MinTime, m.MaxTime, meta.MinTime, meta.MaxTime)
			}
			chk, iter, err := cr.ChunkOrIterable(m)
			if err != nil {
				return fmt.Errorf("reading chunk of series %s: %w", builder.Labels(), err)
			}
			if chk != nil {
				it = chk.Iterator(it)
			} else {
				it = iter.Iterator(it)
			}
			for it.Next() != chunkenc.ValNone {
			}
			if err := it.Err(); err != nil {
				return fmt.Errorf("decoding chunk of series %s: %w", builder.Labels(), err)
			}
		}
	}
	return p.Err()
}

// cleanup applies retention, deletes blocks whose deletion delay has passed
// and removes abandoned partial uploads.
func (c *Compactor) cleanup(ctx context.Context, id string, tb objstore.Bucket, x *layout.BucketIndex, scan layout.ScanResult) error {
	now := c.now()
	marked := x.DeletionMarked()
	if p := time.Duration(c.limits.ByTenant(id).CompactorBlocksRetentionPeriod); p > 0 {
		cutoff := now.Add(-p).UnixMilli()
		for _, b := range x.Blocks {
			if _, ok := marked[b.ID]; ok || b.MaxTime > cutoff {
				continue
			}
			if err := layout.WriteMark(ctx, tb, b.ID, layout.DeletionMarkFilename, fmt.Sprintf("retention: all samples older than %s", p), now); err != nil {
				return err
			}
			c.metrics.blocksMarked.WithLabelValues("retention").Inc()
			level.Info(c.logger).Log("msg", "block past retention marked for deletion", "tenant", id, "block", b.ID, "retention", p)
		}
	}
	for _, m := range x.DeletionMarks {
		if now.Sub(time.Unix(m.Time, 0)) < c.cfg.DeletionDelay {
			continue
		}
		if err := metricsblocks.Delete(ctx, tb, m.ID); err != nil {
			return err
		}
		c.metrics.blocksDeleted.Inc()
		level.Info(c.logger).Log("msg", "deleted block", "tenant", id, "block", m.ID, "reason", m.Reason)
	}
	for _, pid := range scan.Partial {
		newest, err := lastModified(ctx, tb, pid.String())
		if err != nil {
			return err
		}
		if now.Sub(newest) < c.cfg.PartialBlockDeletionDelay {
			continue
		}
		if err := metricsblocks.Delete(ctx, tb, pid); err != nil {
			return err
		}
		c.metrics.partialsDeleted.Inc()
		level.Warn(c.logger).Log("msg", "deleted abandoned partial block", "tenant", id, "block", pid, "last_modified", newest)
	}
	return nil
}

// lastModified is the newest modification time of the objects under dir.
func lastModified(ctx context.Context, bkt objstore.Bucket, dir string) (time.Time, error) {
	var names []string
	if err := bkt.Iter(ctx, dir, func(n string) error { names = append(names, n); return nil }, objstore.WithRecursiveIter()); err != nil {
		return time.Time{}, err
	}
	var newest time.Time
	for _, n := range names {
		a, err := bkt.Attributes(ctx, n)
		if bkt.IsObjNotFoundErr(err) {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		if a.LastModified.After(newest) {
			newest = a.LastModified
		}
	}
	return newest, nil
}

func writeJSON(w http.ResponseWriter, v any, failed bool) {
	w.Header().Set("Content-Type", "application/json")
	if failed {
		w.WriteHeader(http.StatusInternalServerError)
	}
	_ = json.NewEncoder(w).Encode(v)
}
