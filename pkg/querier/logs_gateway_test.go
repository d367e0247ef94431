package querier

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
	"github.com/canopy-observability/canopy/pkg/storegateway"
)

// TestLogsThroughStoreGateways: log blocks read through the store-gateways
// that own them give what reading the bucket directly gives — entries,
// stats of lines left out for a needle, series — and a store-gateway that
// cannot be reached is passed over for the block's next owner.
func TestLogsThroughStoreGateways(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	ctx := user.InjectOrgID(context.Background(), "t")
	// Three blocks; the second repeats some entries of the first (as a
	// replica's would), the third holds later times of one stream.
	upload := func(streams map[string][]int64) {
		entries := map[string][]logchunk.Entry{}
		for app, tss := range streams {
			for _, ts := range tss {
				line := fmt.Sprintf("app=%s ts=%d", app, ts)
				if ts%5 == 0 {
					line += " needle-in-the-haystack"
				}
				entries[app] = append(entries[app], logchunk.Entry{Timestamp: ts, Line: line})
			}
		}
		uploadLogBlock(t, bkt, "t", entries)
	}
	upload(map[string][]int64{"a": {1, 2, 3, 4, 5}, "b": {1, 5, 10}})
	upload(map[string][]int64{"a": {3, 4, 5, 6}, "c": {2}})
	upload(map[string][]int64{"a": {20, 25, 30}})

	gw := storegateway.NewLogs(bkt, time.Hour, prometheus.NewRegistry())
	good := serve(t, func(s *grpc.Server) { logsclient.RegisterStoreGateway(s, gw) })
	pool := newGatewayPool(t)
	gateways := &LogsGateways{
		// The unreachable store-gateway comes first for every block.
		Ring: fakeRing{instances: []ring.InstanceDesc{{Id: "down", Addr: unreachable(t)}, {Id: "up", Addr: good}}},
		Client: func(addr string) (*logsclient.Client, error) {
			conn, err := pool.Conn(addr)
			if err != nil {
				return nil, err
			}
			return logsclient.NewStoreGatewayClient(conn), nil
		},
	}
	direct := NewLogs(nil, nil, bkt, time.Nanosecond, 10*time.Second)
	via := NewLogs(nil, nil, bkt, time.Nanosecond, 10*time.Second)
	via.UseStoreGateways(gateways)
	// A querier in the same process as the store-gateway reads its unit
	// directly.
	local := NewLogs(nil, nil, bkt, time.Nanosecond, 10*time.Second)
	localGateways := *gateways
	localGateways.Client = func(string) (*logsclient.Client, error) { return nil, errors.New("no call expected") }
	localGateways.Local = func(id string) *storegateway.Logs {
		if id == "up" {
			return gw
		}
		return nil
	}
	local.UseStoreGateways(&localGateways)

	type result struct {
		streams                    map[string][]int64
		skippedLines, skippedBytes int64
	}
	run := func(l *Logs, needles ...string) result {
		it, err := l.Select(ctx, logql.SelectParams{
			Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "app", ".+")},
			Start:    0, End: 100, Needles: needles,
		})
		require.NoError(t, err)
		defer it.Close()
		r := result{streams: map[string][]int64{}}
		for it.Next() {
			for _, e := range it.Entries() {
				r.streams[it.Labels().String()] = append(r.streams[it.Labels().String()], e.Timestamp)
			}
		}
		require.NoError(t, it.Err())
		r.skippedLines, r.skippedBytes = logql.Skipped(it)
		return r
	}
	all := run(direct)
	require.Equal(t, map[string][]int64{`{app="a"}`: {1, 2, 3, 4, 5, 6, 20, 25, 30}, `{app="b"}`: {1, 5, 10}, `{app="c"}`: {2}}, all.streams)
	require.Equal(t, all, run(via))
	require.Equal(t, all, run(local))
	needle := run(direct, "needle-in-the-haystack")
	require.Equal(t, map[string][]int64{`{app="a"}`: {5, 20, 25, 30}, `{app="b"}`: {5, 10}}, needle.streams)
	require.Positive(t, needle.skippedLines)
	require.Equal(t, needle, run(via, "needle-in-the-haystack"))
	require.Equal(t, needle, run(local, "needle-in-the-haystack"))

	s1, err := direct.Series(ctx, 0, 100, [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, "app", "a|c")}})
	require.NoError(t, err)
	s2, err := via.Series(ctx, 0, 100, [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, "app", "a|c")}})
	require.NoError(t, err)
	require.Equal(t, []labels.Labels{labels.FromStrings("app", "a"), labels.FromStrings("app", "c")}, s2)
	require.Equal(t, s1, s2)
	s3, err := local.Series(ctx, 0, 100, [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, "app", "a|c")}})
	require.NoError(t, err)
	require.Equal(t, s1, s3)

	// With no store-gateway up, the query fails naming the block.
	gateways.Ring = fakeRing{instances: []ring.InstanceDesc{{Id: "down", Addr: unreachable(t)}}}
	_, err = via.Select(ctx, logql.SelectParams{Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "a")}, Start: 0, End: 100})
	require.ErrorContains(t, err, "no store-gateway could read log block")
}
