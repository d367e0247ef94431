package ruler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"github.com/thanos-io/objstore"
)

// Ruler evaluates every tenant's rule groups with Prometheus's rules
// manager: one manager per tenant, whose queries carry the tenant, whose
// recording rules (and ALERTS, ALERTS_FOR_STATE) are pushed to the
// tenant's metrics, and whose alerts go to the Alertmanagers. The groups
// are read from the bucket every poll interval, and at once after a change
// through this process's config API.
type Ruler struct {
	services.Service
	cfg       Config
	store     *Store
	bkt       objstore.Bucket
	query     func(tenant string) rules.QueryFunc
	push      Pusher
	queryable func() storage.Queryable // restores `for` state; nil: not restored
	parser    parser.Parser
	logger    *slog.Logger
	reg       prometheus.Registerer
	alerting  *alerting

	syncNow chan struct{}
	mu      sync.Mutex
	tenants map[string]*tenantRules
}

// tenantRules is one tenant's rules manager and the groups it loads.
type tenantRules struct {
	manager *rules.Manager
	loader  *groupLoader
	cancel  context.CancelFunc
}

// Deps are what the ruler uses of the rest of Canopy.
type Deps struct {
	Bucket objstore.Bucket
	// Query returns a tenant's rule query function.
	Query func(tenant string) rules.QueryFunc
	// Push writes a tenant's rule results.
	Push Pusher
	// Queryable, when set, returns what restores alerts' `for` state.
	Queryable func() storage.Queryable
	Parser    parser.Parser
}

// New returns the ruler.
func New(cfg Config, d Deps, logger *slog.Logger, reg prometheus.Registerer) (*Ruler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Ruler{
		cfg: cfg, store: NewStore(d.Bucket), bkt: d.Bucket, query: d.Query, push: d.Push, queryable: d.Queryable,
		parser: d.Parser, logger: logger, reg: reg, syncNow: make(chan struct{}, 1), tenants: map[string]*tenantRules{},
	}
	a, err := newAlerting(cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	r.alerting = a
	r.Service = services.NewBasicService(r.starting, r.running, r.stopping)
	return r, nil
}

// Store returns the rule store the ruler reads.
func (r *Ruler) Store() *Store { return r.store }

// Sync asks the ruler to read the rule groups again now.
func (r *Ruler) Sync() {
	select {
	case r.syncNow <- struct{}{}:
	default:
	}
}

func (r *Ruler) starting(ctx context.Context) error {
	r.alerting.run()
	return r.sync(ctx)
}

func (r *Ruler) running(ctx context.Context) error {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.syncNow:
		}
		if err := r.sync(ctx); err != nil {
			r.logger.Warn("reading the rule groups failed; the rules stay as they were", "component", "ruler", "err", err)
		}
	}
}

func (r *Ruler) stopping(error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, t := range r.tenants {
		t.manager.Stop()
		t.cancel()
		delete(r.tenants, id)
	}
	r.alerting.stop()
	return nil
}

