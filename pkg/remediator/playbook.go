package remediator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"
)

// Playbooks is the playbooks file: the playbooks in the order they are
// tried (an alert runs the first that matches) and the remediator-wide
// bounds.
type Playbooks struct {
	Playbooks []Playbook `yaml:"playbooks"`
	Limits    Blast      `yaml:"limits"`
}

// Blast bounds how much the remediator changes, across playbooks.
type Blast struct {
	// PerNamespace is the most targets of one namespace acted on within
	// Window (0: no bound).
	PerNamespace int           `yaml:"per_namespace"`
	Window       time.Duration `yaml:"window"`
	// PerMinute is the most actions in any minute, everywhere (0: no
	// bound).
	PerMinute int `yaml:"per_minute"`
}

// Playbook is what to do about the alerts it matches.
type Playbook struct {
	Name string `yaml:"name"`
	// Tenants the playbook serves (empty: every tenant).
	Tenants []string `yaml:"tenants"`
	// Match and MatchRE are label equalities and anchored regular
	// expressions an alert must all pass (alertname, severity, …).
	Match   map[string]string `yaml:"match"`
	MatchRE map[string]string `yaml:"match_re"`
	// DryRun records what would be done and does nothing. A playbook
	// that does not say is dry-run.
	DryRun *bool `yaml:"dry_run"`
	// Approval, when required, holds each action until approved (through
	// the API) or until TTL passes.
	Approval struct {
		Required bool          `yaml:"required"`
		TTL      time.Duration `yaml:"ttl"`
	} `yaml:"approval"`
	// Cooldown is the least time between two runs of one action on one
	// target; MaxConcurrency the most runs of one action on one target at
	// once; MaxTargetsPerAlert the most targets one alert acts on.
	Cooldown           time.Duration `yaml:"cooldown"`
	MaxConcurrency     int           `yaml:"max_concurrency"`
	MaxTargetsPerAlert int           `yaml:"max_targets_per_alert"`
	// Verify re-evaluates the alert's expression (or Query) after each
	// action until it no longer fires, every Interval up to Timeout; if
	// it still fires the next action runs.
	Verify struct {
		Query    string        `yaml:"query"`
		Timeout  time.Duration `yaml:"timeout"`
		Interval time.Duration `yaml:"interval"`
	} `yaml:"verify"`
	Actions []ActionSpec `yaml:"actions"`

	matchRE map[string]*regexp.Regexp
}

// ActionSpec is one action of a playbook. String fields are templates
// over the alert ({{ .Labels.namespace }}, {{ .Annotations.summary }},
// {{ .Fingerprint }}); what an alert's labels hold is data, never parsed
// as a template.
type ActionSpec struct {
	// Type is scale, restart, delete_pod, http, command or escalate.
	Type string `yaml:"type"`
	// Kubernetes: the workload (Deployment or StatefulSet), namespace and
	// name; scale's step (negative scales down) and bounds; the cluster
	// (default: the alert's cluster label).
	Cluster   string `yaml:"cluster"`
	Kind      string `yaml:"kind"`
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
	Step      int32  `yaml:"step"`
	Min       int32  `yaml:"min"`
	Max       int32  `yaml:"max"`
	// HTTP and escalate: the URL, method (POST), headers and body.
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	// Command: the program and its arguments (each a template), run only
	// if the program is in -remediator.allowed-commands.
	Command []string `yaml:"command"`
	// Timeout bounds the action (default 30s).
	Timeout time.Duration `yaml:"timeout"`
}

// LoadPlaybooks reads and checks a playbooks file.
func LoadPlaybooks(path string) (*Playbooks, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePlaybooks(b)
}

