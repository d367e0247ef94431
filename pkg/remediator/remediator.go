package remediator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
)

// Config is the remediator's configuration (the `remediator` section).
type Config struct {
	// PlaybooksFile holds the playbooks, read again every ReloadInterval
	// and on POST /remediation/v1/reload.
	PlaybooksFile  string        `yaml:"playbooks_file"`
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// DryRun makes every playbook only record what it would do.
	DryRun bool `yaml:"dry_run"`
	// Kubeconfig has a context per cluster (empty: in-cluster).
	Kubeconfig string `yaml:"kubeconfig"`
	// AllowedCommands are the programs command actions may run
	// (comma-separated; empty: none).
	AllowedCommands string `yaml:"allowed_commands"`
	// ClusterLabel and TenantLabel are the alert labels naming its
	// cluster and its tenant.
	ClusterLabel string `yaml:"cluster_label"`
	TenantLabel  string `yaml:"tenant_label"`
	// BearerTokenFile and BasicAuthFile (user:password) authenticate
	// Alertmanager's webhook calls; empty: not required.
	BearerTokenFile string `yaml:"bearer_token_file"`
	BasicAuthFile   string `yaml:"basic_auth_file"`
	MaxPayloadBytes int64  `yaml:"max_payload_bytes"`
	// JournalRetention is how long a notification is remembered as
	// handled.
	JournalRetention time.Duration `yaml:"journal_retention"`
	// QueryFrontendURL is where verifications query (empty: this
	// process's query path).
	QueryFrontendURL string `yaml:"query_frontend_url"`
}

// RegisterFlags registers the remediator's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.PlaybooksFile, "remediator.playbooks-file", "", "YAML file of the remediator's playbooks (empty: none; every alert is recorded as unmatched).")
	f.DurationVar(&c.ReloadInterval, "remediator.reload-interval", 30*time.Second, "How often the playbooks file is read again.")
	f.BoolVar(&c.DryRun, "remediator.dry-run", false, "Record what every playbook would do, and do nothing.")
	f.StringVar(&c.Kubeconfig, "remediator.kubeconfig", "", "Kubeconfig with one context per cluster, named like the alerts' cluster label (empty: the in-cluster credentials of the pod).")
	f.StringVar(&c.AllowedCommands, "remediator.allowed-commands", "", "Comma-separated programs (absolute paths) that command actions may run; empty: none.")
	f.StringVar(&c.ClusterLabel, "remediator.cluster-label", "cluster", "The alert label naming the Kubernetes cluster (its kubeconfig context).")
	f.StringVar(&c.TenantLabel, "remediator.tenant-label", "tenant", "The alert label naming its tenant (the ruler's -ruler.tenant-label); alerts without it are tenant anonymous.")
	f.StringVar(&c.BearerTokenFile, "remediator.bearer-token-file", "", "File holding the bearer token Alertmanager's webhook must send (http_config.authorization).")
	f.StringVar(&c.BasicAuthFile, "remediator.basic-auth-file", "", "File holding user:password that Alertmanager's webhook must send (http_config.basic_auth).")
	f.Int64Var(&c.MaxPayloadBytes, "remediator.max-payload-bytes", DefaultLimits.MaxBytes, "The largest webhook body accepted (413 above).")
	f.DurationVar(&c.JournalRetention, "remediator.journal-retention", 7*24*time.Hour, "How long a handled notification is remembered, so that a redelivery is never acted on twice.")
	f.StringVar(&c.QueryFrontendURL, "remediator.query-frontend-url", "", "Where verifications query the alert's expression (empty: this process's query path).")
}

// Decision is what the remediator decided about an alert.
type Decision string

// The decisions of the audit trail.
const (
	Received        Decision = "received"
	Duplicate       Decision = "duplicate"
	Unmatched       Decision = "unmatched"
	Matched         Decision = "matched"
	Skipped         Decision = "skipped"
	DryRun          Decision = "dry_run"
	ApprovalPending Decision = "approval_pending"
	Approved        Decision = "approved"
	Denied          Decision = "denied"
	Expired         Decision = "approval_expired"
	Cancelled       Decision = "cancelled"
	Acted           Decision = "acted"
	Failed          Decision = "failed"
	Verified        Decision = "verified"
	NotVerified     Decision = "not_verified"
	Unverifiable    Decision = "unverifiable"
	Escalated       Decision = "escalated"
	Exhausted       Decision = "exhausted"
	Resolved        Decision = "resolved"
)

