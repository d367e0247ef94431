// Command loadgen sends a steady telemetry load to a receiver and reports what
// the receiver made of it: accepted items per second, push latency
// percentiles, the receiver's CPU seconds per million items and its resident
// memory per active series (read from /proc/PID of the receiver, -pid).
//
// The metrics workload is Prometheus remote write 1.0 or 2.0 (-protocol);
// the logs workload is Loki's push API and queries (loadgen logs-ingest,
// loadgen logs-query: logs.go).
//
// The load is a fixed set of -series active series split into requests of
// -batch series. A warm-up round first sends every series once, as fast as
// accepted, creating them (reported as series creation); then, for
// -duration, every round sends one new sample per series, as fast as the
// receiver takes them or at -rate samples/s. Each request's samples are
// stamped with the wall clock, at least 1ms after the previous request of
// the same series; each batch of series belongs to one of the -concurrency
// workers, so a series' samples arrive in order. Only samples of 2xx
// responses count as accepted. Requests are encoded once at start-up and
// only patched and snappy-compressed per round, so the generator's own CPU —
// also reported — stays a small fraction of the receiver's.
//
//	loadgen -url http://127.0.0.1:9009/api/v1/push -series 100000 -duration 30s -pid $(pidof canopy)
//	loadgen -json ... > a.json; loadgen show a.json; loadgen compare a.json b.json
//	loadgen freeports 3
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url         string
	name        string
	series      int
	rate        float64
	duration    time.Duration
	batch       int
	concurrency int
	protocol    string
	tenant      string
	pid         int
	pids        []int // pid and the other processes of the receiver (-pid a,b,c)
	jsonOut     bool
	timeout     time.Duration
	seed        uint64
	pprofURL    string
	pprofOut    string
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "compare":
			if err := compare(os.Args[2:]); err != nil {
				fatal(err)
			}
			return
		case "show":
			if err := show(os.Args[2:]); err != nil {
				fatal(err)
			}
			return
		case "logs-ingest":
			if err := logsIngest(os.Args[2:]); err != nil {
				fatal(err)
			}
			return
		case "logs-query":
			if err := logsQuery(os.Args[2:]); err != nil {
				fatal(err)
			}
			return
		case "traces-ingest":
			if err := tracesIngest(os.Args[2:]); err != nil {
				fatal(err)
			}
			return
		case "traces-query":
			if err := tracesQuery(os.Args[2:]); err != nil {
				fatal(err)
			}
			return
		case "freeports":
			if err := freePorts(os.Args[2:]); err != nil {
				fatal(err)
			}
			return
		}
	}
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:9009/api/v1/push", "Remote write endpoint.")
	flag.StringVar(&c.name, "name", "", "Name of the receiver in the report (default: the URL's host).")
	flag.IntVar(&c.series, "series", 100000, "Active series.")
	flag.Float64Var(&c.rate, "rate", 0, "Samples per second to send after the warm-up; 0 sends as fast as the receiver accepts.")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "Length of the measured window after the warm-up round.")
	flag.IntVar(&c.batch, "batch", 2000, "Series per request.")
	flag.IntVar(&c.concurrency, "concurrency", 4, "Requests in flight.")
	flag.StringVar(&c.protocol, "protocol", protoRW1, "rw1 (remote write 1.0) or rw2 (remote write 2.0).")
	flag.StringVar(&c.tenant, "tenant", "", "X-Scope-OrgID header; empty sends none.")
	pidList := flag.String("pid", "", "PID of the receiver, to report its CPU time and RSS from /proc, or a comma-separated list of the PIDs of a cluster's processes (CPU and RSS are summed); empty skips that.")
	flag.BoolVar(&c.jsonOut, "json", false, "Print the report as JSON.")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "Timeout of one request.")
	flag.Uint64Var(&c.seed, "seed", 1, "Seed of the sample values.")
	flag.StringVar(&c.pprofURL, "pprof-url", "", "URL fetched when the measured window starts (e.g. http://host/debug/pprof/profile?seconds=20), saved to -pprof-out; a comma-separated list fetches several at once (one per process of a cluster).")
	flag.StringVar(&c.pprofOut, "pprof-out", "loadgen.prof", "Where to save what -pprof-url returned; a comma-separated list, one per URL.")
	flag.Parse()
	for _, p := range strings.Split(*pidList, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-pid %q: not a process id", p))
		}
		c.pids = append(c.pids, n)
	}
	if len(c.pids) > 0 {
		c.pid = c.pids[0]
	}
	if c.series < 1 || c.batch < 1 || c.concurrency < 1 || c.duration <= 0 {
		fatal(errors.New("-series, -batch, -concurrency and -duration must be positive"))
	}
	if c.name == "" {
		c.name = c.url
		if i := strings.Index(c.name, "://"); i >= 0 {
			c.name = c.name[i+3:]
		}
	}
	r, err := run(c)
	if err != nil {
		fatal(err)
	}
	if c.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return
	}
	r.print(os.Stdout)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

