package remediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Kube returns the Kubernetes client of the cluster an alert names.
type Kube interface {
	Client(cluster string) (kubernetes.Interface, error)
}

// NewKube returns the clients of a kubeconfig's contexts, one per cluster
// (the context named like the alert's cluster label; the current context
// for an alert without one), or, with no kubeconfig, the in-cluster
// credentials of the pod the remediator runs in.
func NewKube(kubeconfig string) Kube {
	return &kubeClients{path: kubeconfig, clients: map[string]kubernetes.Interface{}}
}

type kubeClients struct {
	path    string
	mu      sync.Mutex
	clients map[string]kubernetes.Interface
}

func (k *kubeClients) Client(cluster string) (kubernetes.Interface, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.clients[cluster]; ok {
		return c, nil
	}
	var cfg *rest.Config
	var err error
	if k.path == "" {
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("no -remediator.kubeconfig and not in a Kubernetes pod: %w", err)
		}
	} else {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: k.path}
		overrides := &clientcmd.ConfigOverrides{}
		if cluster != "" {
			raw, err := rules.Load()
			if err != nil {
				return nil, fmt.Errorf("reading -remediator.kubeconfig: %w", err)
			}
			if _, ok := raw.Contexts[cluster]; !ok {
				return nil, fmt.Errorf("-remediator.kubeconfig has no context named %q (the alert's cluster)", cluster)
			}
			overrides.CurrentContext = cluster
		}
		if cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig(); err != nil {
			return nil, fmt.Errorf("-remediator.kubeconfig, context %q: %w", cluster, err)
		}
	}
	cfg.Timeout = 30 * time.Second
	// JSON, which every API server and proxy speaks (the few calls of a
	// remediation gain nothing from protobuf).
	cfg.ContentType, cfg.AcceptContentTypes = "application/json", "application/json"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	k.clients[cluster] = c
	return c, nil
}

// action is one rendered action of a playbook, ready to run.
type action struct {
	spec    ActionSpec
	target  string // what it acts on, for cooldowns, bounds and the audit
	ns      string // the Kubernetes namespace, "" for others
	cluster string
	name    string
	kind    string
	url     string
	body    string
	headers map[string]string
	argv    []string
}

// renderAction fills spec's templates with the alert and checks what they
// give: object names must be Kubernetes names, URLs http(s).
func renderAction(spec ActionSpec, a Alert, clusterLabel string) (*action, error) {
	act := &action{spec: spec}
	var err error
	r := func(s string) string {
		if err != nil {
			return ""
		}
		var out string
		out, err = render(s, a)
		return out
	}
	switch spec.Type {
	case "scale", "restart", "delete_pod":
		act.cluster = r(spec.Cluster)
		if spec.Cluster == "" {
			act.cluster = a.Labels[clusterLabel]
		}
		ns, name := r(spec.Namespace), r(spec.Name)
		if err != nil {
			return nil, err
		}
		if act.ns, err = objectName("namespace", ns); err != nil {
			return nil, err
		}
		if act.name, err = objectName("name", name); err != nil {
			return nil, err
		}
		act.kind = spec.Kind
		if spec.Type == "delete_pod" {
			act.kind = "Pod"
		}
		act.target = fmt.Sprintf("k8s:%s/%s/%s/%s", act.cluster, act.ns, act.kind, act.name)
	case "http", "escalate":
		act.url, act.body = r(spec.URL), r(spec.Body)
		act.headers = map[string]string{}
		for k, v := range spec.Headers {
			act.headers[k] = r(v)
		}
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(act.url, "http://") && !strings.HasPrefix(act.url, "https://") {
			return nil, fmt.Errorf("url %q is not http(s)", act.url)
		}
		act.target = spec.Type + ":" + act.url
	case "command":
		for _, arg := range spec.Command {
			act.argv = append(act.argv, r(arg))
		}
		if err != nil {
			return nil, err
		}
		act.target = "command:" + act.argv[0]
	}
	return act, err
}

// runner runs actions.
type runner struct {
	kube     Kube
	client   *http.Client
	commands []string // allowed programs
	now      func() time.Time
}

// run runs act and says what it did.
func (r *runner) run(ctx context.Context, act *action, history []Record) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, act.spec.Timeout)
	defer cancel()
	switch act.spec.Type {
	case "scale":
		return r.scale(ctx, act)
	case "restart":
		return r.restart(ctx, act)
	case "delete_pod":
		return r.evict(ctx, act)
	case "http":
		return r.call(ctx, act, act.body)
	case "escalate":
		body := act.body
		if body == "" {
			b, _ := json.Marshal(map[string]any{"target": act.target, "history": history})
			body = string(b)
		}
		return r.call(ctx, act, body)
	case "command":
		return r.command(ctx, act)
	}
	return "", fmt.Errorf("unknown action %q", act.spec.Type)
}

