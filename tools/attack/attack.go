// Package attack replays, against a running Canopy, the hostile requests of
// the "Bounded under hostile input" issue — bodies that declare more than
// they send, decompression bombs, snappy headers that lie, query expressions
// built to exhaust the parser — and measures what each makes the process
// hold: its peak resident memory during the attack (VmHWM, reset before
// each), whether it still answers /ready afterwards, and the status codes
// the attacker got.
//
// `go run ./tools/attack/run` runs them from the command line
// (tools/attack.sh puts the process in a memory cgroup first); the
// integration test TestHostileClients runs them, smaller, against the real
// binary.
package attack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Config says where the target is and how hard to push.
type Config struct {
	// URL is the target's HTTP base, e.g. http://127.0.0.1:9009.
	URL string
	// PID is the target's process id, for its memory figures (Linux).
	PID int
	// Tenant goes in X-Scope-OrgID.
	Tenant string
	// Scale multiplies every count, size and hold time: 1 is the issue's
	// figures, the integration test uses less.
	Scale float64
	// Only names the attacks to run; empty runs all.
	Only []string
}

// Names lists the attacks, in the order Run runs them.
func Names() []string {
	var names []string
	for _, a := range attacks(&Config{Scale: 1}) {
		names = append(names, a.name)
	}
	return names
}

// Result is one attack's outcome.
type Result struct {
	Name string
	// What is the attack, in a few words.
	What string
	// PeakRSS is the process's peak resident memory during the attack, in
	// bytes; 0 when it could not be read.
	PeakRSS int64
	// Statuses counts the answers by HTTP status; 0 counts requests that got
	// no answer (connection reset, timeout).
	Statuses map[int]int
	// Alive says the target answered /ready with 200 after the attack.
	Alive bool
	Took  time.Duration
}

// StatusSummary is "413×12, 503×3".
func (r Result) StatusSummary() string {
	codes := make([]int, 0, len(r.Statuses))
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", name, r.Statuses[c]))
	}
	return strings.Join(parts, ", ")
}

type attack struct {
	name, what string
	run        func(ctx context.Context, c *Config, record func(int))
}

// attacks are the reproductions, in its order.
func attacks(c *Config) []attack {
	n := func(v int) int { return max(1, int(float64(v)*c.Scale)) }
	hold := time.Duration(float64(8*time.Second) * c.Scale)
	return []attack{
		{"declared-length", fmt.Sprintf("%d connections declare a 100 MiB push body, send 3 bytes and hold %s", n(40), hold.Round(time.Second)),
			func(ctx context.Context, c *Config, record func(int)) {
				parallel(n(40), func(int) { record(declaredLength(ctx, c, 100<<20, hold)) })
			}},
		{"gzip-bombs", fmt.Sprintf("%d concurrent OTLP pushes, each gzip of %d MiB of zeros", n(12), n(2048)),
			func(ctx context.Context, c *Config, record func(int)) {
				body := gzipZeros(int64(n(2048)) << 20)
				parallel(n(12), func(int) {
					record(post(ctx, c, "/otlp/v1/metrics", body, map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}))
				})
			}},
		{"snappy-headers", fmt.Sprintf("%d concurrent 7-byte remote writes whose snappy header declares 199 MiB, 4 rounds", n(48)),
			func(ctx context.Context, c *Config, record func(int)) {
				body := append(uvarint(199<<20), 0, 0, 0)
				for range 4 {
					parallel(n(48), func(int) { record(post(ctx, c, "/api/v1/push", body, remoteWrite1)) })
				}
			}},
		{"unary-minus", fmt.Sprintf("queries of %d MiB and %d MiB of '-' then '1'", n(3), n(8)),
			func(ctx context.Context, c *Config, record func(int)) {
				for _, size := range []int{n(3) << 20, n(8) << 20} {
					record(query(ctx, c, strings.Repeat("-", size)+"1"))
				}
			}},
		{"deep-brackets", fmt.Sprintf("a query of %d million '(' then '1' then as many ')'", n(3)),
			func(ctx context.Context, c *Config, record func(int)) {
				depth := n(3_000_000)
				record(query(ctx, c, strings.Repeat("(", depth)+"1"+strings.Repeat(")", depth)))
			}},
		{"addition-chain", "4 concurrent queries of 131,071 additions (256 KiB)",
			func(ctx context.Context, c *Config, record func(int)) {
				q := strings.Repeat("1+", 131071) + "1"
				parallel(4, func(int) { record(query(ctx, c, q)) })
			}},
	}
}

var remoteWrite1 = map[string]string{
	"Content-Type":                      "application/x-protobuf",
	"Content-Encoding":                  "snappy",
	"X-Prometheus-Remote-Write-Version": "0.1.0",
}

// Run runs every attack in turn and reports each.
func Run(ctx context.Context, c Config) ([]Result, error) {
	if c.Tenant == "" {
		c.Tenant = "attacker"
	}
	if c.Scale <= 0 {
		c.Scale = 1
	}
	var out []Result
	for _, a := range attacks(&c) {
		if len(c.Only) > 0 && !slices.Contains(c.Only, a.name) {
			continue
		}
		if err := resetPeak(c.PID); err != nil {
			return out, err
		}
		r := Result{Name: a.name, What: a.what, Statuses: map[int]int{}}
		var mu sync.Mutex
		start := time.Now()
		a.run(ctx, &c, func(code int) {
			mu.Lock()
			r.Statuses[code]++
			mu.Unlock()
		})
		r.Took = time.Since(start)
		r.PeakRSS = peakRSS(c.PID)
		r.Alive = ready(ctx, c.URL)
		out = append(out, r)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func parallel(n int, f func(int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

var client = &http.Client{Timeout: 5 * time.Minute}

func post(ctx context.Context, c *Config, path string, body []byte, headers map[string]string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Scope-OrgID", c.Tenant)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func query(ctx context.Context, c *Config, expr string) int {
	form := url.Values{"query": {expr}, "time": {"0"}}.Encode()
	return post(ctx, c, "/prometheus/api/v1/query", []byte(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// declaredLength opens a connection, declares a body of length bytes, sends
// three of them and holds the connection for hold; it reports the status if
// the server answered before that (0 if not).
func declaredLength(ctx context.Context, c *Config, length int, hold time.Duration) int {
	u, err := url.Parse(c.URL)
	if err != nil {
		return 0
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0
	}
	defer conn.Close()
	head := fmt.Sprintf("POST /api/v1/push HTTP/1.1\r\nHost: %s\r\nX-Scope-OrgID: %s\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: %d\r\n\r\nabc", u.Host, c.Tenant, length)
	if _, err := conn.Write([]byte(head)); err != nil {
		return 0
	}
	_ = conn.SetReadDeadline(time.Now().Add(hold))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// gzipZeros is the gzip of size zero bytes.
func gzipZeros(size int64) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for size > 0 {
		k := min(size, int64(len(zeros)))
		_, _ = w.Write(zeros[:k])
		size -= k
	}
	_ = w.Close()
	return buf.Bytes()
}

func uvarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func ready(ctx context.Context, base string) bool {
	for range 20 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
	return false
}

// resetPeak resets the process's VmHWM (Linux: clear_refs 5).
func resetPeak(pid int) error {
	if pid == 0 {
		return nil
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("resetting the peak RSS of pid %d: %w", pid, err)
	}
	return nil
}

// peakRSS is the process's VmHWM in bytes, 0 if unknown.
func peakRSS(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
