package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/encoding/protowire"
)

// The logs workload (loadgen logs-ingest, loadgen logs-query) measures a
// logs receiver: how many raw line bytes per second it accepts through
// Loki's push API (snappy protobuf, as Promtail, Alloy and Fluent Bit
// send it), with what memory, and how fast it answers queries over what it
// stored. The same bytes go to any receiver that speaks Loki's push API
// (Canopy, VictoriaLogs's /insert/loki/api/v1/push).
//
// Lines are a deterministic mix of three formats, one per stream: an
// nginx access log, a logfmt application log with a 32-hex trace_id, and a
// JSON log. Exactly one line of the whole run carries -needle.

// logLine writes line k of a stream of a format into b.
func logLine(b []byte, r *rand.Rand, format, k int) []byte {
	methods := [...]string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	paths := [...]string{"/api/v1/items", "/api/v1/users", "/healthz", "/api/v1/orders", "/static/app.js", "/login"}
	status := [...]int{200, 200, 200, 200, 201, 204, 301, 404, 500, 503}
	levels := [...]string{"info", "info", "info", "debug", "warn", "error"}
	m, p, s := methods[r.IntN(len(methods))], paths[r.IntN(len(paths))], status[r.IntN(len(status))]
	switch format {
	case 0:
		return fmt.Appendf(b, `10.%d.%d.%d - - [01/Dec/2026:10:%02d:%02d +0000] "%s %s/%d HTTP/1.1" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"`,
			r.IntN(256), r.IntN(256), r.IntN(256), k/60%60, k%60, m, p, r.IntN(100000), s, r.IntN(50000))
	case 1:
		return fmt.Appendf(b, `ts=2026-12-01T10:00:%02d.%03dZ level=%s caller=handler.go:%d msg="request served" method=%s path=%s/%d status=%d duration=%d.%dms trace_id=%016x%016x user_id=u%d`,
			k%60, k%1000, levels[r.IntN(len(levels))], 100+r.IntN(400), m, p, r.IntN(100000), s, r.IntN(900), r.IntN(10), r.Uint64(), r.Uint64(), r.IntN(100000))
	default:
		return fmt.Appendf(b, `{"ts":"2026-12-01T10:00:%02d.%03dZ","level":"%s","msg":"request served","method":"%s","path":"%s/%d","status":%d,"duration_ms":%d,"trace_id":"%016x%016x","user":{"id":%d,"plan":"pro"}}`,
			k%60, k%1000, levels[r.IntN(len(levels))], m, p, r.IntN(100000), s, r.IntN(900), r.Uint64(), r.Uint64(), r.IntN(100000))
	}
}

var logFormats = [...]string{"nginx", "logfmt", "json"}

// logStream is one stream's labels as Loki's protobuf push writes them.
func logStreamLabels(i int) string {
	return fmt.Sprintf(`{job="bench", app="app-%02d", pod="pod-%04d", format="%s"}`, i%50, i, logFormats[i%3])
}

type logsIngestConfig struct {
	url, tenant, needle string
	streams             int
	totalBytes          int64
	batchBytes          int
	concurrency         int
	pid                 int
	seed                uint64
	needleAt            float64
	jsonOut             bool
}

type logsIngestReport struct {
	URL            string  `json:"url"`
	Streams        int     `json:"streams"`
	RawBytes       int64   `json:"raw_bytes_accepted"`
	Lines          int64   `json:"lines_accepted"`
	Requests       int64   `json:"requests"`
	Failed         int64   `json:"requests_failed"`
	FirstError     string  `json:"first_error,omitempty"`
	Seconds        float64 `json:"seconds"`
	MBPerSecond    float64 `json:"raw_mb_per_second"`
	LinesPerSecond float64 `json:"lines_per_second"`
	PeakRSSMiB     float64 `json:"receiver_peak_rss_mib,omitempty"`
	CPUSeconds     float64 `json:"receiver_cpu_seconds,omitempty"`
	GenCPUSeconds  float64 `json:"generator_cpu_seconds"`
	NeedleTime     int64   `json:"needle_ns"`
}

