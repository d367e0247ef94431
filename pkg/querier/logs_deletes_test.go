package querier

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
)

// TestLogsPendingDeletes: the entries a pending deletion request deletes
// are left out of queries at once, before the compactor has touched the
// blocks; a canceled request no longer hides them.
func TestLogsPendingDeletes(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := user.InjectOrgID(context.Background(), "t")
	streams := map[string][]logchunk.Entry{}
	for _, app := range []string{"a", "b"} {
		for ts := int64(1); ts <= 6; ts++ {
			streams[app] = append(streams[app], logchunk.Entry{Timestamp: ts * 1e6, Line: fmt.Sprintf("app=%s n=%d secret=%v", app, ts, ts%2 == 0)})
		}
	}
	uploadLogBlock(t, bkt, "t", streams)

	store := logdelete.NewStore(bkt)
	l := NewLogs(nil, nil, bkt, time.Nanosecond, 10*time.Second)
	l.UseDeleteRequests(store, 0) // read the requests at every query
	read := func() map[string][]int64 {
		it, err := l.Select(ctx, logql.SelectParams{Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", ".+")}, Start: 0, End: 1e9})
		require.NoError(t, err)
		defer it.Close()
		out := map[string][]int64{}
		for it.Next() {
			for _, e := range it.Entries() {
				out[it.Labels().Get("app")] = append(out[it.Labels().Get("app")], e.Timestamp/1e6)
			}
		}
		require.NoError(t, it.Err())
		return out
	}
	all := map[string][]int64{"a": {1, 2, 3, 4, 5, 6}, "b": {1, 2, 3, 4, 5, 6}}
	require.Equal(t, all, read())

	// Entries of stream a from 2 ms to 5 ms whose line says secret=true.
	req := logdelete.Request{Version: logdelete.Version, ID: logdelete.NewID(), Query: `{app="a"} |= "secret=true"`, Start: 2, End: 5, CreatedAt: time.Now().UnixMilli()}
	require.NoError(t, store.Add(ctx, "t", req))
	require.Equal(t, map[string][]int64{"a": {1, 3, 5, 6}, "b": {1, 2, 3, 4, 5, 6}}, read())

	require.NoError(t, store.Remove(ctx, "t", req.ID))
	require.Equal(t, all, read())
}
