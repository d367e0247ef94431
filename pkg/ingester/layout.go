package ingester

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/canopy-observability/canopy/pkg/ingester/metrics"
	"github.com/canopy-observability/canopy/pkg/util/fsutil"
	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// The ingester directory's layout (<data-dir>/ingester):
//
//	layout-version         "2": one directory per signal
//	<signal>/<tenant>/     a unit's per-tenant store (metrics: a TSDB)
//	<signal>.tokens        the unit's ring tokens
//
// Layout 1 (Canopy before ingesters hosted several signals) kept the
// metrics tenants' TSDBs directly under the ingester directory and the
// ring tokens in "tokens". migrateLayout moves such a directory to layout 2
// once, on start.
const (
	layoutFile    = "layout-version"
	layoutVersion = "2"
	legacyTokens  = "tokens"
)

// migrateLayout brings dir to the current layout. It is idempotent and
// safe to interrupt: the tenants move into <metrics>.migrating first, the
// version file is written, and the staging directory takes its final name
// last; a start that finds the version file and a staging directory
// finishes the rename.
func migrateLayout(dir string, logger log.Logger) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	version := filepath.Join(dir, layoutFile)
	staging := filepath.Join(dir, metrics.Signal+".migrating")
	final := Dir(dir, metrics.Signal)
	b, err := os.ReadFile(version)
	switch {
	case err == nil:
		if v := strings.TrimSpace(string(b)); v != layoutVersion {
			return fmt.Errorf("%s says layout %q; this Canopy knows layout %s", version, v, layoutVersion)
		}
		if exists(staging) {
			return os.Rename(staging, final)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	moved := 0
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == filepath.Base(staging):
		case name == legacyTokens && !e.IsDir():
			if err := os.Rename(filepath.Join(dir, name), TokensFile(dir, metrics.Signal)); err != nil {
				return fmt.Errorf("moving the ring tokens: %w", err)
			}
		case e.IsDir() && tenant.Validate(name) == nil:
			if err := os.MkdirAll(staging, 0o750); err != nil {
				return err
			}
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(staging, name)); err != nil {
				return fmt.Errorf("moving tenant %s: %w", name, err)
			}
			moved++
		default:
			level.Warn(logger).Log("msg", "leaving an unknown entry of the ingester directory alone", "path", filepath.Join(dir, name))
		}
	}
	if err := fsutil.WriteFileSync(version, []byte(layoutVersion+"\n")); err != nil {
		return err
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return err
	}
	if exists(staging) {
		if err := os.Rename(staging, final); err != nil {
			return err
		}
	}
	if moved > 0 {
		level.Info(logger).Log("msg", "moved the metrics tenants of an older Canopy to their signal's directory", "tenants", moved, "dir", final)
	}
	return fsutil.SyncDir(dir)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