// phaseStats accumulates one worker's results for one phase.
type phaseStats struct {
	requests, items, accepted, bytes int64
	latencies                        []time.Duration
	errors                           map[string]int64
	firstError                       map[string]string
}

func (s *phaseStats) fail(key, msg string) {
	if s.errors == nil {
		s.errors, s.firstError = map[string]int64{}, map[string]string{}
	}
	s.errors[key]++
	if _, ok := s.firstError[key]; !ok {
		s.firstError[key] = msg
	}
}

func (s *phaseStats) merge(o *phaseStats) {
	s.requests += o.requests
	s.items += o.items
	s.accepted += o.accepted
	s.bytes += o.bytes
	s.latencies = append(s.latencies, o.latencies...)
	for k, n := range o.errors {
		if s.errors == nil {
			s.errors, s.firstError = map[string]int64{}, map[string]string{}
		}
		s.errors[k] += n
		if _, ok := s.firstError[k]; !ok {
			s.firstError[k] = o.firstError[k]
		}
	}
}

// worker owns a fixed set of batches, so the samples of a series are always
// sent in order, one request at a time.
type worker struct {
	c       *config
	wl      workload
	client  *http.Client
	header  http.Header
	batches []batch
	lastTS  []int64
	buf     []byte // compressed body, reused
	body    *reusableBody
	errBuf  []byte
}

func (w *worker) send(i int, st *phaseStats) {
	now := time.Now().UnixMilli()
	ts := max(now, w.lastTS[i]+1)
	w.lastTS[i] = ts
	body, n := w.batches[i].encode(w.buf, ts)
	if cap(body) > cap(w.buf) {
		w.buf = body
	}
	w.body.reset(body)
	req, err := http.NewRequest(http.MethodPost, w.c.url, w.body)
	if err != nil {
		panic(err)
	}
	req.ContentLength = int64(len(body))
	req.Header = w.header
	st.requests++
	st.items += int64(n)
	st.bytes += int64(len(body))
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		st.fail("transport", err.Error())
		st.latencies = append(st.latencies, time.Since(start))
		w.waitBody()
		return
	}
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		st.accepted += int64(w.wl.accepted(resp, n))
	} else {
		k, _ := io.ReadFull(resp.Body, w.errBuf)
		_, _ = io.Copy(io.Discard, resp.Body)
		st.fail(strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(w.errBuf[:k])))
	}
	_ = resp.Body.Close()
	st.latencies = append(st.latencies, time.Since(start))
	w.waitBody()
}

// waitBody waits until the HTTP transport has closed the request body, so
// that its buffer can be reused. A transport that never does (it must)
// costs a fresh buffer.
func (w *worker) waitBody() {
	select {
	case <-w.body.done:
	case <-time.After(10 * time.Second):
		w.buf = make([]byte, cap(w.buf))
		w.body = &reusableBody{}
	}
}

