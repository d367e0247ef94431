// Package remediator receives Alertmanager's webhook and runs the
// playbooks that match its alerts: Kubernetes scale, restart and pod
// eviction, HTTP calls, allowed local commands and escalation, each
// guarded (idempotent, cooled down, bounded, dry-run, approved), verified
// against the alert's own expression and audited.
package remediator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Payload is Alertmanager's webhook body, version 4.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Payload.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Limits bound what a webhook may hold.
type Limits struct {
	MaxBytes       int64 // the body
	MaxAlerts      int   // alerts in one payload
	MaxLabels      int   // labels (and annotations) of one alert
	MaxValueLength int   // one label or annotation value
}

// DefaultLimits are the remediator's bounds of a webhook.
var DefaultLimits = Limits{MaxBytes: 4 << 20, MaxAlerts: 1000, MaxLabels: 64, MaxValueLength: 4096}

// ErrTooLarge is returned for a body over Limits.MaxBytes.
var ErrTooLarge = errors.New("webhook body too large")

// Decode reads and checks a webhook body: version 4, a known status, and
// every alert with a fingerprint, a start, a known status and labels
// within the limits. Its errors name what was wrong and which limit.
func Decode(r io.Reader, lim Limits) (Payload, error) {
	var p Payload
	body, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return p, fmt.Errorf("reading the webhook body: %w", err)
	}
	if int64(len(body)) > lim.MaxBytes {
		return p, fmt.Errorf("%w: more than %d bytes (-remediator.max-payload-bytes)", ErrTooLarge, lim.MaxBytes)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("the webhook body is not Alertmanager's JSON: %w", err)
	}
	if p.Version != "4" {
		return p, fmt.Errorf("webhook version %q: only Alertmanager's version 4 is understood", p.Version)
	}
	if p.Status != "firing" && p.Status != "resolved" {
		return p, fmt.Errorf("webhook status %q is neither firing nor resolved", p.Status)
	}
	if len(p.Alerts) == 0 {
		return p, errors.New("the webhook holds no alert")
	}
	if len(p.Alerts) > lim.MaxAlerts {
		return p, fmt.Errorf("the webhook holds %d alerts, more than %d", len(p.Alerts), lim.MaxAlerts)
	}
	for i, a := range p.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			return p, fmt.Errorf("alert %d: status %q is neither firing nor resolved", i, a.Status)
		}
		if a.Fingerprint == "" || len(a.Fingerprint) > 64 {
			return p, fmt.Errorf("alert %d: no fingerprint (or one longer than 64 bytes)", i)
		}
		if a.StartsAt.IsZero() {
			return p, fmt.Errorf("alert %d: no startsAt", i)
		}
		if a.Labels["alertname"] == "" {
			return p, fmt.Errorf("alert %d: no alertname label", i)
		}
		for what, m := range map[string]map[string]string{"labels": a.Labels, "annotations": a.Annotations} {
			if len(m) > lim.MaxLabels {
				return p, fmt.Errorf("alert %d: %d %s, more than %d", i, len(m), what, lim.MaxLabels)
			}
			for k, v := range m {
				if len(k) > lim.MaxValueLength || len(v) > lim.MaxValueLength {
					return p, fmt.Errorf("alert %d: %s %.40q longer than %d bytes", i, what, k, lim.MaxValueLength)
				}
			}
		}
	}
	return p, nil
}

// Expr returns the expression of the rule that made an alert, read from
// its generator URL (…/graph?g0.expr=…), and whether it is LogQL (the
// ruler's LogQL alerts link from …/logql/graph). ok is false when there
// is none, or it does not parse.
func (a Alert) Expr(p parser.Parser) (expr string, isLogQL, ok bool) {
	u, err := url.Parse(a.GeneratorURL)
	if err != nil {
		return "", false, false
	}
	expr = u.Query().Get("g0.expr")
	if expr == "" {
		return "", false, false
	}
	if strings.HasSuffix(u.Path, "/logql/graph") {
		e, err := logql.Parse(expr)
		_, isLog := e.(*logql.LogExpr)
		return expr, true, err == nil && !isLog
	}
	if _, err := p.ParseExpr(expr); err != nil {
		return "", false, false
	}
	return expr, false, true
}

// Key is what makes one notification of an alert the same as another:
// the alert's fingerprint and start. Alertmanager's redeliveries and an
// HA pair's copies share it.
func (a Alert) Key() string { return a.Fingerprint + "@" + a.StartsAt.UTC().Format(time.RFC3339Nano) }
