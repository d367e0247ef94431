package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestFederation runs the global layer as users run it: two Canopy
// clusters (one told its external labels) and a real Prometheus as the
// children of a federator process (-target=federator -config.file), the
// Prometheus also federating from a Canopy's /federate. It checks the
// federator's answers, pruning, the children page and a reload that drops
// a child.
func TestFederation(t *testing.T) {
	requireIntegration(t)
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not on PATH; install it with `bash tools/install-peers.sh`")
	}
	logs := logDir(t)
	a := newCanopyNodes(t, logs, 1, "-ingester.replication-factor=1", "-cluster.external-labels=cluster=a")[0]
	b := newCanopyNodes(t, logs, 1, "-ingester.replication-factor=1")[0]
	a.start(t)
	b.start(t)

	// The Prometheus child scrapes a gauge of its own and federates a
	// counter from cluster a.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# TYPE it_fed_gauge gauge\nit_fed_gauge{instance_name=\"p\"} 5\n")
	}))
	t.Cleanup(target.Close)
	promPort := freePorts(t, 1)[0]
	dir := t.TempDir()
	promCfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: own
    static_configs:
      - targets: [%q]
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{__name__="it_fed_counter_total"}']
    static_configs:
      - targets: [%q]
`, target.Listener.Addr().String(), strings.TrimPrefix(a.url(), "http://"))
	promCfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfgPath, []byte(promCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := newProcess(t, logs, "prometheus", promBin, "--config.file="+promCfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address=127.0.0.1:"+strconv.Itoa(promPort))
	promURL := "http://127.0.0.1:" + strconv.Itoa(promPort)

	a.waitReady(t, 60*time.Second)
	b.waitReady(t, 60*time.Second)
	prom.start(t)

	now := time.Now().UnixMilli()
	push := func(n *canopyNode, instances int, value float64) {
		req := &prompb.WriteRequest{}
		for i := range instances {
			for _, name := range []string{"it_fed_gauge", "it_fed_counter_total"} {
				req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
					Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "instance_name", Value: fmt.Sprintf("i%d", i)}},
					Samples: []prompb.Sample{{Timestamp: now - 1000, Value: value}, {Timestamp: now, Value: value + float64(i)}},
				})
			}
		}
		mustPushV1(t, n.url(), "", req)
	}
	push(a, 3, 10) // gauges 10, 11, 12
	push(b, 2, 20) // gauges 20, 21

	// Prometheus's /federate scrape of cluster a: the counter with a's
	// external label.
	promAPI := api{base: promURL}
	eventually(t, 60*time.Second, 500*time.Millisecond, "Prometheus federating from Canopy", func() error {
		got, _, err := promAPI.query(http.MethodGet, `it_fed_counter_total{instance_name="i2"}`, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Labels["cluster"] != "a" || got[0].Labels["job"] != "federate" || got[0].Points[0].V != "12" {
			return fmt.Errorf("it_fed_counter_total in Prometheus: %s", fmtSeries(got))
		}
		return nil
	})

	// The federator.
	cfgPath := filepath.Join(t.TempDir(), "global.yaml")
	writeCfg := func(withB bool) {
		cfg := fmt.Sprintf(`federation:
  children:
    - name: a
      url: %s/prometheus
      external_labels: {cluster: a}
      timeout: 5s
    - name: prom
      url: %s
      external_labels: {cluster: prom}