// reusableBody is a request body over a reused buffer that signals Close.
type reusableBody struct {
	b    []byte
	off  int
	done chan struct{}
	once atomic.Bool
}

func (r *reusableBody) reset(b []byte) {
	if r.done == nil {
		r.done = make(chan struct{}, 1)
	}
	r.b, r.off = b, 0
	r.once.Store(false)
}

func (r *reusableBody) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *reusableBody) WriteTo(dst io.Writer) (int64, error) {
	n, err := dst.Write(r.b[r.off:])
	r.off += n
	return int64(n), err
}

// Close is called once by the transport, from whichever goroutine finished
// with the body; the buffer is not reused before the worker sees done.
func (r *reusableBody) Close() error {
	if r.once.CompareAndSwap(false, true) {
		r.done <- struct{}{}
	}
	return nil
}

// warmUp sends every batch once.
func (w *worker) warmUp(st *phaseStats) {
	for i := range w.batches {
		w.send(i, st)
	}
}

// steady sends round after round until the deadline, paced at rate items/s
// when rate > 0.
func (w *worker) steady(st *phaseStats, deadline time.Time, rate float64) {
	next := time.Now()
	for {
		for i := range w.batches {
			now := time.Now()
			if !now.Before(deadline) {
				return
			}
			if rate > 0 {
				if d := next.Sub(now); d > 0 {
					time.Sleep(d)
				} else if d < -time.Second {
					next = now // too far behind: do not burst to catch up
				}
				// Every batch of a worker has the same size but perhaps the last.
				next = next.Add(time.Duration(float64(w.c.batch) / rate * float64(time.Second)))
			}
			w.send(i, st)
		}
	}
}

func run(c config) (*report, error) {
	wl, err := newRemoteWrite(c.protocol, c.series, c.batch, c.seed)
	if err != nil {
		return nil, err
	}
	if err := checkPayload(wl, time.Now().UnixMilli()); err != nil {
		return nil, fmt.Errorf("payload self-check: %w", err)
	}
	bs := wl.batches()
	conc := min(c.concurrency, len(bs))
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      16 << 10,
	}
	client := &http.Client{Transport: transport, Timeout: c.timeout}
	header := wl.header()
	if c.tenant != "" {
		header.Set("X-Scope-OrgID", c.tenant)
	}
	workers := make([]*worker, conc)
	for i := range workers {
		w := &worker{c: &c, wl: wl, client: client, header: header.Clone(), body: &reusableBody{}, errBuf: make([]byte, 300)}
		maxLen := 0
		for j := i; j < len(bs); j += conc {
			w.batches = append(w.batches, bs[j])
			maxLen = max(maxLen, bs[j].maxEncodedLen())
		}
		w.lastTS = make([]int64, len(w.batches))
		w.buf = make([]byte, maxLen)
		workers[i] = w
	}

	r := &report{
		Name: c.name, URL: c.url, Workload: "remote-write-" + c.protocol, Unit: wl.unit(),
		Series: wl.streams(), Batch: c.batch, Requests: len(bs), Concurrency: conc, Rate: c.rate,
	}
	target := func() procStats {
		var sum procStats
		for _, pid := range c.pids {
			s, err := readProc(pid)
			if err != nil {
				fatal(fmt.Errorf("reading /proc/%d: %w", pid, err))
			}
			sum.cpu, sum.rss, sum.hwm = sum.cpu+s.cpu, sum.rss+s.rss, sum.hwm+s.hwm
		}
		return sum
	}
	phase := func(f func(w *worker, st *phaseStats)) *phaseStats {
		stats := make([]phaseStats, len(workers))
		var wg sync.WaitGroup
		for i, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stats[i].latencies = make([]time.Duration, 0, 4096)
				f(w, &stats[i])
			}()
		}
		wg.Wait()
		all := &phaseStats{}
		for i := range stats {
			all.merge(&stats[i])
		}
		return all
	}

	// Warm-up: create every series.
	t0, g0, start := target(), selfCPU(), time.Now()
	warm := phase(func(w *worker, st *phaseStats) { w.warmUp(st) })
	t1, g1, warmEnd := target(), selfCPU(), time.Now()
	r.Creation = phaseReport(warm, warmEnd.Sub(start), t1.cpu-t0.cpu, g1-g0, c.pid != 0)
	r.TargetRSSStart = t0.rss

	// Measured window.
	var profDone chan error
	var profURLs, profOuts []string
	if c.pprofURL != "" {
		profURLs, profOuts = strings.Split(c.pprofURL, ","), strings.Split(c.pprofOut, ",")
		if len(profURLs) != len(profOuts) {
			fatal(errors.New("-pprof-url and -pprof-out must list as many entries"))
		}
		profDone = make(chan error, len(profURLs))
		for i := range profURLs {
			go func() { profDone <- fetch(profURLs[i], profOuts[i]) }()
		}
	}
	deadline := warmEnd.Add(c.duration)
	steady := phase(func(w *worker, st *phaseStats) { w.steady(st, deadline, c.rate/float64(conc)) })
	t2, g2, end := target(), selfCPU(), time.Now()
	r.Steady = phaseReport(steady, end.Sub(warmEnd), t2.cpu-t1.cpu, g2-g1, c.pid != 0)
	r.Rounds = float64(steady.items) / float64(c.series)
	if c.pid != 0 {
		r.TargetRSS, r.TargetRSSHWM = t2.rss, t2.hwm
		r.TargetRSSPerSeries = float64(t2.rss) / float64(c.series)
		r.TargetRSSDeltaPerSeries = float64(t2.rss-t0.rss) / float64(c.series)
	}
	if self, err := readProc(os.Getpid()); err == nil {
		r.GeneratorRSS = self.rss
	}
	if profDone != nil {
		failed := false
		for range profURLs {
			if err := <-profDone; err != nil {
				fmt.Fprintln(os.Stderr, "loadgen: profile:", err)
				failed = true
			}
		}
		if !failed {
			r.Profile = c.pprofOut
		}
	}
	return r, nil
}

