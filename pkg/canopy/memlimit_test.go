package canopy

import (
	"runtime/debug"
	"testing"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/require"
)

func TestSetMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	t.Setenv("GOMEMLIMIT", "")
	cgroup := func() (uint64, error) { return 2 << 30, nil }

	limit, err := setMemoryLimit(0.9, cgroup, log.NewNopLogger())
	require.NoError(t, err)
	require.InDelta(t, 0.9*(2<<30), float64(limit), 1)
	require.Equal(t, limit, debug.SetMemoryLimit(-1), "the runtime's limit")

	debug.SetMemoryLimit(before)
	limit, err = setMemoryLimit(0, cgroup, log.NewNopLogger())
	require.NoError(t, err)
	require.Equal(t, before, limit, "0 leaves the runtime's limit alone")

	t.Setenv("GOMEMLIMIT", "123MiB")
	debug.SetMemoryLimit(123 << 20)
	limit, err = setMemoryLimit(0.9, cgroup, log.NewNopLogger())
	require.NoError(t, err)
	require.Equal(t, int64(123<<20), limit, "GOMEMLIMIT wins")

	_, err = setMemoryLimit(1.5, cgroup, log.NewNopLogger())
	require.ErrorContains(t, err, "-memory-limit-ratio")
}

func TestSetGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	t.Setenv("GOGC", "")
	require.Equal(t, 75, SetGCPercent(75))
	require.Equal(t, 75, debug.SetGCPercent(75), "the runtime's")
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	require.Equal(t, 150, SetGCPercent(75), "GOGC wins")
	require.Equal(t, 150, debug.SetGCPercent(150))
}
