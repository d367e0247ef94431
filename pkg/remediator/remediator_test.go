package remediator

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// cluster is a fake Kubernetes API: client-go's fake clientset, with the
// scale subresource its object tracker lacks served by reactors.
type cluster struct {
	cs       *fake.Clientset
	mu       sync.Mutex
	replicas map[string]int32
	scales   atomic.Int64 // scale updates
	patches  atomic.Int64
	evicts   atomic.Int64
}

func newCluster(t *testing.T, objs ...runtime.Object) *cluster {
	c := &cluster{cs: fake.NewClientset(objs...), replicas: map[string]int32{"shop/checkout": 2}}
	c.cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		key := a.GetNamespace() + "/" + a.(k8stesting.GetAction).GetName()
		c.mu.Lock()
		defer c.mu.Unlock()
		n, ok := c.replicas[key]
		if !ok {
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, key)
		}
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: a.(k8stesting.GetAction).GetName(), Namespace: a.GetNamespace()}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}, nil
	})
	c.cs.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		sc := a.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		c.mu.Lock()
		c.replicas[a.GetNamespace()+"/"+sc.Name] = sc.Spec.Replicas
		c.mu.Unlock()
		c.scales.Add(1)
		return true, sc, nil
	})
	c.cs.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		c.patches.Add(1)
		return false, nil, nil
	})
	c.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		c.evicts.Add(1)
		if strings.HasPrefix(a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName(), "guarded") {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		}
		return true, nil, nil
	})
	return c
}

func (c *cluster) Client(string) (kubernetes.Interface, error) { return c.cs, nil }

func (c *cluster) replicasOf(key string) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[key]
}

func deployment(ns, name string, paused bool) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{Paused: paused}}
}

const scalePlaybook = `
playbooks:
  - name: scale-checkout
    match: {alertname: CheckoutSlow}
    dry_run: false
    cooldown: 1h
    verify: {timeout: 300ms, interval: 20ms}
    actions:
      - type: scale
        namespace: "{{ .Labels.namespace }}"
        name: "{{ .Labels.deployment }}"
        step: 1
        min: 1
        max: 4
`

type harness struct {
	r       *Remediator
	k       *cluster
	srv     *httptest.Server
	firing  atomic.Bool // what the verification query answers
	queries atomic.Int64
	dir     string
}

func newHarness(t *testing.T, playbooks string, mutate func(*Config), objs ...runtime.Object) *harness {
	h := &harness{k: newCluster(t, objs...), dir: t.TempDir()}
	h.firing.Store(true)
	path := filepath.Join(h.dir, "playbooks.yaml")
	require.NoError(t, os.WriteFile(path, []byte(playbooks), 0o644))
	h.start(t, path, mutate)
	return h
}

func (h *harness) start(t *testing.T, path string, mutate func(*Config)) {
	var cfg Config
	cfg.RegisterFlags(newFlagSet())
	cfg.PlaybooksFile = path
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg, Deps{
		Dir:  filepath.Join(h.dir, "journal"),
		Kube: h.k,
		Query: func(string) rules.QueryFunc {
			return func(context.Context, string, time.Time) (promql.Vector, error) {
				h.queries.Add(1)
				if h.firing.Load() {
					return promql.Vector{{Metric: labels.FromStrings("namespace", "shop", "deployment", "checkout")}}, nil
				}
				return nil, nil
			}
		},
		Parser: parser.NewParser(parser.Options{}),
	}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), r) })
	h.r = r
	api := r.APIHandler()
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == PathWebhook {
			r.WebhookHandler().ServeHTTP(w, req)
			return
		}
		api.ServeHTTP(w, req.WithContext(user.InjectOrgID(req.Context(), "team-a")))
	}))
	t.Cleanup(h.srv.Close)
}

func alert(name, status string, extra ...string) Alert {
	ls := map[string]string{"alertname": name, "namespace": "shop", "deployment": "checkout", "tenant": "team-a"}
	for i := 0; i+1 < len(extra); i += 2 {
		ls[extra[i]] = extra[i+1]
	}
	return Alert{Status: status, Labels: ls, Annotations: map[string]string{"summary": "slow"}, StartsAt: time.Unix(1_790_000_000, 0).UTC(),
		GeneratorURL: "http://canopy/graph?g0.expr=" + url.QueryEscape(`latency_seconds > 1`), Fingerprint: fingerprint(name + fmt.Sprint(extra))}
}

