package blocks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
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
		if err := uploadFile(ctx, bkt, filepath.Join(dir, ChunksDirname, s.Name()), path.Join(id.String(), ChunksDirname, s.Name())); err != nil {
			return nil, err
		}
	}
	if err := uploadFile(ctx, bkt, filepath.Join(dir, IndexFilename), path.Join(id.String(), IndexFilename)); err != nil {
		return nil, err
	}
	meta.Canopy = canopy
	b, err := meta.Encode()
	if err != nil {
		return nil, err
	}
	if err := bkt.Upload(ctx, path.Join(id.String(), MetaFilename), bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("uploading meta.json of block %s: %w", id, err)
	}
	return meta, nil
}

func uploadFile(ctx context.Context, bkt objstore.Bucket, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("opening %s: %w", src, err)
	}
	defer f.Close() //nolint:errcheck // read-only
	if err := bkt.Upload(ctx, dst, f); err != nil {
		return fmt.Errorf("uploading %s: %w", dst, err)
	}
	return nil
}

// Delete removes a block from a tenant bucket: meta.json first, so that a
// half-deleted block reads as a partial upload (never as a damaged complete
// block), then everything else, then its global marker.
func Delete(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) error {
	dir := id.String()
	if err := bkt.Delete(ctx, path.Join(dir, MetaFilename)); err != nil && !bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("deleting meta.json of block %s: %w", id, err)
	}
	var names []string
	if err := bkt.Iter(ctx, dir, func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		return fmt.Errorf("listing block %s: %w", id, err)
	}
	for _, n := range names {
		if err := bkt.Delete(ctx, n); err != nil && !bkt.IsObjNotFoundErr(err) {
			return fmt.Errorf("deleting %s: %w", n, err)
		}
	}
	if err := bkt.Delete(ctx, globalMarkerName(id, DeletionMarkFilename)); err != nil && !bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("deleting deletion marker of block %s: %w", id, err)
	}
	return nil
}
