package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // -compression gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The traces workload (loadgen traces-ingest, loadgen traces-query:
// traces_query.go) measures a traces receiver: how many spans per second
// it accepts over OTLP gRPC, with what CPU and memory, and then how fast it
// finds a trace by ID and answers a search over what it stored. The same
// requests go to any OTLP gRPC receiver (Canopy's distributor, Jaeger v2's
// otlp receiver).
//
// Traces are like telemetrygen's (opentelemetry-collector-contrib
// cmd/telemetrygen traces): two spans each, a root server span "lets-go"
// and its child client span "okey-dokey-0", random 16-byte trace IDs and
// 8-byte span IDs, one resource with service.name "loadgen", one scope, and
// a few attributes: network.peer.address and http.request.method and
// http.status_code (200, or 500 with an error status for -error-ratio of
// the traces) on the root, network.peer.address and peer.service on the
// child. Spans start at the wall clock of their request (a request's traces
// spread over the millisecond before it) and last 0.1 to 1 ms.
//
// Each of -concurrency exporters has its own gRPC connection and its own
// request of -batch spans, built once and only patched per request (IDs,
// times, status), so that the generator's CPU stays a small part of the
// machine's. Spans of a request that fails, or that the receiver reports
// as rejected (OTLP partial success), are not counted as accepted.

const tracesService = "loadgen"

type tracesIngestConfig struct {
	addr, tenant, name, compression, idsFile string
	spans                                    int64
	duration, timeout                        time.Duration
	batch, concurrency, idsSample, pid       int
	seed                                     uint64
	errorRatio                               float64
	jsonOut                                  bool
}

type tracesIngestReport struct {
	Name             string           `json:"name"`
	Addr             string           `json:"addr"`
	Concurrency      int              `json:"concurrency"`
	SpansPerRequest  int              `json:"spans_per_request"`
	Requests         int64            `json:"requests"`
	Failed           int64            `json:"requests_failed"`
	Errors           map[string]int64 `json:"errors,omitempty"` // by gRPC code
	FirstError       string           `json:"first_error,omitempty"`
	SpansSent        int64            `json:"spans_sent"`
	SpansAccepted    int64            `json:"spans_accepted"`
	SpansRejected    int64            `json:"spans_rejected"` // OTLP partial success
	Seconds          float64          `json:"seconds"`
	SpansPerSecond   float64          `json:"accepted_spans_per_second"`
	LatencyP50Ms     float64          `json:"latency_p50_ms"`
	LatencyP99Ms     float64          `json:"latency_p99_ms"`
	LatencyMaxMs     float64          `json:"latency_max_ms"`
	WireBytesPerSpan float64          `json:"wire_bytes_per_span"` // OTLP protobuf, uncompressed
	CPUSeconds       float64          `json:"receiver_cpu_seconds,omitempty"`
	CPUPerMillion    float64          `json:"receiver_cpu_seconds_per_million_spans,omitempty"`
	PeakRSSMiB       float64          `json:"receiver_peak_rss_mib,omitempty"`
	GenCPUSeconds    float64          `json:"generator_cpu_seconds"`
	IDsFile          string           `json:"ids_file,omitempty"`
	IDsWritten       int              `json:"ids_written,omitempty"`
	FirstSpanNs      int64            `json:"first_span_start_ns"`
	LastSpanNs       int64            `json:"last_span_start_ns"`
}

