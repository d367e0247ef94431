package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePorts returns n distinct ports free on 127.0.0.1 for both TCP and UDP
// (memberlist uses both on its port). All are held until all are chosen so
// the kernel cannot hand out the same port twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 100*n {
			t.Fatalf("could not find %d free ports on 127.0.0.1", n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listening on 127.0.0.1:0: %v", err)
		}
		closers = append(closers, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // TCP free but UDP taken: try another.
		}
		closers = append(closers, u)
		ports = append(ports, port)
	}
	return ports
}

// process is one child process whose output goes to a log file that is
// printed when the test fails.
type process struct {
	t       *testing.T
	name    string
	bin     string
	args    []string
	env     []string // added to the environment
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // of Wait, valid once exited is closed
}

// logDir is a per-test directory for process logs, kept (and named in the
// output) when the test fails.
func logDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "canopy-it-logs-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		} else {
			t.Logf("process logs kept in %s", dir)
		}
	})
	return dir
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

func newProcess(t *testing.T, logs, name, bin string, args ...string) *process {
	p := &process{t: t, name: name, bin: bin, args: args, logPath: filepath.Join(logs, name+".log")}
	// Registered after logDir's cleanup, so it runs first: the process is
	// gone and its log complete before the log is printed or deleted.
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog(400)
		}
	})
	return p
}

// start starts the process; its output is appended to the log file.
func (p *process) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		t.Fatalf("%s: already running", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // The child has its own copy of the descriptor.
	fmt.Fprintf(f, "===== %s: starting %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: starting %s: %v", p.name, p.bin, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
}

func (p *process) exitedLocked() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// running reports whether the process was started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exitedLocked()
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *process) exitedCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// signalAndWait sends sig and waits up to timeout for the exit; it reports
// whether the process exited in time.
func (p *process) signalAndWait(sig syscall.Signal, timeout time.Duration) bool {
	if !p.running() {
		return true
	}
	_ = syscall.Kill(p.pid(), sig)
	select {
	case <-p.exitedCh():
		return true
	case <-time.After(timeout):
		return false
	}
}

// terminate sends SIGTERM and waits up to timeout for the process to exit
// with status 0. If it does not exit in time, the test is marked failed and
// the process is killed with SIGKILL, so the test can go on.
func (p *process) terminate(t *testing.T, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	if !p.signalAndWait(syscall.SIGTERM, timeout) {
		p.kill()
		t.Errorf("%s did not exit within %s of SIGTERM; killed it with SIGKILL", p.name, timeout)
		return
	}
	if err := p.exitErr(); err != nil {
		t.Errorf("%s exited with %v after SIGTERM, want status 0", p.name, err)
	}
	t.Logf("%s exited %s after SIGTERM", p.name, time.Since(start).Round(time.Millisecond))
}

// kill sends SIGKILL (kill -9) and waits for the process to be reaped.
func (p *process) kill() {
	if !p.signalAndWait(syscall.SIGKILL, 10*time.Second) {
		p.t.Errorf("%s (pid %d) still running 10s after SIGKILL", p.name, p.pid())
	}
}

// dumpLog prints the last maxLines lines of the process's log.
func (p *process) dumpLog(maxLines int) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		p.t.Logf("%s: reading log: %v", p.name, err)
		return
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	skipped := 0
	if len(lines) > maxLines {
		skipped = len(lines) - maxLines
		lines = lines[skipped:]
	}
	p.t.Logf("----- %s log (%s; %d earlier lines omitted) -----\n%s\n----- end of %s log -----", p.name, p.logPath, skipped, bytes.Join(lines, []byte("\n")), p.name)
}

// canopyNode is one canopy process and the ports it listens on.
type canopyNode struct {
	*process
	id                         string
	target                     string // -target; empty: all
	httpPort, grpcPort, mlPort int
	dataDir                    string
	bucketDir                  string // the filesystem bucket all nodes share
}

func (n *canopyNode) url() string { return "http://127.0.0.1:" + strconv.Itoa(n.httpPort) }

func (n *canopyNode) mlAddr() string { return "127.0.0.1:" + strconv.Itoa(n.mlPort) }

// newCanopyNodes prepares (does not start) count canopy processes that join
// each other by memberlist, each running every component. extra flags are
// appended to every command line.
func newCanopyNodes(t *testing.T, logs string, count int, extra ...string) []*canopyNode {
	t.Helper()
	targets := make([]string, count)
	return newCanopyCluster(t, logs, targets, extra...)
}

