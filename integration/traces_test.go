package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// tempoAPI calls a node's Tempo API as a tenant.
type tempoAPI struct{ base, tenant string }

func (a tempoAPI) get(path string, params url.Values) (int, []byte, error) {
	u := a.base + "/tempo/api/" + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	return httpGet(u, http.Header{tenantHeader: {a.tenant}})
}

// search returns the trace IDs and root names a TraceQL search answers.
func (a tempoAPI) search(q string, limit int) (map[string]string, error) {
	code, body, err := a.get("search", url.Values{"q": {q}, "limit": {strconv.Itoa(limit)}, "start": {strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)}, "end": {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)}})
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("search %s: %d %s", q, code, body)
	}
	var resp struct {
		Traces []struct {
			TraceID, RootServiceName, RootTraceName string
		}
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, tr := range resp.Traces {
		out[tr.TraceID] = tr.RootServiceName + "/" + tr.RootTraceName
	}
	return out, nil
}

// trace returns a trace by ID from /api/v2/traces (OTLP JSON).
func (a tempoAPI) trace(id string) (ptrace.Traces, int, error) {
	code, body, err := a.get("v2/traces/"+id, nil)
	if err != nil || code != http.StatusOK {
		return ptrace.Traces{}, code, err
	}
	var resp struct {
		Trace  json.RawMessage `json:"trace"`
		Status string          `json:"status"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return ptrace.Traces{}, code, err
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(resp.Trace)
	return td, code, err
}

// TestTracesTelemetrygen sends traces with telemetrygen, a real OTLP
// client, over gRPC and over HTTP, finds every one by a TraceQL search and
// reads each back by ID, whole (a server span and its client child), from
// the ingester and, after a flush, from the bucket.
func TestTracesTelemetrygen(t *testing.T) {
	requireIntegration(t)
	bin := telemetrygenBin(t)
	ports := freePorts(t, 1)
	otlpGRPC := "127.0.0.1:" + strconv.Itoa(ports[0])
	node := startLogsNode(t, "-distributor.otlp.grpc-listen-address="+otlpGRPC, "-ingester.traces.ship-interval=1h", "-ingester.traces.metrics-generator.flush-interval=1s")
	const tenant = "traces-telemetrygen"
	logs := filepath.Dir(node.logPath)

	run := func(name string, n int, service string, extra ...string) {
		t.Helper()
		args := append([]string{"traces", "--otlp-insecure", "--traces", strconv.Itoa(n), "--rate", "0", "--service", service,
			"--otlp-header", fmt.Sprintf("%s=%q", tenantHeader, tenant)}, extra...)
		p := newProcess(t, logs, name, bin, args...)
		p.start(t)
		select {
		case <-p.exitedCh():
		case <-time.After(60 * time.Second):
			t.Fatalf("%s still running after 60s", name)
		}
		if err := p.exitErr(); err != nil {
			p.dumpLog(40)
			t.Fatalf("%s: %v", name, err)
		}
	}
	const nGRPC, nHTTP = 60, 40
	run("telemetrygen-grpc", nGRPC, "it-grpc", "--otlp-endpoint", otlpGRPC)
	run("telemetrygen-http", nHTTP, "it-http", "--otlp-http", "--otlp-endpoint", strings.TrimPrefix(node.url(), "http://"), "--otlp-http-url-path", "/otlp/v1/traces")

	api := tempoAPI{base: node.url(), tenant: tenant}
	check := func(where string) {
		t.Helper()
		for _, c := range []struct {
			service string
			n       int
		}{{"it-grpc", nGRPC}, {"it-http", nHTTP}} {
			got, err := api.search(`{ resource.service.name = "`+c.service+`" && kind = server }`, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.n {
				t.Fatalf("%s: search of %s: %d traces, want the %d telemetrygen sent", where, c.service, len(got), c.n)
			}
			for id, root := range got {
				if root != c.service+"/lets-go" {
					t.Fatalf("%s: trace %s root %q, want %s/lets-go", where, id, root, c.service)
				}
				td, code, err := api.trace(id)
				if err != nil || code != http.StatusOK {
					t.Fatalf("%s: trace %s: %d %v", where, id, code, err)
				}
				if td.SpanCount() != 2 {
					t.Fatalf("%s: trace %s has %d spans, want telemetrygen's 2", where, id, td.SpanCount())
				}
			}
		}
		// Another tenant sees none of them.
		other := tempoAPI{base: node.url(), tenant: "someone-else"}
		if got, err := other.search(`{}`, 10); err != nil || len(got) != 0 {
			t.Fatalf("%s: another tenant's search: %v %v", where, got, err)
		}
	}
	check("in the ingester")

	// Shipped to the bucket, and past the ingester's retention of shipped
	// traces: the same answers from the blocks.
	postEach(t, []*canopyNode{node}, "/ingester/flush")
	time.Sleep(16 * time.Second) // -ingester.traces.retain-shipped-for (15s)
	check("in the bucket")

	// Span metrics and the service graph, generated in process: one call
	// per span sent, by service and kind.
	eventually(t, 30*time.Second, time.Second, "span metrics of every span", func() error {
		for _, c := range []struct{ q, want string }{
			{`sum(traces_spanmetrics_calls_total{service="it-grpc"})`, strconv.Itoa(2 * nGRPC)},
			{`sum(traces_spanmetrics_calls_total{service="it-http", span_kind="SPAN_KIND_SERVER"})`, strconv.Itoa(nHTTP)},
			{`sum(traces_spanmetrics_latency_count{service="it-http"})`, strconv.Itoa(2 * nHTTP)},
		} {
			r, err := do(http.MethodPost, node.url()+"/prometheus/api/v1/query", tenant, "application/x-www-form-urlencoded", []byte("query="+url.QueryEscape(c.q)), nil)
			if err != nil {
				return err
			}
			var resp struct {
				Data struct {
					Result []struct {
						Value [2]any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			if err := json.Unmarshal(r.body, &resp); err != nil || len(resp.Data.Result) != 1 {
				return fmt.Errorf("%s: %s", c.q, r.body)
			}
			if got := resp.Data.Result[0].Value[1]; got != c.want {
				return fmt.Errorf("%s = %v, want %s", c.q, got, c.want)
			}
		}
		return nil
	})
	if code, body, _ := api.get("v2/traces/0123456789abcdef0123456789abcdef", nil); code != http.StatusNotFound {
		t.Fatalf("an unknown trace: %d %s, want 404", code, body)
	}

	// A restart with the ingester's disk wiped answers from the bucket.
	restartWiped(t, []*canopyNode{node})
	check("after a restart with a wiped data directory")
}