// Record is one entry of the audit trail.
type Record struct {
	Time        time.Time `json:"time"`
	Tenant      string    `json:"tenant"`
	Alert       string    `json:"alert"` // alertname
	Fingerprint string    `json:"fingerprint"`
	StartsAt    time.Time `json:"startsAt"`
	Playbook    string    `json:"playbook,omitempty"`
	Step        int       `json:"step,omitempty"`
	Action      string    `json:"action,omitempty"`
	Target      string    `json:"target,omitempty"`
	Decision    Decision  `json:"decision"`
	Message     string    `json:"message,omitempty"`
	Approval    string    `json:"approval,omitempty"`
}

// Deps are what the remediator uses of the rest of Canopy.
type Deps struct {
	// Dir keeps the journal of handled notifications.
	Dir string
	// Query and LogQLQuery return a tenant's PromQL and LogQL query
	// functions, for verifications.
	Query      func(tenant string) rules.QueryFunc
	LogQLQuery func(tenant string) rules.QueryFunc
	// Log, when set, writes audit records into a tenant's logs. It is
	// called off the webhook's path, with the records gathered meanwhile.
	Log    func(ctx context.Context, tenant string, recs []Record) error
	Kube   Kube
	Parser parser.Parser
	Client *http.Client
	Now    func() time.Time
}

// Remediator runs playbooks on Alertmanager's notifications.
type Remediator struct {
	services.Service
	cfg       Config
	deps      Deps
	logger    *slog.Logger
	playbooks atomic.Pointer[Playbooks]
	journal   *journal
	runner    *runner
	guards    *guards
	audit     *auditTrail
	metrics   *metrics

	mu        sync.Mutex
	approvals map[string]*approval    // pending, by ID
	running   map[string]*playbookRun // playbook runs, by fingerprint
	wg        sync.WaitGroup
	baseCtx   context.Context
	stop      context.CancelFunc

	// The audit records on their way to the logs store.
	logQ     chan Record
	logsDone chan struct{}
}

// New returns the remediator.
func New(cfg Config, d Deps, logger *slog.Logger, reg prometheus.Registerer) (*Remediator, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Client == nil {
		d.Client = &http.Client{Timeout: time.Minute}
	}
	var allowed []string
	for _, c := range strings.Split(cfg.AllowedCommands, ",") {
		if c = strings.TrimSpace(c); c != "" {
			if !strings.HasPrefix(c, "/") {
				return nil, fmt.Errorf("-remediator.allowed-commands: %q is not an absolute path", c)
			}
			allowed = append(allowed, c)
		}
	}
	r := &Remediator{
		cfg: cfg, deps: d, logger: logger.With("component", "remediator"),
		runner:    &runner{kube: d.Kube, client: d.Client, commands: allowed, now: d.Now},
		guards:    newGuards(d.Now),
		audit:     newAuditTrail(10000),
		metrics:   newMetrics(reg),
		approvals: map[string]*approval{},
		running:   map[string]*playbookRun{},
	}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	var err error
	if r.journal, err = openJournal(d.Dir, cfg.JournalRetention, d.Now()); err != nil {
		return nil, fmt.Errorf("opening the remediation journal in %s: %w", d.Dir, err)
	}
	r.baseCtx, r.stop = context.WithCancel(context.Background())
	if d.Log != nil {
		r.logQ, r.logsDone = make(chan Record, auditQueue), make(chan struct{})
		go r.shipAudit()
	}
	r.Service = services.NewTimerService(cfg.ReloadInterval, nil, func(context.Context) error {
		if err := r.Reload(); err != nil {
			r.logger.Warn("reading the playbooks failed; the playbooks stay as they were", "err", err)
		}
		return nil
	}, func(error) error {
		r.stop()
		r.wg.Wait()
		if r.logsDone != nil {
			<-r.logsDone // the records queued so far are shipped
		}
		return r.journal.close()
	})
	return r, nil
}

