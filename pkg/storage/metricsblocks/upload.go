package metricsblocks

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// Upload copies the local block in dir to a tenant bucket: chunk segments
// first, then the index, then meta.json — with canopy added — last, so a
// block whose meta.json exists is complete. Uploading the same block again
// overwrites it with the same bytes: Upload is idempotent.
func Upload(ctx context.Context, bkt objstore.Bucket, dir string, canopy CanopyMeta) (*Meta, error) {
	meta, err := ReadLocalMeta(dir)
	if err != nil {
		return nil, fmt.Errorf("reading local block meta: %w", err)
	}
	id := meta.ULID
	if filepath.Base(dir) != id.String() {
		return nil, fmt.Errorf("block directory %s does not match its meta.json ULID %s", dir, id)
	}
	segs, err := os.ReadDir(filepath.Join(dir, ChunksDirname))
	if err != nil {
		return nil, fmt.Errorf("listing chunks of block %s: %w", id, err)
	}
	for _, s := range segs {
		if err := layout.UploadFile(ctx, bkt, filepath.Join(dir, ChunksDirname, s.Name()), path.Join(id.String(), ChunksDirname, s.Name())); err != nil {
			return nil, err
		}
	}
	if err := layout.UploadFile(ctx, bkt, filepath.Join(dir, IndexFilename), path.Join(id.String(), IndexFilename)); err != nil {
		return nil, err
	}
	meta.Canopy = canopy
	b, err := meta.Encode()
	if err != nil {
		return nil, err
	}
	if err := layout.UploadLast(ctx, bkt, id, MetaFilename, b); err != nil {
		return nil, err
	}
	return meta, nil
}

// Delete removes a block from a tenant bucket, meta.json first (see
// layout.DeleteBlock).
func Delete(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) error {
	return layout.DeleteBlock(ctx, bkt, id, MetaFilename)
}