// appendPushRequest encodes a logproto.PushRequest of one batch: lines of
// several streams, each with its own timestamps.
func appendPushRequest(dst []byte, streams []string, entries [][]logEntry) []byte {
	for i, s := range streams {
		var st []byte
		st = protowire.AppendTag(st, 1, protowire.BytesType)
		st = protowire.AppendString(st, s)
		for _, e := range entries[i] {
			var ts []byte
			ts = protowire.AppendTag(ts, 1, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(e.ts/1e9))
			ts = protowire.AppendTag(ts, 2, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(e.ts%1e9))
			var en []byte
			en = protowire.AppendTag(en, 1, protowire.BytesType)
			en = protowire.AppendBytes(en, ts)
			en = protowire.AppendTag(en, 2, protowire.BytesType)
			en = protowire.AppendBytes(en, e.line)
			st = protowire.AppendTag(st, 2, protowire.BytesType)
			st = protowire.AppendBytes(st, en)
		}
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, st)
	}
	return dst
}

type logEntry struct {
	ts   int64
	line []byte
}

func logsIngest(args []string) error {
	var c logsIngestConfig
	fs := flag.NewFlagSet("logs-ingest", flag.ExitOnError)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:9009/loki/api/v1/push", "Loki push endpoint.")
	fs.StringVar(&c.tenant, "tenant", "", "X-Scope-OrgID header; empty sends none.")
	fs.IntVar(&c.streams, "streams", 1000, "Active streams.")
	size := fs.String("bytes", "1GB", "Raw line bytes to send (kB, MB, GB: powers of 1000).")
	fs.IntVar(&c.batchBytes, "batch-bytes", 1<<20, "Raw line bytes per push.")
	fs.IntVar(&c.concurrency, "concurrency", 4, "Pushes in flight.")
	fs.IntVar(&c.pid, "pid", 0, "PID of the receiver, for its CPU time and peak RSS.")
	fs.Uint64Var(&c.seed, "seed", 1, "Seed of the lines.")
	fs.StringVar(&c.needle, "needle", "needle-3f9a1c7e5b2d4f60a8e1", "A token put in exactly one line.")
	fs.Float64Var(&c.needleAt, "needle-at", 0.37, "Where in the run (fraction of the bytes) the needle's line is sent.")
	fs.BoolVar(&c.jsonOut, "json", false, "Print the report as JSON.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	c.totalBytes = n
	if c.streams < 1 || c.batchBytes < 1 || c.concurrency < 1 {
		return errors.New("-streams, -batch-bytes and -concurrency must be positive")
	}
	rep, err := runLogsIngest(c)
	if err != nil {
		return err
	}
	if c.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Printf("%s: %d streams, %.0f MB of lines in %.1fs: %.1f MB/s, %.0f lines/s; %d of %d pushes failed %s\n",
		rep.URL, rep.Streams, float64(rep.RawBytes)/1e6, rep.Seconds, rep.MBPerSecond, rep.LinesPerSecond, rep.Failed, rep.Requests, rep.FirstError)
	if c.pid > 0 {
		fmt.Printf("receiver: peak RSS %.0f MiB, %.1f CPU seconds (%.2f s per GB)\n", rep.PeakRSSMiB, rep.CPUSeconds, rep.CPUSeconds/(float64(rep.RawBytes)/1e9))
	}
	fmt.Printf("generator: %.1f CPU seconds; needle at %d\n", rep.GenCPUSeconds, rep.NeedleTime)
	return nil
}

func parseSize(s string) (int64, error) {
	units := map[string]float64{"": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	u, ok := units[s[i:]]
	if err != nil || !ok {
		return 0, fmt.Errorf("size %q: a number and kB, MB or GB", s)
	}
	return int64(f * u), nil
}

func runLogsIngest(c logsIngestConfig) (*logsIngestReport, error) {
	rep := &logsIngestReport{URL: c.url, Streams: c.streams}
	labelsOf := make([]string, c.streams)
	for i := range labelsOf {
		labelsOf[i] = logStreamLabels(i)
	}
	var (
		sentBytes   atomic.Int64
		lines       atomic.Int64
		requests    atomic.Int64
		failed      atomic.Int64
		errOnce     sync.Once
		needleBatch = int64(float64(c.totalBytes) * c.needleAt / float64(c.batchBytes))
		batches     = (c.totalBytes + int64(c.batchBytes) - 1) / int64(c.batchBytes)
		next        atomic.Int64
		needleTS    atomic.Int64
		tsBase      = time.Now().Add(-time.Minute).UnixNano()
	)
	// Lines come from pools made once, so that the generator's CPU stays a
	// small part of the machine's: 20,000 distinct lines per format.
	var pools [3][][]byte
	pr := rand.New(rand.NewPCG(c.seed, 1<<40))
	for f := range pools {
		for k := 0; k < 20000; k++ {
			pools[f] = append(pools[f], logLine(nil, pr, f, k))
		}
	}
	client := &http.Client{Timeout: time.Minute}
	genStart := selfCPU()
	start := time.Now()
	before, _ := readProcIf(c.pid)
	var wg sync.WaitGroup
	for w := 0; w < c.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				raw, body []byte
				entries   = make([][]logEntry, 0, 64)
				streams   = make([]string, 0, 64)
			)
			for {
				k := next.Add(1) - 1
				if k >= batches {
					return
				}
				r := rand.New(rand.NewPCG(c.seed, uint64(k)))
				// A batch holds 64 consecutive streams (wrapping), like an
				// agent shipping what it tailed from several files; its
				// lines come from the pools at random.
				first := int(k*64) % c.streams
				streams, entries = streams[:0], entries[:0]
				for j := 0; j < 64 && j < c.streams; j++ {
					streams = append(streams, labelsOf[(first+j)%c.streams])
					entries = append(entries, nil)
				}
				size := 0
				for n := 0; size < c.batchBytes; n++ {
					j := n % len(streams)
					si := (first + j) % c.streams
					pool := pools[si%3]
					line := pool[r.IntN(len(pool))]
					if k == needleBatch && n == 0 {
						line = append(append([]byte(nil), line...), " "+c.needle...)
						needleTS.Store(tsBase + k*1e6 + int64(n))
					}
					size += len(line)
					entries[j] = append(entries[j], logEntry{ts: tsBase + k*1e6 + int64(n), line: line})
				}
				raw = appendPushRequest(raw[:0], streams, entries)
				body = s2.EncodeSnappy(body[:cap(body)], raw)
				req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-protobuf")
				if c.tenant != "" {
					req.Header.Set("X-Scope-OrgID", c.tenant)
				}
				requests.Add(1)
				resp, err := client.Do(req)
				if err == nil {
					msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(msg)))
					}
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { rep.FirstError = err.Error() })
					continue
				}
				sentBytes.Add(int64(size))
				lines.Add(int64(countEntries(entries)))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	after, _ := readProcIf(c.pid)
	rep.RawBytes, rep.Lines, rep.Requests, rep.Failed = sentBytes.Load(), lines.Load(), requests.Load(), failed.Load()
	rep.Seconds = el.Seconds()
	rep.MBPerSecond = float64(rep.RawBytes) / 1e6 / rep.Seconds
	rep.LinesPerSecond = float64(rep.Lines) / rep.Seconds
	rep.GenCPUSeconds = (selfCPU() - genStart).Seconds()
	rep.NeedleTime = needleTS.Load()
	if c.pid > 0 {
		rep.PeakRSSMiB = float64(after.hwm) / (1 << 20)
		rep.CPUSeconds = (after.cpu - before.cpu).Seconds()
	}
	return rep, nil
}

