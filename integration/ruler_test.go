package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"gopkg.in/yaml.v3"

	"github.com/canopy-observability/canopy/pkg/util/tlstest"
)

// webhookPayload is the part of Alertmanager's webhook (version 4) the
// tests read.
type webhookPayload struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Alerts  []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		Fingerprint  string            `json:"fingerprint"`
		GeneratorURL string            `json:"generatorURL"`
	} `json:"alerts"`
}

// webhookRecorder is an HTTP receiver of Alertmanager's webhooks.
type webhookRecorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []webhookPayload
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	w := &webhookRecorder{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		w.mu.Lock()
		w.got = append(w.got, p)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// find returns the first payload of the given status holding alertname.
func (w *webhookRecorder) find(status, alertname string) (webhookPayload, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.got {
		for _, a := range p.Alerts {
			if p.Status == status && a.Status == status && a.Labels["alertname"] == alertname {
				return p, true
			}
		}
	}
	return webhookPayload{}, false
}

// startAlertmanager starts the real Alertmanager, routing every alert to
// the webhook url at once, and returns its URL.
func startAlertmanager(t *testing.T, logs, webhook string) string {
	return startAlertmanagerOn(t, logs, webhook, freePorts(t, 1)[0])
}

// startAlertmanagerOn is startAlertmanager on a chosen port.
func startAlertmanagerOn(t *testing.T, logs, webhook string, port int) string {
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`, webhook)
	return startAlertmanagerWith(t, logs, cfg, port)
}

// startAlertmanagerWith starts the real Alertmanager with a config.
func startAlertmanagerWith(t *testing.T, logs, cfg string, port int) string {
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			t.Skip("Alertmanager is not on PATH; install it with `bash tools/install-peers.sh`")
		}
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	am := newProcess(t, logs, "alertmanager", bin, "--config.file="+cfgPath, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--cluster.listen-address=")
	am.start(t)
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	eventually(t, 30*time.Second, 200*time.Millisecond, "Alertmanager ready", func() error {
		code, body, err := httpGet(u+"/-/ready", nil)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		return nil
	})
	return u
}

// startRulerNode starts a multi-tenant Canopy whose ruler evaluates every
// second and sends alerts to the real Alertmanager, which sends them to
// the returned webhook recorder.
func startRulerNode(t *testing.T) (*canopyNode, *webhookRecorder) {
	requireIntegration(t)
	logs := logDir(t)
	hook := newWebhookRecorder(t)
	amURL := startAlertmanager(t, logs, hook.srv.URL)
	n := newCanopyNodes(t, logs, 1, "-ingester.replication-factor=1", "-auth.multitenancy-enabled=true", "-ruler.alertmanager-url="+amURL,
		"-ruler.evaluation-interval=1s", "-ruler.poll-interval=1s", "-ruler.resend-delay=1s")[0]
	n.start(t)
	n.waitReady(t, 60*time.Second)
	return n, hook
}

// TestRulerToAlertmanager: a rule group uploaded through the config API
// is evaluated through the query path; its recording rule's series is
// queryable, its alert is in the rules and alerts APIs and reaches the
// real Alertmanager, which sends it to a webhook (firing, then resolved),
// labelled with its tenant.
func TestRulerToAlertmanager(t *testing.T) {
	n, hook := startRulerNode(t)

	pushValue := func(v float64) {
		now := time.Now().UnixMilli()
		mustPushV1(t, n.url(), "team-a", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "it_ruler_errors"}, {Name: "job", Value: "checkout"}},
			Samples: []prompb.Sample{{Timestamp: now, Value: v}},
		}}})
	}
	pushValue(10)

	group := `name: checkout
interval: 1s
rules:
  - record: job:it_ruler_errors:sum
    expr: sum by (job) (it_ruler_errors)
  - alert: CheckoutErrors
    expr: job:it_ruler_errors:sum > 5
    for: 2s
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.job }} has {{ $value }} errors"
`
	r, err := do(http.MethodPost, n.url()+"/prometheus/config/v1/rules/shop", "team-a", "application/yaml", []byte(group), nil)
	if err != nil || r.code != http.StatusAccepted {
		t.Fatalf("uploading the rule group: %v %v", r, err)
	}
	bad, err := do(http.MethodPost, n.url()+"/prometheus/config/v1/rules/shop", "team-a", "application/yaml", []byte(strings.Replace(group, "> 5", "> > 5", 1)), nil)
	if err != nil || bad.code != http.StatusBadRequest || !strings.Contains(string(bad.body), `7:11: group \"checkout\", rule 2, \"CheckoutErrors\": could not parse expression`) {
		t.Fatalf("a bad rule group: %v %v", bad, err)
	}

	a := api{base: n.url() + "/prometheus", tenant: "team-a"}
	eventually(t, 60*time.Second, 500*time.Millisecond, "the recording rule's series", func() error {
		pushValue(10) // keep the series fresh
		got, _, err := a.query(http.MethodGet, `job:it_ruler_errors:sum`, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Points[0].V != "10" || got[0].Labels["job"] != "checkout" {
			return fmt.Errorf("job:it_ruler_errors:sum = %s", fmtSeries(got))
		}
		return nil
	})
	var fired webhookPayload
	eventually(t, 60*time.Second, 500*time.Millisecond, "the alert at the webhook", func() error {
		pushValue(10)
		p, ok := hook.find("firing", "CheckoutErrors")
		if !ok {
			return fmt.Errorf("no firing CheckoutErrors among %d webhooks", len(hook.got))
		}
		fired = p
		return nil
	})
	if fired.Version != "4" {
		t.Errorf("webhook version %q, want 4", fired.Version)
	}
	al := fired.Alerts[0]
	if al.Labels["tenant"] != "team-a" || al.Labels["severity"] != "page" || al.Labels["job"] != "checkout" || al.Annotations["summary"] != "checkout has 10 errors" {
		t.Errorf("alert at the webhook: %+v", al)
	}
	// The rule state, in Prometheus's shapes, for the tenant only.
	code, body, err := httpGet(n.url()+"/prometheus/api/v1/rules", http.Header{tenantHeader: {"team-a"}})
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"name":"CheckoutErrors"`) || !strings.Contains(string(body), `"file":"shop"`) {
		t.Fatalf("/api/v1/rules: %d %s %v", code, body, err)
	}
	code, body, err = httpGet(n.url()+"/prometheus/api/v1/alerts", http.Header{tenantHeader: {"team-a"}})
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"state":"firing"`) {
		t.Fatalf("/api/v1/alerts: %d %s %v", code, body, err)
	}
	code, body, _ = httpGet(n.url()+"/prometheus/api/v1/rules", http.Header{tenantHeader: {"team-b"}})
	if code != http.StatusOK || strings.Contains(string(body), "CheckoutErrors") {
		t.Fatalf("another tenant's /api/v1/rules: %d %s", code, body)
	}
	code, body, _ = httpGet(n.url()+"/prometheus/api/v1/status/buildinfo", http.Header{tenantHeader: {"team-a"}})
	if code != http.StatusOK || !strings.Contains(string(body), `"ruler_config_api":"true"`) {
		t.Fatalf("buildinfo: %d %s", code, body)
	}

	// The errors drop: Alertmanager sends the resolution.
	eventually(t, 60*time.Second, 500*time.Millisecond, "the resolution at the webhook", func() error {
		pushValue(1)
		if _, ok := hook.find("resolved", "CheckoutErrors"); !ok {
			return fmt.Errorf("no resolved CheckoutErrors yet")
		}
		return nil
	})
}

