package ruler

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/middleware"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"

	"github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/rpc"
)

// localRules is one ruler as the querier API's RuleSource.
type localRules struct{ r *Ruler }

func (l localRules) Rules(ctx context.Context) v1.RulesRetriever { return l.r.Rules(ctx) }
func (localRules) Alertmanagers(context.Context) v1.AlertmanagerRetriever {
	return nil
}
func (localRules) ServesRulerConfigAPI() bool { return false }

// serveRuleState serves r's rule state over gRPC as a Canopy process does
// and returns the address.
func serveRuleState(t *testing.T, r *Ruler) string {
	local := querier.NewAPI(querier.Config{}, nil, nil, nil, nil, nil, nil, prometheus.NewRegistry(), prometheus.NewRegistry())
	local.UseRules(localRules{r})
	srv := grpc.NewServer(rpc.ServerOption(), grpc.UnaryInterceptor(middleware.ServerUserHeaderInterceptor))
	RegisterServer(srv, local, api.PrefixPrometheusV1)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// TestRuleStateOfEveryRuler: the rule state API answers the groups of
// every ruler in the ring, each once and sorted, and fails naming a ruler
// that does not answer.
func TestRuleStateOfEveryRuler(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	putGroups(t, bkt, 24) // groups g0…g23, tenants t0 (even) and t1 (odd)
	cfg := testConfig(t)
	ev := &evaluations{got: map[string]map[int64][]string{}}
	addrs := map[string]string{} // ring address → gRPC address
	var rulers []*Ruler
	for i, id := range []string{"ruler-a", "ruler-b"} {
		r := startRulerAt(t, cfg, id, i+1, bkt, ev.pusher(id))
		defer services.StopAndAwaitTerminated(context.Background(), r) //nolint:errcheck
		addrs["127.0.0.1:"+strconv.Itoa(i+1)] = serveRuleState(t, r)
		rulers = append(rulers, r)
	}
	var mu sync.Mutex // the rulers are asked at once
	conns := map[string]*grpc.ClientConn{}
	dial := func(addr string) (grpc.ClientConnInterface, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := conns[addr]; ok {
			return c, nil
		}
		cfg := rpc.DefaultClientConfig()
		c, err := cfg.Dial(addrs[addr])
		if err != nil {
			return nil, err
		}
		conns[addr] = c
		return c, nil
	}
	state := NewRuleState(rulers[0].Ring(), dial)
	get := func(path string) (int, []byte) {
		req := httptest.NewRequest(http.MethodGet, api.PrefixPrometheusV1+path, nil)
		req = req.WithContext(user.InjectOrgID(req.Context(), "t0"))
		rec := httptest.NewRecorder()
		state.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	var res struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Name string `json:"name"`
			} `json:"groups"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		code, body := get("rules")
		if code != http.StatusOK || json.Unmarshal(body, &res) != nil {
			return false
		}
		held := func(r *Ruler) int {
			if rr := r.Rules(user.InjectOrgID(context.Background(), "t0")); rr != nil {
				return len(rr.RuleGroups())
			}
			return 0
		}
		return len(res.Data.Groups) == 12 && held(rulers[0]) > 0 && held(rulers[1]) > 0
	}, 15*time.Second, 100*time.Millisecond, "tenant t0's 12 groups, from both rulers")
	var names []string
	for _, g := range res.Data.Groups {
		names = append(names, g.Name)
	}
	var want []string
	for i := 0; i < 24; i += 2 {
		want = append(want, "g"+strconv.Itoa(i))
	}
	slices.Sort(want) // by name, as Prometheus lists groups of one file
	require.Equal(t, want, names)

	code, body := get("alerts")
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.JSONEq(t, `{"status":"success","data":{"alerts":[]}}`, string(body))

	code, body = get("rules?type=bad")
	require.Equal(t, http.StatusBadRequest, code, "%s", body)

	// A ruler that does not answer fails the request, named.
	mu.Lock()
	addrs["127.0.0.1:2"] = "127.0.0.1:1"
	delete(conns, "127.0.0.1:2")
	mu.Unlock()
	code, body = get("rules")
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	require.Contains(t, string(body), "127.0.0.1:2")
}