func countEntries(es [][]logEntry) int {
	n := 0
	for _, e := range es {
		n += len(e)
	}
	return n
}

func readProcIf(pid int) (procStats, error) {
	if pid <= 0 {
		return procStats{}, nil
	}
	return readProc(pid)
}

// logsQuery runs one query several times against a Loki API (Canopy) or
// VictoriaLogs's LogsQL API and reports the wall time of each run, the
// bytes the receiver says it processed (Loki's stats), and its CPU seconds.
func logsQuery(args []string) error {
	fs := flag.NewFlagSet("logs-query", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:9009", "Base URL of the receiver.")
	api := fs.String("api", "loki", "loki (GET /loki/api/v1/query or query_range) or logsql (VictoriaLogs: /select/logsql/query).")
	q := fs.String("query", "", "The query.")
	instant := fs.Bool("instant", false, "Loki: an instant query (/query) at -end; else query_range.")
	startNs := fs.Int64("start", 0, "Start, Unix ns.")
	endNs := fs.Int64("end", 0, "End, Unix ns.")
	limit := fs.Int("limit", 100, "Entry limit.")
	runs := fs.Int("runs", 3, "Runs; the report gives each and the best.")
	tenant := fs.String("tenant", "", "X-Scope-OrgID header.")
	pid := fs.Int("pid", 0, "PID of the receiver, for its CPU seconds.")
	rawBytes := fs.Int64("raw-bytes", 0, "Raw bytes the query covers, for MB/s when the receiver reports none.")
	name := fs.String("name", "", "Label of this query in the output.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *q == "" {
		return errors.New("-query is empty")
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	best := time.Duration(1<<63 - 1)
	var bestCPU float64
	var processed int64
	var lastBody []byte
	for i := 0; i < *runs; i++ {
		v := url.Values{"query": {*q}, "limit": {strconv.Itoa(*limit)}}
		var u string
		switch *api {
		case "loki":
			path := "/loki/api/v1/query_range"
			v.Set("start", strconv.FormatInt(*startNs, 10))
			v.Set("end", strconv.FormatInt(*endNs, 10))
			if *instant {
				path = "/loki/api/v1/query"
				v.Del("start")
				v.Del("end")
				v.Set("time", strconv.FormatInt(*endNs, 10))
			}
			u = *base + path + "?" + v.Encode()
		case "logsql":
			v.Set("start", strconv.FormatInt(*startNs, 10))
			v.Set("end", strconv.FormatInt(*endNs, 10))
			u = *base + "/select/logsql/query?" + v.Encode()
		default:
			return fmt.Errorf("-api %q: loki or logsql", *api)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if *tenant != "" {
			req.Header.Set("X-Scope-OrgID", *tenant)
		}
		before, _ := readProcIf(*pid)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		el := time.Since(t0)
		after, _ := readProcIf(*pid)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		lastBody = body
		cpu := (after.cpu - before.cpu).Seconds()
		if *api == "loki" {
			var r struct {
				Data struct {
					Stats struct {
						Summary struct {
							TotalBytesProcessed int64 `json:"totalBytesProcessed"`
						} `json:"summary"`
					} `json:"stats"`
				} `json:"data"`
			}
			if json.Unmarshal(body, &r) == nil {
				processed = r.Data.Stats.Summary.TotalBytesProcessed
			}
		}
		fmt.Fprintf(os.Stderr, "%s run %d: %s, receiver CPU %.2fs\n", *name, i+1, el.Round(time.Millisecond), cpu)
		if el < best {
			best, bestCPU = el, cpu
		}
	}
	if processed == 0 {
		processed = *rawBytes
	}
	answer := string(lastBody)
	if len(answer) > 300 {
		answer = answer[:300] + "…"
	}
	out := map[string]any{"name": *name, "best_seconds": best.Seconds(), "receiver_cpu_seconds": bestCPU, "bytes": processed, "answer": answer}
	if processed > 0 {
		out["mb_per_second"] = float64(processed) / 1e6 / best.Seconds()
		if bestCPU > 0 {
			out["mb_per_cpu_second"] = float64(processed) / 1e6 / bestCPU
		}
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(out)
}