// kubeStandIn is an HTTP stand-in of the Kubernetes API: it serves the
// scale subresource of one Deployment (GET and PUT, as client-go sends
// them) and records every request; a change of replicas is pushed to
// Canopy as it_replicas, as a metrics agent would report it.
type kubeStandIn struct {
	srv      *httptest.Server
	mu       sync.Mutex
	replicas int32
	requests []string
}

func newKubeStandIn(t *testing.T, replicas int32, onScale func(int32)) *kubeStandIn {
	k := &kubeStandIn{replicas: replicas}
	const scalePath = "/apis/apps/v1/namespaces/shop/deployments/checkout/scale"
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.requests = append(k.requests, r.Method+" "+r.URL.Path)
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != scalePath || (r.Method != http.MethodGet && r.Method != http.MethodPut) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"the stand-in serves only %s"}`, scalePath)
			return
		}
		if r.Method == http.MethodPut {
			var sc struct {
				Spec struct {
					Replicas int32 `json:"replicas"`
				} `json:"spec"`
			}
			body, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(body, &sc); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"BadRequest","code":400,"message":%q}`, fmt.Sprintf("the stand-in reads JSON Scale bodies (Content-Type %s): %v", r.Header.Get("Content-Type"), err))
				return
			}
			k.mu.Lock()
			k.replicas = sc.Spec.Replicas
			k.mu.Unlock()
			onScale(sc.Spec.Replicas)
		}
		k.mu.Lock()
		n := k.replicas
		k.mu.Unlock()
		fmt.Fprintf(w, `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"checkout","namespace":"shop"},"spec":{"replicas":%d},"status":{"replicas":%d}}`, n, n)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// kubeconfig writes a kubeconfig whose context "prod" is the stand-in.
func (k *kubeStandIn) kubeconfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: prod
    cluster: {server: %q}
users:
  - name: remediator
    user: {token: test-token}
contexts:
  - name: prod
    context: {cluster: prod, user: remediator}
