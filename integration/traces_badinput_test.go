package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestTracesBadInput sends the trace push APIs what broken and hostile
// clients send — garbage, decompression bombs, IDs of zeros or of the
// wrong length, attribute values over the limit, a trace of 100,000 spans,
// values nested 100,000 deep — and requires for each a 4xx answer, or an
// OTLP partial success, naming the problem (and the flag, where a limit
// applies), the process up after each, and the good spans of a push that
// mixes them with bad ones written.
func TestTracesBadInput(t *testing.T) {
	requireIntegration(t)
	const maxDecompressed = 12 << 20
	node := startLogsNode(t, "-distributor.max-decompressed-size="+strconv.Itoa(maxDecompressed), "-distributor.traces.ingestion-burst-size-mb=100", "-distributor.traces.ingestion-rate-limit-mb=100")
	const tenant = "traces-bad"
	now := pcommon.NewTimestampFromTime(time.Now())
	span := func(ss ptrace.ScopeSpans, tid pcommon.TraceID, sid pcommon.SpanID, name string) ptrace.Span {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		s.SetName(name)
		s.SetStartTimestamp(now)
		s.SetEndTimestamp(now + 1000)
		return s
	}
	traces := func(fill func(ss ptrace.ScopeSpans)) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "bad-input")
		fill(rs.ScopeSpans().AppendEmpty())
		return td
	}
	asJSON := func(td ptrace.Traces) []byte {
		var m ptrace.JSONMarshaler
		b, err := m.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	asProto := func(td ptrace.Traces) []byte {
		var m ptrace.ProtoMarshaler
		b, err := m.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := pcommon.TraceID{0xb0, 0x0d, 1}
	mixed := traces(func(ss ptrace.ScopeSpans) {
		span(ss, good, pcommon.SpanID{1, 1}, "good")
		span(ss, pcommon.TraceID{}, pcommon.SpanID{2, 2}, "zero trace ID")
		span(ss, pcommon.TraceID{0xb0, 0x0d, 2}, pcommon.SpanID{}, "zero span ID")
		span(ss, pcommon.TraceID{0xb0, 0x0d, 3}, pcommon.SpanID{3, 3}, "huge value").Attributes().PutStr("blob", strings.Repeat("x", 100<<10))
	})
	huge := traces(func(ss ptrace.ScopeSpans) {
		for i := range 100_000 {
			span(ss, pcommon.TraceID{0xb0, 0x0d, 4}, pcommon.SpanID{4, byte(i), byte(i >> 8), byte(i >> 16), 1}, "one of many spans")
		}
	})
	nested := `{"stringValue":"leaf"}`
	for range 20_000 {
		nested = `{"arrayValue":{"values":[` + nested + `]}}`
	}
	nestedBody := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"b00d0000000000000000000000000005","spanId":"0505050505050505","name":"deep","attributes":[{"key":"deep","value":` + nested + `}]}]}]}]}`)
	zeros := make([]byte, 32<<20)

	type badCase struct {
		name        string
		path        string
		contentType string
		encoding    string
		body        []byte
		code        int
		want        []string
	}
	for _, c := range []badCase{
		{"garbage protobuf", "/otlp/v1/traces", "application/x-protobuf", "", []byte("\xff\xff\xff\xff not OTLP"), 400, []string{"OTLP"}},
		{"garbage JSON", "/otlp/v1/traces", "application/json", "", []byte(`{"resourceSpans":[`), 400, []string{"OTLP"}},
		{"trace ID of bad hex", "/otlp/v1/traces", "application/json", "", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708","name":"x"}]}]}]}`), 400, []string{"trace"}},
		{"values nested 20,000 deep", "/otlp/v1/traces", "application/json", "", nestedBody, 400, []string{"deep"}},
		{"gzip bomb", "/otlp/v1/traces", "application/x-protobuf", "gzip", gzipped(t, zeros), 413, []string{"-distributor.max-decompressed-size"}},
		{"unknown content type", "/otlp/v1/traces", "text/plain", "", []byte("spans"), 415, []string{"text/plain"}},
		{"zipkin garbage", "/api/v2/spans", "application/json", "", []byte(`[{"traceId":`), 400, []string{"Zipkin"}},
		{"zipkin bad trace ID", "/api/v2/spans", "application/json", "", []byte(`[{"traceId":"xyz","id":"0102030405060708","name":"a"}]`), 400, []string{"trace"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr map[string]string
			if c.encoding != "" {
				hdr = map[string]string{"Content-Encoding": c.encoding}
			}
			r, err := doTimeout(60*time.Second, http.MethodPost, node.url()+c.path, tenant, c.contentType, c.body, hdr)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != c.code {
				t.Errorf("answer %s, want %d", truncateBody([]byte(r.String())), c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(string(r.body), w) {
					t.Errorf("answer %s does not name %q", truncateBody([]byte(r.String())), w)
				}
			}
			if code, body, err := httpGet(node.url()+"/ready", nil); err != nil || code != http.StatusOK {
				t.Fatalf("after %s: /ready %d %s %v", c.name, code, body, err)
			}
		})
	}

	// Partial successes: the bad spans are rejected, named, and the rest
	// written.
	partial := func(name string, body []byte, rejected int, want string) {
		t.Helper()
		r, err := doTimeout(60*time.Second, http.MethodPost, node.url()+"/otlp/v1/traces", tenant, "application/json", body, nil)
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			PartialSuccess struct {
				RejectedSpans string `json:"rejectedSpans"`
				ErrorMessage  string `json:"errorMessage"`
			} `json:"partialSuccess"`
		}
		if r.code != http.StatusOK || json.Unmarshal(r.body, &resp) != nil {
			t.Fatalf("%s: answer %s, want 200 with a partial success", name, truncateBody([]byte(r.String())))
		}
		if resp.PartialSuccess.RejectedSpans != strconv.Itoa(rejected) || !strings.Contains(resp.PartialSuccess.ErrorMessage, want) {
			t.Errorf("%s: partial success %+v, want %d spans rejected and a message naming %q", name, resp.PartialSuccess, rejected, want)
		}
	}
	partial("mixed good and bad spans", asJSON(mixed), 3, "trace ID")
	partial("a trace of 100,000 spans", asJSON(huge), 100_000, "-ingester.traces.max-bytes-per-trace")
	// A good push over protobuf after all that.
	r, err := doTimeout(60*time.Second, http.MethodPost, node.url()+"/otlp/v1/traces", tenant, "application/x-protobuf", asProto(traces(func(ss ptrace.ScopeSpans) {
		span(ss, pcommon.TraceID{0xb0, 0x0d, 6}, pcommon.SpanID{6}, "fine")
	})), nil)
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("a good push: %v %s", err, truncateBody([]byte(r.String())))
	}

	api := tempoAPI{base: node.url(), tenant: tenant}
	td, code, err := api.trace(fmt.Sprintf("%x", good[:]))
	if err != nil || code != http.StatusOK || td.SpanCount() != 1 {
		t.Fatalf("the good span of the mixed push: %d %v", code, err)
	}
	if _, code, _ := api.trace(fmt.Sprintf("%x", []byte{0xb0, 0x0d, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})); code != http.StatusOK {
		t.Errorf("the good push's trace: %d", code)
	}
	for _, id := range []pcommon.TraceID{{0xb0, 0x0d, 3}, {0xb0, 0x0d, 4}, {0xb0, 0x0d, 5}} {
		if _, code, _ := api.trace(fmt.Sprintf("%x", id[:])); code != http.StatusNotFound {
			t.Errorf("rejected trace %x: %d, want 404", id[:], code)
		}
	}
}
