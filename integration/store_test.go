package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/prompb"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/metricsblocks"
)

const (
	storeTenant  = "store-tenant"
	storeMetric  = "it_store_total"
	storeSeries  = 12
	storeStep    = 30 * time.Second
	storeSamples = 3 * 60 * 2 // 3h at 30s
)

// storeValue is a counter: series i grows by i+1 every step, with a reset
// half-way for series 0 so rate() sees one.
func storeValue(i, k int) float64 {
	if i == 0 && k >= storeSamples/2 {
		k -= storeSamples / 2
	}
	return float64(k*(i+1)) + 0.5
}

// answers are the results of a fixed set of queries over the written range,
// compared exactly (values as the API prints them).
type answers map[string]any

func storeAnswers(t *testing.T, a api, start, end int64) (answers, error) {
	t.Helper()
	out := answers{}
	for _, q := range []string{
		storeMetric,
		`sum by (job) (rate(` + storeMetric + `[5m]))`,
		`max_over_time(` + storeMetric + `{job="j1"}[10m])`,
		`count(` + storeMetric + `)`,
		`topk(3, increase(` + storeMetric + `[1h]))`,
	} {
		got, err := a.queryRange(http.MethodPost, q, start, end, time.Minute)
		if err != nil {
			return nil, err
		}
		out["range "+q] = got
	}
	// Raw samples, exactly as stored.
	got, _, err := a.query(http.MethodGet, storeMetric+"[4h]", end)
	if err != nil {
		return nil, err
	}
	out["raw"] = got
	var vals []string
	if err := a.tryGet(http.MethodGet, "label/series/values", url.Values{"start": {msToAPITime(start)}, "end": {msToAPITime(end)}}, &vals); err != nil {
		return nil, err
	}
	out["label values"] = vals
	var names []string
	if err := a.tryGet(http.MethodGet, "labels", url.Values{"start": {msToAPITime(start)}, "end": {msToAPITime(end)}, "match[]": {storeMetric}}, &names); err != nil {
		return nil, err
	}
	out["label names"] = names
	var ser []map[string]string
	if err := a.tryGet(http.MethodGet, "series", url.Values{"start": {msToAPITime(start)}, "end": {msToAPITime(end)}, "match[]": {storeMetric + `{job="j0"}`}}, &ser); err != nil {
		return nil, err
	}
	out["series"] = ser
	return out, nil
}

// checkAggregates checks sharded aggregations (the query-frontend shards
// them 16 ways by default) against values computed from what was written:
// a shard an ingester or store-gateway dropped or doubled would show.
func checkAggregates(t *testing.T, a api, end int64) {
	t.Helper()
	last := storeSamples - 1
	sum, byJob, maxV := 0.0, map[string]float64{}, 0.0
	for i := 0; i < storeSeries; i++ {
		v := storeValue(i, last)
		sum += v
		byJob[fmt.Sprintf("j%d", i%3)] += v / float64(storeSeries/3)
		maxV = max(maxV, v)
	}
	for q, want := range map[string]map[string]float64{
		`sum(` + storeMetric + `)`:                 {"": sum},
		`max(` + storeMetric + `)`:                 {"": maxV},
		`count by (job) (` + storeMetric + `)`:     {"j0": storeSeries / 3, "j1": storeSeries / 3, "j2": storeSeries / 3},
		`avg by (job) (` + storeMetric + `)`:       byJob,
		`sum by (job) (` + storeMetric + `) > 0.5`: nil, // checked for shape only
	} {
		got, _, err := a.query(http.MethodGet, q, end)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if want == nil {
			if len(got) != 3 {
				t.Errorf("%s: %d series, want 3", q, len(got))
			}
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d series, want %d", q, len(got), len(want))
			continue
		}
		for _, s := range got {
			w, ok := want[s.Labels["job"]]
			if !ok || len(s.Points) != 1 || s.Points[0].V != strconv.FormatFloat(w, 'f', -1, 64) {
				t.Errorf("%s: %v = %v, want %v", q, s.Labels, s.Points, w)
			}
		}
	}
}

func diffAnswers(t *testing.T, got, want answers) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; !reflect.DeepEqual(g, w) {
			gs, ws := fmt.Sprint(g), fmt.Sprint(w)
			if len(gs) > 600 {
				gs = gs[:600] + "…"
			}
			if len(ws) > 600 {
				ws = ws[:600] + "…"
			}
			t.Errorf("%s differs:\n got: %s\nwant: %s", k, gs, ws)
		}
	}
}

