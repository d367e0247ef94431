package querier

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks/blockstest"
	"github.com/canopy-observability/canopy/pkg/storegateway"
)

// blocksFixture is a tenant with two 2h blocks in the bucket index, each
// held by every store-gateway.
type blocksFixture struct {
	series []blockstest.Series // all the data
	ids    []string            // the blocks, in time order
	blocks map[string]tsdb.BlockReader
	bkt    objstore.Bucket
}

func newBlocksFixture(t *testing.T) *blocksFixture {
	t.Helper()
	const n = 4
	f := &blocksFixture{series: testSeries(n, base, base+4*hour, nil), blocks: map[string]tsdb.BlockReader{}, bkt: objstore.NewInMemBucket()}
	idx := &layout.BucketIndex{Version: layout.BucketIndexVersion, UpdatedAt: time.Now().Unix()}
	for start := base; start < base+4*hour; start += 2 * hour {
		b := openTestBlock(t, testSeries(n, start, start+2*hour, nil))
		m := b.Meta()
		f.ids = append(f.ids, m.ULID.String())
		f.blocks[m.ULID.String()] = b
		idx.Blocks = append(idx.Blocks, layout.BlockRef{ID: m.ULID, MinTime: m.MinTime, MaxTime: m.MaxTime, Level: 1, Source: metricsblocks.SourceIngester})
	}
	require.NoError(t, layout.WriteBucketIndex(context.Background(), metricsblocks.TenantBucket(f.bkt, tenantID), idx))
	return f
}

// queryable serves the fixture's blocks from gateways (nil: unreachable)
// and returns the querier's view of them with the gateways' addresses.
func (f *blocksFixture) queryable(t *testing.T, gateways []*fakeGateway) (*BlocksQueryable, []string) {
	t.Helper()
	var (
		instances []ring.InstanceDesc
		addrs     []string
	)
	for i, g := range gateways {
		addr := unreachable(t)
		if g != nil {
			addr = serve(t, func(s *grpc.Server) { storegateway.RegisterServer(s, g) })
		}
		addrs = append(addrs, addr)
		instances = append(instances, ring.InstanceDesc{Id: fmt.Sprintf("store-gateway-%d", i), Addr: addr})
	}
	return NewBlocksQueryable(f.bkt, fakeRing{instances: instances}, newGatewayPool(t), 64<<20, time.Minute), addrs
}

// TestStoreGatewayRetriesOtherReplica checks that blocks a store-gateway
// could not read are read from another replica, and the query gets every
// sample.
func TestStoreGatewayRetriesOtherReplica(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first       *firstCall
		unreachable bool // the second store-gateway
	}{
		{name: "the first replica asked cannot read the blocks", first: &firstCall{reason: "index: bucket unavailable"}},
		{name: "the first replica asked fails the call", first: &firstCall{err: errors.New("store-gateway is stopping")}},
		{name: "a replica is unreachable", unreachable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newBlocksFixture(t)
			gateways := []*fakeGateway{{blocks: f.blocks, first: tc.first}, {blocks: f.blocks, first: tc.first}}
			serving := gateways
			if tc.unreachable {
				serving = []*fakeGateway{gateways[0], nil}
			}
			q, _ := f.queryable(t, serving)
			got, err := selectAll(t, q, base, base+4*hour)
			require.NoError(t, err)
			require.Equal(t, want(f.series, base, base+4*hour), got)

			if tc.first == nil {
				return
			}
			asked := 0
			for _, g := range gateways {
				ids := g.askedFor()
				require.ElementsMatch(t, uniq(ids), ids, "no store-gateway is asked twice for a block")
				asked += len(ids)
			}
			require.Greater(t, asked, len(f.ids), "a block was asked of the other replica")
		})
	}
}

// TestBlockNoStoreGatewayCanRead checks that a block of the bucket index no
// store-gateway can read fails the query, with an error naming the block
// and why each store-gateway could not read it.
func TestBlockNoStoreGatewayCanRead(t *testing.T) {
	f := newBlocksFixture(t)
	bad := f.ids[1]
	for _, tc := range []struct {
		name     string
		gateways []*fakeGateway
		// want holds what the error must say, with %[1]s and %[2]s for the
		// store-gateways' addresses.
		want []string
	}{
		{
			name: "each replica says why",
			gateways: []*fakeGateway{
				{blocks: f.blocks, broken: map[string]string{bad: "index: object not found in the bucket"}},
				{blocks: f.blocks, broken: map[string]string{bad: "chunk 5 in segment 000001: checksum mismatch"}},
			},
			want: []string{
				"%[1]s: index: object not found in the bucket",
				"%[2]s: chunk 5 in segment 000001: checksum mismatch",
			},
		},
		{
			name: "a replica fails every call",
			gateways: []*fakeGateway{
				{blocks: f.blocks, broken: map[string]string{bad: "meta.json: no such object"}},
				{blocks: f.blocks, fail: errors.New("out of memory")},
			},
			want: []string{
				"%[1]s: meta.json: no such object",
				"store-gateway %[2]s: rpc error: code = Unknown desc = out of memory",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, addrs := f.queryable(t, tc.gateways)
			_, err := selectAll(t, q, base, base+4*hour)
			require.ErrorContains(t, err, fmt.Sprintf("consistency check failed: 1 of tenant %s's blocks in the queried range could not be read by any store-gateway: %s (", tenantID, bad))
			for _, w := range tc.want {
				require.ErrorContains(t, err, fmt.Sprintf(w, addrs[0], addrs[1]))
			}
			require.NotContains(t, err.Error(), f.ids[0], "the block that was read is not named")
		})
	}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
