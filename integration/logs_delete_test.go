package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deleteRequestJSON is an entry of GET /loki/api/v1/delete.
type deleteRequestJSON struct {
	RequestID string  `json:"request_id"`
	StartTime float64 `json:"start_time"`
	EndTime   float64 `json:"end_time"`
	Query     string  `json:"query"`
	Status    string  `json:"status"`
	CreatedAt float64 `json:"created_at"`
}

func listDeleteRequests(t *testing.T, base, tenant string) []deleteRequestJSON {
	t.Helper()
	r, err := do(http.MethodGet, base+"/loki/api/v1/delete", tenant, "", nil, nil)
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("GET /loki/api/v1/delete: %v %s", err, r)
	}
	var out []deleteRequestJSON
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("GET /loki/api/v1/delete: %s: %v", r, err)
	}
	return out
}

// TestLogsDeleteRequest pushes logs, ships them, asks Loki's deletion API
// to delete the lines of one stream holding "secret" in part of the time
// pushed, runs a compaction pass, and reads back: exactly those lines are
// gone, from the queries and from the bucket's blocks, and the request is
// listed as processed. The cancel period is 0, so the pass applies it.
func TestLogsDeleteRequest(t *testing.T) {
	requireIntegration(t)
	node := startLogsNode(t, "-compactor.logs.delete-request-cancel-period=0s", "-ingester.logs.retain-shipped-for=10s")
	const tenant = "logs-delete"
	base := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	var streams []logStream
	for _, name := range []string{"web", "api"} {
		st := logStream{labels: map[string]string{"job": "delete", "app": name}}
		for i := range 120 {
			line := fmt.Sprintf("%s request %d user=u%d", name, i, i%7)
			if i%4 == 0 {
				line += " secret=hunter2"
			}
			st.entries = append(st.entries, logEntry{ts: base.Add(time.Duration(i) * 5 * time.Second).UnixNano(), line: line})
		}
		streams = append(streams, st)
	}
	mustPushLoki(t, node.url(), tenant, "", "", lokiProto(streams))
	start, end := base.Add(-time.Minute).UnixNano(), time.Now().Add(time.Minute).UnixNano()
	api := lokiAPI{base: node.url(), tenant: tenant}
	api.checkLogs(t, `{job="delete"}`, start, end, streams)
	postEach(t, []*canopyNode{node}, "/ingester/flush")

	// Delete web's secret lines of the first five minutes (the end is
	// included): entries 0, 4, …, 60.
	delStart, delEnd := base.Unix(), base.Add(5*time.Minute).Unix()
	params := url.Values{"query": {`{job="delete", app="web"} |= "secret"`}, "start": {strconv.FormatInt(delStart, 10)}, "end": {strconv.FormatInt(delEnd, 10)}}
	r, err := do(http.MethodPost, node.url()+"/loki/api/v1/delete?"+params.Encode(), tenant, "", nil, nil)
	if err != nil || r.code != http.StatusNoContent {
		t.Fatalf("POST /loki/api/v1/delete: %v %s, want 204", err, r)
	}
	r, err = do(http.MethodPost, node.url()+"/loki/api/v1/delete?"+url.Values{"query": {`{job="delete"`}, "start": {"1"}}.Encode(), tenant, "", nil, nil)
	if err != nil || r.code != http.StatusBadRequest || !strings.Contains(string(r.body), `invalid parameter "query"`) {
		t.Fatalf("POST /loki/api/v1/delete with a bad query: %v %s, want 400 naming the query", err, r)
	}
	reqs := listDeleteRequests(t, node.url(), tenant)
	if len(reqs) != 1 || reqs[0].Status != "received" || reqs[0].StartTime != float64(delStart) || reqs[0].EndTime != float64(delEnd) || reqs[0].Query != params.Get("query") {
		t.Fatalf("GET /loki/api/v1/delete: %+v, want the request received", reqs)
	}
	if other := listDeleteRequests(t, node.url(), "someone-else"); len(other) != 0 {
		t.Fatalf("GET /loki/api/v1/delete as another tenant: %+v, want none", other)
	}

	// The ingester forgets what it shipped after 10s: from then on the
	// bucket's blocks alone answer.
	time.Sleep(11 * time.Second)
	r, err = doTimeout(5*time.Minute, http.MethodPost, node.url()+"/compactor/run", "", "", nil, nil)
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("POST /compactor/run: %v %s", err, r)
	}
	var run struct {
		Written int      `json:"blocks_written"`
		Errors  []string `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &run); err != nil || run.Written != 1 || len(run.Errors) > 0 {
		t.Fatalf("POST /compactor/run: %s, want the block rewritten", r)
	}
	reqs = listDeleteRequests(t, node.url(), tenant)
	if len(reqs) != 1 || reqs[0].Status != "processed" {
		t.Fatalf("GET /loki/api/v1/delete after the pass: %+v, want processed", reqs)
	}
	r, err = do(http.MethodDelete, node.url()+"/loki/api/v1/delete?request_id="+reqs[0].RequestID, tenant, "", nil, nil)
	if err != nil || r.code != http.StatusBadRequest {
		t.Fatalf("DELETE /loki/api/v1/delete of a processed request: %v %s, want 400", err, r)
	}

	want := []logStream{{labels: streams[0].labels}, streams[1]}
	deleted := 0
	for _, e := range streams[0].entries {
		if e.ts >= delStart*1e9 && e.ts <= delEnd*1e9 && strings.Contains(e.line, "secret") {
			deleted++
			continue
		}
		want[0].entries = append(want[0].entries, e)
	}
	if deleted != 16 {
		t.Fatalf("the test deletes %d entries, want 16", deleted)
	}
	// Queriers read the tenant's list of blocks every 10s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := api.queryLogs(`{job="delete"}`, start, end, false)
		if err != nil {
			t.Fatal(err)
		}
		d := diffRecords(got, wantRecords(want, false))
		if d == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the deletion: %s", d)
		}
		time.Sleep(time.Second)
	}
	api.checkLogs(t, `{job="delete"}`, start, end, want)

	// In the bucket: the block shipped is marked for deletion, the
	// compactor's holds every entry but the deleted ones.
	metas, _ := filepath.Glob(filepath.Join(node.bucketDir, tenant, "logs", "*", "meta.json"))
	var live []string
	for _, m := range metas {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "deletion-mark.json")); err == nil {
			continue
		}
		live = append(live, m)
	}
	if len(metas) != 2 || len(live) != 1 {
		t.Fatalf("bucket: blocks %v, of which %v unmarked; want the shipped one marked and the compactor's", metas, live)
	}
	raw, err := os.ReadFile(live[0])
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Source  string   `json:"source"`
		Sources []string `json:"sources"`
		Stats   struct {
			Entries int `json:"entries"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Source != "compactor" || len(meta.Sources) != 1 || meta.Stats.Entries != 240-deleted {
		t.Fatalf("bucket: %s: %s, want the compactor's block of %d entries (%v)", live[0], raw, 240-deleted, err)
	}
}