// newCanopyCluster prepares one canopy process per entry of targets, each
// given that -target (empty: the default, all) and named after it. They
// share one filesystem bucket and join each other by memberlist, every one
// naming all of them as seeds (the process skips its own address). Each
// process gets only -instance-id: its rings advertise the gRPC listen
// address and memberlist the port it binds, by default.
func newCanopyCluster(t *testing.T, logs string, targets []string, extra ...string) []*canopyNode {
	t.Helper()
	count := len(targets)
	ports := freePorts(t, 3*count)
	nodes := make([]*canopyNode, count)
	bucketDir := filepath.Join(t.TempDir(), "bucket") // one bucket, as in production
	var join []string
	for i, target := range targets {
		id := fmt.Sprintf("ingester-%d", i+1)
		if target != "" {
			id = fmt.Sprintf("%s-%d", target, i+1)
		}
		nodes[i] = &canopyNode{
			id:        id,
			target:    target,
			httpPort:  ports[3*i],
			grpcPort:  ports[3*i+1],
			mlPort:    ports[3*i+2],
			dataDir:   filepath.Join(t.TempDir(), "data"),
			bucketDir: bucketDir,
		}
		join = append(join, nodes[i].mlAddr())
	}
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		args := []string{
			"-log.level=info",
			"-instance-id=" + n.id,
			"-server.http-listen-address=127.0.0.1",
			"-server.http-listen-port=" + strconv.Itoa(n.httpPort),
			"-server.grpc-listen-address=127.0.0.1",
			"-server.grpc-listen-port=" + strconv.Itoa(n.grpcPort),
			"-server.graceful-shutdown-timeout=5s",
			"-memberlist.bind-addr=127.0.0.1",
			"-memberlist.bind-port=" + strconv.Itoa(n.mlPort),
			"-store-gateway.ring.heartbeat-period=1s",
			"-store-gateway.ring.heartbeat-timeout=10s",
			"-bucket.filesystem.dir=" + bucketDir,
			"-ingester.ring.heartbeat-period=1s",
			"-ingester.ring.heartbeat-timeout=10s",
			"-ingester.logs.ring.heartbeat-period=1s",
			"-ingester.logs.ring.heartbeat-timeout=10s",
			"-data-dir=" + n.dataDir,
			"-distributor.otlp.grpc-listen-address=",
			"-distributor.otlp.http-listen-address=",
		}
		if n.target != "" {
			// Admin paths are closed outside -target=all unless a token is
			// set: the helpers send it (adminToken).
			args = append(args, "-target="+n.target, "-auth.admin-token-file="+tokenFile)
		}
		if count > 1 {
			args = append(args, "-memberlist.join="+strings.Join(join, ","), "-memberlist.rejoin-interval=5s")
		}
		args = append(args, extra...)
		n.process = newProcess(t, logs, n.id, canopyBin, args...)
	}
	return nodes
}

// waitReady polls /ready until it answers 200, the process exits, or the
// deadline passes.
func (n *canopyNode) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		select {
		case <-n.exitedCh():
			t.Fatalf("%s exited before becoming ready: %v", n.name, n.exitErr())
		default:
		}
		code, body, err := httpGet(n.url()+"/ready", nil)
		if err == nil && code == http.StatusOK {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", code, strings.TrimSpace(string(body)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s; last /ready answer: %s", n.name, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// adminToken is the admin credential of the processes newCanopyCluster
// starts with a -target; every request of these tests carries it.
const adminToken = "integration-admin-token"

// httpClient is shared by all tests; requests carry their own timeouts.
var httpClient = &http.Client{Timeout: 15 * time.Second}

// untimedClient leaves the timeout to the request's context.
var untimedClient = &http.Client{}

func httpGet(u string, hdr http.Header) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// eventually calls f every interval until it returns nil or timeout passes,
// then fails the test with f's last error.
func eventually(t *testing.T, timeout, interval time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}

// startRing starts nodes, waits until each is ready and every one sees all
// of them ACTIVE in the ingester ring, and returns their IDs.
func startRing(t *testing.T, nodes []*canopyNode) []string {
	t.Helper()
	ids := make([]string, 0, len(nodes))
	for _, n := range nodes {
		ids = append(ids, n.id)
		n.start(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 90*time.Second)
	}
	waitRingActive(t, nodes, ids, 60*time.Second)
	return ids
}

// restartWiped stops nodes with SIGTERM, deletes their data directories and
// starts them again, waiting until each is ready: whatever they held is
// then only in the bucket.
func restartWiped(t *testing.T, nodes []*canopyNode) {
	t.Helper()
	for _, n := range nodes {
		n.terminate(t, 60*time.Second)
	}
	for _, n := range nodes {
		if err := os.RemoveAll(n.dataDir); err != nil {
			t.Fatal(err)
		}
		n.start(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 90*time.Second)
	}
}

// postEach POSTs path (e.g. /ingester/flush) to every node and fails the
// test unless each answers 200.
func postEach(t *testing.T, nodes []*canopyNode, path string) {
	t.Helper()
	for _, n := range nodes {
		r, err := doTimeout(5*time.Minute, http.MethodPost, n.url()+path, "", "", nil, nil)
		if err != nil || r.code != http.StatusOK {
			t.Fatalf("POST %s on %s: %v %s", path, n.id, err, r)
		}
	}
}

// sumMetric adds up the value of the unlabelled metric name over the
// /metrics pages of nodes.
func sumMetric(t *testing.T, nodes []*canopyNode, name string) float64 {
	t.Helper()
	var sum float64
	for _, n := range nodes {
		r, err := do(http.MethodGet, n.url()+"/metrics", "", "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := metricValue(r.body, name, nil)
		sum += v
	}
	return sum
}