// fingerprint is an alert's fingerprint, as Alertmanager's: a hash of its
// labels (its status is not one of them).
func fingerprint(s string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return fmt.Sprintf("%016x", h.Sum64())
}

func payload(as ...Alert) []byte {
	b, _ := json.Marshal(Payload{Version: "4", Status: as[0].Status, Receiver: "remediator", Alerts: as})
	return b
}

func (h *harness) post(t *testing.T, body []byte) (int, string) {
	resp, err := http.Post(h.srv.URL+PathWebhook, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) decisions(fingerprint string) []string {
	var out []string
	for _, r := range h.r.Audit("team-a", fingerprint, 0) {
		out = append(out, string(r.Decision))
	}
	return out
}

func (h *harness) waitDecision(t *testing.T, fingerprint string, d Decision) Record {
	var found Record
	require.Eventually(t, func() bool {
		for _, r := range h.r.Audit("team-a", fingerprint, 0) {
			if r.Decision == d {
				found = r
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "decision %s for %s; have %v", d, fingerprint, h.decisions(fingerprint))
	return found
}

// TestScaleVerified: a firing alert scales its deployment one step; the
// verification sees the alert's expression stop firing.
func TestScaleVerified(t *testing.T) {
	h := newHarness(t, scalePlaybook, nil)
	a := alert("CheckoutSlow", "firing")
	code, body := h.post(t, payload(a))
	require.Equal(t, http.StatusOK, code, body)
	h.waitDecision(t, a.Fingerprint, Acted)
	require.Equal(t, int32(3), h.k.replicasOf("shop/checkout"))
	h.firing.Store(false)
	rec := h.waitDecision(t, a.Fingerprint, Verified)
	require.Contains(t, rec.Message, "latency_seconds > 1 no longer fires")
	require.Equal(t, []string{"received", "matched", "acted", "verified"}, h.decisions(a.Fingerprint))
}

// TestDuplicatesActOnce: one notification delivered three times at once
// (an HA pair's copies, a retry) acts once; after a restart of the
// remediator it is still a duplicate.
func TestDuplicatesActOnce(t *testing.T) {
	h := newHarness(t, scalePlaybook, nil)
	a := alert("CheckoutSlow", "firing")
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := h.post(t, payload(a))
			require.Equal(t, http.StatusOK, code, body)
		}()
	}
	wg.Wait()
	h.waitDecision(t, a.Fingerprint, Acted)
	require.Equal(t, int64(1), h.k.scales.Load())
	n := 0
	for _, d := range h.decisions(a.Fingerprint) {
		if d == string(Duplicate) {
			n++
		}
	}
	require.Equal(t, 2, n)

	// A restarted remediator (the same journal) does not act again.
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), h.r))
	h.start(t, filepath.Join(h.dir, "playbooks.yaml"), nil)
	code, body := h.post(t, payload(a))
	require.Equal(t, http.StatusOK, code, body)
	h.waitDecision(t, a.Fingerprint, Duplicate)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, int64(1), h.k.scales.Load())
}

