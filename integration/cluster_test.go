package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// ringStates returns instance ID -> state ("ACTIVE", "UNHEALTHY", ...) as
// node's /ring/ingester page reports it.
func ringStates(n *canopyNode) (map[string]string, error) { return ringStatesOf(n, "ingester") }

// ringStatesOf is ringStates for the ring page /ring/<name>.
func ringStatesOf(n *canopyNode, name string) (map[string]string, error) {
	code, body, err := httpGet(n.url()+"/ring/"+name, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/ring/%s: %d %s", name, code, body)
	}
	var page struct {
		Shards []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"shards"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("decoding /ring/%s: %w", name, err)
	}
	out := map[string]string{}
	for _, s := range page.Shards {
		out[s.ID] = s.State
	}
	return out, nil
}

// waitRingActive waits until on every node the ingester ring holds exactly
// the given instances, all ACTIVE and healthy.
func waitRingActive(t *testing.T, nodes []*canopyNode, ids []string, timeout time.Duration) {
	t.Helper()
	waitRingActiveOf(t, nodes, ids, timeout, "ingester")
}

// waitRingActiveOf is waitRingActive for the ring /ring/<name>.
func waitRingActiveOf(t *testing.T, nodes []*canopyNode, ids []string, timeout time.Duration, name string) {
	t.Helper()
	eventually(t, timeout, 250*time.Millisecond, fmt.Sprintf("ring %s with %v ACTIVE on every node", name, ids), func() error {
		for _, n := range nodes {
			states, err := ringStatesOf(n, name)
			if err != nil {
				return fmt.Errorf("%s: %w", n.id, err)
			}
			if len(states) != len(ids) {
				return fmt.Errorf("%s sees ring %s %v", n.id, name, states)
			}
			for _, id := range ids {
				if states[id] != "ACTIVE" {
					return fmt.Errorf("%s sees ring %s %v", n.id, name, states)
				}
			}
		}
		return nil
	})
}

// writeAttempt is one push of the load writer.
type writeAttempt struct {
	batch    int
	ts       int64
	node     string
	sentAt   time.Time
	code     int
	err      error
	duration time.Duration
}

func (w writeAttempt) ok() bool { return w.err == nil && w.code/100 == 2 }

const (
	clusterTenant = "cluster-tenant"
	loadSeries    = 20
	loadMetric    = "it_cluster_load"
)

// loadValue is the value of series i in batch k: distinct for every sample.
func loadValue(i, k int) float64 { return float64(k)*1000 + float64(i) + 0.25 }

func loadSeriesName(i int) string { return fmt.Sprintf("s%02d", i) }

func loadRequest(k int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := 0; i < loadSeries; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: loadMetric}, {Name: "series", Value: loadSeriesName(i)}},
			Samples: []prompb.Sample{{Value: loadValue(i, k), Timestamp: ts}},
		})
	}
	return req
}

// startLoadWriter pushes batch after batch of the load round robin to the
// live nodes.
func startLoadWriter(live []*canopyNode, interval time.Duration) *writer[writeAttempt] {
	var lastTS int64
	return startWriter(live, interval, func(k int, n *canopyNode) writeAttempt {
		ts := max(time.Now().UnixMilli(), lastTS+1)
		lastTS = ts
		a := writeAttempt{batch: k, ts: ts, node: n.id, sentAt: time.Now()}
		r, err := pushV1(n.url(), clusterTenant, loadRequest(k, ts))
		a.code, a.err, a.duration = r.code, err, time.Since(a.sentAt)
		if err == nil && r.code/100 != 2 {
			a.err = errors.New(strings.TrimSpace(string(r.body)))
		}
		return a
	})
}