// Reload reads the playbooks file again.
func (r *Remediator) Reload() error {
	if r.cfg.PlaybooksFile == "" {
		r.playbooks.Store(&Playbooks{})
		return nil
	}
	pb, err := LoadPlaybooks(r.cfg.PlaybooksFile)
	if err != nil {
		return err
	}
	r.playbooks.Store(pb)
	return nil
}

// record adds rec to the audit trail, the metrics and the tenant's logs.
func (r *Remediator) record(rec Record) {
	rec.Time = r.deps.Now()
	r.audit.add(rec)
	r.metrics.decisions.WithLabelValues(string(rec.Decision)).Inc()
	r.logger.Info("remediation", "tenant", rec.Tenant, "alert", rec.Alert, "fingerprint", rec.Fingerprint, "playbook", rec.Playbook, "step", rec.Step, "action", rec.Action, "target", rec.Target, "decision", rec.Decision, "message", rec.Message)
	if r.logQ != nil {
		select {
		case r.logQ <- rec:
		default:
			r.metrics.auditDropped.Inc()
		}
	}
}

// auditQueue is how many audit records may wait for the logs store; more
// are dropped from it (counted; the audit API and the process log keep
// them).
const auditQueue = 10000

// shipAudit writes the queued audit records into their tenants' logs, as
// many as are queued at once in one push per tenant, until the
// remediator stops and the queue is empty.
func (r *Remediator) shipAudit() {
	defer close(r.logsDone)
	for {
		var first Record
		select {
		case first = <-r.logQ:
		case <-r.baseCtx.Done():
			select {
			case first = <-r.logQ:
			default:
				return
			}
		}
		batch := map[string][]Record{first.Tenant: {first}}
	gather:
		for n := 1; n < 1000; n++ {
			select {
			case rec := <-r.logQ:
				batch[rec.Tenant] = append(batch[rec.Tenant], rec)
			default:
				break gather
			}
		}
		for tenant, recs := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := r.deps.Log(ctx, tenant, recs); err != nil {
				r.logger.Warn("writing audit records to the logs store failed", "tenant", tenant, "records", len(recs), "err", err)
			}
			cancel()
		}
	}
}

func (r *Remediator) tenantOf(a Alert) string {
	if t := a.Labels[r.cfg.TenantLabel]; t != "" {
		return t
	}
	return "anonymous"
}

func baseRecord(tenant string, a Alert) Record {
	return Record{Tenant: tenant, Alert: a.Labels["alertname"], Fingerprint: a.Fingerprint, StartsAt: a.StartsAt}
}

// Handle takes a notification on: resolved alerts cancel what is pending
// for them; firing alerts never seen before start their playbook.
func (r *Remediator) Handle(p Payload) error {
	received := r.deps.Now()
	for _, a := range p.Alerts {
		tenant := r.tenantOf(a)
		if a.Status == "resolved" {
			r.resolve(tenant, a)
			continue
		}
		fresh, err := r.journal.claim(a.Key(), received)
		if err != nil {
			return err
		}
		if !fresh {
			rec := baseRecord(tenant, a)
			rec.Decision, rec.Message = Duplicate, "this notification was taken on before (a redelivery, an HA pair's copy, or one before a restart)"
			r.record(rec)
			continue
		}
		rec := baseRecord(tenant, a)
		rec.Decision = Received
		r.record(rec)
		pb := r.match(tenant, a)
		if pb == nil {
			rec.Decision, rec.Message = Unmatched, "no playbook matches"
			r.record(rec)
			continue
		}
		rec.Decision, rec.Playbook = Matched, pb.Name
		r.record(rec)
		ctx, cancel := context.WithCancel(r.baseCtx)
		run := &playbookRun{cancel: cancel}
		r.mu.Lock()
		if old, ok := r.running[a.Fingerprint]; ok {
			old.cancel() // an older start of the same alert
		}
		r.running[a.Fingerprint] = run
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer cancel()
			r.runPlaybook(ctx, tenant, a, pb, received)
			r.mu.Lock()
			if r.running[a.Fingerprint] == run {
				delete(r.running, a.Fingerprint)
			}
			r.mu.Unlock()
		}()
	}
	return nil
}