// TestGuards: cooldown, blast radius, dry run, approval (approved,
// expired, cancelled by resolution), refused restarts and evictions.
func TestGuards(t *testing.T) {
	t.Run("cooldown", func(t *testing.T) {
		h := newHarness(t, scalePlaybook, nil)
		a, b := alert("CheckoutSlow", "firing", "pod", "a"), alert("CheckoutSlow", "firing", "pod", "b")
		h.post(t, payload(a))
		h.waitDecision(t, a.Fingerprint, Acted)
		h.post(t, payload(b))
		rec := h.waitDecision(t, b.Fingerprint, Skipped)
		require.Contains(t, rec.Message, "cooldown")
		require.Equal(t, int64(1), h.k.scales.Load())
	})
	t.Run("blast radius per namespace", func(t *testing.T) {
		pb := strings.Replace(scalePlaybook, "    cooldown: 1h\n", "", 1) + "limits: {per_namespace: 1, window: 1h}\n"
		h := newHarness(t, pb, nil)
		a, b := alert("CheckoutSlow", "firing", "pod", "a"), alert("CheckoutSlow", "firing", "pod", "b")
		h.post(t, payload(a))
		h.waitDecision(t, a.Fingerprint, Acted)
		h.post(t, payload(b))
		rec := h.waitDecision(t, b.Fingerprint, Skipped)
		require.Contains(t, rec.Message, "limits.per_namespace")
	})
	t.Run("dry run by default", func(t *testing.T) {
		h := newHarness(t, strings.Replace(scalePlaybook, "    dry_run: false\n", "", 1), nil)
		a := alert("CheckoutSlow", "firing")
		h.post(t, payload(a))
		rec := h.waitDecision(t, a.Fingerprint, DryRun)
		require.Equal(t, "would scale k8s:/shop/Deployment/checkout", rec.Message)
		require.Zero(t, h.k.scales.Load())
	})
	t.Run("global dry run", func(t *testing.T) {
		h := newHarness(t, scalePlaybook, func(c *Config) { c.DryRun = true })
		a := alert("CheckoutSlow", "firing")
		h.post(t, payload(a))
		h.waitDecision(t, a.Fingerprint, DryRun)
		require.Zero(t, h.k.scales.Load())
	})
	approval := strings.Replace(scalePlaybook, "    cooldown: 1h\n", "    approval: {required: true, ttl: 300ms}\n", 1)
	t.Run("approval expires", func(t *testing.T) {
		h := newHarness(t, approval, nil)
		a := alert("CheckoutSlow", "firing")
		h.post(t, payload(a))
		h.waitDecision(t, a.Fingerprint, Expired)
		require.Zero(t, h.k.scales.Load())
	})
	t.Run("approved", func(t *testing.T) {
		h := newHarness(t, strings.Replace(approval, "ttl: 300ms", "ttl: 1m", 1), nil)
		a := alert("CheckoutSlow", "firing")
		h.post(t, payload(a))
		rec := h.waitDecision(t, a.Fingerprint, ApprovalPending)
		resp, err := http.Get(h.srv.URL + PathApprovals)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Contains(t, string(b), rec.Approval)
		resp, err = http.Post(h.srv.URL+PathApprovals+"/"+rec.Approval+"/approve", "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		h.waitDecision(t, a.Fingerprint, Acted)
		require.Equal(t, int64(1), h.k.scales.Load())
	})
	t.Run("resolved cancels pending", func(t *testing.T) {
		h := newHarness(t, strings.Replace(approval, "ttl: 300ms", "ttl: 1m", 1), nil)
		a := alert("CheckoutSlow", "firing")
		h.post(t, payload(a))
		h.waitDecision(t, a.Fingerprint, ApprovalPending)
		r := a
		r.Status = "resolved"
		h.post(t, payload(r))
		h.waitDecision(t, a.Fingerprint, Cancelled)
		require.Empty(t, h.r.Pending("team-a"))
		require.Zero(t, h.k.scales.Load())
	})
	t.Run("paused deployment not restarted", func(t *testing.T) {
		pb := `
playbooks:
  - name: restart
    match: {alertname: Stuck}
    dry_run: false
    actions:
      - {type: restart, namespace: shop, name: "{{ .Labels.deployment }}"}
      - {type: delete_pod, namespace: shop, name: "{{ .Labels.pod }}"}
`
		h := newHarness(t, pb, nil, deployment("shop", "paused-one", true))
		a := alert("Stuck", "firing", "deployment", "paused-one", "pod", "guarded-pod-1")
		h.post(t, payload(a))
		h.waitDecision(t, a.Fingerprint, Exhausted)
		var msgs []string
		for _, r := range h.r.Audit("team-a", a.Fingerprint, 0) {
			msgs = append(msgs, string(r.Decision)+": "+r.Message)
		}
		require.Contains(t, strings.Join(msgs, "\n"), "failed: Deployment shop/paused-one is paused")
		require.Contains(t, strings.Join(msgs, "\n"), "refused by a PodDisruptionBudget")
		require.Zero(t, h.k.patches.Load())
	})
}

// TestVerificationFailureEscalates: the alert still fires after the
// scale's verification; the next action escalates with the history.
func TestVerificationFailureEscalates(t *testing.T) {
	var got atomic.Value
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	defer hook.Close()
	pb := scalePlaybook + "      - {type: escalate, url: \"" + hook.URL + "/page\"}\n"
	h := newHarness(t, pb, nil)
	a := alert("CheckoutSlow", "firing")
	h.post(t, payload(a))
	h.waitDecision(t, a.Fingerprint, Escalated)
	require.Equal(t, []string{"received", "matched", "acted", "not_verified", "escalated"}, h.decisions(a.Fingerprint))
	body, _ := got.Load().(string)
	require.Contains(t, body, `"decision":"not_verified"`)
	require.Contains(t, body, `"decision":"acted"`)
}

// TestHostileWebhooks: garbage, oversized, unknown versions, missing
// fields and templating injections get 4xx or a failed render: never an
// action.
func TestHostileWebhooks(t *testing.T) {
	h := newHarness(t, scalePlaybook, nil)
	good := alert("CheckoutSlow", "firing")
	v3, _ := json.Marshal(Payload{Version: "3", Status: "firing", Alerts: []Alert{good}})
	noFP := good
	noFP.Fingerprint = ""
	for _, tc := range []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"garbage", []byte("\x00\x01not json"), 400, "not Alertmanager's JSON"},
		{"huge", append([]byte(`{"version":"4","alerts":[`), bytes.Repeat([]byte(" "), 5<<20)...), 413, "-remediator.max-payload-bytes"},
		{"version 3", v3, 400, `version "3"`},
		{"no fingerprint", payload(noFP), 400, "no fingerprint"},
		{"no alerts", []byte(`{"version":"4","status":"firing","alerts":[]}`), 400, "no alert"},
	} {
		code, body := h.post(t, tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.name, body)
		require.Contains(t, body, tc.want, tc.name)
	}
	// Label values are data: a template in one is not run, and a name
	// that is not a Kubernetes name is refused.
	for _, inj := range []string{`{{ .Annotations }}`, "../kube-system", "checkout; rm -rf /", "CHECKOUT"} {
		a := alert("CheckoutSlow", "firing", "deployment", inj)
		code, body := h.post(t, payload(a))
		require.Equal(t, http.StatusOK, code, body)
		rec := h.waitDecision(t, a.Fingerprint, Failed)
		require.Contains(t, rec.Message, "is not a Kubernetes object name", inj)
	}
	require.Zero(t, h.k.scales.Load())
}

