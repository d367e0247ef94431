package traceblock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// Listing is everything under a tenant's traces prefix, as the compactor
// sees it: queriers list with ListBlocks.
type Listing struct {
	// Blocks are the complete blocks, marked or not, by ULID.
	Blocks []Meta
	// Deletion and NoCompact are the blocks' markers (layout's format).
	Deletion, NoCompact map[ulid.ULID]layout.Mark
	// Partial are block directories without meta.json: uploads in
	// progress, or abandoned ones.
	Partial []ulid.ULID
	// Corrupt are blocks whose meta.json cannot be read, with the reason.
	Corrupt map[ulid.ULID]error
}

// List lists a tenant's trace blocks and their markers.
func List(ctx context.Context, bkt objstore.Bucket, tenant string) (Listing, error) {
	tb := layout.TenantBucket(bkt, tenant, Signal)
	out := Listing{Corrupt: map[ulid.ULID]error{}}
	var err error
	// Markers first, as ListBlocks does: a block listed after its mark was
	// placed is never taken for unmarked.
	if out.Deletion, err = layout.ListMarks(ctx, tb, layout.DeletionMarkFilename, nil); err != nil {
		return Listing{}, err
	}
	if out.NoCompact, err = layout.ListMarks(ctx, tb, layout.NoCompactMarkFilename, nil); err != nil {
		return Listing{}, err
	}
	var ids []ulid.ULID
	err = tb.Iter(ctx, "", func(name string) error {
		if id, err := ulid.Parse(strings.TrimSuffix(name, "/")); err == nil && strings.HasSuffix(name, "/") {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return Listing{}, fmt.Errorf("listing trace blocks: %w", err)
	}
	slices.SortFunc(ids, func(a, b ulid.ULID) int { return a.Compare(b) })
	for _, id := range ids {
		m, err := ReadMeta(ctx, bkt, tenant, id)
		switch {
		case errors.Is(err, errNoMeta):
			out.Partial = append(out.Partial, id)
		case err != nil && ctx.Err() != nil:
			return Listing{}, ctx.Err()
		case err != nil:
			out.Corrupt[id] = err
		default:
			out.Blocks = append(out.Blocks, m)
		}
	}
	return out, nil
}
