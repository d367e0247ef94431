package remediator

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// guards hold what bounds the actions: per (action, target) cooldowns
// and concurrency, per-namespace and global rates.
type guards struct {
	now     func() time.Time
	mu      sync.Mutex
	last    map[string]time.Time // by action and target: the last success
	running map[string]int       // by action and target
	byNS    map[string][]time.Time
	all     []time.Time
}

func newGuards(now func() time.Time) *guards {
	return &guards{now: now, last: map[string]time.Time{}, running: map[string]int{}, byNS: map[string][]time.Time{}}
}

// acquire admits act, returning what to call when it is done (ok: it
// succeeded, which starts its cooldown), or the reason it may not run.
// targets counts the targets the alert acted on so far.
func (g *guards) acquire(pb *Playbook, lim Blast, act *action, targets *int, now time.Time) (func(ok bool), string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := act.spec.Type + "|" + act.target
	if pb.Cooldown > 0 {
		if last, ok := g.last[key]; ok && now.Sub(last) < pb.Cooldown {
			return nil, fmt.Sprintf("cooldown: %s on %s ran %s ago, within the playbook's cooldown of %s", act.spec.Type, act.target, now.Sub(last).Round(time.Second), pb.Cooldown)
		}
	}
	if g.running[key] >= pb.MaxConcurrency {
		return nil, fmt.Sprintf("concurrency: %d run(s) of %s on %s already going, the playbook's max_concurrency", g.running[key], act.spec.Type, act.target)
	}
	if pb.MaxTargetsPerAlert > 0 && *targets >= pb.MaxTargetsPerAlert {
		return nil, fmt.Sprintf("blast radius: this alert already acted on %d target(s), the playbook's max_targets_per_alert", *targets)
	}
	if lim.PerNamespace > 0 && act.ns != "" {
		recent := keepSince(g.byNS[act.ns], now.Add(-lim.Window))
		g.byNS[act.ns] = recent
		if len(recent) >= lim.PerNamespace {
			return nil, fmt.Sprintf("blast radius: %d action(s) in namespace %s within %s, limits.per_namespace", len(recent), act.ns, lim.Window)
		}
	}
	if lim.PerMinute > 0 {
		g.all = keepSince(g.all, now.Add(-time.Minute))
		if len(g.all) >= lim.PerMinute {
			return nil, fmt.Sprintf("blast radius: %d action(s) in the last minute, limits.per_minute", len(g.all))
		}
	}
	g.running[key]++
	*targets++
	if act.ns != "" {
		g.byNS[act.ns] = append(g.byNS[act.ns], now)
	}
	g.all = append(g.all, now)
	return func(ok bool) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.running[key]--
		if ok {
			g.last[key] = g.now()
		}
	}, ""
}

func keepSince(ts []time.Time, since time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(since) {
		i++
	}
	return ts[i:]
}

// auditTrail keeps the latest records in memory, in a ring.
type auditTrail struct {
	mu   sync.Mutex
	recs []Record // len ≤ max; once full, next is the oldest
	next int
	max  int
}

func newAuditTrail(max int) *auditTrail { return &auditTrail{max: max} }

func (a *auditTrail) add(r Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.recs) < a.max {
		a.recs = append(a.recs, r)
		return
	}
	a.recs[a.next] = r
	a.next = (a.next + 1) % a.max
}

// list returns a tenant's records, oldest first, the newest limit of them
// (0: all).
func (a *auditTrail) list(tenant, fingerprint string, limit int) []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Record
	for i := range a.recs {
		r := a.recs[(a.next+i)%len(a.recs)]
		if r.Tenant == tenant && (fingerprint == "" || r.Fingerprint == fingerprint) {
			out = append(out, r)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

type metrics struct {
	decisions    *prometheus.CounterVec
	actions      *prometheus.CounterVec
	webhooks     *prometheus.CounterVec
	pending      prometheus.Gauge
	auditDropped prometheus.Counter
	firstAction  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		decisions:    f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_remediation_decisions_total", Help: "Audit records by decision."}, []string{"decision"}),
		actions:      f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_remediation_actions_total", Help: "Actions run, by type and result."}, []string{"action", "result"}),
		webhooks:     f.NewCounterVec(prometheus.CounterOpts{Name: "canopy_remediation_webhooks_total", Help: "Alertmanager webhook calls, by result."}, []string{"result"}),
		pending:      f.NewGauge(prometheus.GaugeOpts{Name: "canopy_remediation_pending_approvals", Help: "Actions waiting for approval."}),
		auditDropped: f.NewCounter(prometheus.CounterOpts{Name: "canopy_remediation_audit_records_dropped_total", Help: "Audit records not written to the logs store: more were waiting than it took."}),
		firstAction:  f.NewHistogram(prometheus.HistogramOpts{Name: "canopy_remediation_first_action_seconds", Help: "From a notification's arrival to its first action's start.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
}