current-context: prod
`, k.srv.URL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAlertToRemediation is the whole loop with real processes: a rule
// fires in Canopy's ruler, the real Alertmanager sends it to Canopy's
// remediator, whose playbook scales a Deployment through the Kubernetes
// API (a stand-in), and whose verification sees the alert's expression
// stop firing. The audit trail is in the API and in the tenant's logs.
func TestAlertToRemediation(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	amPort := freePorts(t, 1)[0]
	amURL := "http://127.0.0.1:" + strconv.Itoa(amPort)
	var nodeURL string
	push := func(v int32) {
		mustPushV1(t, nodeURL, "team-a", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "it_replicas"}, {Name: "cluster", Value: "prod"}, {Name: "namespace", Value: "shop"}, {Name: "deployment", Value: "checkout"}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: float64(v)}},
		}}})
	}
	kube := newKubeStandIn(t, 2, func(n int32) { push(n) })
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(`playbooks:
  - name: scale-checkout
    match: {alertname: CheckoutReplicasLow}
    dry_run: false
    verify: {interval: 500ms, timeout: 30s}
    actions:
      - type: scale
        namespace: "{{ .Labels.namespace }}"
        name: "{{ .Labels.deployment }}"
        step: 1
        min: 1
        max: 5
`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newCanopyNodes(t, logs, 1, "-ingester.replication-factor=1", "-auth.multitenancy-enabled=true",
		"-ruler.alertmanager-url="+amURL, "-ruler.evaluation-interval=1s", "-ruler.poll-interval=1s",
		"-remediator.playbooks-file="+playbooks, "-remediator.kubeconfig="+kube.kubeconfig(t))[0]
	nodeURL = n.url()
	startAlertmanagerOn(t, logs, n.url()+"/remediation/v1/alertmanager", amPort)
	n.start(t)
	n.waitReady(t, 60*time.Second)
	push(2)

	group := `name: capacity
interval: 1s
rules:
  - alert: CheckoutReplicasLow
    expr: min by (cluster, namespace, deployment) (it_replicas) < 3
`
	r, err := do(http.MethodPost, n.url()+"/prometheus/config/v1/rules/shop", "team-a", "application/yaml", []byte(group), nil)
	if err != nil || r.code != http.StatusAccepted {
		t.Fatalf("uploading the rule group: %v %v", r, err)
	}
	var decisions []string
	eventually(t, 90*time.Second, 500*time.Millisecond, "the remediation verified", func() error {
		code, body, err := httpGet(n.url()+"/remediation/v1/audit", http.Header{tenantHeader: {"team-a"}})
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		var res struct {
			Data []struct {
				Decision string `json:"decision"`
				Message  string `json:"message"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return err
		}
		decisions = decisions[:0]
		for _, d := range res.Data {
			decisions = append(decisions, d.Decision)
		}
		if !strings.Contains(strings.Join(decisions, ","), "received,matched,acted,verified") {
			return fmt.Errorf("audit: %s", body)
		}
		return nil
	})
	kube.mu.Lock()
	replicas, requests := kube.replicas, kube.requests
	kube.mu.Unlock()
	if replicas != 3 {
		t.Fatalf("replicas %d after the remediation, want 3 (requests %v)", replicas, requests)
	}
	// The audit trail is in the tenant's logs too.
	eventually(t, 30*time.Second, 500*time.Millisecond, "the audit lines in the logs", func() error {
		q := url.Values{"query": {`{service_name="canopy-remediator", decision="verified"}`}, "limit": {"10"}}
		code, body, err := httpGet(n.url()+"/loki/api/v1/query_range?"+q.Encode(), http.Header{tenantHeader: {"team-a"}})
		if err != nil || code != http.StatusOK || !strings.Contains(string(body), "CheckoutReplicasLow") {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		return nil
	})
	// Alertmanager's resolution arrives: recorded, nothing more done.
	eventually(t, 60*time.Second, 500*time.Millisecond, "the resolution in the audit", func() error {
		push(3)
		_, body, _ := httpGet(n.url()+"/remediation/v1/audit", http.Header{tenantHeader: {"team-a"}})
		if !strings.Contains(string(body), `"decision":"resolved"`) {
			return fmt.Errorf("no resolution yet")
		}
		return nil
	})
	kube.mu.Lock()
	defer kube.mu.Unlock()
	if kube.replicas != 3 {
		t.Fatalf("replicas %d after the resolution", kube.replicas)
	}
}

