package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestPrometheusRemoteWrite has a real Prometheus scrape a deterministic
// target every second and remote-write to Canopy, then checks that Canopy
// answers the same queries with exactly what Prometheus itself answers.
func TestPrometheusRemoteWrite(t *testing.T) {
	requireIntegration(t)
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not on PATH; install it with `bash tools/install-peers.sh` (as root: Debian's prometheus package, 2.42)")
	}
	logs := logDir(t)
	// Multi-tenancy stays off: Debian's Prometheus 2.42 does not send the
	// remote_write "headers" it is configured with (checked against a
	// capturing server), so it cannot send X-Scope-OrgID. Everything lands
	// in the tenant "anonymous".
	node := newCanopyNodes(t, logs, 1, "-ingester.replication-factor=1")[0]
	node.start(t)

	// The target: each scrape returns values derived from the scrape count,
	// some of them not exactly representable in decimal.
	var scrapes atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := float64(scrapes.Add(1))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP it_prom_gauge A deterministic gauge.\n# TYPE it_prom_gauge gauge\n")
		fmt.Fprintf(w, "it_prom_gauge{kind=\"tenth\"} %s\n", strconv.FormatFloat(n/10, 'g', -1, 64))
		fmt.Fprintf(w, "it_prom_gauge{kind=\"third\"} %s\n", strconv.FormatFloat(n/3, 'g', -1, 64))
		fmt.Fprintf(w, "# HELP it_prom_requests_total A deterministic counter.\n# TYPE it_prom_requests_total counter\n")
		fmt.Fprintf(w, "it_prom_requests_total{code=\"200\"} %s\n", strconv.FormatFloat(7*n, 'g', -1, 64))
	}))
	t.Cleanup(target.Close)

	promPort := freePorts(t, 1)[0]
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: it
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s/api/v1/push
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 2s
`, target.Listener.Addr().String(), node.url())
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := newProcess(t, logs, "prometheus", promBin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(promPort),
		"--log.level=info",
	)
	promURL := "http://127.0.0.1:" + strconv.Itoa(promPort)

	node.waitReady(t, 60*time.Second)
	prom.start(t)
	eventually(t, 60*time.Second, 250*time.Millisecond, "Prometheus /-/ready", func() error {
		select {
		case <-prom.exitedCh():
			t.Fatalf("prometheus exited: %v", prom.exitErr())
		default:
		}
		code, body, err := httpGet(promURL+"/-/ready", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})

	promAPI := api{base: promURL}
	canopyAPI := api{base: node.url() + "/prometheus"}
	const sel = `{job="it"}`

	// About 12s of data in Prometheus.
	var upPoints []point
	eventually(t, 60*time.Second, 500*time.Millisecond, "12 scrapes in Prometheus", func() error {
		got, _, err := promAPI.query(http.MethodGet, "up[1m]", time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if len(got) != 1 || len(got[0].Points) < 12 {
			return fmt.Errorf("up[1m] = %s", fmtSeries(got))
		}
		upPoints = got[0].Points
		return nil
	})

	// Evaluate at the last scrape Prometheus has: the raw samples of the
	// last 30s, and a 1s-step range query starting on a scrape.
	evalTS := upPoints[len(upPoints)-1].T
	startTS := upPoints[len(upPoints)-10].T
	want, typ, err := promAPI.query(http.MethodGet, sel+"[30s]", evalTS)
	if err != nil || typ != "matrix" {
		t.Fatalf("Prometheus %s[30s]: %s %v", sel, typ, err)
	}
	// up, the four scrape_* series and the target's three.
	if len(want) < 8 {
		t.Fatalf("Prometheus has only %d series for %s: %s", len(want), sel, fmtSeries(want))
	}
	wantRange, err := promAPI.queryRange(http.MethodGet, sel, startTS, evalTS, time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// Remote write lags scrapes by up to a batch deadline and a retry.
	var got []series
	eventually(t, 45*time.Second, 500*time.Millisecond, "Canopy has what Prometheus has", func() error {
		got, _, err = canopyAPI.query(http.MethodGet, sel+"[30s]", evalTS)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("%s[30s] at %d differs:\nCanopy:\n%sPrometheus:\n%s", sel, evalTS, fmtSeries(got), fmtSeries(want))
		}
		return nil
	})
	n := 0
	for _, s := range want {
		n += len(s.Points)
	}
	t.Logf("%s[30s] at %d: %d series, %d raw samples identical in Canopy and Prometheus", sel, evalTS, len(want), n)

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		gotRange, err := canopyAPI.queryRange(method, sel, startTS, evalTS, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotRange, wantRange) {
			t.Errorf("%s query_range %s start=%d end=%d step=1s differs:\nCanopy:\n%sPrometheus:\n%s", method, sel, startTS, evalTS, fmtSeries(gotRange), fmtSeries(wantRange))
		}
	}
	// A computed query too. (Not rate(): Canopy evaluates PromQL with
	// Prometheus 3's engine, whose range selectors are left-open and whose
	// rate() extrapolates differently near a series' start than 2.42's.)
	q := `sum by (kind) (it_prom_gauge * 3)`
	wantAgg, err := promAPI.queryRange(http.MethodGet, q, startTS, evalTS, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gotAgg, err := canopyAPI.queryRange(http.MethodPost, q, startTS, evalTS, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotAgg, wantAgg) || len(wantAgg) != 2 {
		t.Errorf("query_range %s differs:\nCanopy:\n%sPrometheus:\n%s", q, fmtSeries(gotAgg), fmtSeries(wantAgg))
	}

	// Prometheus sends metadata every send_interval.
	eventually(t, 30*time.Second, 500*time.Millisecond, "metadata from Prometheus", func() error {
		var md map[string][]map[string]string
		if err := canopyAPI.tryGet(http.MethodGet, "metadata", url.Values{"metric": {"it_prom_gauge"}}, &md); err != nil {
			return err
		}
		if want := map[string][]map[string]string{"it_prom_gauge": {{"type": "gauge", "help": "A deterministic gauge.", "unit": ""}}}; !reflect.DeepEqual(md, want) {
			return fmt.Errorf("metadata it_prom_gauge: %v, want %v", md, want)
		}
		return nil
	})

	prom.terminate(t, 30*time.Second)
}
