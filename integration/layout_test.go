package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestMicroservicesLayout runs the layout the README describes: three
// `write` processes (distributor + ingester, RF 3), two `read` (query-frontend
// + querier) and two `backend` (store-gateway + compactor) on loopback,
// sharing one bucket and one memberlist cluster, each given only its
// -target and -instance-id. Writes go to the write processes, queries to the
// read processes; after the ingesters flushed and their disks were wiped,
// the read processes answer the same from the bucket through the backend
// processes.
func TestMicroservicesLayout(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	nodes := newCanopyCluster(t, logs, []string{"write", "write", "write", "read", "read", "backend", "backend"},
		"-auth.multitenancy-enabled",
		"-ingester.replication-factor=3",
		"-store-gateway.replication-factor=2",
		"-ingester.tsdb.block-range=10m",
		"-compactor.block-ranges=10m,1h,2h",
		"-querier.query-ingesters-within=0",
		"-querier.query-store-after=0",
		"-querier.bucket-index-ttl=1s",
	)
	writers, readers, backends := nodes[:3], nodes[3:5], nodes[5:]
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 90*time.Second)
	}
	var ingesterIDs []string
	for _, n := range writers {
		ingesterIDs = append(ingesterIDs, n.id)
	}
	// Writers and readers (which read the ingester ring) see the same three
	// ingesters: one cluster, each advertising its own gRPC address.
	waitRingActive(t, append(append([]*canopyNode{}, writers...), readers...), ingesterIDs, 60*time.Second)

	// Each process serves only its components' APIs.
	for _, n := range readers {
		r, err := pushV1(n.url(), storeTenant, &prompb.WriteRequest{})
		if err != nil || r.code != http.StatusNotFound {
			t.Fatalf("push to %s (read): %v %s, want 404", n.id, err, r)
		}
	}
	for _, n := range append(append([]*canopyNode{}, writers...), backends...) {
		r, err := do(http.MethodGet, n.url()+"/prometheus/api/v1/query?query=1", storeTenant, "", nil, nil)
		if err != nil || r.code != http.StatusNotFound {
			t.Fatalf("query to %s: %v %s, want 404", n.id, err, r)
		}
	}

	end := time.Now().Add(-time.Minute).Truncate(storeStep).UnixMilli()
	start := end - int64(storeSamples-1)*storeStep.Milliseconds()
	for k := 0; k < storeSamples; k++ {
		req := &prompb.WriteRequest{}
		for i := 0; i < storeSeries; i++ {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: storeMetric}, {Name: "job", Value: fmt.Sprintf("j%d", i%3)}, {Name: "series", Value: fmt.Sprintf("s%02d", i)}},
				Samples: []prompb.Sample{{Value: storeValue(i, k), Timestamp: start + int64(k)*storeStep.Milliseconds()}},
			})
		}
		mustPushV1(t, writers[k%len(writers)].url(), storeTenant, req)
	}

	before, err := storeAnswers(t, api{base: readers[0].url() + "/prometheus", tenant: storeTenant}, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if raw := before["raw"].([]series); len(raw) != storeSeries || len(raw[0].Points) != storeSamples {
		t.Fatalf("from the ingesters: %d series, want %d with %d samples each", len(raw), storeSeries, storeSamples)
	}
	checkAggregates(t, api{base: readers[1].url() + "/prometheus", tenant: storeTenant}, end)

	// Admin paths need the token outside -target=all.
	for _, path := range []string{"/ingester/flush", "/config", "/metrics"} {
		r, err := do(http.MethodPost, writers[0].url()+path, "", "", nil, map[string]string{"Authorization": ""})
		if err != nil || r.code != http.StatusUnauthorized {
			t.Fatalf("%s without the admin token: %v %s, want 401", path, err, r)
		}
	}
	postEach(t, writers, "/ingester/flush")
	postEach(t, backends, "/compactor/run")

	// The ingesters restart with empty disks: what they held is only in the
	// bucket now.
	restartWiped(t, writers)
	waitRingActive(t, append(append([]*canopyNode{}, writers...), readers...), ingesterIDs, 60*time.Second)

	for _, rd := range readers {
		a := api{base: rd.url() + "/prometheus", tenant: storeTenant}
		var after answers
		eventually(t, 60*time.Second, time.Second, rd.id+" answers from the bucket", func() error {
			after, err = storeAnswers(t, a, start, end)
			return err
		})
		diffAnswers(t, after, before)
		checkAggregates(t, a, end)
	}
	if sumMetric(t, backends, "canopy_store_gateway_blocks_queried_total") == 0 {
		t.Error("no backend store-gateway read a block")
	}
	for _, n := range append(append([]*canopyNode{}, writers...), readers...) {
		r, err := do(http.MethodGet, n.url()+"/metrics", "", "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(r.body), "canopy_store_gateway_blocks_queried_total") {
			t.Errorf("%s runs a store-gateway", n.id)
		}
	}
	if !t.Failed() {
		t.Logf("write ×3, read ×2, backend ×2: %d answers identical from the ingesters and, after a wipe, from the bucket", len(before))
	}
}

// TestRestartedSeedRejoins: three processes whose -memberlist.join names only
// node 1; node 1 is killed with SIGKILL and restarted. It skips its own
// address when joining, the others rejoin it periodically, and one cluster
// of three forms again: writes through node 1 reach a quorum.
func TestRestartedSeedRejoins(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	nodes := newCanopyNodes(t, logs, 3, "-ingester.replication-factor=3")
	seed := nodes[0].mlAddr()
	for _, n := range nodes {
		// Every node names node 1 only (-memberlist.join adds to the list:
		// the cluster's list is dropped), at the default rejoin interval.
		var args []string
		for _, a := range n.args {
			if !strings.HasPrefix(a, "-memberlist.join=") && !strings.HasPrefix(a, "-memberlist.rejoin-interval=") {
				args = append(args, a)
			}
		}
		n.args = append(args, "-memberlist.join="+seed)
	}
	ids := startRing(t, nodes)

	nodes[0].kill()
	// Restart only once the others gossip without it: a seed back before
	// that is found again by their gossip, whatever the join does.
	eventually(t, 60*time.Second, 250*time.Millisecond, "nodes 2 and 3 see node 1 gone from memberlist", func() error {
		for _, n := range nodes[1:] {
			m, err := memberlistMembers(n)
			if err != nil {
				return err
			}
			if m != 2 {
				return fmt.Errorf("%s has %d memberlist members", n.id, m)
			}
		}
		return nil
	})
	restarted := time.Now()
	nodes[0].start(t)
	nodes[0].waitReady(t, 90*time.Second)
	waitRingActive(t, nodes, ids, 120*time.Second)
	t.Logf("one cluster of three again %s after the seed's restart", time.Since(restarted).Round(time.Second))

	ts := time.Now().UnixMilli()
	eventually(t, 30*time.Second, 500*time.Millisecond, "a write through the restarted seed", func() error {
		r, err := pushV1(nodes[0].url(), "", loadRequest(1, ts))
		if err != nil {
			return err
		}
		if r.code/100 != 2 {
			return fmt.Errorf("push: %s", r)
		}
		return nil
	})
}

// memberlistMembers is the number of live memberlist members n knows.
func memberlistMembers(n *canopyNode) (int, error) {
	code, body, err := httpGet(n.url()+"/memberlist", http.Header{"Accept": {"application/json"}})
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/memberlist: %d %s", code, body)
	}
	var page struct {
		SortedMembers []json.RawMessage
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, fmt.Errorf("decoding /memberlist: %w", err)
	}
	return len(page.SortedMembers), nil
}
