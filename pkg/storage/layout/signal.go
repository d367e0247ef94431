package layout

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Signals: the second level of the bucket, <tenant>/<signal>/.
const (
	Metrics = "metrics"
	Logs    = "logs"
	Traces  = "traces"
	Rules   = "rules"
)

// MarkersDirname is the directory of a signal prefix holding a copy of every
// marker, so one listing finds them all.
const MarkersDirname = "markers"

// TenantBucket scopes bkt to one tenant's objects of one signal:
// <tenant>/<signal>/.
func TenantBucket(bkt objstore.Bucket, tenantID, signal string) objstore.Bucket {
	return objstore.NewPrefixedBucket(bkt, path.Join(tenantID, signal))
}

// ListTenants returns, sorted, the tenants that have objects of signal:
// those with a <tenant>/<signal>/ prefix. A tenant with only logs is not a
// metrics tenant, so the metrics compactor never indexes it.
func ListTenants(ctx context.Context, bkt objstore.BucketReader, signal string) ([]string, error) {
	var all []string
	err := bkt.Iter(ctx, "", func(name string) error {
		id := strings.TrimSuffix(name, "/")
		if strings.HasSuffix(name, "/") && tenant.Validate(id) == nil {
			all = append(all, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	var out []string
	for _, id := range all {
		want := id + "/" + signal + "/"
		found := false
		err := bkt.Iter(ctx, id+"/", func(name string) error {
			if name == want {
				found = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing the signals of tenant %s: %w", id, err)
		}
		if found {
			out = append(out, id)
		}
	}
	return out, nil
}

// UploadFile copies the local file src to dst in bkt.
func UploadFile(ctx context.Context, bkt objstore.Bucket, src, dst string) error {
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

// UploadLast writes a block's metadata object, the last object of every
// upload: a block whose metadata exists is complete.
func UploadLast(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, name string, b []byte) error {
	if err := bkt.Upload(ctx, path.Join(id.String(), name), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("uploading %s of block %s: %w", name, id, err)
	}
	return nil
}

// DeleteBlock removes block id from a tenant's signal bucket: its metadata
// object meta first, so a half-deleted block reads as a partial upload
// (never as a damaged complete block), then everything else, then its
// global deletion marker.
func DeleteBlock(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, meta string) error {
	dir := id.String()
	if err := bkt.Delete(ctx, path.Join(dir, meta)); err != nil && !bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("deleting %s of block %s: %w", meta, id, err)
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
