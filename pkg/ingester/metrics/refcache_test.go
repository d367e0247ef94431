package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
)

func TestRefCache(t *testing.T) {
	c := newRefCache()
	symbols := []string{"", "__name__", "up", "job", "a", "b"}
	refsA, refsB := []uint32{1, 2, 3, 4}, []uint32{1, 2, 3, 5}
	a, b := labels.FromStrings("__name__", "up", "job", "a"), labels.FromStrings("__name__", "up", "job", "b")
	ha, _ := hashRefs(refsA, symbols)
	require.Equal(t, hashLabels(a), ha, "a pushed series and its labels hash alike")
	_, inRange := hashRefs([]uint32{1, 9}, symbols)
	require.False(t, inRange)

	_, _, ok := c.get(ha, refsA, symbols)
	require.False(t, ok)
	c.created(a)
	got, ref, ok := c.get(ha, refsA, symbols)
	require.True(t, ok)
	require.Zero(t, ref, "known labels, reference not yet")
	require.Equal(t, a, got)
	c.put(ha, a, 7)
	_, ref, _ = c.get(ha, refsA, symbols)
	require.EqualValues(t, 7, ref)
	_, _, ok = c.get(ha, refsB, symbols)
	require.False(t, ok, "same hash, other labels: no hit")

	// b forced onto a's hash: a collision keeps both apart.
	c.put(ha, b, 8)
	_, ref, ok = c.get(ha, refsB, symbols)
	require.True(t, ok)
	require.EqualValues(t, 8, ref)
	require.Equal(t, 2, c.len())

	c.deleted(map[chunks.HeadSeriesRef]labels.Labels{7: a})
	_, _, ok = c.get(ha, refsA, symbols)
	require.False(t, ok)
	require.Equal(t, 1, c.len())
}

// TestPushAppendsByReference: the second push of a series finds it in the
// cache with its reference and the head's labels; a series the head drops
// leaves the cache.
func TestPushAppendsByReference(t *testing.T) {
	i := newTestIngester(t, t.TempDir(), defaultLimits())
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()
	ctx := user.InjectOrgID(context.Background(), "t")
	now := time.Now().UnixMilli()
	_, err := i.Push(ctx, request(now, "a", "b"))
	require.NoError(t, err)
	req := request(now+1000, "a", "b")
	db := i.getTSDB("t")
	require.Equal(t, 2, db.refs.len())
	for _, ts := range req.Timeseries {
		h, _ := hashRefs(ts.LabelsRefs, req.Symbols)
		_, ref, ok := db.refs.get(h, ts.LabelsRefs, req.Symbols)
		require.True(t, ok)
		require.NotZero(t, ref)
	}
	_, err = i.Push(ctx, req)
	require.NoError(t, err)
	require.Equal(t, map[string][]float64{"a": {1, 1}, "b": {2, 2}}, query(t, i, "t"))

	// Compacting the head past the series' samples drops them from it.
	require.NoError(t, db.Head().Truncate(now+2000))
	require.Zero(t, db.refs.len())
}

// TestRefCacheAfterReplay: the series a WAL replay creates are cached with
// the head's labels, and their first push after the restart learns the
// reference.
func TestRefCacheAfterReplay(t *testing.T) {
	dir := t.TempDir()
	i := newTestIngester(t, dir, defaultLimits())
	ctx := user.InjectOrgID(context.Background(), "t")
	now := time.Now().UnixMilli()
	_, err := i.Push(ctx, request(now, "a", "b", "c"))
	require.NoError(t, err)
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i))

	i = newTestIngester(t, dir, defaultLimits())
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), i)) }()
	_, err = i.Push(ctx, request(now+1000, "a"))
	require.NoError(t, err)
	db := i.getTSDB("t")
	require.Equal(t, 3, db.refs.len(), "replayed series are cached")
	req := request(now+2000, "a", "b")
	known := 0
	for _, ts := range req.Timeseries {
		h, _ := hashRefs(ts.LabelsRefs, req.Symbols)
		if _, ref, ok := db.refs.get(h, ts.LabelsRefs, req.Symbols); ok && ref != 0 {
			known++
		}
	}
	require.Equal(t, 1, known, "only the pushed series has learned its reference")
}