func tracesIngest(args []string) error {
	var c tracesIngestConfig
	fs := flag.NewFlagSet("traces-ingest", flag.ExitOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4317", "OTLP gRPC receiver, host:port.")
	fs.StringVar(&c.name, "name", "", "Name of the receiver in the report (default: -addr).")
	fs.StringVar(&c.tenant, "tenant", "", "X-Scope-OrgID metadata; empty sends none.")
	fs.Int64Var(&c.spans, "spans", 1000000, "Spans to send, rounded up to whole requests; 0 sends for -duration.")
	fs.DurationVar(&c.duration, "duration", 0, "How long to send when -spans is 0.")
	fs.IntVar(&c.batch, "batch", 1000, "Spans per request (even: two per trace).")
	fs.IntVar(&c.concurrency, "concurrency", 4, "Exporters, each with its own connection and one request in flight.")
	fs.StringVar(&c.compression, "compression", "none", "none or gzip.")
	fs.Float64Var(&c.errorRatio, "error-ratio", 0.01, "Share of traces whose root has http.status_code 500 and an error status.")
	fs.IntVar(&c.pid, "pid", 0, "PID of the receiver, for its CPU time and peak RSS.")
	fs.StringVar(&c.idsFile, "ids", "", "File to write a uniform sample of the accepted trace IDs to (hex, one a line), for traces-query.")
	fs.IntVar(&c.idsSample, "ids-sample", 10000, "Trace IDs kept for -ids.")
	fs.Uint64Var(&c.seed, "seed", 1, "Seed of the IDs and times.")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "Timeout of one request.")
	fs.BoolVar(&c.jsonOut, "json", false, "Print the report as JSON.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.batch < 2 || c.batch%2 != 0 || c.concurrency < 1 || c.idsSample < 0 {
		return errors.New("-batch must be even and at least 2, -concurrency positive, -ids-sample not negative")
	}
	if c.spans < 0 || (c.spans == 0 && c.duration <= 0) {
		return errors.New("give -spans, or -spans 0 and a positive -duration")
	}
	if c.compression != "none" && c.compression != "gzip" {
		return fmt.Errorf("-compression %q: none or gzip", c.compression)
	}
	if c.name == "" {
		c.name = c.addr
	}
	rep, ids, err := runTracesIngest(context.Background(), c)
	if err != nil {
		return err
	}
	if c.idsFile != "" {
		if err := writeTraceIDs(c.idsFile, ids); err != nil {
			return err
		}
		rep.IDsFile, rep.IDsWritten = c.idsFile, len(ids)
	}
	if c.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print()
	return nil
}

func (r *tracesIngestReport) print() {
	fmt.Printf("%s (%s): %d exporters, %d spans a request\n", r.Name, r.Addr, r.Concurrency, r.SpansPerRequest)
	fmt.Printf("accepted   %.0f spans/s (%d of %d sent in %.1fs, %d rejected)\n", r.SpansPerSecond, r.SpansAccepted, r.SpansSent, r.Seconds, r.SpansRejected)
	fmt.Printf("requests   %d, %d failed %v %s\n", r.Requests, r.Failed, r.Errors, r.FirstError)
	fmt.Printf("latency    p50 %.1fms  p99 %.1fms  max %.1fms\n", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	if r.CPUSeconds > 0 || r.PeakRSSMiB > 0 {
		fmt.Printf("receiver   %.1f CPU seconds (%.2f s per million spans), peak RSS %.0f MiB\n", r.CPUSeconds, r.CPUPerMillion, r.PeakRSSMiB)
	}
	fmt.Printf("generator  %.1f CPU seconds; %.0f bytes per span on the wire\n", r.GenCPUSeconds, r.WireBytesPerSpan)
	if r.IDsFile != "" {
		fmt.Printf("trace IDs  %d in %s\n", r.IDsWritten, r.IDsFile)
	}
}

// traceTemplate is one exporter's request: batch/2 traces of a root span
// and its child, in one resource and one scope. fill patches it for the
// next request.
type traceTemplate struct {
	req      ptraceotlp.ExportRequest
	roots    []ptrace.Span
	children []ptrace.Span
	status   []pcommon.Value // the root's http.status_code
}

func newTraceTemplate(traces int) *traceTemplate {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.40.0")
	rs.Resource().Attributes().PutStr("service.name", tracesService)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("loadgen")
	spans := ss.Spans()
	spans.EnsureCapacity(2 * traces)
	t := &traceTemplate{req: ptraceotlp.NewExportRequestFromTraces(td)}
	for range traces {
		root := spans.AppendEmpty()
		root.SetName("lets-go")
		root.SetKind(ptrace.SpanKindServer)
		a := root.Attributes()
		a.PutStr("network.peer.address", "1.2.3.4")
		a.PutStr("http.request.method", "GET")
		a.PutInt("http.status_code", 200)
		child := spans.AppendEmpty()
		child.SetName("okey-dokey-0")
		child.SetKind(ptrace.SpanKindClient)
		child.Attributes().PutStr("network.peer.address", "1.2.3.4")
		child.Attributes().PutStr("peer.service", "telemetrygen-server")
	}
	for i := 0; i < spans.Len(); i += 2 {
		root := spans.At(i)
		st, _ := root.Attributes().Get("http.status_code")
		t.roots = append(t.roots, root)
		t.children = append(t.children, spans.At(i+1))
		t.status = append(t.status, st)
	}
	return t
}

// fill gives every trace new IDs and times ending at now (Unix ns) and
// appends the trace IDs to ids.
func (t *traceTemplate) fill(r *rand.Rand, now int64, errorRatio float64, ids [][16]byte) [][16]byte {
	n := int64(len(t.roots))
	for i, root := range t.roots {
		var tid [16]byte
		var rootID, childID [8]byte
		binary.LittleEndian.PutUint64(tid[:8], r.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], r.Uint64())
		binary.LittleEndian.PutUint64(rootID[:], r.Uint64()|1) // never the all-zero (invalid) ID
		binary.LittleEndian.PutUint64(childID[:], r.Uint64()|1)
		start := now - (n-int64(i))*int64(time.Millisecond)/n
		offset := 5000 + r.Int64N(45000)
		childDur := 100000 + r.Int64N(900000)
		end := start + offset + childDur + r.Int64N(50000)

		root.SetTraceID(tid)
		root.SetSpanID(rootID)
		root.SetStartTimestamp(pcommon.Timestamp(start))
		root.SetEndTimestamp(pcommon.Timestamp(end))
		if r.Float64() < errorRatio {
			t.status[i].SetInt(500)
			root.Status().SetCode(ptrace.StatusCodeError)
		} else {
			t.status[i].SetInt(200)
			root.Status().SetCode(ptrace.StatusCodeUnset)
		}
		child := t.children[i]
		child.SetTraceID(tid)
		child.SetSpanID(childID)
		child.SetParentSpanID(rootID)
		child.SetStartTimestamp(pcommon.Timestamp(start + offset))
		child.SetEndTimestamp(pcommon.Timestamp(start + offset + childDur))
		ids = append(ids, tid)
	}
	return ids
}

