package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/dskit/middleware"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/canopy-observability/canopy/pkg/ingester/logsclient"
	"github.com/canopy-observability/canopy/pkg/rpc/logspb"
)

const (
	logsClusterTenant = "logs-cluster"
	logsLoadStreams   = 5
	logsLoadSelector  = `{job="kill9"}`
)

// logsLoadStream is stream i of the load: its labels.
func logsLoadStream(i int) map[string]string {
	return map[string]string{"job": "kill9", "stream": fmt.Sprintf("s%d", i)}
}

// logsAttempt is one push of the logs writer: a batch of one line per
// stream, every line distinct.
type logsAttempt struct {
	batch          int
	node           string
	sentAt, doneAt time.Time
	code           int
	err            error
	streams        []logStream
}

func (a logsAttempt) ok() bool { return a.err == nil && a.code == http.StatusNoContent }

// startLogsWriter pushes batches round robin to the live nodes.
func startLogsWriter(live []*canopyNode, interval time.Duration) *writer[logsAttempt] {
	var lastTS int64
	return startWriter(live, interval, func(k int, n *canopyNode) logsAttempt {
		ts := max(time.Now().UnixNano(), lastTS+1)
		lastTS = ts
		a := logsAttempt{batch: k, node: n.id, sentAt: time.Now()}
		for i := 0; i < logsLoadStreams; i++ {
			a.streams = append(a.streams, logStream{labels: logsLoadStream(i), entries: []logEntry{{
				ts: ts, line: fmt.Sprintf("batch=%06d stream=s%d id=%x-%d", k, i, ts, i),
			}}})
		}
		r, err := pushLoki(n.url(), logsClusterTenant, "", "", lokiProto(a.streams))
		a.code, a.err, a.doneAt = r.code, err, time.Now()
		if err == nil && r.code != http.StatusNoContent {
			a.err = errors.New(strings.TrimSpace(string(r.body)))
		}
		return a
	})
}

// checkLogsExactlyOnce requires got (sorted records) to hold every entry
// of want exactly once and nothing but entries of sent.
func checkLogsExactlyOnce(t *testing.T, where string, got []logRecord, want, sent []logStream) {
	t.Helper()
	sentSet := map[logRecord]bool{}
	for _, r := range wantRecords(sent, false) {
		sentSet[r] = true
	}
	count := map[logRecord]int{}
	var dups, strangers []logRecord
	for _, r := range got {
		count[r]++
		if count[r] == 2 {
			dups = append(dups, r)
		}
		if !sentSet[r] && count[r] == 1 {
			strangers = append(strangers, r)
		}
	}
	var missing []logRecord
	wantRecs := wantRecords(want, false)
	for _, r := range wantRecs {
		if count[r] == 0 {
			missing = append(missing, r)
		}
	}
	if len(dups) > 0 {
		t.Errorf("%s: %d entries more than once, e.g. %v", where, len(dups), firstN(dups, 3))
	}
	if len(strangers) > 0 {
		t.Errorf("%s: %d entries never written, e.g. %v", where, len(strangers), firstN(strangers, 3))
	}
	if len(missing) > 0 {
		t.Errorf("%s: %d of %d acknowledged entries missing, e.g. %v", where, len(missing), len(wantRecs), firstN(missing, 5))
	}
	if len(dups)+len(strangers)+len(missing) == 0 {
		t.Logf("%s: all %d acknowledged entries exactly once (%d entries in all)", where, len(wantRecs), len(got))
	}
}

// streamsOf returns the streams of the attempts keep keeps.
func streamsOf(attempts []logsAttempt, keep func(logsAttempt) bool) []logStream {
	var out []logStream
	for _, a := range attempts {
		if keep(a) {
			out = append(out, a.streams...)
		}
	}
	return out
}

// selectIngester reads the entries of the load straight from one logs
// ingester over gRPC, as a querier does, bypassing the other replicas.
func selectIngester(t *testing.T, n *canopyNode, start, end int64) []logRecord {
	t.Helper()
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(n.grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(middleware.StreamClientUserHeaderInterceptor))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(user.InjectOrgID(context.Background(), logsClusterTenant), 30*time.Second)
	defer cancel()
	recv, err := logsclient.NewClient(conn).Select(ctx, &logspb.SelectRequest{
		Matchers: logsclient.FromMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "kill9")}),
		Start:    start, End: end,
	})
	if err != nil {
		t.Fatalf("selecting from %s's logs ingester: %v", n.id, err)
	}
	var out []logRecord
	var sb labels.ScratchBuilder
	for {
		b, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("selecting from %s's logs ingester: %v", n.id, err)
		}
		for _, s := range b.Streams {
			ls := logsclient.ToLabels(s.Labels, &sb).Map()
			for _, e := range s.Entries {
				out = append(out, logRecord{labels: lokiSelector(ls), ts: strconv.FormatInt(e.Timestamp, 10), line: e.Line})
			}
		}
	}
	return out
}

