// Package traceblock is the layout of trace blocks in the bucket: what a
// traces ingester ships and the compactor rewrites, and how queriers read
// them. FORMAT.md documents the bytes; a golden test pins them.
package traceblock

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// Version is the block format this package writes and reads.
const Version = 1

// File names inside a block directory.
const (
	MetaFile  = "meta.json"
	DataFile  = "data.parquet"
	BloomFile = "bloom"
)

// Signal is the directory of trace blocks under a tenant in the bucket.
const Signal = "traces"

// Meta is a block's meta.json.
type Meta struct {
	ULID    ulid.ULID `json:"ulid"`
	Version int       `json:"version"`
	// MinTime and MaxTime bound the spans of the block's traces: the
	// earliest start and the latest end, Unix ns.
	MinTime int64 `json:"minTime"`
	MaxTime int64 `json:"maxTime"`
	// MinTraceID and MaxTraceID are the first and last trace IDs, in hex.
	MinTraceID string `json:"minTraceID"`
	MaxTraceID string `json:"maxTraceID"`
	Stats      Stats  `json:"stats"`
	Source     string `json:"source"` // "ingester" or "compactor"
	// Ingester is the shipping ingester's instance ID (replicas' blocks
	// hold the same spans; the compactor merges them).
	Ingester string `json:"ingester,omitempty"`
	// Sources are the blocks a compacted block replaces.
	Sources []ulid.ULID `json:"sources,omitempty"`
}

// Stats count what a block holds.
type Stats struct {
	Traces     int64 `json:"traces"`
	Spans      int64 `json:"spans"`
	DataBytes  int64 `json:"dataBytes"`  // of data.parquet
	BloomBytes int64 `json:"bloomBytes"` // of the bloom file
}

// Dir is a block's directory in the bucket.
func Dir(tenant string, id ulid.ULID) string { return path.Join(tenant, Signal, id.String()) }

// Upload uploads the block in dir/<id>/ to the bucket; meta.json goes
// last, so a block whose meta is in the bucket is complete.
func Upload(ctx context.Context, bkt objstore.Bucket, tenant, dir string, id ulid.ULID) error {
	local := filepath.Join(dir, id.String())
	for _, name := range []string{DataFile, BloomFile, MetaFile} {
		f, err := os.Open(filepath.Join(local, name))
		if err != nil {
			return err
		}
		err = bkt.Upload(ctx, path.Join(Dir(tenant, id), name), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("uploading %s of trace block %s: %w", name, id, err)
		}
	}
	return nil
}

// ListBlocks returns the metas of a tenant's complete trace blocks that
// are not marked for deletion: those a query reads (layout.ListLiveBlocks).
func ListBlocks(ctx context.Context, bkt objstore.BucketReader, tenant string) ([]Meta, error) {
	return layout.ListLiveBlocks(ctx, bkt, tenant, Signal, ReadMeta)
}

var errNoMeta = layout.ErrNoMeta

// ReadMeta reads a block's meta.json.
func ReadMeta(ctx context.Context, bkt objstore.BucketReader, tenant string, id ulid.ULID) (Meta, error) {
	r, err := bkt.Get(ctx, path.Join(Dir(tenant, id), MetaFile))
	if bkt.IsObjNotFoundErr(err) {
		return Meta{}, errNoMeta
	}
	if err != nil {
		return Meta{}, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return Meta{}, err
	}
	return parseMeta(b, id)
}

func parseMeta(b []byte, id ulid.ULID) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("meta.json of trace block %s: %w", id, err)
	}
	if m.Version != Version {
		return Meta{}, fmt.Errorf("trace block %s has format version %d; this Canopy reads %d", id, m.Version, Version)
	}
	if m.ULID != id {
		return Meta{}, fmt.Errorf("meta.json of trace block %s names block %s", id, m.ULID)
	}
	return m, nil
}
