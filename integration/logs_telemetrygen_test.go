package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// telemetrygenBin finds the pinned telemetrygen that tools/install-peers.sh
// installs.
func telemetrygenBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("telemetrygen"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(string(trimNL(gopath)), "bin", "telemetrygen")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("telemetrygen not installed: run `make peers` (tools/install-peers.sh installs the pinned version)")
	return ""
}

// TestLogsTelemetrygen sends logs with the OpenTelemetry Collector's
// telemetrygen, a real OTLP client, over gRPC (the OTLP port) and over HTTP
// (/otlp/v1/logs), and reads every one back through the Loki API under
// service_name="telemetrygen", as Loki maps OTLP resources to streams.
func TestLogsTelemetrygen(t *testing.T) {
	requireIntegration(t)
	bin := telemetrygenBin(t)
	ports := freePorts(t, 1)
	otlpGRPC := "127.0.0.1:" + strconv.Itoa(ports[0])
	node := startLogsNode(t, "-distributor.otlp.grpc-listen-address="+otlpGRPC)
	const tenant = "logs-telemetrygen"
	logs := filepath.Dir(node.logPath)
	start := time.Now().Add(-time.Minute).UnixNano()

	run := func(name string, n int, body string, extra ...string) {
		t.Helper()
		args := append([]string{"logs", "--otlp-insecure", "--logs", strconv.Itoa(n), "--rate", "0", "--body", body,
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
	const nGRPC, nHTTP = 300, 120
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	grpcBody, httpBody := "canopy-it grpc body "+suffix, "canopy-it http body "+suffix
	run("telemetrygen-grpc", nGRPC, grpcBody, "--otlp-endpoint", otlpGRPC)
	run("telemetrygen-http", nHTTP, httpBody, "--otlp-http", "--otlp-endpoint", strings.TrimPrefix(node.url(), "http://"),
		"--otlp-http-url-path", otlpLogsPath, "--otlp-attributes", `k8s.namespace.name="it-ns"`)
	end := time.Now().Add(time.Minute).UnixNano()

	api := lokiAPI{base: node.url(), tenant: tenant}
	for _, c := range []struct {
		query  string
		body   string
		n      int
		labels string
	}{
		{`{service_name="telemetrygen"} |= "` + grpcBody + `"`, grpcBody, nGRPC, `{service_name="telemetrygen"}`},
		// A resource attribute of Loki's default index list is a label.
		{`{service_name="telemetrygen", k8s_namespace_name="it-ns"} |= "` + httpBody + `"`, httpBody, nHTTP, `{k8s_namespace_name="it-ns", service_name="telemetrygen"}`},
	} {
		got, err := api.queryLogs(c.query, start, end, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.n {
			t.Errorf("%s: %d entries, want the %d telemetrygen sent", c.query, len(got), c.n)
		}
		seen := map[string]bool{}
		for _, r := range got {
			if r.line != c.body || r.labels != c.labels || seen[r.ts] {
				t.Errorf("%s: entry %v, want line %q, stream %s, distinct timestamps", c.query, r, c.body, c.labels)
				break
			}
			seen[r.ts] = true
			// telemetrygen's record: severity Info (9) and attribute
			// app=server, which are structured metadata.
			for _, want := range []string{`app="server"`, `severity_number="9"`, `severity_text="Info"`} {
				if !strings.Contains(r.md, want) {
					t.Errorf("%s: entry %v: structured metadata lacks %s", c.query, r, want)
					break
				}
			}
		}
	}
	// Everything telemetrygen sent, and nothing else, is in the tenant.
	got, err := api.metricVector(`sum(count_over_time({service_name="telemetrygen"}[10m]))`, end)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(nGRPC + nHTTP); got["{}"] != want {
		t.Errorf("count_over_time of service_name=telemetrygen: %v, want %s", got, want)
	}
}
