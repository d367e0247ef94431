package main

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// fakeOTLP is an OTLP gRPC receiver that checks the shape of what it gets,
// keeps the trace IDs, and reports every rejectEvery-th request's first
// span as rejected.
type fakeOTLP struct {
	ptraceotlp.UnimplementedGRPCServer
	t           *testing.T
	rejectEvery int

	mu       sync.Mutex
	requests int
	spans    int
	rejected int
	errors   int // roots with status 500
	traces   map[pcommon.TraceID]bool
}

func (f *fakeOTLP) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	rss := req.Traces().ResourceSpans()
	require.Equal(f.t, 1, rss.Len())
	svc, _ := rss.At(0).Resource().Attributes().Get("service.name")
	require.Equal(f.t, tracesService, svc.Str())
	spans := rss.At(0).ScopeSpans().At(0).Spans()
	now := time.Now().UnixNano()
	for i := 0; i < spans.Len(); i += 2 {
		root, child := spans.At(i), spans.At(i+1)
		require.True(f.t, root.ParentSpanID().IsEmpty())
		require.Equal(f.t, ptrace.SpanKindServer, root.Kind())
		require.Equal(f.t, ptrace.SpanKindClient, child.Kind())
		require.Equal(f.t, root.TraceID(), child.TraceID())
		require.Equal(f.t, root.SpanID(), child.ParentSpanID())
		require.False(f.t, root.TraceID().IsEmpty())
		require.LessOrEqual(f.t, root.StartTimestamp(), child.StartTimestamp())
		require.LessOrEqual(f.t, child.EndTimestamp(), root.EndTimestamp())
		require.InDelta(f.t, now, int64(root.StartTimestamp()), float64(time.Minute))
		code, ok := root.Attributes().Get("http.status_code")
		require.True(f.t, ok)
		if code.Int() == 500 {
			require.Equal(f.t, ptrace.StatusCodeError, root.Status().Code())
			f.errors++
		}
		require.False(f.t, f.traces[root.TraceID()], "trace ID sent twice")
		f.traces[root.TraceID()] = true
	}
	f.spans += spans.Len()
	resp := ptraceotlp.NewExportResponse()
	if f.rejectEvery > 0 && f.requests%f.rejectEvery == 0 {
		resp.PartialSuccess().SetRejectedSpans(1)
		resp.PartialSuccess().SetErrorMessage("one too many")
		f.rejected++
	}
	return resp, nil
}

func startFakeOTLP(t *testing.T, rejectEvery int) (*fakeOTLP, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeOTLP{t: t, rejectEvery: rejectEvery, traces: map[pcommon.TraceID]bool{}}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return f, l.Addr().String()
}

func TestTracesIngest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spans       int64
		duration    time.Duration
		rejectEvery int
		compression string
	}{
		{name: "spans", spans: 10000},
		{name: "spans rounded up to whole requests", spans: 9001},
		{name: "duration, gzip", duration: 200 * time.Millisecond, compression: "gzip"},
		{name: "partial success", spans: 10000, rejectEvery: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, addr := startFakeOTLP(t, tc.rejectEvery)
			c := tracesIngestConfig{addr: addr, name: "fake", compression: tc.compression, spans: tc.spans, duration: tc.duration,
				timeout: 10 * time.Second, batch: 500, concurrency: 3, idsSample: 100, seed: 1, errorRatio: 0.1}
			if c.compression == "" {
				c.compression = "none"
			}
			rep, ids, err := runTracesIngest(context.Background(), c)
			require.NoError(t, err)
			f.mu.Lock()
			defer f.mu.Unlock()
			require.Zero(t, rep.Failed, rep.FirstError)
			require.EqualValues(t, f.requests, rep.Requests)
			require.EqualValues(t, f.spans, rep.SpansSent)
			require.EqualValues(t, f.spans-f.rejected, rep.SpansAccepted)
			require.EqualValues(t, f.rejected, rep.SpansRejected)
			if tc.spans > 0 {
				require.EqualValues(t, (tc.spans+499)/500*500, rep.SpansSent)
			}
			require.InDelta(t, 0.1, float64(f.errors)/float64(len(f.traces)), 0.03)
			require.Len(t, ids, 100)
			seen := map[[16]byte]bool{}
			for _, id := range ids {
				require.True(t, f.traces[id], "sampled ID %x was not sent", id)
				require.False(t, seen[id], "sampled ID %x twice", id)
				seen[id] = true
			}
			require.Greater(t, rep.WireBytesPerSpan, 50.0)
			require.LessOrEqual(t, rep.FirstSpanNs, rep.LastSpanNs)

			path := filepath.Join(t.TempDir(), "ids")
			require.NoError(t, writeTraceIDs(path, ids))
			back, err := readTraceIDs(path)
			require.NoError(t, err)
			require.Len(t, back, len(ids))
			require.Equal(t, hex.EncodeToString(ids[0][:]), back[0])
		})
	}
}

func TestTracesQuery(t *testing.T) {
	const (
		whole   = "0102030405060708090a0b0c0d0e0f10"
		partial = "1102030405060708090a0b0c0d0e0f10"
		missing = "2102030405060708090a0b0c0d0e0f10"
	)
	var searches []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch {
		case r.URL.Path == "/tempo/api/search" || r.URL.Path == "/api/traces":
			searches = append(searches, r.URL.RawQuery)
			_, _ = w.Write([]byte(`{"traces":[{"traceID":"a"},{"traceID":"b"}],"data":[]}`))
		case id == missing:
			http.Error(w, "trace not found", http.StatusNotFound)
		case strings.HasPrefix(r.URL.Path, "/tempo/api/traces/"):
			spans := `{"spanId":"a"},{"spanId":"b"}`
			if id == partial {
				spans = `{"spanId":"a"}`
			}
			_, _ = w.Write([]byte(`{"batches":[{"resource":{},"scopeSpans":[{"spans":[` + spans + `]}]}]}`))
		case strings.HasPrefix(r.URL.Path, "/api/traces/"):
			spans := `{"spanID":"a","references":[]},{"spanID":"b","references":[{"spanID":"a"}]}`
			if id == partial {
				spans = `{"spanID":"a"}`
			}
			_, _ = w.Write([]byte(`{"data":[{"traceID":"x","spans":[` + spans + `]}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, api := range []string{"tempo", "jaeger"} {
		t.Run(api, func(t *testing.T) {
			searches = nil
			q := &traceQuerier{api: api, base: srv.URL, client: srv.Client()}
			rep := &tracesQueryReport{}
			require.NoError(t, q.lookups(rep, []string{whole, partial, missing, whole}, 2))
			require.Equal(t, tracesQueryReport{Lookups: 4, Found: 2, Partial: 1, NotFound: 1}, zeroLatencies(*rep))
			require.Greater(t, rep.LookupMaxMs, 0.0)
			path := "/api/traces?service=loadgen"
			if api == "tempo" {
				path = "/tempo/api/search?q=%7B%7D"
			}
			require.NoError(t, q.search(rep, path, 3))
			require.Len(t, rep.SearchSeconds, 3)
			require.Equal(t, 2, rep.SearchTraces)
			require.Len(t, searches, 3)
		})
	}
}

func zeroLatencies(r tracesQueryReport) tracesQueryReport {
	r.LookupP50Ms, r.LookupP90Ms, r.LookupP99Ms, r.LookupMaxMs = 0, 0, 0, 0
	return r
}
