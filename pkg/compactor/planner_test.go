package compactor

import (
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
)

const h = int64(3600_000)

func ref(n uint64, mint, maxt int64) layout.BlockRef {
	return layout.BlockRef{ID: ulid.MustNew(n, nil), MinTime: mint, MaxTime: maxt}
}

func ids(js []job) [][]uint64 {
	var out [][]uint64
	for _, j := range js {
		var g []uint64
		for _, b := range j.Blocks {
			g = append(g, b.ID.Time())
		}
		out = append(out, g)
	}
	return out
}

func TestPlan(t *testing.T) {
	ranges := []int64{2 * h, 12 * h, 24 * h}
	for name, tc := range map[string]struct {
		in    []layout.BlockRef
		want  [][]uint64
		kinds []string
	}{
		"nothing":      {},
		"single block": {in: []layout.BlockRef{ref(1, 0, 2*h)}},
		"replicas overlap": {
			in:    []layout.BlockRef{ref(1, 0, 2*h), ref(2, 0, 2*h), ref(3, 0, 2*h), ref(4, 2*h, 4*h)},
			want:  [][]uint64{{1, 2, 3}},
			kinds: []string{"vertical"},
		},
		"partial overlap chains": {
			in:   []layout.BlockRef{ref(1, 0, 2*h), ref(2, h, 3*h), ref(3, 2*h+h/2, 4*h), ref(4, 5*h, 6*h)},
			want: [][]uint64{{1, 2, 3}}, kinds: []string{"vertical"},
		},
		"window not yet passed": {
			in: []layout.BlockRef{ref(1, 0, 2*h), ref(2, 2*h, 4*h)},
		},
		"window passed: level compaction": {
			in:    []layout.BlockRef{ref(1, 0, 2*h), ref(2, 2*h, 4*h), ref(3, 10*h, 12*h), ref(4, 12*h, 14*h)},
			want:  [][]uint64{{1, 2, 3}},
			kinds: []string{"level"},
		},
		"12h blocks into 24h": {
			in:    []layout.BlockRef{ref(1, 0, 12*h), ref(2, 12*h, 24*h), ref(3, 24*h, 26*h)},
			want:  [][]uint64{{1, 2}},
			kinds: []string{"level"},
		},
		"block crossing a 12h window joins at 24h": {
			in:    []layout.BlockRef{ref(1, 11*h, 13*h), ref(2, 10*h, 11*h), ref(3, 24*h, 26*h)},
			want:  [][]uint64{{2, 1}},
			kinds: []string{"level"},
		},
		"block crossing every window is left alone": {
			in: []layout.BlockRef{ref(1, 23*h, 25*h), ref(2, 22*h, 23*h), ref(3, 48*h, 50*h)},
		},
		"overlapping blocks wait before levelling": {
			in:    []layout.BlockRef{ref(1, 0, 2*h), ref(2, 0, 2*h), ref(3, 2*h, 4*h), ref(4, 4*h, 6*h), ref(5, 12*h, 14*h)},
			want:  [][]uint64{{1, 2}, {3, 4}},
			kinds: []string{"vertical", "level"},
		},
		"negative times align down": {
			in:    []layout.BlockRef{ref(1, -4*h, -2*h), ref(2, -2*h, 0), ref(3, 0, 2*h)},
			want:  [][]uint64{{1, 2}},
			kinds: []string{"level"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := plan(tc.in, ranges)
			require.Equal(t, tc.want, ids(got))
			for i, j := range got {
				require.Equal(t, tc.kinds[i], j.Kind)
			}
		})
	}
}

func TestDurationList(t *testing.T) {
	var d DurationList
	require.NoError(t, d.Set("2h, 12h,24h"))
	require.Equal(t, "2h0m0s,12h0m0s,24h0m0s", d.String())
	require.Equal(t, []int64{2 * h, 12 * h, 24 * h}, d.Millis())
	require.Error(t, d.Set("2h,x"))
}
