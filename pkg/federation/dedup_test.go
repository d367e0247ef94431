package federation

import (
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
)

// TestMergeReplicas: replicas scraping the same counter at other moments
// merge into one replica's sampling, switching only across a gap, the
// counter never going down at a switch.
func TestMergeReplicas(t *testing.T) {
	mk := func(ts []int64, vs []float64) []chunks.Sample {
		out := make([]chunks.Sample, len(ts))
		for i := range ts {
			out[i] = fsample{t: ts[i], f: vs[i]}
		}
		return out
	}
	// A scrapes at 0, 15, 30, then misses 45 and 60; B scrapes 5 s later,
	// its counts a little behind A's.
	a := mk([]int64{0, 15_000, 30_000, 75_000, 90_000}, []float64{10, 20, 30, 75, 90})
	b := mk([]int64{5_000, 20_000, 35_000, 50_000, 65_000, 80_000}, []float64{12, 22, 29, 50, 65, 80})
	got := mergeReplicas([][]chunks.Sample{a, b}, true)
	var ts []int64
	var vs []float64
	for _, s := range got {
		ts = append(ts, s.T())
		vs = append(vs, s.F())
	}
	// A until its gap, B's samples through it (29 held at 30: a counter
	// does not go down at a switch), B on while it has samples, A's last.
	require.Equal(t, []int64{0, 15_000, 30_000, 35_000, 50_000, 65_000, 80_000, 90_000}, ts)
	require.Equal(t, []float64{10, 20, 30, 30, 50, 65, 80, 90}, vs)
	// A gauge is taken as it is.
	got = mergeReplicas([][]chunks.Sample{a, b}, false)
	require.Equal(t, 29.0, got[3].F())
	// Identical samples (replicas of the same writes) merge to one copy.
	got = mergeReplicas([][]chunks.Sample{a, a}, true)
	require.Len(t, got, len(a))
	// One replica empty: the other as it is.
	require.Equal(t, a, mergeReplicas([][]chunks.Sample{nil, a}, true))
}
