package bucket

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/azure"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/objstore/providers/gcs"
	"github.com/thanos-io/objstore/providers/s3"
	"github.com/thanos-io/objstore/providers/swift"
)

// NewClient returns the bucket described by cfg, instrumented with
// canopy_objstore_* metrics on reg. dataDir roots the filesystem backend when
// its directory is not set. The client is safe for concurrent use.
func NewClient(ctx context.Context, cfg Config, dataDir, name string, logger log.Logger, reg prometheus.Registerer) (objstore.InstrumentedBucket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		bkt objstore.Bucket
		err error
	)
	switch cfg.Backend {
	case Filesystem:
		dir := cfg.Filesystem.Dir
		if dir == "" {
			dir = filepath.Join(dataDir, "bucket")
		}
		bkt, err = filesystem.NewBucket(dir)
	case S3:
		bkt, err = s3.NewBucketWithConfig(logger, cfg.S3, name, nil)
	case GCS:
		bkt, err = gcs.NewBucketWithConfig(ctx, logger, cfg.GCS, name, nil)
	case Azure:
		bkt, err = azure.NewBucketWithConfig(logger, cfg.Azure, name, nil)
	case Swift:
		bkt, err = swift.NewContainerFromConfig(logger, &cfg.Swift, false, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("creating %s bucket client: %w", cfg.Backend, err)
	}
	return objstore.WrapWithMetrics(bkt, prometheus.WrapRegistererWithPrefix("canopy_", reg), name), nil
}