`, a.url(), promURL)
		if withB {
			cfg += fmt.Sprintf("    - name: b\n      url: %s/prometheus\n      external_labels: {cluster: b}\n", b.url())
		}
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(true)
	fedNode := newCanopyCluster(t, logs, []string{"federator"}, "-config.file="+cfgPath, "-federation.reload-interval=1s")[0]
	fedNode.start(t)
	fedNode.waitReady(t, 60*time.Second)
	fed := api{base: fedNode.url() + "/prometheus"}

	sums := func(q string) map[string]string {
		t.Helper()
		var out map[string]string
		eventually(t, 30*time.Second, 500*time.Millisecond, q, func() error {
			got, _, err := fed.query(http.MethodGet, q, time.Now().UnixMilli())
			if err != nil {
				return err
			}
			out = map[string]string{}
			for _, s := range got {
				out[s.Labels["cluster"]] = s.Points[0].V
			}
			if out["prom"] == "" && strings.Contains(q, "prom") {
				return fmt.Errorf("no Prometheus series yet: %s", fmtSeries(got))
			}
			return nil
		})
		return out
	}
	got := sums(`sum by (cluster) (it_fed_gauge{cluster=~"a|b|prom"})`)
	if want := map[string]string{"a": "33", "b": "41", "prom": "5"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sum by (cluster) through the federator = %v, want %v", got, want)
	}
	if got := sums(`count(it_fed_gauge{cluster="b"}) by (cluster)`); fmt.Sprint(got) != "map[b:2]" {
		t.Fatalf("cluster b alone = %v", got)
	}
	// The children page: three, healthy.
	var page struct {
		Children []struct {
			Name    string `json:"name"`
			Healthy bool   `json:"healthy"`
		} `json:"children"`
	}
	code, body, err := httpGet(fedNode.url()+"/federation/children?format=json", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("/federation/children: %d %s %v", code, body, err)
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Children) != 3 {
		t.Fatalf("/federation/children: %s", body)
	}
	for _, c := range page.Children {
		if !c.Healthy {
			t.Errorf("child %s unhealthy: %s", c.Name, body)
		}
	}
	// A trace whose spans clusters a and b hold: found whole through the
	// federator's Tempo API, each half with its cluster.
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	pushSpan := func(n *canopyNode, spanID, service string) {
		body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},"scopeSpans":[{"spans":[{"traceId":%q,"spanId":%q,"name":"op","kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`,
			service, traceID, spanID, now*1_000_000, now*1_000_000+5_000_000)
		r, err := do(http.MethodPost, n.url()+"/otlp/v1/traces", "", "application/json", []byte(body), nil)
		if err != nil || r.code/100 != 2 {
			t.Fatalf("OTLP push to %s: %v %v", n.id, r, err)
		}
	}
	pushSpan(a, "b7ad6b7169203331", "checkout")
	pushSpan(b, "c7ad6b7169203332", "payments")
	eventually(t, 30*time.Second, 500*time.Millisecond, "the trace through the federator", func() error {
		r, err := do(http.MethodGet, fedNode.url()+"/tempo/api/traces/"+traceID, "", "", nil, map[string]string{"Accept": "application/json"})
		if err != nil {
			return err
		}
		if r.code != http.StatusOK {
			return fmt.Errorf("%s", r)
		}
		body := string(r.body)
		for _, want := range []string{"checkout", "payments", `"key":"cluster","value":{"stringValue":"a"}`, `"key":"cluster","value":{"stringValue":"b"}`} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s in %s", want, body)
			}
		}
		return nil
	})

	// Logs: clusters a and b each hold some lines of one app; the
	// federator's Loki API counts them per cluster (pushed down) and
	// returns the newest of all, each stream with its cluster.
	pushLogs := func(n *canopyNode, lines int) {
		var values []string
		for i := range lines {
			values = append(values, fmt.Sprintf(`["%d","line %d of %s"]`, (now-int64(i)*1000)*1_000_000, i, n.id))
		}
		body := `{"streams":[{"stream":{"app":"it-fed"},"values":[` + strings.Join(values, ",") + `]}]}`
		r, err := do(http.MethodPost, n.url()+"/loki/api/v1/push", "", "application/json", []byte(body), nil)
		if err != nil || r.code/100 != 2 {
			t.Fatalf("Loki push to %s: %v %v", n.id, r, err)
		}
	}
	pushLogs(a, 3)
	pushLogs(b, 2)
	eventually(t, 30*time.Second, 500*time.Millisecond, "log counts through the federator", func() error {
		q := url.Values{"query": {`sum by (cluster) (count_over_time({app="it-fed"}[10m]))`}, "time": {strconv.FormatInt(now/1000+1, 10)}}
		r, err := do(http.MethodGet, fedNode.url()+"/loki/api/v1/query?"+q.Encode(), "", "", nil, nil)
		if err != nil {
			return err
		}
		if r.code != http.StatusOK {
			return fmt.Errorf("%s", r)
		}
		for _, want := range []string{`{"cluster":"a"},"value":[`, `{"cluster":"b"},"value":[`, `"3"]`, `"2"]`} {
			if !strings.Contains(string(r.body), want) {
				return fmt.Errorf("no %s in %s", want, r.body)
			}
		}
		q = url.Values{"query": {`{app="it-fed"}`}, "start": {strconv.FormatInt(now/1000-600, 10)}, "end": {strconv.FormatInt(now/1000+1, 10)}, "limit": {"4"}}
		if r, err = do(http.MethodGet, fedNode.url()+"/loki/api/v1/query_range?"+q.Encode(), "", "", nil, nil); err != nil {
			return err
		}
		if got := strings.Count(string(r.body), `"line `); r.code != http.StatusOK || got != 4 || !strings.Contains(string(r.body), `"cluster":"b"`) {
			return fmt.Errorf("%d lines of 4: %s", got, r)
		}
		return nil
	})

	// The file without b: read again within the reload interval, b's data
	// is gone from the answers.
	writeCfg(false)
	eventually(t, 30*time.Second, 500*time.Millisecond, "the federator drops b", func() error {
		got, _, err := fed.query(http.MethodGet, `count by (cluster) (it_fed_gauge)`, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if len(got) != 2 {
			return fmt.Errorf("clusters answering: %s", fmtSeries(got))
		}
		return nil
	})
	if got := sums(`sum by (cluster) (it_fed_gauge{cluster=~"a|b|prom"})`); fmt.Sprint(got) != "map[a:33 prom:5]" {
		t.Fatalf("after the reload = %v", got)
	}
	// b back, read at once on POST /federation/reload (an admin path).
	writeCfg(true)
	r, err := do(http.MethodPost, fedNode.url()+"/federation/reload", "", "", nil, map[string]string{"Authorization": "Bearer " + adminToken})
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("POST /federation/reload: %v %v", r, err)
	}
	back, _, err := fed.query(http.MethodGet, `count by (cluster) (it_fed_gauge)`, time.Now().UnixMilli())
	if err != nil || len(back) != 3 {
		t.Fatalf("right after POST /federation/reload: %s %v", fmtSeries(back), err)
	}
}
