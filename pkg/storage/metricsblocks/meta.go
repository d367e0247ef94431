// Package metricsblocks is Canopy's metrics object layout: Prometheus TSDB
// blocks under <tenant>/metrics/ in the bucket, their meta.json, and how they
// are uploaded, indexed and deleted. What every signal shares (prefixes,
// markers, bucket index, upload order) is package layout. The metrics layout
// is documented in README.md beside this file and pinned by TestLayoutGolden.
package metricsblocks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

// Object names inside a tenant's metrics prefix.
const (
	MetaFilename  = "meta.json"
	IndexFilename = "index"
	ChunksDirname = "chunks"
)

// metaVersion1 is the only meta.json version Prometheus writes.
const metaVersion1 = 1

// Block sources recorded in meta.json.
const (
	SourceIngester  = "ingester"
	SourceCompactor = "compactor"
)

// Meta is a block's meta.json: Prometheus's own fields, plus a "canopy"
// section Prometheus ignores.
type Meta struct {
	tsdb.BlockMeta
	Canopy CanopyMeta `json:"canopy"`
}

// CanopyMeta is what Canopy adds to a block's meta.json.
type CanopyMeta struct {
	// Tenant owning the block.
	Tenant string `json:"tenant"`
	// Source is SourceIngester or SourceCompactor.
	Source string `json:"source"`
	// Ingester is the ring ID of the ingester that cut the block; with
	// replication several ingesters ship overlapping blocks of the same data.
	Ingester string `json:"ingester,omitempty"`
}

// TenantBucket scopes bkt to a tenant's metrics: <tenant>/metrics/.
func TenantBucket(bkt objstore.Bucket, tenantID string) objstore.Bucket {
	return layout.TenantBucket(bkt, tenantID, layout.Metrics)
}

// ListTenants returns the tenants that have metrics in the bucket.
func ListTenants(ctx context.Context, bkt objstore.BucketReader) ([]string, error) {
	return layout.ListTenants(ctx, bkt, layout.Metrics)
}

// ReadRef is the metrics blocks' layout.ReadRef: the bucket index entry of a
// block, from its meta.json.
func ReadRef(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (layout.BlockRef, error) {
	m, err := ReadMeta(ctx, bkt, id)
	if err != nil {
		return layout.BlockRef{}, err
	}
	return layout.BlockRef{
		ID: id, MinTime: m.MinTime, MaxTime: m.MaxTime,
		Level: m.Compaction.Level, Source: m.Canopy.Source,
		Series: m.Stats.NumSeries, Samples: m.Stats.NumSamples,
	}, nil
}

// UpdateBucketIndex is layout.UpdateBucketIndex for a tenant's metrics.
func UpdateBucketIndex(ctx context.Context, bkt objstore.Bucket, old *layout.BucketIndex, now time.Time) (*layout.BucketIndex, layout.ScanResult, error) {
	return layout.UpdateBucketIndex(ctx, bkt, old, now, ReadRef)
}

// ReadMeta reads <id>/meta.json from a tenant bucket. The error satisfies
// bkt.IsObjNotFoundErr when the block has no meta.json (a partial upload).
func ReadMeta(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*Meta, error) {
	r, err := bkt.Get(ctx, path.Join(id.String(), MetaFilename))
	if err != nil {
		return nil, err
	}
	defer r.Close() //nolint:errcheck // read-only
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading meta.json of block %s: %w", id, err)
	}
	return DecodeMeta(b)
}

// DecodeMeta parses a meta.json and checks the fields Canopy relies on.
func DecodeMeta(b []byte) (*Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing meta.json: %w", err)
	}
	if m.Version != metaVersion1 {
		return nil, fmt.Errorf("meta.json of block %s: unsupported version %d", m.ULID, m.Version)
	}
	if m.MinTime > m.MaxTime {
		return nil, fmt.Errorf("meta.json of block %s: minTime %d after maxTime %d", m.ULID, m.MinTime, m.MaxTime)
	}
	return &m, nil
}

// ReadLocalMeta reads the meta.json of a block directory on local disk.
func ReadLocalMeta(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFilename))
	if err != nil {
		return nil, err
	}
	return DecodeMeta(b)
}

// Encode returns the meta.json bytes.
func (m *Meta) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "\t")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