// TestBucketQueryPath writes three hours of data into a three-node cluster
// (ingesters cutting 10m blocks), records the answers of a set of queries
// read from the ingesters, then flushes everything to the bucket, compacts
// it, restarts every node with its local disk wiped and checks that the
// cluster, now answering from the store-gateways, gives exactly the same
// answers. Then it checks the consistency check: a block the bucket index
// lists but no store-gateway can read fails the query, naming the block.
func TestBucketQueryPath(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	nodes := newCanopyNodes(t, logs, 3,
		"-auth.multitenancy-enabled",
		"-ingester.replication-factor=3",
		"-store-gateway.replication-factor=2",
		"-ingester.tsdb.block-range=10m",
		"-compactor.block-ranges=10m,1h,2h",
		"-querier.query-ingesters-within=0",
		"-querier.query-store-after=0",
		"-querier.bucket-index-ttl=1s",
		"-store-gateway.cache-size=4MiB",
	)
	ids := startRing(t, nodes)

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
		mustPushV1(t, nodes[k%3].url(), storeTenant, req)
	}

	before, err := storeAnswers(t, api{base: nodes[1].url() + "/prometheus", tenant: storeTenant}, start, end)
	if err != nil {
		t.Fatal(err)
	}
	checkAggregates(t, api{base: nodes[1].url() + "/prometheus", tenant: storeTenant}, end)
	if raw := before["raw"].([]series); len(raw) != storeSeries || len(raw[0].Points) != storeSamples {
		t.Fatalf("from the ingesters: %d series, want %d with %d samples each", len(raw), storeSeries, storeSamples)
	}

	// Everything to the bucket, compacted.
	postEach(t, nodes, "/ingester/flush")
	postEach(t, nodes, "/compactor/run")
	bkt, err := filesystem.NewBucket(nodes[0].bucketDir)
	if err != nil {
		t.Fatal(err)
	}
	tb := metricsblocks.TenantBucket(bkt, storeTenant)
	idx, err := layout.ReadBucketIndex(context.Background(), tb)
	if err != nil {
		t.Fatal(err)
	}
	levels := map[int]int{}
	marked := idx.DeletionMarked()
	for _, b := range idx.Blocks {
		if _, ok := marked[b.ID]; !ok {
			levels[b.Level]++
		}
	}
	t.Logf("bucket index: %d blocks (%d marked for deletion), live blocks by compaction level: %v", len(idx.Blocks), len(marked), levels)

	// Every node restarts with an empty local disk.
	restartWiped(t, nodes)
	waitRingActive(t, nodes, ids, 60*time.Second)

	// Ready is not the same as every store-gateway being in every querier's
	// ring view: wait for the first successful answer, then compare.
	a := api{base: nodes[2].url() + "/prometheus", tenant: storeTenant}
	var after answers
	deadline := time.Now().Add(60 * time.Second)
	for {
		after, err = storeAnswers(t, a, start, end)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("after the wipe: %v", err)
	}
	diffAnswers(t, after, before)
	checkAggregates(t, a, end)
	if !t.Failed() {
		t.Logf("after wiping every node's disk, all %d answers are identical, read from the bucket", len(before))
	}
	if sumMetric(t, nodes, "canopy_store_gateway_blocks_queried_total") == 0 {
		t.Error("no store-gateway read a block")
	}

	// A block listed in the bucket index that no store-gateway can read.
	ghost := ulid.MustNew(ulid.Now(), nil)
	idx.Blocks = append(idx.Blocks, layout.BlockRef{ID: ghost, MinTime: start, MaxTime: end})
	if err := layout.WriteBucketIndex(context.Background(), tb, idx); err != nil {
		t.Fatal(err)
	}
	// The queriers see the new index once their copy is older than its TTL.
	var r response
	eventually(t, 30*time.Second, 250*time.Millisecond, "a query naming the unreadable block "+ghost.String(), func() error {
		r, err = a.call(http.MethodGet, "query", url.Values{"query": {storeMetric}, "time": {msToAPITime(end)}})
		if err != nil {
			return err
		}
		if r.code == http.StatusOK || !strings.Contains(string(r.body), "consistency check failed") || !strings.Contains(string(r.body), ghost.String()+" (") || !strings.Contains(string(r.body), "no meta.json") {
			return fmt.Errorf("query with an unreadable block: %s, want an error naming the block and why", r)
		}
		return nil
	})
	t.Logf("unreadable block: %d %s", r.code, r.body)
}