// reservoir keeps a uniform sample of k of the trace IDs offered to it.
type reservoir struct {
	k    int
	seen int64
	ids  [][16]byte
}

func (s *reservoir) offer(r *rand.Rand, id [16]byte) {
	s.seen++
	if len(s.ids) < s.k {
		s.ids = append(s.ids, id)
	} else if j := r.Int64N(s.seen); j < int64(s.k) {
		s.ids[j] = id
	}
}

type tracesWorkerStats struct {
	requests, failed, sent, accepted, rejected int64
	latencies                                  []time.Duration
	errors                                     map[string]int64
	firstError                                 string
	sample                                     reservoir
	firstStart, lastStart                      int64
}

func runTracesIngest(ctx context.Context, c tracesIngestConfig) (*tracesIngestReport, [][16]byte, error) {
	opts := []grpc.CallOption{}
	if c.compression == "gzip" {
		opts = append(opts, grpc.UseCompressor("gzip"))
	}
	if c.tenant != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "X-Scope-OrgID", c.tenant)
	}
	conns := make([]*grpc.ClientConn, c.concurrency)
	for i := range conns {
		cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to %s: %w", c.addr, err)
		}
		defer cc.Close()
		conns[i] = cc
	}
	var (
		batches = (c.spans + int64(c.batch) - 1) / int64(c.batch)
		next    atomic.Int64
		stats   = make([]tracesWorkerStats, c.concurrency)
		wg      sync.WaitGroup
	)
	tmpl := newTraceTemplate(c.batch / 2)
	wire := float64((&ptrace.ProtoMarshaler{}).TracesSize(tmpl.req.Traces())) / float64(c.batch)

	before, err := readProcIf(c.pid)
	if err != nil {
		return nil, nil, fmt.Errorf("reading /proc/%d: %w", c.pid, err)
	}
	genStart, start := selfCPU(), time.Now()
	deadline := start.Add(c.duration)
	for w := range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &stats[w]
			st.sample.k = (c.idsSample + c.concurrency - 1) / c.concurrency
			st.latencies = make([]time.Duration, 0, 1024)
			client := ptraceotlp.NewGRPCClient(conns[w])
			t := tmpl
			if w > 0 {
				t = newTraceTemplate(c.batch / 2)
			}
			r := rand.New(rand.NewPCG(c.seed, uint64(w)))
			var ids [][16]byte
			for {
				if c.spans > 0 {
					if next.Add(1) > batches {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				now := time.Now().UnixNano()
				ids = t.fill(r, now, c.errorRatio, ids[:0])
				if st.firstStart == 0 {
					st.firstStart = now - int64(time.Millisecond)
				}
				st.lastStart = now
				rctx, cancel := context.WithTimeout(ctx, c.timeout)
				t0 := time.Now()
				resp, err := client.Export(rctx, t.req, opts...)
				st.latencies = append(st.latencies, time.Since(t0))
				cancel()
				st.requests++
				st.sent += int64(c.batch)
				if err != nil {
					st.failed++
					code := status.Code(err).String()
					if st.errors == nil {
						st.errors = map[string]int64{}
					}
					st.errors[code]++
					if st.firstError == "" {
						st.firstError = err.Error()
					}
					continue
				}
				rejected := resp.PartialSuccess().RejectedSpans()
				st.rejected += rejected
				st.accepted += int64(c.batch) - rejected
				if msg := resp.PartialSuccess().ErrorMessage(); msg != "" && st.firstError == "" {
					st.firstError = msg
				}
				if rejected == 0 {
					for _, id := range ids {
						st.sample.offer(r, id)
					}
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	after, err := readProcIf(c.pid)
	if err != nil {
		return nil, nil, fmt.Errorf("reading /proc/%d: %w", c.pid, err)
	}
	rep := &tracesIngestReport{
		Name: c.name, Addr: c.addr, Concurrency: c.concurrency, SpansPerRequest: c.batch,
		Seconds: el.Seconds(), WireBytesPerSpan: wire, GenCPUSeconds: (selfCPU() - genStart).Seconds(),
	}
	var lat []time.Duration
	var ids [][16]byte
	for i := range stats {
		st := &stats[i]
		rep.Requests += st.requests
		rep.Failed += st.failed
		rep.SpansSent += st.sent
		rep.SpansAccepted += st.accepted
		rep.SpansRejected += st.rejected
		for k, n := range st.errors {
			if rep.Errors == nil {
				rep.Errors = map[string]int64{}
			}
			rep.Errors[k] += n
		}
		if rep.FirstError == "" {
			rep.FirstError = st.firstError
		}
		lat = append(lat, st.latencies...)
		ids = append(ids, st.sample.ids...)
		if st.firstStart != 0 && (rep.FirstSpanNs == 0 || st.firstStart < rep.FirstSpanNs) {
			rep.FirstSpanNs = st.firstStart
		}
		rep.LastSpanNs = max(rep.LastSpanNs, st.lastStart)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	rep.LatencyP50Ms, rep.LatencyP99Ms, rep.LatencyMaxMs = percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	rep.SpansPerSecond = float64(rep.SpansAccepted) / rep.Seconds
	if c.pid > 0 {
		rep.CPUSeconds = (after.cpu - before.cpu).Seconds()
		rep.CPUPerMillion = perMillion(after.cpu-before.cpu, rep.SpansAccepted)
		rep.PeakRSSMiB = float64(after.hwm) / (1 << 20)
	}
	// The workers' samples are uniform over their own traces; shuffled
	// together they are a sample of the whole run's.
	r := rand.New(rand.NewPCG(c.seed, 1<<32))
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	if len(ids) > c.idsSample {
		ids = ids[:c.idsSample]
	}
	return rep, ids, nil
}

func writeTraceIDs(path string, ids [][16]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, id := range ids {
		_, _ = w.WriteString(hex.EncodeToString(id[:]))
		_ = w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func readTraceIDs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			if _, err := hex.DecodeString(line); err != nil || len(line) != 32 {
				return nil, fmt.Errorf("%s: %q is not a 32-digit hex trace ID", path, line)
			}
			ids = append(ids, line)
		}
	}
	return ids, sc.Err()
}
