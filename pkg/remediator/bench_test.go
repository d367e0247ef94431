package remediator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
)

// benchPlaybooks are 100 playbooks, the matching one last.
func benchPlaybooks() string {
	var b strings.Builder
	b.WriteString("playbooks:\n")
	for i := range 99 {
		fmt.Fprintf(&b, "  - {name: p%d, match: {alertname: Other%d}, match_re: {severity: 'page|critical'}, actions: [{type: http, url: 'http://runbooks/{{ .Labels.service }}'}]}\n", i, i)
	}
	b.WriteString("  - {name: hit, match: {alertname: Hot}, match_re: {severity: 'page|critical'}, dry_run: true, actions: [{type: scale, namespace: shop, name: '{{ .Labels.service }}', step: 1, max: 9}]}\n")
	return b.String()
}

// BenchmarkWebhook: notifications of one alert each through the webhook
// handler — decoding, the journal, matching against 100 playbooks and a
// dry-run action — with 10,000 alerts already taken on (live). Reports
// notifications per second.
func BenchmarkWebhook(b *testing.B) {
	r := startBench(b, benchPlaybooks())
	body := func(i int) []byte {
		a := Alert{Status: "firing", Labels: map[string]string{"alertname": "Hot", "severity": "page", "service": fmt.Sprintf("svc-%d", i), "tenant": "team-a"},
			StartsAt: time.Unix(1_790_000_000, 0), Fingerprint: fmt.Sprintf("%016x", i)}
		p, _ := json.Marshal(Payload{Version: "4", Status: "firing", Alerts: []Alert{a}})
		return p
	}
	h := r.WebhookHandler()
	for i := range 10_000 { // the live alerts
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathWebhook, bytes.NewReader(body(i))))
	}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = body(10_000 + i)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 { // Alertmanager's concurrent deliveries
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathWebhook, bytes.NewReader(bodies[i])))
				if rec.Code != http.StatusOK {
					b.Errorf("webhook: %d %s", rec.Code, rec.Body)
				}
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "notifications/s")
}

// BenchmarkFirstAction: from a notification's arrival to its first
// action's start (an HTTP call to a local runbook service), p50 and p99.
func BenchmarkFirstAction(b *testing.B) {
	started := make(chan time.Time, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { started <- time.Now() }))
	defer hook.Close()
	r := startBench(b, benchPlaybooks()+fmt.Sprintf("  - {name: act, match: {alertname: Act}, dry_run: false, verify: {query: vector(0) > 1, timeout: 1ms, interval: 1ms}, actions: [{type: http, url: '%s/{{ .Fingerprint }}'}]}\n", hook.URL))
	srv := httptest.NewServer(r.WebhookHandler())
	defer srv.Close()
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		a := Alert{Status: "firing", Labels: map[string]string{"alertname": "Act", "tenant": "team-a"}, StartsAt: time.Unix(1_790_000_000, 0), Fingerprint: fmt.Sprintf("%016x", i)}
		p, _ := json.Marshal(Payload{Version: "4", Status: "firing", Alerts: []Alert{a}})
		t0 := time.Now()
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(p))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		lat = append(lat, (<-started).Sub(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// startBench starts a remediator with the playbooks, stopped at the end.
func startBench(b *testing.B, playbooks string) *Remediator {
	dir := b.TempDir()
	path := filepath.Join(dir, "playbooks.yaml")
	if err := os.WriteFile(path, []byte(playbooks), 0o644); err != nil {
		b.Fatal(err)
	}
	var cfg Config
	cfg.RegisterFlags(newFlagSet())
	cfg.PlaybooksFile = path
	// The audit records go to a logs store that takes them at once.
	r, err := New(cfg, Deps{Dir: filepath.Join(dir, "journal"), Parser: parser.NewParser(parser.Options{}),
		Log: func(context.Context, string, []Record) error { return nil }}, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), r) })
	return r
}