// TestRemediatorKilledMidAction: a remediator killed with SIGKILL while
// its scale call is in flight, then restarted, does not act again on the
// same notification, however often it is delivered.
func TestRemediatorKilledMidAction(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	inFlight := make(chan struct{}, 10)
	release := make(chan struct{})
	var puts atomic.Int64
	kube := newKubeStandIn(t, 2, func(int32) {})
	inner := kube.srv.Config.Handler
	kube.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts.Add(1)
			inFlight <- struct{}{}
			select { // held until the remediator is dead
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		inner.ServeHTTP(w, r)
	})
	defer close(release)
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(`playbooks:
  - name: scale-checkout
    match: {alertname: CheckoutReplicasLow}
    dry_run: false
    actions:
      - {type: scale, namespace: shop, name: checkout, step: 1, min: 1, max: 5, timeout: 60s}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newCanopyNodes(t, logs, 1, "-ingester.replication-factor=1", "-remediator.playbooks-file="+playbooks, "-remediator.kubeconfig="+kube.kubeconfig(t))[0]
	n.start(t)
	n.waitReady(t, 60*time.Second)
	notification := []byte(`{"version":"4","status":"firing","receiver":"remediator","groupKey":"{}:{alertname=\"CheckoutReplicasLow\"}",
"alerts":[{"status":"firing","labels":{"alertname":"CheckoutReplicasLow","cluster":"prod","namespace":"shop","deployment":"checkout"},
"annotations":{},"startsAt":"2026-12-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"a1b2c3d4e5f60718"}]}`)
	post := func() {
		t.Helper()
		r, err := do(http.MethodPost, n.url()+"/remediation/v1/alertmanager", "", "application/json", notification, nil)
		if err != nil || r.code != http.StatusOK {
			t.Fatalf("webhook: %v %v", r, err)
		}
	}
	post()
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("the scale call never came")
	}
	n.kill()
	n.start(t)
	n.waitReady(t, 60*time.Second)
	for range 3 { // Alertmanager's retries, an HA pair's copies
		post()
	}
	eventually(t, 10*time.Second, 200*time.Millisecond, "the redeliveries recorded as duplicates", func() error {
		_, body, err := httpGet(n.url()+"/remediation/v1/audit", nil)
		if err != nil {
			return err
		}
		if c := strings.Count(string(body), `"decision":"duplicate"`); c != 3 {
			return fmt.Errorf("%d duplicates: %s", c, body)
		}
		return nil
	})
	time.Sleep(time.Second)
	if got := puts.Load(); got != 1 {
		t.Fatalf("%d scale calls, want the one before the kill", got)
	}
}

// TestExampleAlertmanagerConfig: the shipped Alertmanager config
// (operations/alerting/alertmanager.yml) loads in the real Alertmanager
// and sends a paging alert to the remediator's webhook with its bearer
// token, one alert per notification.
func TestExampleAlertmanagerConfig(t *testing.T) {
	requireIntegration(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "operations", "alerting", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var auth atomic.Value
	hook := newWebhookRecorder(t)
	inner := hook.srv.Config.Handler
	hook.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/remediation/v1/alertmanager" {
			auth.Store(r.Header.Get("Authorization"))
			inner.ServeHTTP(w, r)
		}
	})
	tokenFile := filepath.Join(t.TempDir(), "remediator-token")
	if err := os.WriteFile(tokenFile, []byte("am-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("http://canopy:9009", hook.srv.URL, "/etc/alertmanager/remediator-token", tokenFile,
		"http://chat-bridge:8080", hook.srv.URL+"/team").Replace(string(raw))
	am := startAlertmanagerWith(t, logDir(t), cfg, freePorts(t, 1)[0])
	alerts := `[{"labels":{"alertname":"WorkloadSaturated","severity":"page","tenant":"team-a","cluster":"prod","namespace":"shop","deployment":"checkout"},"generatorURL":"http://canopy/graph?g0.expr=up"}]`
	r, err := do(http.MethodPost, am+"/api/v2/alerts", "", "application/json", []byte(alerts), nil)
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("posting to Alertmanager: %v %v", r, err)
	}
	eventually(t, 60*time.Second, 200*time.Millisecond, "the alert at the remediator", func() error {
		p, ok := hook.find("firing", "WorkloadSaturated")
		if !ok {
			return fmt.Errorf("not yet")
		}
		if len(p.Alerts) != 1 || p.Alerts[0].Labels["deployment"] != "checkout" {
			return fmt.Errorf("payload %+v", p)
		}
		return nil
	})
	if got, _ := auth.Load().(string); got != "Bearer am-token" {
		t.Fatalf("Authorization %q", got)
	}
}