// checkAcknowledged reads loadMetric[1h] at evalTS through node and checks
// that every acknowledged sample is there with its exact value, and that
// every sample there is one the writer sent.
func checkAcknowledged(t *testing.T, n *canopyNode, attempts []writeAttempt, evalTS int64) {
	t.Helper()
	a := api{base: n.url() + "/prometheus", tenant: clusterTenant}
	got, typ, err := a.query(http.MethodPost, loadMetric+"[1h]", evalTS)
	if err != nil {
		t.Errorf("reading through %s: %v", n.id, err)
		return
	}
	if typ != "matrix" {
		t.Errorf("reading through %s: result type %s, want matrix", n.id, typ)
		return
	}
	sent := map[int64]int{} // ts -> batch
	for _, at := range attempts {
		sent[at.ts] = at.batch
	}
	bySeries := map[string]map[int64]string{}
	for _, s := range got {
		name := s.Labels["series"]
		if len(s.Labels) != 2 || s.Labels["__name__"] != loadMetric {
			t.Errorf("through %s: unexpected series %s", n.id, s.key())
			continue
		}
		pts := map[int64]string{}
		for _, p := range s.Points {
			pts[p.T] = p.V
			k, ok := sent[p.T]
			i, _ := strconv.Atoi(strings.TrimPrefix(name, "s"))
			if !ok {
				t.Errorf("through %s: series %s has a sample at %d that was never written", n.id, name, p.T)
			} else if want := strconv.FormatFloat(loadValue(i, k), 'f', -1, 64); p.V != want {
				t.Errorf("through %s: series %s at %d = %s, want %s", n.id, name, p.T, p.V, want)
			}
		}
		bySeries[name] = pts
	}
	missing, acked := 0, 0
	var examples []string
	for _, at := range attempts {
		if !at.ok() {
			continue
		}
		for i := 0; i < loadSeries; i++ {
			acked++
			want := strconv.FormatFloat(loadValue(i, at.batch), 'f', -1, 64)
			if v, ok := bySeries[loadSeriesName(i)][at.ts]; !ok || v != want {
				missing++
				if len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("%s@%d=%s (got %q, batch %d via %s)", loadSeriesName(i), at.ts, want, v, at.batch, at.node))
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("through %s: %d of %d acknowledged samples missing or wrong, e.g. %v", n.id, missing, acked, examples)
	} else {
		t.Logf("through %s: all %d acknowledged samples read back exactly", n.id, acked)
	}
}

// TestClusterKillNine runs three complete Canopy processes (replication
// factor 3), kills one with SIGKILL under write load, and checks that writes
// keep succeeding, that no acknowledged sample is lost, and that the killed
// instance replays its WAL and rejoins the ring when restarted.
func TestClusterKillNine(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	nodes := newCanopyNodes(t, logs, 3, "-auth.multitenancy-enabled", "-ingester.replication-factor=3")
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ids := startRing(t, nodes)

	// Write through node 1, read through node 2.
	sanityTS := time.Now().UnixMilli()
	mustPushV1(t, n1.url(), clusterTenant, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "it_cluster_sanity"}},
		Samples: []prompb.Sample{{Value: 123.5, Timestamp: sanityTS}},
	}}})
	got, _, err := api{base: n2.url() + "/prometheus", tenant: clusterTenant}.query(http.MethodGet, "it_cluster_sanity", sanityTS)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0] != (point{sanityTS, "123.5"}) {
		t.Fatalf("written through %s, read through %s: %s, want it_cluster_sanity 123.5 at %d", n1.id, n2.id, fmtSeries(got), sanityTS)
	}

	// Load, then kill -9 node 3 half-way. The heartbeat timeout is 10s, so
	// writing on for 12s covers both the time node 3 still looks healthy in
	// the ring and the time after it is marked unhealthy.
	w := startLoadWriter(nodes, 100*time.Millisecond)
	t.Cleanup(func() { w.finish() }) // Also when the test stops early.
	w.waitAcknowledged(t, 20, 30*time.Second)
	w.remove(n3)
	killAt := time.Now()
	if err := syscall.Kill(n3.pid(), syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s: %v", n3.id, err)
	}
	select {
	case <-n3.exitedCh():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGKILL", n3.id)
	}
	// Write on until the ring marks node 3 unhealthy, and for 20 more
	// acknowledged batches after that.
	eventually(t, 60*time.Second, 250*time.Millisecond, n3.id+" unhealthy in the ring", func() error {
		states, err := ringStates(n1)
		if err != nil {
			return err
		}
		if states[n3.id] == "ACTIVE" {
			return fmt.Errorf("%s sees ring %v", n1.id, states)
		}
		return nil
	})
	w.waitAcknowledged(t, w.acknowledged()+20, 30*time.Second)
	attempts := w.finish()

	var pre, post, postOK, lateFail int
	var failures []string
	const grace = 2 * time.Second // failures tolerated right at the kill
	for _, a := range attempts {
		if a.sentAt.Before(killAt) {
			pre++
		} else {
			post++
			if a.ok() {
				postOK++
			}
		}
		if !a.ok() {
			late := a.sentAt.After(killAt.Add(grace))
			if late {
				lateFail++
			}
			if len(failures) < 10 {
				failures = append(failures, fmt.Sprintf("batch %d via %s at kill%+.2fs (took %s): %d %v", a.batch, a.node, a.sentAt.Sub(killAt).Seconds(), a.duration.Round(time.Millisecond), a.code, a.err))
			}
		}
	}
	t.Logf("writes: %d before the kill, %d after (%d acknowledged); failures: %v", pre, post, postOK, failures)
	if pre == 0 || post < 20 {
		t.Errorf("writer too slow to test anything: %d writes before the kill, %d after", pre, post)
	}
	for _, a := range attempts {
		if a.sentAt.Before(killAt) && !a.ok() {
			t.Errorf("write before the kill failed: batch %d via %s: %d %v", a.batch, a.node, a.code, a.err)
		}
	}
	if lateFail > 0 || post > 0 && float64(postOK) < 0.9*float64(post) {
		t.Errorf("with one of three ingesters killed, %d of %d writes failed (%d later than %s after the kill); want all but a brief window to succeed", post-postOK, post, lateFail, grace)
	}

	lastTS := attempts[len(attempts)-1].ts
	evalTS := lastTS + 1000
	checkAcknowledged(t, n1, attempts, evalTS)
	checkAcknowledged(t, n2, attempts, evalTS)

	// Restart node 3 on its data directory with the same instance ID.
	n3.start(t)
	n3.waitReady(t, 90*time.Second)
	// Nothing has been written since the kill could reach node 3, so the
	// series in its heads come from its WAL. With 3 ingesters and
	// replication factor 3 every ingester holds every series.
	_, body, err := httpGet(n3.url()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metricValue(body, "canopy_ingester_head_series", map[string]string{"tenant": clusterTenant}); !ok || v != loadSeries+1 {
		t.Errorf("restarted %s: canopy_ingester_head_series{tenant=%q} = %v (found %v), want %d replayed from its WAL", n3.id, clusterTenant, v, ok, loadSeries+1)
	} else {
		t.Logf("restarted %s replayed %v series from its WAL", n3.id, v)
	}
	waitRingActive(t, nodes, ids, 60*time.Second)
	checkAcknowledged(t, n3, attempts, evalTS)

	// The healed cluster takes writes through node 3 and serves them
	// through node 1.
	healTS := max(time.Now().UnixMilli(), lastTS+1)
	mustPushV1(t, n3.url(), clusterTenant, loadRequest(1_000_000, healTS))
	got, _, err = api{base: n1.url() + "/prometheus", tenant: clusterTenant}.query(http.MethodGet, loadMetric, healTS)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != loadSeries {
		t.Errorf("after healing, %s returns %d series, want %d", n1.id, len(got), loadSeries)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Labels["series"] < got[j].Labels["series"] })
	for i, s := range got {
		if want := strconv.FormatFloat(loadValue(i, 1_000_000), 'f', -1, 64); len(s.Points) != 1 || s.Points[0] != (point{healTS, want}) {
			t.Errorf("after healing: %s %v, want %s at %d", s.key(), s.Points, want, healTS)
		}
	}
}