// ParsePlaybooks reads and checks playbooks: unknown fields, names,
// patterns, templates and action settings.
func ParsePlaybooks(b []byte) (*Playbooks, error) {
	var pb Playbooks
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&pb); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("playbooks: %w", err)
	}
	seen := map[string]bool{}
	for i := range pb.Playbooks {
		p := &pb.Playbooks[i]
		if p.Name == "" {
			return nil, fmt.Errorf("playbooks[%d]: no name", i)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("playbook %q is named twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Match)+len(p.MatchRE) == 0 {
			return nil, fmt.Errorf("playbook %q matches every alert: give it match or match_re", p.Name)
		}
		p.matchRE = map[string]*regexp.Regexp{}
		for k, re := range p.MatchRE {
			r, err := regexp.Compile("^(?:" + re + ")$")
			if err != nil {
				return nil, fmt.Errorf("playbook %q: match_re %s: %w", p.Name, k, err)
			}
			p.matchRE[k] = r
		}
		if len(p.Actions) == 0 {
			return nil, fmt.Errorf("playbook %q has no actions", p.Name)
		}
		if p.Approval.Required && p.Approval.TTL <= 0 {
			p.Approval.TTL = 15 * time.Minute
		}
		if p.MaxConcurrency <= 0 {
			p.MaxConcurrency = 1
		}
		if p.Verify.Timeout <= 0 {
			p.Verify.Timeout = 5 * time.Minute
		}
		if p.Verify.Interval <= 0 {
			p.Verify.Interval = 15 * time.Second
		}
		for j := range p.Actions {
			if err := p.Actions[j].check(); err != nil {
				return nil, fmt.Errorf("playbook %q, action %d (%s): %w", p.Name, j+1, p.Actions[j].Type, err)
			}
		}
	}
	if pb.Limits.PerNamespace > 0 && pb.Limits.Window <= 0 {
		pb.Limits.Window = 10 * time.Minute
	}
	return &pb, nil
}

// dryRun says whether the playbook only records what it would do.
func (p *Playbook) dryRun() bool { return p.DryRun == nil || *p.DryRun }

// matches reports whether the playbook serves the alert of tenant.
func (p *Playbook) matches(tenant string, a Alert) bool {
	if len(p.Tenants) > 0 && !contains(p.Tenants, tenant) {
		return false
	}
	for k, v := range p.Match {
		if a.Labels[k] != v {
			return false
		}
	}
	for k, re := range p.matchRE {
		if !re.MatchString(a.Labels[k]) {
			return false
		}
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

var templateFuncs = template.FuncMap{
	// json writes a value as a JSON string, for bodies.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
}

func parseTemplate(s string) (*template.Template, error) {
	return template.New("").Option("missingkey=zero").Funcs(templateFuncs).Parse(s)
}

func (s *ActionSpec) check() error {
	for _, f := range append([]string{s.Cluster, s.Kind, s.Namespace, s.Name, s.URL, s.Method, s.Body}, s.Command...) {
		if _, err := parseTemplate(f); err != nil {
			return err
		}
	}
	for _, v := range s.Headers {
		if _, err := parseTemplate(v); err != nil {
			return err
		}
	}
	switch s.Type {
	case "scale", "restart":
		if s.Kind == "" {
			s.Kind = "Deployment"
		}
		if s.Kind != "Deployment" && s.Kind != "StatefulSet" {
			return fmt.Errorf("kind %q: Deployment or StatefulSet", s.Kind)
		}
		if s.Namespace == "" || s.Name == "" {
			return errors.New("namespace and name are required")
		}
		if s.Type == "scale" {
			if s.Step == 0 {
				return errors.New("step is required (negative scales down)")
			}
			if s.Max <= 0 || s.Min < 0 || s.Min > s.Max {
				return fmt.Errorf("bounds min %d, max %d: need 0 <= min <= max, max > 0", s.Min, s.Max)
			}
		}
	case "delete_pod":
		if s.Namespace == "" || s.Name == "" {
			return errors.New("namespace and name are required")
		}
	case "http", "escalate":
		if s.URL == "" {
			return errors.New("url is required")
		}
		if s.Method == "" {
			s.Method = "POST"
		}
	case "command":
		if len(s.Command) == 0 {
			return errors.New("command is required")
		}
	default:
		return fmt.Errorf("unknown action type %q: scale, restart, delete_pod, http, command or escalate", s.Type)
	}
	if s.Timeout <= 0 {
		s.Timeout = 30 * time.Second
	}
	return nil
}

// render fills the template s with the alert.
func render(s string, a Alert) (string, error) {
	t, err := parseTemplate(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, a); err != nil {
		return "", err
	}
	return b.String(), nil
}

// dns1123 is a Kubernetes object name: what a rendered namespace or name
// must be, so that no label value reaches the API as a path or a selector.
var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

func objectName(what, s string) (string, error) {
	if !dns1123.MatchString(s) {
		return "", fmt.Errorf("%s %q is not a Kubernetes object name", what, s)
	}
	return s, nil
}