func fetch(url, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// freePorts prints n TCP ports that were free a moment ago.
func freePorts(args []string) error {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil {
			return err
		}
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	fmt.Println(strings.Join(ports, " "))
	return nil
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func phaseReport(st *phaseStats, wall, targetCPU, genCPU time.Duration, haveTarget bool) phase {
	sort.Slice(st.latencies, func(i, j int) bool { return st.latencies[i] < st.latencies[j] })
	p := phase{
		Seconds:            wall.Seconds(),
		Requests:           st.requests,
		Sent:               st.items,
		Accepted:           st.accepted,
		AcceptedPerSecond:  float64(st.accepted) / wall.Seconds(),
		Errors:             st.errors,
		FirstErrors:        st.firstError,
		LatencyP50Ms:       percentile(st.latencies, 0.50),
		LatencyP90Ms:       percentile(st.latencies, 0.90),
		LatencyP99Ms:       percentile(st.latencies, 0.99),
		LatencyMaxMs:       percentile(st.latencies, 1),
		BytesSent:          st.bytes,
		GeneratorCPU:       genCPU.Seconds(),
		GeneratorCPUPerMil: perMillion(genCPU, st.accepted),
	}
	if st.items > 0 {
		p.BytesPerItem = float64(st.bytes) / float64(st.items)
	}
	if haveTarget {
		p.TargetCPU = targetCPU.Seconds()
		p.TargetCPUPerMil = perMillion(targetCPU, st.accepted)
		p.TargetCores = targetCPU.Seconds() / wall.Seconds()
		if targetCPU > 0 {
			p.GeneratorCPUShare = genCPU.Seconds() / (targetCPU.Seconds() + genCPU.Seconds())
		}
	}
	return p
}

func perMillion(cpu time.Duration, items int64) float64 {
	if items == 0 {
		return 0
	}
	return cpu.Seconds() / (float64(items) / 1e6)
}