// sync reads every tenant's groups and updates their managers: new
// tenants get one, tenants without groups lose theirs.
func (r *Ruler) sync(ctx context.Context) error {
	tenants, err := r.listTenants(ctx)
	if err != nil {
		return err
	}
	byTenant := map[string]map[string][]rulefmt.RuleGroup{}
	for _, id := range tenants {
		groups, err := r.store.List(ctx, id, "")
		if err != nil {
			return err
		}
		if len(groups) > 0 {
			byTenant[id] = groups
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, t := range r.tenants {
		if _, ok := byTenant[id]; !ok {
			t.manager.Stop()
			t.cancel()
			delete(r.tenants, id)
		}
	}
	for id, groups := range byTenant {
		t, ok := r.tenants[id]
		if !ok {
			t = r.newTenant(id)
			r.tenants[id] = t
		}
		t.loader.set(groups)
		namespaces := slices.Sorted(maps.Keys(groups))
		if err := t.manager.Update(r.cfg.EvaluationInterval, namespaces, labels.EmptyLabels(), r.cfg.ExternalURL, nil); err != nil {
			r.logger.Error("loading a tenant's rule groups failed", "component", "ruler", "tenant", id, "err", err)
		}
	}
	return nil
}

// listTenants returns the tenants with a rules directory in the bucket.
func (r *Ruler) listTenants(ctx context.Context) ([]string, error) {
	var dirs []string
	if err := r.bkt.Iter(ctx, "", func(name string) error {
		if strings.HasSuffix(name, "/") {
			dirs = append(dirs, strings.TrimSuffix(name, "/"))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		found := false
		if err := r.bkt.Iter(ctx, rulesDir(d), func(string) error {
			found = true
			return errStop
		}); err != nil && !errors.Is(err, errStop) {
			return nil, err
		}
		if found {
			out = append(out, d)
		}
	}
	return out, nil
}

var errStop = errors.New("stop")

// newTenant starts a rules manager for tenant id.
func (r *Ruler) newTenant(id string) *tenantRules {
	ctx, cancel := context.WithCancel(user.InjectOrgID(context.Background(), id))
	loader := &groupLoader{parser: r.parser}
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"tenant": id}, r.reg)
	var ext *url.URL
	if r.cfg.ExternalURL != "" {
		ext, _ = url.Parse(r.cfg.ExternalURL)
	}
	opts := &rules.ManagerOptions{
		NameValidationScheme: model.UTF8Validation,
		ExternalURL:          ext,
		QueryFunc:            r.query(id),
		NotifyFunc:           rules.SendAlerts(tenantSender{r.alerting.notifier, r.cfg.TenantLabel, id}, r.cfg.ExternalURL),
		Context:              ctx,
		Appendable:           pushAppendable{push: r.push, tenant: id},
		Logger:               r.logger.With("component", "ruler", "tenant", id),
		OutageTolerance:      r.cfg.OutageTolerance,
		ForGracePeriod:       r.cfg.ForGracePeriod,
		ResendDelay:          r.cfg.ResendDelay,
		GroupLoader:          loader,
		Metrics:              newGroupMetrics(reg),
		Parser:               r.parser,
		RestoreNewRuleGroups: true,
	}
	if r.queryable != nil {
		opts.Queryable = lazyQueryable(r.queryable)
	}
	m := rules.NewManager(opts)
	go m.Run()
	return &tenantRules{manager: m, loader: loader, cancel: cancel}
}

// newGroupMetrics registers a tenant's group metrics, once per tenant.
func newGroupMetrics(reg prometheus.Registerer) (m *rules.Metrics) {
	defer func() {
		if recover() != nil { // registered before: a tenant that came back
			m = rules.NewGroupMetrics(nil)
		}
	}()
	return rules.NewGroupMetrics(reg)
}

// Rules implements querier.RuleSource: the request tenant's groups.
func (r *Ruler) Rules(ctx context.Context) v1.RulesRetriever {
	id, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tenants[id]; ok {
		return t.manager
	}
	return nil
}

// ServesRulerConfigAPI implements querier.RuleSource.
func (r *Ruler) ServesRulerConfigAPI() bool { return true }

// Alertmanagers implements querier.RuleSource.
func (r *Ruler) Alertmanagers(context.Context) v1.AlertmanagerRetriever {
	return alertmanagers{r.alerting.notifier}
}

type alertmanagers struct{ n *notifier.Manager }

func (a alertmanagers) Alertmanagers() []*url.URL        { return a.n.Alertmanagers() }
func (a alertmanagers) DroppedAlertmanagers() []*url.URL { return a.n.DroppedAlertmanagers() }

// groupLoader hands a tenant's groups, read from the bucket, to its rules
// manager: the manager's "files" are the tenant's namespaces.
type groupLoader struct {
	parser parser.Parser
	mu     sync.Mutex
	groups map[string][]rulefmt.RuleGroup
}

func (l *groupLoader) set(groups map[string][]rulefmt.RuleGroup) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.groups = groups
}

// Load implements rules.GroupLoader.
func (l *groupLoader) Load(namespace string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &rulefmt.RuleGroups{Groups: l.groups[namespace]}, nil
}

// Parse implements rules.GroupLoader.
func (l *groupLoader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }

// tenantSender gives every alert its tenant's label before sending it.
type tenantSender struct {
	n      *notifier.Manager
	label  string
	tenant string
}

func (s tenantSender) Send(alerts ...*notifier.Alert) {
	if s.label != "" {
		for _, a := range alerts {
			a.Labels = labels.NewBuilder(a.Labels).Set(s.label, s.tenant).Labels()
		}
	}
	s.n.Send(alerts...)
}

// lazyQueryable reads the Queryable of get when asked (the querier module
// may start after the ruler).
type lazyQueryable func() storage.Queryable

func (q lazyQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	inner := q()
	if inner == nil {
		return nil, fmt.Errorf("no querier in this process to restore alerts' state from")
	}
	return inner.Querier(mint, maxt)
}