// TestLogsClusterKillNine runs three complete processes with logs
// replication factor 3, kills one with SIGKILL under log write load, and
// checks that writes go on, that every acknowledged line is readable
// exactly once through the survivors, and that the killed instance, started
// again on its data directory, replays its WAL (holding on its own what it
// had acknowledged), rejoins the logs ring ACTIVE and serves every line.
func TestLogsClusterKillNine(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	nodes := newCanopyNodes(t, logs, 3, "-auth.multitenancy-enabled", "-ingester.logs.replication-factor=3", "-ingester.replication-factor=3")
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ids := startRing(t, nodes)
	waitLogsRingActive(t, nodes, ids, 60*time.Second)
	start := time.Now().Add(-time.Minute).UnixNano()

	w := startLogsWriter(nodes, 100*time.Millisecond)
	t.Cleanup(func() { w.finish() })
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
	eventually(t, 60*time.Second, 250*time.Millisecond, n3.id+" unhealthy in the logs ring", func() error {
		states, err := logsRingStates(n1)
		if err != nil {
			return err
		}
		if states[n3.id] == "ACTIVE" {
			return fmt.Errorf("%s sees logs ring %v", n1.id, states)
		}
		return nil
	})
	w.waitAcknowledged(t, w.acknowledged()+20, 30*time.Second)
	attempts := w.finish()
	end := time.Now().Add(time.Minute).UnixNano()

	var pre, post, postOK, lateFail int
	var failures []string
	const grace = 2 * time.Second
	for _, a := range attempts {
		if a.sentAt.Before(killAt) {
			pre++
			if !a.ok() {
				t.Errorf("log push before the kill failed: batch %d via %s: %d %v", a.batch, a.node, a.code, a.err)
			}
		} else {
			post++
			if a.ok() {
				postOK++
			}
		}
		if !a.ok() {
			if a.sentAt.After(killAt.Add(grace)) {
				lateFail++
			}
			if len(failures) < 10 {
				failures = append(failures, fmt.Sprintf("batch %d via %s at kill%+.2fs: %d %v", a.batch, a.node, a.sentAt.Sub(killAt).Seconds(), a.code, a.err))
			}
		}
	}
	t.Logf("log pushes: %d before the kill, %d after (%d acknowledged); failures: %v", pre, post, postOK, failures)
	if pre == 0 || post < 20 {
		t.Errorf("writer too slow to test anything: %d pushes before the kill, %d after", pre, post)
	}
	if lateFail > 0 || post > 0 && float64(postOK) < 0.9*float64(post) {
		t.Errorf("with one of three logs ingesters killed, %d of %d pushes failed (%d later than %s after the kill); want all but a brief window to succeed", post-postOK, post, lateFail, grace)
	}
	acked := streamsOf(attempts, logsAttempt.ok)
	sent := streamsOf(attempts, func(logsAttempt) bool { return true })
	for _, n := range []*canopyNode{n1, n2} {
		got, err := lokiAPI{base: n.url(), tenant: logsClusterTenant}.queryLogs(logsLoadSelector, start, end, false)
		if err != nil {
			t.Fatalf("reading through %s: %v", n.id, err)
		}
		checkLogsExactlyOnce(t, "through "+n.id, got, acked, sent)
	}

	// Restart node 3 on its data directory. Nothing written since the kill
	// reached it: what its logs ingester holds comes from its WAL, and it
	// had every push it had answered, i.e. all those done well before the
	// kill (with replication factor 3 each push goes to every ingester).
	n3.start(t)
	n3.waitReady(t, 90*time.Second)
	replayed := lastLogsWALReplay(t, n3.process)
	own := selectIngester(t, n3, start, end)
	t.Logf("restarted %s replayed %d log entries from its WAL and holds %d", n3.id, replayed, len(own))
	if replayed <= 0 {
		t.Errorf(`restarted %s: log line "replayed the logs WAL" with entries=%d, want the entries it had`, n3.id, replayed)
	}
	if len(own) != replayed {
		t.Errorf("restarted %s holds %d log entries, but its log says it replayed %d", n3.id, len(own), replayed)
	}
	beforeKill := streamsOf(attempts, func(a logsAttempt) bool { return a.ok() && a.doneAt.Before(killAt.Add(-500*time.Millisecond)) })
	checkLogsExactlyOnce(t, n3.id+"'s own logs ingester after WAL replay", own, beforeKill, sent)

	waitRingActive(t, nodes, ids, 60*time.Second)
	waitLogsRingActive(t, nodes, ids, 60*time.Second)
	got, err := lokiAPI{base: n3.url(), tenant: logsClusterTenant}.queryLogs(logsLoadSelector, start, end, false)
	if err != nil {
		t.Fatalf("reading through %s: %v", n3.id, err)
	}
	checkLogsExactlyOnce(t, "through restarted "+n3.id, got, acked, sent)

	// The healed cluster takes a push through node 3 and serves it through
	// node 1.
	heal := []logStream{{labels: map[string]string{"job": "kill9-healed"}, entries: []logEntry{{ts: time.Now().UnixNano(), line: "after the restart"}}}}
	mustPushLoki(t, n3.url(), logsClusterTenant, "", "", lokiProto(heal))
	lokiAPI{base: n1.url(), tenant: logsClusterTenant}.checkLogs(t, `{job="kill9-healed"}`, start, time.Now().Add(time.Minute).UnixNano(), heal)
}
