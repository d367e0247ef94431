package integration

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const tracesClusterTenant = "traces-cluster"

// traceAttempt is one push of the traces writer: one trace of two spans.
type traceAttempt struct {
	id     string // hex trace ID
	node   string
	code   int
	err    error
	sentAt time.Time
	doneAt time.Time
}

func (a traceAttempt) ok() bool { return a.err == nil && a.code == http.StatusOK }

// traceOf returns trace k of the load: a root and a child span of service
// "kill9".
func traceOf(k int) ([]byte, string) {
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[:8], 0xc0ffee)
	binary.BigEndian.PutUint64(tid[8:], uint64(k))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "kill9")
	ss := rs.ScopeSpans().AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Now())
	for j := range 2 {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{byte(j + 1), 0, 0, 0, byte(k >> 16), byte(k >> 8), byte(k), 1})
		if j == 1 {
			s.SetParentSpanID(pcommon.SpanID{1, 0, 0, 0, byte(k >> 16), byte(k >> 8), byte(k), 1})
		}
		s.SetName("op-" + strconv.Itoa(j))
		s.SetStartTimestamp(now)
		s.SetEndTimestamp(now + 1000)
	}
	var m ptrace.ProtoMarshaler
	b, _ := m.MarshalTraces(td)
	return b, fmt.Sprintf("%x", tid[:])
}

// startTracesWriter pushes one trace at a time, round robin over the live
// nodes.
func startTracesWriter(live []*canopyNode, interval time.Duration) *writer[traceAttempt] {
	return startWriter(live, interval, func(k int, n *canopyNode) traceAttempt {
		body, id := traceOf(k)
		a := traceAttempt{id: id, node: n.id, sentAt: time.Now()}
		r, err := doTimeout(10*time.Second, http.MethodPost, n.url()+"/otlp/v1/traces", tracesClusterTenant, "application/x-protobuf", body, nil)
		a.code, a.err, a.doneAt = r.code, err, time.Now()
		return a
	})
}

// checkTraces requires every acknowledged trace to be read whole by ID
// through api, and a search to find all of them and nothing never sent.
func checkTraces(t *testing.T, where string, api tempoAPI, attempts []traceAttempt) {
	t.Helper()
	sent := map[string]bool{}
	acked := 0
	for _, a := range attempts {
		sent[a.id] = true
		if !a.ok() {
			continue
		}
		acked++
		td, code, err := api.trace(a.id)
		if err != nil || code != http.StatusOK || td.SpanCount() != 2 {
			t.Fatalf("%s: acknowledged trace %s (via %s): %d %v, %d spans", where, a.id, a.node, code, err, spanCount(td, code))
		}
	}
	got, err := api.search(`{ resource.service.name = "kill9" && name = "op-0" }`, 100000)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	// Search answers write trace IDs without leading zeros, as Tempo does.
	for id, root := range got {
		delete(got, id)
		got[fmt.Sprintf("%032s", id)] = root
	}
	found := 0
	for _, a := range attempts {
		if a.ok() && got[a.id] != "" {
			found++
		}
	}
	for id := range got {
		if !sent[id] {
			t.Fatalf("%s: search found trace %s, never sent", where, id)
		}
	}
	if found != acked {
		t.Fatalf("%s: search found %d of the %d acknowledged traces", where, found, acked)
	}
	t.Logf("%s: all %d acknowledged traces read by ID and found by search", where, acked)
}

func spanCount(td ptrace.Traces, code int) int {
	if code != http.StatusOK {
		return 0
	}
	return td.SpanCount()
}

var tracesWALReplayed = regexp.MustCompile(`msg="replayed the traces WAL".* pieces=(\d+)`)

// TestTracesClusterKillNine: three processes, replication factor 3; a
// writer pushes traces round robin while one process is killed with
// SIGKILL. Every acknowledged trace is read whole by ID and found by a
// search through the survivors; the killed process replays its WAL on
// restart and serves them all too.
func TestTracesClusterKillNine(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	nodes := newCanopyNodes(t, logs, 3, "-auth.multitenancy-enabled", "-ingester.traces.replication-factor=3", "-ingester.replication-factor=3", "-ingester.logs.replication-factor=3")
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ids := startRing(t, nodes)
	waitRingActiveOf(t, nodes, ids, 60*time.Second, "traces-ingester")

	w := startTracesWriter(nodes, 50*time.Millisecond)
	t.Cleanup(func() { w.finish() })
	w.waitAcknowledged(t, 30, 30*time.Second)
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
	w.waitAcknowledged(t, w.acknowledged()+30, 60*time.Second)
	attempts := w.finish()
	var post, postOK int
	for _, a := range attempts {
		if a.sentAt.Before(killAt) && !a.ok() {
			t.Errorf("trace push before the kill failed: %s via %s: %d %v", a.id, a.node, a.code, a.err)
		}
		if !a.sentAt.Before(killAt) {
			post++
			if a.ok() {
				postOK++
			}
		}
	}
	if float64(postOK) < 0.9*float64(post) {
		t.Errorf("with one of three traces ingesters killed, %d of %d pushes failed", post-postOK, post)
	}
	for _, n := range []*canopyNode{n1, n2} {
		checkTraces(t, "through "+n.id, tempoAPI{base: n.url(), tenant: tracesClusterTenant}, attempts)
	}

	// Restart node 3 on its data directory: it replays its WAL.
	n3.start(t)
	n3.waitReady(t, 90*time.Second)
	b, err := os.ReadFile(n3.logPath)
	if err != nil {
		t.Fatal(err)
	}
	ms := tracesWALReplayed.FindAllSubmatch(b, -1)
	if len(ms) == 0 {
		t.Fatalf("restarted %s logged no traces WAL replay", n3.id)
	}
	if n, _ := strconv.Atoi(string(ms[len(ms)-1][1])); n == 0 {
		t.Errorf("restarted %s replayed no pieces of traces from its WAL", n3.id)
	}
	waitRingActiveOf(t, nodes, ids, 60*time.Second, "traces-ingester")
	checkTraces(t, "through restarted "+n3.id, tempoAPI{base: n3.url(), tenant: tracesClusterTenant}, attempts)

	// Shipped, and past the ingesters' retention of shipped traces: the
	// same answers from the blocks, which store-gateways serve (each block
	// by one of the three processes, most of them over gRPC).
	postEach(t, nodes, "/ingester/flush")
	time.Sleep(16 * time.Second) // -ingester.traces.retain-shipped-for (15s)
	checkTraces(t, "from the bucket through "+n1.id, tempoAPI{base: n1.url(), tenant: tracesClusterTenant}, attempts)
}