func TestWebhookAuth(t *testing.T) {
	dir := t.TempDir()
	tok, basic := filepath.Join(dir, "token"), filepath.Join(dir, "basic")
	require.NoError(t, os.WriteFile(tok, []byte("s3cret\n"), 0o600))
	require.NoError(t, os.WriteFile(basic, []byte("am:pw\n"), 0o600))
	h := newHarness(t, scalePlaybook, func(c *Config) { c.BearerTokenFile, c.BasicAuthFile = tok, basic })
	send := func(set func(*http.Request)) int {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+PathWebhook, bytes.NewReader(payload(alert("Other", "firing"))))
		set(req)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, send(func(*http.Request) {}))
	require.Equal(t, http.StatusUnauthorized, send(func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong") }))
	require.Equal(t, http.StatusOK, send(func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }))
	require.Equal(t, http.StatusOK, send(func(r *http.Request) { r.SetBasicAuth("am", "pw") }))
}

func TestParsePlaybooksRejects(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"playbooks: [{name: a, actions: [{type: scale, namespace: n, name: x, step: 1, max: 2}]}]", "matches every alert"},
		{"playbooks: [{name: a, match: {x: y}, actions: [{type: nuke}]}]", "unknown action type"},
		{"playbooks: [{name: a, match: {x: y}, actions: [{type: scale, namespace: n, name: x, step: 1}]}]", "bounds"},
		{"playbooks: [{name: a, match: {x: y}, actions: [{type: http, url: '{{ .Labels'}]}]", "unclosed action"},
		{"playbooks: [{name: a, match: {x: y}, match_re: {s: '('}, actions: [{type: http, url: http://x}]}]", "match_re"},
		{"playbooks: [{name: a, match: {x: y}, colour: red, actions: [{type: http, url: http://x}]}]", "field colour not found"},
	} {
		_, err := ParsePlaybooks([]byte(tc.yaml))
		require.ErrorContains(t, err, tc.want, tc.yaml)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(payload(alert("CheckoutSlow", "firing")))
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"alertname":"x"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}]}`))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Decode(bytes.NewReader(body), DefaultLimits)
		if err != nil {
			return
		}
		for _, a := range p.Alerts {
			if a.Fingerprint == "" || a.Labels["alertname"] == "" || a.StartsAt.IsZero() {
				t.Fatalf("an alert passed without fingerprint, alertname or start: %q", body)
			}
		}
	})
}

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("test", flag.PanicOnError) }

func TestAuditTrailRing(t *testing.T) {
	a := newAuditTrail(3)
	for i := range 5 {
		a.add(Record{Tenant: "t", Message: fmt.Sprint(i)})
	}
	a.add(Record{Tenant: "other", Message: "x"})
	var got []string
	for _, r := range a.list("t", "", 0) {
		got = append(got, r.Message)
	}
	require.Equal(t, []string{"3", "4"}, got)
	require.Len(t, a.list("t", "", 1), 1)
	require.Equal(t, "4", a.list("t", "", 1)[0].Message)
}

// TestExamplePlaybooks: the shipped playbooks parse, and their templates
// render valid JSON bodies.
func TestExamplePlaybooks(t *testing.T) {
	pb, err := LoadPlaybooks(filepath.Join("..", "..", "operations", "alerting", "playbooks.yaml"))
	require.NoError(t, err)
	require.Len(t, pb.Playbooks, 3)
	a := alert("WorkloadSaturated", "firing", "severity", "page", "cluster", "prod", "namespace", `sh"op`)
	r := &Remediator{}
	r.playbooks.Store(pb)
	require.Equal(t, "scale-on-saturation", r.match("team-a", a).Name)
	for _, p := range pb.Playbooks {
		for _, spec := range p.Actions {
			if spec.Body == "" {
				continue
			}
			act, err := renderAction(spec, a, "cluster")
			require.NoError(t, err)
			require.True(t, json.Valid([]byte(act.body)), "%s: %s", p.Name, act.body)
		}
	}
}