func (r *Remediator) match(tenant string, a Alert) *Playbook {
	pbs := r.playbooks.Load()
	for i := range pbs.Playbooks {
		if pbs.Playbooks[i].matches(tenant, a) {
			return &pbs.Playbooks[i]
		}
	}
	return nil
}

// resolve cancels the playbook run and the approvals of a resolved alert.
func (r *Remediator) resolve(tenant string, a Alert) {
	r.mu.Lock()
	run, ok := r.running[a.Fingerprint]
	for id, ap := range r.approvals {
		if ap.alert.Fingerprint == a.Fingerprint {
			ap.decide(Cancelled)
			delete(r.approvals, id)
		}
	}
	r.mu.Unlock()
	rec := baseRecord(tenant, a)
	rec.Decision = Resolved
	if ok {
		run.cancel()
		rec.Message = "the alert resolved: what was pending for it is cancelled"
	}
	r.record(rec)
}

// runPlaybook runs the playbook's actions in order until one is verified.
func (r *Remediator) runPlaybook(ctx context.Context, tenant string, a Alert, pb *Playbook, received time.Time) {
	dry := r.cfg.DryRun || pb.dryRun()
	targets := 0
	var history []Record
	note := func(rec Record) {
		history = append(history, rec)
		r.record(rec)
	}
	first := true
	for i, spec := range pb.Actions {
		rec := baseRecord(tenant, a)
		rec.Playbook, rec.Step, rec.Action = pb.Name, i+1, spec.Type
		if ctx.Err() != nil {
			rec.Decision, rec.Message = Cancelled, "the alert resolved"
			note(rec)
			return
		}
		act, err := renderAction(spec, a, r.cfg.ClusterLabel)
		if err != nil {
			rec.Decision, rec.Message = Failed, err.Error()
			note(rec)
			continue
		}
		rec.Target = act.target
		if dry {
			rec.Decision, rec.Message = DryRun, "would "+spec.Type+" "+act.target
			note(rec)
			continue
		}
		release, reason := r.guards.acquire(pb, r.playbooks.Load().Limits, act, &targets, r.deps.Now())
		if reason != "" {
			rec.Decision, rec.Message = Skipped, reason
			note(rec)
			continue
		}
		if pb.Approval.Required {
			decision, id := r.awaitApproval(ctx, tenant, a, pb, act, i+1)
			rec.Approval = id
			if decision != Approved {
				release(false)
				rec.Decision = decision
				note(rec)
				if decision == Cancelled {
					return
				}
				continue
			}
		}
		if first {
			r.metrics.firstAction.Observe(r.deps.Now().Sub(received).Seconds())
			first = false
		}
		msg, err := r.runner.run(ctx, act, history)
		release(err == nil)
		r.metrics.actions.WithLabelValues(spec.Type, resultOf(err)).Inc()
		if err != nil {
			rec.Decision, rec.Message = Failed, err.Error()
			note(rec)
			continue
		}
		rec.Decision, rec.Message = Acted, msg
		if spec.Type == "escalate" {
			rec.Decision = Escalated
		}
		note(rec)
		if spec.Type == "escalate" {
			return
		}
		verdict, msg := r.verify(ctx, tenant, a, pb)
		vrec := rec
		vrec.Decision, vrec.Message = verdict, msg
		note(vrec)
		if verdict == Verified || verdict == Cancelled || verdict == Unverifiable {
			return
		}
	}
	if !dry {
		rec := baseRecord(tenant, a)
		rec.Playbook, rec.Decision, rec.Message = pb.Name, Exhausted, "every action ran or was skipped and the alert still fires"
		r.record(rec)
	}
}