func (r *runner) client8s(act *action) (kubernetes.Interface, error) {
	if r.kube == nil {
		return nil, errors.New("no Kubernetes access configured (-remediator.kubeconfig)")
	}
	return r.kube.Client(act.cluster)
}

// scale moves the workload's replicas by the step, within the bounds,
// through the scale subresource.
func (r *runner) scale(ctx context.Context, act *action) (string, error) {
	c, err := r.client8s(act)
	if err != nil {
		return "", err
	}
	var sc *autoscalingv1.Scale
	if act.kind == "StatefulSet" {
		sc, err = c.AppsV1().StatefulSets(act.ns).GetScale(ctx, act.name, metav1.GetOptions{})
	} else {
		sc, err = c.AppsV1().Deployments(act.ns).GetScale(ctx, act.name, metav1.GetOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("reading the scale of %s %s/%s: %w", act.kind, act.ns, act.name, err)
	}
	from := sc.Spec.Replicas
	to := min(max(from+act.spec.Step, act.spec.Min), act.spec.Max)
	if to == from {
		return "", fmt.Errorf("%w: %s %s/%s has %d replicas, at its bound (min %d, max %d)", errAtBound, act.kind, act.ns, act.name, from, act.spec.Min, act.spec.Max)
	}
	sc.Spec.Replicas = to
	if act.kind == "StatefulSet" {
		_, err = c.AppsV1().StatefulSets(act.ns).UpdateScale(ctx, act.name, sc, metav1.UpdateOptions{})
	} else {
		_, err = c.AppsV1().Deployments(act.ns).UpdateScale(ctx, act.name, sc, metav1.UpdateOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("scaling %s %s/%s: %w", act.kind, act.ns, act.name, err)
	}
	return fmt.Sprintf("scaled %s %s/%s from %d to %d replicas", act.kind, act.ns, act.name, from, to), nil
}

var errAtBound = errors.New("nothing to do")

// restartedAt is the pod template annotation kubectl rollout restart sets.
const restartedAt = "kubectl.kubernetes.io/restartedAt"

// restart rolls the workload's pods, as kubectl rollout restart does; a
// paused Deployment is refused (its rollout would not proceed).
func (r *runner) restart(ctx context.Context, act *action) (string, error) {
	c, err := r.client8s(act)
	if err != nil {
		return "", err
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{restartedAt: r.now().UTC().Format(time.RFC3339)}}}}})
	if act.kind == "StatefulSet" {
		_, err = c.AppsV1().StatefulSets(act.ns).Patch(ctx, act.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	} else {
		d, gerr := c.AppsV1().Deployments(act.ns).Get(ctx, act.name, metav1.GetOptions{})
		if gerr != nil {
			return "", fmt.Errorf("reading Deployment %s/%s: %w", act.ns, act.name, gerr)
		}
		if d.Spec.Paused {
			return "", fmt.Errorf("Deployment %s/%s is paused: a restart would not roll out; resume it first", act.ns, act.name)
		}
		_, err = c.AppsV1().Deployments(act.ns).Patch(ctx, act.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("restarting %s %s/%s: %w", act.kind, act.ns, act.name, err)
	}
	return fmt.Sprintf("restarted %s %s/%s", act.kind, act.ns, act.name), nil
}

// evict deletes a pod through the eviction API, which honours its
// PodDisruptionBudgets.
func (r *runner) evict(ctx context.Context, act *action) (string, error) {
	c, err := r.client8s(act)
	if err != nil {
		return "", err
	}
	err = c.CoreV1().Pods(act.ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: act.name, Namespace: act.ns}})
	if apierrors.IsTooManyRequests(err) {
		return "", fmt.Errorf("evicting pod %s/%s: refused by a PodDisruptionBudget: %w", act.ns, act.name, err)
	}
	if err != nil {
		return "", fmt.Errorf("evicting pod %s/%s: %w", act.ns, act.name, err)
	}
	return fmt.Sprintf("evicted pod %s/%s", act.ns, act.name), nil
}

// call sends the HTTP request of an http or escalate action; any 2xx is
// success.
func (r *runner) call(ctx context.Context, act *action, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, act.spec.Method, act.url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range act.headers {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", act.spec.Method, act.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s %s: HTTP %d: %s", act.spec.Method, act.url, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return fmt.Sprintf("%s %s: HTTP %d", act.spec.Method, act.url, resp.StatusCode), nil
}

// command runs an allowed program (no shell).
func (r *runner) command(ctx context.Context, act *action) (string, error) {
	prog := act.argv[0]
	allowed := false
	for _, c := range r.commands {
		if c == prog || (filepath.IsAbs(c) && c == prog) {
			allowed = true
		}
	}
	if !allowed {
		return "", fmt.Errorf("command %q is not in -remediator.allowed-commands", prog)
	}
	out, err := exec.CommandContext(ctx, prog, act.argv[1:]...).CombinedOutput()
	if len(out) > 512 {
		out = out[:512]
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(string(out)))
	}
	return fmt.Sprintf("ran %s: %s", prog, strings.TrimSpace(string(out))), nil
}
