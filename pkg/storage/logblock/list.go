package logblock

import (
	"context"

	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// Listing is everything under a tenant's log blocks prefix, as the
// compactor sees it: queriers list with ListBlocks.
type Listing = layout.Listing[Meta]

// List lists a tenant's log blocks and their markers.
func List(ctx context.Context, bkt objstore.Bucket, tenant string) (Listing, error) {
	return layout.ListAll(ctx, bkt, tenant, Signal, ReadMeta)
}