// TestLogQLRulesToAlertmanager: a LogQL rule group uploaded through Loki's
// ruler API is evaluated over the tenant's logs: its recorded series is a
// metric, its alert reaches the real Alertmanager.
func TestLogQLRulesToAlertmanager(t *testing.T) {
	n, hook := startRulerNode(t)
	pushErrors := func() {
		now := time.Now().UnixNano()
		var values []string
		for i := range 5 {
			values = append(values, fmt.Sprintf(`["%d","level=error msg=\"payment failed\" n=%d"]`, now-int64(i)*1e6, i))
		}
		body := `{"streams":[{"stream":{"app":"checkout"},"values":[` + strings.Join(values, ",") + `]}]}`
		r, err := do(http.MethodPost, n.url()+"/loki/api/v1/push", "team-a", "application/json", []byte(body), nil)
		if err != nil || r.code/100 != 2 {
			t.Fatalf("Loki push: %v %v", r, err)
		}
	}
	pushErrors()
	group := `name: checkout-logs
interval: 1s
rules:
  - record: app:errors:count1m
    expr: sum by (app) (count_over_time({app="checkout"} |= "error" [1m]))
  - alert: CheckoutLogErrors
    expr: sum by (app) (count_over_time({app="checkout"} |= "error" [1m])) > 2
    labels: {severity: page}
`
	r, err := do(http.MethodPost, n.url()+"/loki/api/v1/rules/shop", "team-a", "application/yaml", []byte(group), nil)
	if err != nil || r.code != http.StatusAccepted {
		t.Fatalf("uploading the LogQL group: %v %v", r, err)
	}
	code, body, _ := httpGet(n.url()+"/api/prom/rules", http.Header{tenantHeader: {"team-a"}})
	if code != http.StatusOK || !strings.Contains(string(body), "CheckoutLogErrors") {
		t.Fatalf("Loki's legacy rules path: %d %s", code, body)
	}
	bad, _ := do(http.MethodPost, n.url()+"/loki/api/v1/rules/shop", "team-a", "application/yaml", []byte(strings.Replace(group, `|= "error" [1m]))`+"\n", `|= "error" [1m]`+"\n", 1)), nil)
	if bad.code != http.StatusBadRequest || !strings.Contains(string(bad.body), "could not parse expression") {
		t.Fatalf("a bad LogQL group: %v", bad)
	}
	a := api{base: n.url() + "/prometheus", tenant: "team-a"}
	eventually(t, 60*time.Second, 500*time.Millisecond, "the LogQL recording rule's series", func() error {
		pushErrors()
		got, _, err := a.query(http.MethodGet, `app:errors:count1m`, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Labels["app"] != "checkout" {
			return fmt.Errorf("app:errors:count1m = %s", fmtSeries(got))
		}
		return nil
	})
	eventually(t, 60*time.Second, 500*time.Millisecond, "the LogQL alert at the webhook", func() error {
		pushErrors()
		p, ok := hook.find("firing", "CheckoutLogErrors")
		if !ok {
			return fmt.Errorf("no firing CheckoutLogErrors yet")
		}
		if p.Alerts[0].Labels["tenant"] != "team-a" || p.Alerts[0].Labels["app"] != "checkout" {
			return fmt.Errorf("alert %+v", p.Alerts[0])
		}
		if !strings.Contains(p.Alerts[0].GeneratorURL, "/logql/graph?g0.expr=") {
			return fmt.Errorf("generator URL %q does not mark the LogQL expression", p.Alerts[0].GeneratorURL)
		}
		return nil
	})
}

// ruleEvaluations polls rulers' metrics and keeps, per group, the
// evaluation start times each ruler reported
// (prometheus_rule_group_last_evaluation_timestamp_seconds).
type ruleEvaluations struct {
	mu  sync.Mutex
	got map[string]map[string]map[time.Time]bool // group → ruler → lastEvaluation
}

// poll reads the last evaluation of each of groups (namespace ns) from
// n's metrics.
func (e *ruleEvaluations) poll(n *canopyNode, ns string, groups []string) {
	code, body, err := httpGet(n.url()+"/metrics", nil)
	if err != nil || code != http.StatusOK {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range groups {
		sec, ok := metricValue(body, "canopy_ruler_prometheus_rule_group_last_evaluation_timestamp_seconds", map[string]string{"rule_group": ns + ";" + g})
		if !ok || sec == 0 {
			continue
		}
		if e.got[g] == nil {
			e.got[g] = map[string]map[time.Time]bool{}
		}
		if e.got[g][n.id] == nil {
			e.got[g][n.id] = map[time.Time]bool{}
		}
		e.got[g][n.id][time.Unix(0, int64(sec*1e9))] = true
	}
}

// notSince returns the groups no ruler (or only ruler by[0]) evaluated
// after t.
func (e *ruleEvaluations) notSince(groups []string, t time.Time, by ...string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, g := range groups {
		ok := false
		for ruler, times := range e.got[g] {
			if len(by) > 0 && ruler != by[0] {
				continue
			}
			for ts := range times {
				ok = ok || ts.After(t)
			}
		}
		if !ok {
			out = append(out, g)
		}
	}
	return out
}

// twice returns the evaluations two rulers started within half the
// evaluation interval of each other: one evaluation made by both.
func (e *ruleEvaluations) twice(interval time.Duration) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for g, rulers := range e.got {
		for r1, t1s := range rulers {
			for r2, t2s := range rulers {
				if r1 >= r2 {
					continue
				}
				for t1 := range t1s {
					for t2 := range t2s {
						if d := t1.Sub(t2); d < interval/2 && d > -interval/2 {
							out = append(out, fmt.Sprintf("%s at %s by %s and at %s by %s", g, t1.Format(time.StampMilli), r1, t2.Format(time.StampMilli), r2))
						}
					}
				}
			}
		}
	}
	return out
}

// TestRulerKilledGroupsMove: two ruler processes share 12 groups. One is
// killed with SIGKILL: once its heartbeat times out, the other evaluates
// every group. It restarts and takes its share back. No evaluation is made
// by both, as their metrics report it. The read process's rule state API
// lists the groups of both.
func TestRulerKilledGroupsMove(t *testing.T) {
	requireIntegration(t)
	const tenant = "team-r"
	nodes := newCanopyCluster(t, logDir(t), []string{"write", "read", "ruler", "ruler"},
		"-auth.multitenancy-enabled", "-ingester.replication-factor=1",
		"-ruler.evaluation-interval=1s", "-ruler.poll-interval=2s",
		"-ruler.ring.heartbeat-period=1s", "-ruler.ring.heartbeat-timeout=4s")
	writer, reader, r1, r2 := nodes[0], nodes[1], nodes[2], nodes[3]
	for _, r := range []*canopyNode{r1, r2} {
		r.args = append(r.args, "-ruler.query-frontend-url="+reader.url())
	}
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 90*time.Second)
	}
	waitRingActive(t, []*canopyNode{writer, reader}, []string{writer.id}, 60*time.Second)
	waitRingActiveOf(t, []*canopyNode{r1, r2}, []string{r1.id, r2.id}, 60*time.Second, "ruler")

	var groups []string
	for i := range 12 {
		name := fmt.Sprintf("g%02d", i)
		groups = append(groups, name)
		body := fmt.Sprintf("name: %s\nrules:\n  - record: it_ring_rec_%d\n    expr: vector(%d)\n", name, i, i)
		r, err := do(http.MethodPost, r1.url()+"/prometheus/config/v1/rules/ring", tenant, "application/yaml", []byte(body), nil)
		if err != nil || r.code != http.StatusAccepted {
			t.Fatalf("uploading %s: %v %v", name, r, err)
		}
	}

	ev := &ruleEvaluations{got: map[string]map[string]map[time.Time]bool{}}
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, r := range []*canopyNode{r1, r2} {
				ev.poll(r, "ring", groups)
			}
		}
	}()
	defer func() { close(stop); <-polled }()
	waitEvaluated := func(what string, since time.Time, by ...string) {
		eventually(t, 60*time.Second, 250*time.Millisecond, what, func() error {
			if missing := ev.notSince(groups, since, by...); len(missing) > 0 {
				return fmt.Errorf("%v not evaluated since %s", missing, since.Format(time.StampMilli))
			}
			return nil
		})
	}
	waitEvaluated("every group evaluated by two rulers", time.Now())
	if n := len(ev.notSince(groups, time.Time{}, r2.id)); n == 0 || n == len(groups) {
		t.Fatalf("ruler %s evaluates %d of %d groups, want a share", r2.id, len(groups)-n, len(groups))
	}

	r2.kill()
	killed := time.Now()
	waitEvaluated("every group evaluated by the survivor", killed.Add(5*time.Second), r1.id)

	r2.start(t)
	r2.waitReady(t, 90*time.Second)
	restarted := time.Now()
	eventually(t, 60*time.Second, 250*time.Millisecond, "the restarted ruler takes a share back", func() error {
		if n := len(ev.notSince(groups, restarted, r2.id)); n == len(groups) {
			return fmt.Errorf("%s evaluates none", r2.id)
		}
		return nil
	})
	waitEvaluated("every group evaluated by two rulers again", time.Now())

	// The read path answers both rulers' groups, each once.
	eventually(t, 30*time.Second, 250*time.Millisecond, "every group in the read path's rule state", func() error {
		code, body, err := httpGet(reader.url()+"/prometheus/api/v1/rules", http.Header{tenantHeader: {tenant}})
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		if n := strings.Count(string(body), `"name":"g`); n != len(groups) {
			return fmt.Errorf("%d groups in %s", n, body)
		}
		return nil
	})

	// The recorded series are in the metrics store.
	a := api{base: reader.url() + "/prometheus", tenant: tenant}
	got, _, err := a.query(http.MethodGet, `count({__name__=~"it_ring_rec_.*"})`, time.Now().UnixMilli())
	if err != nil || len(got) != 1 || got[0].Points[0].V != "12" {
		t.Errorf("recorded series: %s %v, want 12", fmtSeries(got), err)
	}
	if twice := ev.twice(time.Second); len(twice) > 0 {
		t.Fatalf("evaluated by both rulers: %v", twice)
	}
}

