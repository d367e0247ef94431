package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// randomToken returns n random characters of [a-z0-9].
func randomToken(rng *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// TestLogsFromBucketAfterWipedDisks pushes logs to one process, ships them
// with POST /ingester/flush, stops it, deletes its ingester directory (WAL
// and all) and starts it again on the same bucket: every line is still
// readable, byte for byte, from the bucket's blocks alone, and a needle
// search for a line's unique token finds exactly that line.
func TestLogsFromBucketAfterWipedDisks(t *testing.T) {
	requireIntegration(t)
	// Small chunks: each stream spans several, so needle searches have
	// chunks to skip. No flush on shutdown: the bucket holds what the
	// flush endpoint shipped.
	node := startLogsNode(t, "-ingester.logs.flush-on-shutdown=false", "-ingester.flush-on-shutdown=false", "-ingester.logs.chunk-target-size=4096")
	const tenantA, tenantB = "logs-bucket-a", "logs-bucket-b"

	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Now().Add(-10 * time.Minute).UnixNano()
	start, end := base-int64(time.Minute), time.Now().Add(time.Minute).UnixNano()
	var streamsA []logStream
	tokens := map[string]logRecord{} // token -> its line, as read back without categories
	for s, name := range []string{"api", "db", "worker"} {
		st := logStream{labels: map[string]string{"job": "bucket", "stream": name}}
		for i := 0; i < 120; i++ {
			tok := randomToken(rng, 24)
			e := logEntry{ts: base + int64(i)*int64(time.Second) + int64(s)*1_000_003 + int64(i%7), line: fmt.Sprintf("req=%05d %s token=%s status=200 path=/ünï/%d\tdone", i, name, tok, i%13)}
			if i%10 == 3 {
				e.md = map[string]string{"trace_id": randomToken(rng, 32), "user": "zoë"}
			}
			st.entries = append(st.entries, e)
		}
		streamsA = append(streamsA, st)
	}
	for _, r := range wantRecords(streamsA, false) {
		var tok string
		if _, err := fmt.Sscanf(r.line[len("req=00000 "):], "%s token=%s", new(string), &tok); err != nil {
			t.Fatal(err)
		}
		tokens[tok] = r
	}
	streamsB := []logStream{{labels: map[string]string{"job": "bucket", "stream": "other-tenant"}, entries: []logEntry{
		{ts: base + 5, line: "tenant b's only line token=" + randomToken(rng, 24)},
	}}}
	mustPushLoki(t, node.url(), tenantA, "", "", lokiProto(streamsA))
	mustPushLoki(t, node.url(), tenantB, "application/json", "", lokiJSON(streamsB))
	a := lokiAPI{base: node.url(), tenant: tenantA}
	b := lokiAPI{base: node.url(), tenant: tenantB}
	a.checkLogs(t, `{job="bucket"}`, start, end, streamsA)

	r, err := doTimeout(2*time.Minute, http.MethodPost, node.url()+"/ingester/flush", "", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var flushed struct {
		Errors  []string `json:"errors"`
		Signals map[string]struct {
			Tenants int `json:"tenants"`
			Shipped int `json:"shipped"`
		} `json:"signals"`
	}
	if r.code != http.StatusOK || json.Unmarshal(r.body, &flushed) != nil {
		t.Fatalf("POST /ingester/flush: %s, want 200 and JSON", r)
	}
	if got := flushed.Signals["logs"]; got.Tenants != 2 || got.Shipped != 2 || len(flushed.Errors) > 0 {
		t.Fatalf("POST /ingester/flush: %s, want the logs of 2 tenants shipped in 2 blocks", r)
	}
	// One block per tenant under <tenant>/logs/, meta.json last, holding
	// every entry.
	for tenant, want := range map[string]int{tenantA: 3 * 120, tenantB: 1} {
		metas, _ := filepath.Glob(filepath.Join(node.bucketDir, tenant, "logs", "*", "meta.json"))
		if len(metas) != 1 {
			t.Fatalf("bucket: %d log blocks of tenant %s (%v), want 1", len(metas), tenant, metas)
		}
		raw, err := os.ReadFile(metas[0])
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Stats struct {
				Entries int `json:"entries"`
			} `json:"stats"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil || meta.Stats.Entries != want {
			t.Errorf("bucket: %s: %s, want %d entries (%v)", metas[0], raw, want, err)
		}
	}

	node.terminate(t, 60*time.Second)
	if err := os.RemoveAll(filepath.Join(node.dataDir, "ingester")); err != nil {
		t.Fatal(err)
	}
	node.start(t)
	node.waitReady(t, 60*time.Second)
	waitLogsRingActive(t, []*canopyNode{node}, []string{node.id}, 30*time.Second)
	if n := lastLogsWALReplay(t, node.process); n != 0 {
		t.Fatalf("the restarted process replayed %d log entries from a WAL that was deleted, want 0", n)
	}

	a.checkLogs(t, `{job="bucket"}`, start, end, streamsA)
	b.checkLogs(t, `{job="bucket"}`, start, end, streamsB)
	got, err := a.metricVector(`sum by (stream) (count_over_time({job="bucket"}[1h]))`, end)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{`{stream="api"}`: "120", `{stream="db"}`: "120", `{stream="worker"}`: "120"}; !reflect.DeepEqual(got, want) {
		t.Errorf("count_over_time from the bucket: %v, want %v", got, want)
	}

	// Needle searches: each token finds its line and nothing else.
	checked := 0
	for tok, want := range tokens {
		if checked == 12 {
			break
		}
		checked++
		q := `{job="bucket"} |= "` + tok + `"`
		got, err := a.queryLogs(q, start, end, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want exactly %v", q, got, want)
		}
	}
	tokB := streamsB[0].entries[0].line[len("tenant b's only line token="):]
	for _, c := range []struct {
		api   lokiAPI
		query string
		want  int
	}{
		{a, `{job="bucket"} |= "` + randomToken(rand.New(rand.NewPCG(1, 1)), 24) + `"`, 0},
		{a, `{job="bucket"} |= "` + tokB + `"`, 0}, // the other tenant's
		{b, `{job="bucket"} |= "` + tokB + `"`, 1},
		{a, `{job="bucket", stream="db"} |= "token=" |= "status=200" != "req=0000"`, 120 - 10},
	} {
		got, err := c.api.queryLogs(c.query, start, end, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want {
			t.Errorf("tenant %s %s: %d lines, want %d: %v", c.api.tenant, c.query, len(got), c.want, firstN(got, 3))
		}
	}
}