// TestUnverifiable: an alert without an expression that parses, under a
// playbook without verify.query, is acted on once and the playbook stops;
// a LogQL rule's alert is verified with the LogQL query.
func TestUnverifiable(t *testing.T) {
	pb := scalePlaybook + "      - {type: http, url: \"http://127.0.0.1:1/never\"}\n"
	h := newHarness(t, pb, nil)
	a := alert("CheckoutSlow", "firing")
	a.GeneratorURL = "http://canopy/graph?g0.expr=" + url.QueryEscape(`sum(count_over_time({app="x"} |= "e" [1m])) > 1`) // LogQL, linked as PromQL
	h.post(t, payload(a))
	rec := h.waitDecision(t, a.Fingerprint, Unverifiable)
	require.Contains(t, rec.Message, "no expression that parses")
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, []string{"received", "matched", "acted", "unverifiable"}, h.decisions(a.Fingerprint))

	// The ruler links a LogQL alert from …/logql/graph: verified with LogQL.
	var logqlAsked atomic.Value
	h.r.deps.LogQLQuery = func(string) rules.QueryFunc {
		return func(_ context.Context, q string, _ time.Time) (promql.Vector, error) {
			logqlAsked.Store(q)
			return nil, nil
		}
	}
	b := alert("CheckoutSlow", "firing", "pod", "b")
	b.GeneratorURL = "http://canopy/logql/graph?g0.expr=" + url.QueryEscape(`sum(count_over_time({app="x"} |= "e" [1m])) > 1`) + "&g0.tab=1"
	h.r.guards = newGuards(time.Now) // past the cooldown of the first scale
	h.post(t, payload(b))
	h.waitDecision(t, b.Fingerprint, Verified)
	require.Equal(t, `sum(count_over_time({app="x"} |= "e" [1m])) > 1`, logqlAsked.Load())
}

// TestAuditShippedToLogs: audit records reach the logs store in batches
// per tenant, off the webhook's path, and those queued when the
// remediator stops are shipped before it ends.
func TestAuditShippedToLogs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "playbooks.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(scalePlaybook, "    dry_run: false\n", "", 1)), 0o644))
	var cfg Config
	cfg.RegisterFlags(newFlagSet())
	cfg.PlaybooksFile = path
	var mu sync.Mutex
	shipped := map[string][]Decision{}
	r, err := New(cfg, Deps{Dir: filepath.Join(dir, "journal"), Parser: parser.NewParser(parser.Options{}),
		Log: func(_ context.Context, tenant string, recs []Record) error {
			mu.Lock()
			defer mu.Unlock()
			for _, rec := range recs {
				shipped[tenant] = append(shipped[tenant], rec.Decision)
			}
			return nil
		}}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	var p Payload
	require.NoError(t, json.Unmarshal(payload(alert("CheckoutSlow", "firing")), &p))
	require.NoError(t, r.Handle(p))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(shipped["team-a"], DryRun)
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.Handle(Payload{Version: "4", Status: "firing", Alerts: []Alert{alert("Unknown", "firing")}}))
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), r))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []Decision{Received, Matched, DryRun, Received, Unmatched}, shipped["team-a"])
}
