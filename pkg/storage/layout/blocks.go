package layout

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

// ErrNoMeta is what a signal's ReadMeta answers for a block directory
// without meta.json: an upload in progress, or an abandoned one.
var ErrNoMeta = errors.New("no meta.json")

// ReadMetaFunc reads the meta.json of a tenant's block, ErrNoMeta (wrapped
// or not) when there is none.
type ReadMetaFunc[M any] func(ctx context.Context, bkt objstore.BucketReader, tenant string, id ulid.ULID) (M, error)

// ListLiveBlocks returns the metas of the complete blocks of a tenant's
// signal (logs, traces) that are not marked for deletion: those a query
// reads. The markers are listed before the blocks, so that a block marked
// because it was merged into another is never left out of a listing that
// misses the block it was merged into (which was uploaded before the
// mark).
func ListLiveBlocks[M any](ctx context.Context, bkt objstore.BucketReader, tenant, signal string, read ReadMetaFunc[M]) ([]M, error) {
	marked, err := MarkedBlocks(ctx, bkt, path.Join(tenant, signal), DeletionMarkFilename)
	if err != nil {
		return nil, err
	}
	var out []M
	err = bkt.Iter(ctx, path.Join(tenant, signal)+"/", func(name string) error {
		id, err := ulid.Parse(strings.TrimSuffix(path.Base(name), "/"))
		if err != nil {
			return nil // not a block
		}
		if _, ok := marked[id]; ok {
			return nil
		}
		m, err := read(ctx, bkt, tenant, id)
		if errors.Is(err, ErrNoMeta) {
			return nil // being uploaded, or a leftover of a failed upload
		}
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// Listing is everything under a tenant's signal prefix, as the compactor
// sees it: queriers list with ListLiveBlocks.
type Listing[M any] struct {
	// Blocks are the complete blocks, marked or not, by ULID.
	Blocks []M
	// Deletion and NoCompact are the blocks' markers.
	Deletion, NoCompact map[ulid.ULID]Mark
	// Partial are block directories without meta.json: uploads in
	// progress, or abandoned ones.
	Partial []ulid.ULID
	// Corrupt are blocks whose meta.json cannot be read, with the reason.
	Corrupt map[ulid.ULID]error
}

// ListAll lists a tenant's blocks of a signal and their markers.
func ListAll[M any](ctx context.Context, bkt objstore.Bucket, tenant, signal string, read ReadMetaFunc[M]) (Listing[M], error) {
	tb := TenantBucket(bkt, tenant, signal)
	out := Listing[M]{Corrupt: map[ulid.ULID]error{}}
	var err error
	// Markers first, as ListLiveBlocks does: a block listed after its mark
	// was placed is never taken for unmarked.
	if out.Deletion, err = ListMarks(ctx, tb, DeletionMarkFilename, nil); err != nil {
		return Listing[M]{}, err
	}
	if out.NoCompact, err = ListMarks(ctx, tb, NoCompactMarkFilename, nil); err != nil {
		return Listing[M]{}, err
	}
	var ids []ulid.ULID
	err = tb.Iter(ctx, "", func(name string) error {
		if id, err := ulid.Parse(strings.TrimSuffix(name, "/")); err == nil && strings.HasSuffix(name, "/") {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return Listing[M]{}, fmt.Errorf("listing %s blocks: %w", signal, err)
	}
	slices.SortFunc(ids, func(a, b ulid.ULID) int { return a.Compare(b) })
	for _, id := range ids {
		m, err := read(ctx, bkt, tenant, id)
		switch {
		case errors.Is(err, ErrNoMeta):
			out.Partial = append(out.Partial, id)
		case err != nil && ctx.Err() != nil:
			return Listing[M]{}, ctx.Err()
		case err != nil:
			out.Corrupt[id] = err
		default:
			out.Blocks = append(out.Blocks, m)
		}
	}
	return out, nil
}