// grafanaRuleGroup is the rule group shape Grafana's ruler proxy (its
// LotexRuler) marshals and decodes: gopkg.in/yaml.v3, known fields only.
type grafanaRuleGroup struct {
	Name          string            `yaml:"name"`
	Interval      model.Duration    `yaml:"interval,omitempty"`
	SourceTenants []string          `yaml:"source_tenants,omitempty"`
	Rules         []grafanaRuleNode `yaml:"rules"`
}

type grafanaRuleNode struct {
	Record       string            `yaml:"record,omitempty"`
	Alert        string            `yaml:"alert,omitempty"`
	Expr         string            `yaml:"expr"`
	For          *model.Duration   `yaml:"for,omitempty"`
	Labels       map[string]string `yaml:"labels,omitempty"`
	Annotations  map[string]string `yaml:"annotations,omitempty"`
	GrafanaAlert *struct{}         `yaml:"grafana_alert,omitempty"`
}

// TestGrafanaRuleEditorCalls sends what Grafana 12's rule editor sends
// through its data source proxy, for a Prometheus data source of subtype
// mimir (at …/prometheus) and a Loki one (at the root): the path with
// Grafana's query string kept, no Content-Type on uploads, a body marshalled
// by gopkg.in/yaml.v3, a namespace with a space escaped. It checks what
// Grafana checks of each answer: a status under 400, a Content-Type holding
// "yaml" (reads, decoded with known fields only) or "json" (uploads,
// decoded as a JSON object), and a "message" in a JSON error.
func TestGrafanaRuleEditorCalls(t *testing.T) {
	requireIntegration(t)
	n := newCanopyNodes(t, logDir(t), 1, "-ingester.replication-factor=1", "-auth.multitenancy-enabled=true")[0]
	n.start(t)
	n.waitReady(t, 60*time.Second)
	const tenant = "team-g"

	code, body, err := httpGet(n.url()+"/prometheus/api/v1/status/buildinfo", http.Header{tenantHeader: {tenant}})
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"application":"Grafana Mimir"`) || !strings.Contains(string(body), `"ruler_config_api":"true"`) {
		t.Fatalf("buildinfo: %d %s %v", code, body, err)
	}

	for _, ds := range []struct{ name, prefix, expr string }{
		{"prometheus (mimir)", "/prometheus/config/v1/rules", `sum(rate(http_requests_total{code=~"5.."}[5m])) > 1`},
		{"loki", "/api/prom/rules", `sum(rate({app="shop"} |= "error" [5m])) > 1`},
	} {
		t.Run(ds.name, func(t *testing.T) {
			u := func(path string) string {
				return n.url() + (&url.URL{Path: ds.prefix + path, RawQuery: "subtype=mimir"}).String()
			}
			var g grafanaRuleGroup
			g.Name = "shop errors"
			g.Interval = model.Duration(time.Minute)
			g.Rules = make([]grafanaRuleNode, 1)
			five := model.Duration(5 * time.Minute)
			g.Rules[0].Alert, g.Rules[0].Expr, g.Rules[0].For = "ShopErrors", ds.expr, &five
			g.Rules[0].Labels = map[string]string{"severity": "page"}
			g.Rules[0].Annotations = map[string]string{"summary": "{{ $value }} errors"}
			yml, err := yaml.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}

			// Upload: Grafana decodes the answer as a JSON object.
			r, err := do(http.MethodPost, u("/my folder"), tenant, "", yml, nil)
			if err != nil || r.code >= 400 || !strings.Contains(r.header.Get("Content-Type"), "json") {
				t.Fatalf("POST: %v %v (%s)", r, err, r.header.Get("Content-Type"))
			}
			var ack map[string]any
			if err := json.Unmarshal(r.body, &ack); err != nil {
				t.Fatalf("POST answer is not a JSON object: %v: %s", err, r.body)
			}

			// Reads: YAML, decoded with known fields only.
			read := func(path string, into any) {
				t.Helper()
				r, err := do(http.MethodGet, u(path), tenant, "", nil, nil)
				if err != nil || r.code >= 400 || !strings.Contains(r.header.Get("Content-Type"), "yaml") {
					t.Fatalf("GET %s: %v %v (%s)", path, r, err, r.header.Get("Content-Type"))
				}
				dec := yaml.NewDecoder(bytes.NewReader(r.body))
				dec.KnownFields(true)
				if err := dec.Decode(into); err != nil {
					t.Fatalf("GET %s: Grafana cannot decode the answer: %v\n%s", path, err, r.body)
				}
			}
			var all map[string][]grafanaRuleGroup
			read("", &all)
			if len(all["my folder"]) != 1 || all["my folder"][0].Name != "shop errors" || all["my folder"][0].Rules[0].Expr != ds.expr || *all["my folder"][0].Rules[0].For != five {
				t.Fatalf("GET rules: %+v", all)
			}
			var ns map[string][]grafanaRuleGroup
			read("/my folder", &ns)
			if len(ns["my folder"]) != 1 {
				t.Fatalf("GET namespace: %+v", ns)
			}
			var one grafanaRuleGroup
			read("/my folder/shop errors", &one)
			if one.Name != "shop errors" || one.Interval != g.Interval || one.Rules[0].Labels["severity"] != "page" || one.Rules[0].Annotations["summary"] != "{{ $value }} errors" {
				t.Fatalf("GET group: %+v", one)
			}

			// A bad expression: Grafana shows the JSON error's message.
			bad := bytes.Replace(yml, []byte("> 1"), []byte("> > 1"), 1)
			r, err = do(http.MethodPost, u("/my folder"), tenant, "", bad, nil)
			var e struct {
				Message string `json:"message"`
			}
			if err != nil || r.code != http.StatusBadRequest || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || json.Unmarshal(r.body, &e) != nil || !strings.Contains(e.Message, "ShopErrors") {
				t.Fatalf("POST of a bad rule: %v %v; want 400 with a JSON message naming the rule", r, err)
			}

			// Deletes: any answer under 400.
			for _, path := range []string{"/my folder/shop errors", "/my folder"} {
				if path == "/my folder" {
					if r, err := do(http.MethodPost, u("/my folder"), tenant, "", yml, nil); err != nil || r.code >= 400 {
						t.Fatalf("POST again: %v %v", r, err)
					}
				}
				if r, err := do(http.MethodDelete, u(path), tenant, "", nil, nil); err != nil || r.code >= 400 {
					t.Fatalf("DELETE %s: %v %v", path, r, err)
				}
			}
			all = nil
			read("", &all)
			if len(all) != 0 {
				t.Fatalf("GET rules after the deletes: %+v", all)
			}
		})
	}
}

// TestRemediatorWebhookOverMutualTLS: a remediator whose HTTP server
// requires client certificates (-server.http-tls-*) takes the real
// Alertmanager's webhook sent with http_config.tls_config; a client
// without a certificate is refused before any request is read.
func TestRemediatorWebhookOverMutualTLS(t *testing.T) {
	requireIntegration(t)
	logs := logDir(t)
	files := tlstest.NewCA(t, "remediation CA").WriteFiles(t)
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(`playbooks:
  - name: probe
    match: {alertname: TLSProbe}
    actions:
      - type: scale
        namespace: shop
        name: checkout
        step: 1
        max: 3
`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newCanopyCluster(t, logs, []string{"remediator"}, "-auth.multitenancy-enabled",
		"-server.http-tls-cert-path="+files.Cert, "-server.http-tls-key-path="+files.Key,
		"-server.http-tls-ca-path="+files.CA, "-server.http-tls-client-auth=RequireAndVerifyClientCert",
		"-remediator.playbooks-file="+playbooks)[0]
	base := "https://127.0.0.1:" + strconv.Itoa(n.httpPort)

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	noCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(c *http.Client, path string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set(tenantHeader, "team-t")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	n.start(t)
	eventually(t, 60*time.Second, 200*time.Millisecond, "the remediator ready over TLS", func() error {
		if code, body, err := get(withCert, "/ready"); err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %s %v", code, body, err)
		}
		return nil
	})
	if code, _, err := get(noCert, "/remediation/v1/audit"); err == nil {
		t.Fatalf("a client without a certificate got %d", code)
	}

	amPort := freePorts(t, 1)[0]
	startAlertmanagerWith(t, logs, fmt.Sprintf(`route:
  receiver: remediator
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: remediator
    webhook_configs:
      - url: %q
        http_config:
          tls_config:
            ca_file: %q
            cert_file: %q
            key_file: %q
`, base+"/remediation/v1/alertmanager", files.CA, files.Cert, files.Key), amPort)
	alert := `[{"labels":{"alertname":"TLSProbe","tenant":"team-t","cluster":"prod"}}]`
	r, err := do(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(amPort)+"/api/v2/alerts", "", "application/json", []byte(alert), nil)
	if err != nil || r.code != http.StatusOK {
		t.Fatalf("posting the alert to Alertmanager: %v %v", r, err)
	}
	eventually(t, 60*time.Second, 500*time.Millisecond, "the webhook, received over mutual TLS", func() error {
		code, body, err := get(withCert, "/remediation/v1/audit")
		if err != nil || code != http.StatusOK || !strings.Contains(body, `"decision":"dry_run"`) || !strings.Contains(body, "TLSProbe") {
			return fmt.Errorf("audit: %d %s %v", code, body, err)
		}
		return nil
	})
}