func resultOf(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

// verify re-evaluates the alert's expression until no series of it is the
// alert's, every Verify.Interval up to Verify.Timeout.
func (r *Remediator) verify(ctx context.Context, tenant string, a Alert, pb *Playbook) (Decision, string) {
	expr, isLogQL := pb.Verify.Query, false
	if expr == "" {
		var ok bool
		if expr, isLogQL, ok = a.Expr(r.deps.Parser); !ok {
			return Unverifiable, "the alert carries no expression that parses (generatorURL) and the playbook sets no verify.query: the playbook stops here"
		}
	}
	queryOf := r.deps.Query
	if isLogQL {
		queryOf = r.deps.LogQLQuery
	}
	if queryOf == nil {
		return Unverifiable, "no query path to verify with: the playbook stops here"
	}
	q := queryOf(tenant)
	deadline := r.deps.Now().Add(pb.Verify.Timeout)
	var last string
	for {
		select {
		case <-ctx.Done():
			return Cancelled, "the alert resolved"
		case <-time.After(pb.Verify.Interval):
		}
		v, err := q(ctx, expr, r.deps.Now())
		switch {
		case err != nil:
			last = "the query failed: " + err.Error()
		case !firing(v, a):
			return Verified, fmt.Sprintf("%s no longer fires for this alert", expr)
		default:
			last = fmt.Sprintf("%s still fires for this alert", expr)
		}
		if r.deps.Now().After(deadline) {
			return NotVerified, last + fmt.Sprintf(" after %s", pb.Verify.Timeout)
		}
	}
}

// firing reports whether a series of v is the alert's: its labels are all
// the alert's (the rule adds alertname and its own labels).
func firing(v promql.Vector, a Alert) bool {
	for _, s := range v {
		match := true
		s.Metric.Range(func(l labels.Label) {
			if l.Name != "__name__" && a.Labels[l.Name] != l.Value {
				match = false
			}
		})
		if match {
			return true
		}
	}
	return false
}

// playbookRun is a running playbook of an alert.
type playbookRun struct{ cancel context.CancelFunc }

// approval is an action waiting to be approved.
type approval struct {
	ID       string    `json:"id"`
	Tenant   string    `json:"tenant"`
	Playbook string    `json:"playbook"`
	Step     int       `json:"step"`
	Action   string    `json:"action"`
	Target   string    `json:"target"`
	Expires  time.Time `json:"expires"`
	alert    Alert
	once     sync.Once
	decided  chan Decision
}

func (ap *approval) decide(d Decision) {
	ap.once.Do(func() { ap.decided <- d })
}

func (r *Remediator) awaitApproval(ctx context.Context, tenant string, a Alert, pb *Playbook, act *action, step int) (Decision, string) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	ap := &approval{ID: hex.EncodeToString(b), Tenant: tenant, Playbook: pb.Name, Step: step, Action: act.spec.Type, Target: act.target,
		Expires: r.deps.Now().Add(pb.Approval.TTL), alert: a, decided: make(chan Decision, 1)}
	r.mu.Lock()
	r.approvals[ap.ID] = ap
	r.mu.Unlock()
	r.metrics.pending.Inc()
	defer r.metrics.pending.Dec()
	rec := baseRecord(tenant, a)
	rec.Playbook, rec.Step, rec.Action, rec.Target, rec.Approval = pb.Name, step, act.spec.Type, act.target, ap.ID
	rec.Decision, rec.Message = ApprovalPending, fmt.Sprintf("waiting up to %s for approval %s", pb.Approval.TTL, ap.ID)
	r.record(rec)
	defer func() {
		r.mu.Lock()
		delete(r.approvals, ap.ID)
		r.mu.Unlock()
	}()
	select {
	case d := <-ap.decided:
		return d, ap.ID
	case <-ctx.Done():
		return Cancelled, ap.ID
	case <-time.After(pb.Approval.TTL):
		return Expired, ap.ID
	}
}

// Approve decides a pending approval of tenant.
func (r *Remediator) Approve(tenant, id string, approve bool) error {
	r.mu.Lock()
	ap, ok := r.approvals[id]
	r.mu.Unlock()
	if !ok || ap.Tenant != tenant {
		return errNoApproval
	}
	if approve {
		ap.decide(Approved)
	} else {
		ap.decide(Denied)
	}
	return nil
}

var errNoApproval = errors.New("no such pending approval")

// Pending lists the approvals of tenant waiting for a decision.
func (r *Remediator) Pending(tenant string) []*approval {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*approval
	for _, ap := range r.approvals {
		if ap.Tenant == tenant {
			out = append(out, ap)
		}
	}
	slices.SortFunc(out, func(a, b *approval) int { return a.Expires.Compare(b.Expires) })
	return out
}

// Audit returns tenant's audit records, newest last, at most limit.
func (r *Remediator) Audit(tenant, fingerprint string, limit int) []Record {
	return r.audit.list(tenant, fingerprint, limit)
}
