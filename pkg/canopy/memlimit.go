package canopy

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// SetGCPercent sets the garbage collector's GOGC to percent unless the
// GOGC environment variable is set, and returns the value in force.
func SetGCPercent(percent int) int {
	if v := os.Getenv("GOGC"); v != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(percent)
	return percent
}

// SetMemoryLimit sets the Go runtime's soft memory limit from the process's
// cgroup, as -memory-limit-ratio says (see setMemoryLimit).
func SetMemoryLimit(ratio float64, logger log.Logger) (int64, error) {
	return setMemoryLimit(ratio, memlimit.FromCgroup, logger)
}

// setMemoryLimit sets the Go runtime's soft memory limit to ratio of what
// provider says the process may use (its cgroup's memory limit), so the
// garbage collector runs harder as the process nears the limit instead of
// letting garbage grow the heap until the kernel kills it. GOMEMLIMIT in the
// environment wins; a ratio of 0 or no limit leaves the runtime's default
// (none). It returns the limit in force.
func setMemoryLimit(ratio float64, provider memlimit.Provider, logger log.Logger) (int64, error) {
	if ratio == 0 {
		return debug.SetMemoryLimit(-1), nil
	}
	if ratio < 0 || ratio > 1 {
		return 0, fmt.Errorf("-memory-limit-ratio %v: must be between 0 and 1", ratio)
	}
	limit, err := memlimit.Set(memlimit.WithRatio(ratio), memlimit.WithProvider(provider))
	if err != nil {
		// Not knowing the cgroup's limit is no reason not to run.
		level.Warn(logger).Log("msg", "could not read the process's memory limit; the Go runtime has none", "err", err)
		return limit, nil
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		level.Info(logger).Log("msg", "Go memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
	} else if limit > 0 && limit < 1<<62 {
		level.Info(logger).Log("msg", "Go memory limit set from the cgroup's", "bytes", limit, "ratio", ratio)
	}
	return limit, nil
}
