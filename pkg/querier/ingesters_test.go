package querier

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/grafana/dskit/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
)

// TestIngesterReplicasMerge checks that the series of replication factor 3
// come back once each, with the samples of every replica merged: replica r
// missed every third sample from the r-th, so any two of them hold all.
func TestIngesterReplicasMerge(t *testing.T) {
	const n = 5
	mint, maxt := base, base+hour
	all := want(testSeries(n, mint, maxt, nil), mint, maxt)
	for _, tc := range []struct {
		name    string
		down    []int // replicas nothing answers for
		wantErr string
	}{
		{name: "three replicas"},
		{name: "one replica unreachable", down: []int{1}},
		{name: "two replicas unreachable", down: []int{0, 2}, wantErr: "too many ingesters failed (2, at most 1 may): ingester ingester-0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var instances []ring.InstanceDesc
			for r := range 3 {
				addr := unreachable(t)
				if !slices.Contains(tc.down, r) {
					b := openTestBlock(t, testSeries(n, mint, maxt, func(ts int64) bool { return (ts-base)/step%3 != int64(r) }))
					addr = serve(t, func(s *grpc.Server) { client.RegisterIngesterServer(s, &fakeIngester{block: b}) })
				}
				instances = append(instances, ring.InstanceDesc{Id: fmt.Sprintf("ingester-%d", r), Addr: addr})
			}
			q := NewIngesterQueryable(fakeRing{instances: instances, maxErrors: 1}, newPool(t), 64<<20)
			got, err := selectAll(t, q, mint, maxt)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, all, got)
		})
	}
}

// TestUnreachableIngestersAre5xx: when too many ingesters cannot be reached
// the query fails as a server-side error (500, errorType internal), not as
// a bad query (422 execution), so clients and alerts see the server's fault.
func TestUnreachableIngestersAre5xx(t *testing.T) {
	instances := []ring.InstanceDesc{{Id: "ingester-0", Addr: unreachable(t)}, {Id: "ingester-1", Addr: unreachable(t)}}
	q := NewIngesterQueryable(fakeRing{instances: instances, maxErrors: 0}, newPool(t), 64<<20)
	var cfg Config
	flagext.DefaultValues(&cfg)
	reg := prometheus.NewRegistry()
	api := NewAPI(cfg, NewEngine(cfg, promslog.NewNopLogger(), reg), q, nil, nil, nil, promslog.NewNopLogger(), reg, reg)
	rec, res := queryRange(t, api, "up", base, base+hour, time.Minute)
	require.Equal(t, http.StatusInternalServerError, rec.Code, rec.Body.String())
	require.Equal(t, "internal", res.ErrorType)
	require.Contains(t, res.Error, "too many ingesters failed")
}
