// Package layout is what every signal's objects in the bucket share: the
// <tenant>/<signal>/ prefix and the listing of a signal's tenants, the
// deletion and no-compact markers, the per-tenant bucket index, and the order
// in which a block's objects are written and deleted. Formats are in
// README.md beside this file, pinned by golden tests.
package layout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

// BucketIndexFilename is the per-tenant bucket index, beside the blocks.
const BucketIndexFilename = "bucket-index.json.gz"

// BucketIndexVersion is the format version written by this code.
const BucketIndexVersion = 1

// ErrNoBucketIndex is returned by ReadBucketIndex when a tenant has none yet.
var ErrNoBucketIndex = errors.New("bucket index not found")

// BucketIndex lists a tenant's complete blocks and their deletion marks so
// that queriers and store-gateways never list the bucket. The compactor
// writes it; everyone else only reads it.
type BucketIndex struct {
	Version       int        `json:"version"`
	UpdatedAt     int64      `json:"updated_at"`
	Blocks        []BlockRef `json:"blocks"`
	DeletionMarks []Mark     `json:"deletion_marks"`
	// NoCompactMarks are blocks the compactor skips, such as corrupt ones.
	NoCompactMarks []Mark `json:"no_compact_marks"`
}

// BlockRef is one block in the bucket index. Series and Samples are the
// block's series and samples for metrics; other signals record their own
// counts there (streams and entries, traces and spans).
type BlockRef struct {
	ID      ulid.ULID `json:"id"`
	MinTime int64     `json:"min_time"`
	MaxTime int64     `json:"max_time"`
	// UploadedAt is when the index first saw the block, Unix seconds.
	UploadedAt int64  `json:"uploaded_at"`
	Level      int    `json:"compaction_level"`
	Source     string `json:"source"`
	Series     uint64 `json:"series"`
	Samples    uint64 `json:"samples"`
}

// Within reports whether the block has samples in [mint, maxt] (block
// ranges are half-open: [MinTime, MaxTime)).
func (b BlockRef) Within(mint, maxt int64) bool {
	return b.MinTime <= maxt && mint < b.MaxTime
}

// DeletionMarked returns the deletion marks by block.
func (x *BucketIndex) DeletionMarked() map[ulid.ULID]Mark {
	out := make(map[ulid.ULID]Mark, len(x.DeletionMarks))
	for _, m := range x.DeletionMarks {
		out[m.ID] = m
	}
	return out
}

// ReadBucketIndex reads a tenant's bucket index.
func ReadBucketIndex(ctx context.Context, bkt objstore.BucketReader) (*BucketIndex, error) {
	r, err := bkt.Get(ctx, BucketIndexFilename)
	if bkt.IsObjNotFoundErr(err) {
		return nil, ErrNoBucketIndex
	}
	if err != nil {
		return nil, fmt.Errorf("reading bucket index: %w", err)
	}
	defer r.Close() //nolint:errcheck // read-only
	return decodeBucketIndex(r)
}

// decodeBucketIndex reads a bucket index: gzip-compressed JSON.
func decodeBucketIndex(r io.Reader) (*BucketIndex, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("bucket index is not gzip: %w", err)
	}
	var x BucketIndex
	if err := json.NewDecoder(io.LimitReader(gz, 1<<30)).Decode(&x); err != nil {
		return nil, fmt.Errorf("parsing bucket index: %w", err)
	}
	if x.Version != BucketIndexVersion {
		return nil, fmt.Errorf("bucket index version %d not supported (want %d)", x.Version, BucketIndexVersion)
	}
	return &x, nil
}

// WriteBucketIndex replaces a tenant's bucket index.
func WriteBucketIndex(ctx context.Context, bkt objstore.Bucket, x *BucketIndex) error {
	b, err := encodeBucketIndex(x)
	if err != nil {
		return err
	}
	if err := bkt.Upload(ctx, BucketIndexFilename, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("writing bucket index: %w", err)
	}
	return nil
}

// encodeBucketIndex returns the bytes of the bucket index object.
func encodeBucketIndex(x *BucketIndex) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if err := json.NewEncoder(gz).Encode(x); err != nil {
		return nil, fmt.Errorf("encoding bucket index: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("compressing bucket index: %w", err)
	}
	return buf.Bytes(), nil
}

// ScanResult is what UpdateBucketIndex found besides complete blocks.
type ScanResult struct {
	// Partial are block directories without their metadata object:
	// uploads in progress or abandoned.
	Partial []ulid.ULID
	// Corrupt are blocks whose metadata cannot be read, with the reason.
	Corrupt map[ulid.ULID]error
}

// ReadRef reads what the bucket index records of block id from the block's
// own metadata object, with UploadedAt left to the caller. Its error
// satisfies bkt.IsObjNotFoundErr when the block has no metadata object yet
// (a partial upload). Each signal's block format provides one.
type ReadRef func(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (BlockRef, error)

// UpdateBucketIndex lists a tenant's signal bucket (TenantBucket) and
// returns its new index, reading new blocks with readRef. Blocks already in
// old are not read again (a block never changes once complete).
func UpdateBucketIndex(ctx context.Context, bkt objstore.Bucket, old *BucketIndex, now time.Time, readRef ReadRef) (*BucketIndex, ScanResult, error) {
	res := ScanResult{Corrupt: map[ulid.ULID]error{}}
	known := map[ulid.ULID]BlockRef{}
	if old != nil {
		for _, b := range old.Blocks {
			known[b.ID] = b
		}
	}
	var ids []ulid.ULID
	err := bkt.Iter(ctx, "", func(name string) error {
		if id, err := ulid.Parse(strings.TrimSuffix(name, "/")); err == nil && strings.HasSuffix(name, "/") {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, res, fmt.Errorf("listing blocks: %w", err)
	}
	x := &BucketIndex{Version: BucketIndexVersion, UpdatedAt: now.Unix()}
	for _, id := range ids {
		if b, ok := known[id]; ok {
			x.Blocks = append(x.Blocks, b)
			continue
		}
		ref, err := readRef(ctx, bkt, id)
		switch {
		case bkt.IsObjNotFoundErr(err):
			res.Partial = append(res.Partial, id)
			continue
		case err != nil && ctx.Err() != nil:
			return nil, res, ctx.Err()
		case err != nil:
			res.Corrupt[id] = err
			continue
		}
		ref.ID, ref.UploadedAt = id, now.Unix()
		x.Blocks = append(x.Blocks, ref)
	}
	slices.SortFunc(x.Blocks, func(a, b BlockRef) int { return a.ID.Compare(b.ID) })
	for _, kind := range []string{DeletionMarkFilename, NoCompactMarkFilename} {
		var known []Mark
		if old != nil {
			known = old.DeletionMarks
			if kind == NoCompactMarkFilename {
				known = old.NoCompactMarks
			}
		}
		marks, err := ListMarks(ctx, bkt, kind, known)
		if err != nil {
			return nil, res, err
		}
		list := make([]Mark, 0, len(marks))
		for _, m := range marks {
			list = append(list, m)
		}
		slices.SortFunc(list, func(a, b Mark) int { return a.ID.Compare(b.ID) })
		if kind == DeletionMarkFilename {
			x.DeletionMarks = list
		} else {
			x.NoCompactMarks = list
		}
	}
	return x, res, nil
}
