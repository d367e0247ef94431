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

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	v1 "github.com/prometheus/prometheus/web/api/v1"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
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
	store     *Store // the PromQL groups
	langs     []*language
	bkt       objstore.Bucket
	push      Pusher
	queryable func() storage.Queryable // restores `for` state; nil: not restored
	parser    parser.Parser
	logger    *slog.Logger
	reg       prometheus.Registerer
	alerting  *alerting

	lifecycler *ring.Lifecycler
	ring       *ring.Ring
	watcher    *services.FailureWatcher
	owners     owners    // the ring, as ownership reads it
	activeAt   time.Time // when this ruler saw itself ACTIVE; it evaluates nothing for the handover delay after

	syncNow chan struct{}
	mu      sync.Mutex
	tenants map[string]*tenantRules
	// groupMetrics are registered once per language and tenant, and kept
	// for a tenant that comes back.
	groupMetrics map[string]*rules.Metrics
}

// RingName and RingKey name the ruler ring.
const (
	RingName = "ruler"
	RingKey  = "ruler"
)

// tenantRules is one tenant's rules manager and the groups it loads.
// language is how the rules of one store are evaluated.
type language struct {
	name  string // promql, logql
	store *Store
	query func(tenant string) rules.QueryFunc
	parse func(string) (parser.Expr, error)
}

// LogQLLinkPrefix is the path the generator URL of a LogQL rule's alert
// has before /graph?g0.expr=…: what tells a LogQL expression from a PromQL
// one (the remediator verifies each with its own query API).
const LogQLLinkPrefix = "/logql"

func (l *language) linkPrefix() string {
	if l.name == "logql" {
		return LogQLLinkPrefix
	}
	return ""
}

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
	// LogQLQuery returns a tenant's query function of LogQL rules (nil:
	// LogQL rules are not evaluated).
	LogQLQuery func(tenant string) rules.QueryFunc
	// Push writes a tenant's rule results.
	Push Pusher
	// Queryable, when set, returns what restores alerts' `for` state.
	Queryable func() storage.Queryable
	Parser    parser.Parser
	// Self is this process in the ruler ring; MemberlistKV its gossip (nil
	// unless the ring store is memberlist); KitLogger the ring's logger.
	Self         ringconfig.Instance
	MemberlistKV func() (*memberlist.KV, error)
	KitLogger    log.Logger
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
		cfg: cfg, store: NewStore(d.Bucket), bkt: d.Bucket, push: d.Push, queryable: d.Queryable,
		parser: d.Parser, logger: logger, reg: reg, syncNow: make(chan struct{}, 1), tenants: map[string]*tenantRules{}, groupMetrics: map[string]*rules.Metrics{},
	}
	r.langs = []*language{{name: "promql", store: r.store, query: d.Query, parse: d.Parser.ParseExpr}}
	if d.LogQLQuery != nil {
		r.langs = append(r.langs, &language{name: "logql", store: NewStoreIn(d.Bucket, LogQLDir), query: d.LogQLQuery, parse: parseLogQLRule})
	}
	a, err := newAlerting(cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	r.alerting = a
	kitLogger := d.KitLogger
	if kitLogger == nil {
		kitLogger = log.NewNopLogger()
	}
	rcfg := cfg.Ring
	rcfg.ReplicationFactor = 1 // a group has one evaluator
	wrapped := prometheus.WrapRegistererWithPrefix("canopy_", registererOrNone(reg))
	if r.lifecycler, err = rcfg.NewLifecycler(ringconfig.Lifecycler{Name: RingName, Key: RingKey, Self: d.Self, MemberlistKV: d.MemberlistKV}, kitLogger, wrapped); err != nil {
		return nil, err
	}
	if r.ring, err = rcfg.NewRing(RingName, RingKey, d.MemberlistKV, nil, kitLogger, wrapped); err != nil {
		return nil, err
	}
	r.Service = services.NewBasicService(r.starting, r.running, r.stopping)
	return r, nil
}

// Ring is the ruler ring (for its status page).
func (r *Ruler) Ring() *ring.Ring { return r.ring }

// Store returns the store of the PromQL rule groups.
func (r *Ruler) Store() *Store { return r.store }

// LogQLStore returns the store of the LogQL rule groups (nil when LogQL
// rules are not evaluated).
func (r *Ruler) LogQLStore() *Store {
	for _, l := range r.langs {
		if l.name == "logql" {
			return l.store
		}
	}
	return nil
}

// Sync asks the ruler to read the rule groups again now.
func (r *Ruler) Sync() {
	select {
	case r.syncNow <- struct{}{}:
	default:
	}
}

func (r *Ruler) starting(ctx context.Context) error {
	r.watcher = services.NewFailureWatcher()
	r.watcher.WatchService(r.lifecycler)
	r.watcher.WatchService(r.ring)
	if err := services.StartAndAwaitRunning(ctx, r.ring); err != nil {
		return err
	}
	if err := services.StartAndAwaitRunning(ctx, r.lifecycler); err != nil {
		return err
	}
	r.alerting.run()
	return nil
}

// ringCheck is how often the ruler looks at the ring for rulers that
// joined or left: a group that moves may miss the evaluations between
// its handover and the next check.
const ringCheck = 250 * time.Millisecond

func (r *Ruler) running(ctx context.Context) error {
	go r.watchRing(ctx)
	// Ownership is decided once this ruler is ACTIVE in the ring.
	for ctx.Err() == nil {
		if err := r.readRing(ctx); err == nil && r.owners.has(r.lifecycler.ID) {
			r.activeAt = time.Now()
			break
		}
		select {
		case <-ctx.Done():
		case err := <-r.watcher.Chan():
			return ringconfig.LifecyclerFailure(ctx, "ruler", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := r.sync(ctx); err != nil {
		r.logger.Warn("reading the rule groups failed", "component", "ruler", "err", err)
	}
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	check := time.NewTicker(ringCheck)
	defer check.Stop()
	state := r.ringState(time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-r.watcher.Chan():
			return ringconfig.LifecyclerFailure(ctx, "ruler", err)
		case <-check.C:
			if err := errors.Join(r.readRing(ctx), r.forgetSilent(ctx)); err != nil {
				r.logger.Warn("the ruler ring", "component", "ruler", "err", err)
			}
			s := r.ringState(time.Now())
			if s == state {
				continue
			}
			state = s
		case <-poll.C:
		case <-r.syncNow:
		}
		if err := r.sync(ctx); err != nil {
			r.logger.Warn("reading the rule groups failed; the rules stay as they were", "component", "ruler", "err", err)
		}
	}
}

func (r *Ruler) stopping(error) error {
	r.mu.Lock()
	for id, t := range r.tenants {
		t.manager.Stop()
		t.cancel()
		delete(r.tenants, id)
	}
	r.mu.Unlock()
	r.alerting.stop()
	err := ringconfig.StopLifecycler(r.lifecycler)
	return errors.Join(err, services.StopAndAwaitTerminated(context.Background(), r.ring))
}

// sync reads every tenant's groups, in each language, and updates their
// managers: new tenants get one, tenants without groups lose theirs.
func (r *Ruler) sync(ctx context.Context) error {
	type key struct{ lang, tenant string }
	wanted := map[key]map[string][]rulefmt.RuleGroup{}
	langOf := map[string]*language{}
	dirs, err := r.topDirs(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, l := range r.langs {
		langOf[l.name] = l
		for _, id := range dirs { // a tenant without groups lists none
			groups, err := l.store.List(ctx, id, "")
			if err != nil {
				return err
			}
			owned := map[string][]rulefmt.RuleGroup{}
			for ns, gs := range groups {
				for _, g := range gs {
					// Loaded once owned, not ahead: the rules manager
					// restores alerts' `for` state after a group's first
					// evaluation, which must not be skipped.
					if r.owns(l.name, id, ns, g.Name, now) {
						owned[ns] = append(owned[ns], g)
					}
				}
			}
			if len(owned) > 0 {
				wanted[key{l.name, id}] = owned
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, t := range r.tenants {
		lang, id, _ := strings.Cut(k, "/")
		if _, ok := wanted[key{lang, id}]; !ok {
			t.manager.Stop()
			t.cancel()
			delete(r.tenants, k)
		}
	}
	for k, groups := range wanted {
		name := k.lang + "/" + k.tenant
		t, ok := r.tenants[name]
		if !ok {
			t = r.newTenant(langOf[k.lang], k.tenant)
			r.tenants[name] = t
		}
		t.loader.set(groups)
		namespaces := slices.Sorted(maps.Keys(groups))
		if err := t.manager.Update(r.cfg.EvaluationInterval, namespaces, labels.EmptyLabels(), r.cfg.ExternalURL, r.evalIfOwned(k.lang, k.tenant)); err != nil {
			r.logger.Error("loading a tenant's rule groups failed", "component", "ruler", "tenant", k.tenant, "language", k.lang, "err", err)
		}
	}
	return nil
}

// topDirs returns the bucket's top-level directories: the tenants.
func (r *Ruler) topDirs(ctx context.Context) ([]string, error) {
	var dirs []string
	err := r.bkt.Iter(ctx, "", func(name string) error {
		if strings.HasSuffix(name, "/") {
			dirs = append(dirs, strings.TrimSuffix(name, "/"))
		}
		return nil
	})
	return dirs, err
}

// newTenant starts a rules manager for tenant id's rules in lang.
func (r *Ruler) newTenant(lang *language, id string) *tenantRules {
	ctx, cancel := context.WithCancel(user.InjectOrgID(context.Background(), id))
	loader := &groupLoader{parse: lang.parse}
	metrics, ok := r.groupMetrics[lang.name+"/"+id]
	if !ok {
		metrics = rules.NewGroupMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"tenant": id, "language": lang.name}, r.reg))
		r.groupMetrics[lang.name+"/"+id] = metrics
	}
	var ext *url.URL
	if r.cfg.ExternalURL != "" {
		ext, _ = url.Parse(r.cfg.ExternalURL)
	}
	opts := &rules.ManagerOptions{
		NameValidationScheme: model.UTF8Validation,
		ExternalURL:          ext,
		QueryFunc:            lang.query(id),
		NotifyFunc:           rules.SendAlerts(tenantSender{r.alerting.notifier, r.cfg.TenantLabel, id}, r.cfg.ExternalURL+lang.linkPrefix()),
		Context:              ctx,
		Appendable:           pushAppendable{push: r.push, tenant: id},
		Logger:               r.logger.With("component", "ruler", "tenant", id),
		OutageTolerance:      r.cfg.OutageTolerance,
		ForGracePeriod:       r.cfg.ForGracePeriod,
		ResendDelay:          r.cfg.ResendDelay,
		GroupLoader:          loader,
		Metrics:              metrics,
		Parser:               r.parser,
		RestoreNewRuleGroups: true,
	}
	if lang.name == "logql" {
		// Prometheus's dependency analysis walks PromQL syntax trees.
		opts.RuleDependencyController = noDependencies{}
	}
	// `for` state is read back from ALERTS_FOR_STATE: through this
	// process's querier, else through remote read of the query path.
	opts.Queryable = lazyQueryable(r.queryable)
	if r.queryable == nil && r.cfg.QueryFrontendURL != "" {
		if q, err := RemoteRead(r.cfg.QueryFrontendURL, id); err == nil {
			opts.Queryable = q
		} else {
			r.logger.Warn("no remote read for restoring alerts' state", "component", "ruler", "tenant", id, "err", err)
		}
	}
	m := rules.NewManager(opts)
	go m.Run()
	return &tenantRules{manager: m, loader: loader, cancel: cancel}
}

// evalIfOwned evaluates a group at ts only if this ruler owns it at ts
// (see owns): a group that moves is evaluated by the ruler losing it up to
// one evaluation and by the ruler taking it from the next, never by both.
func (r *Ruler) evalIfOwned(lang, tenant string) rules.GroupEvalIterationFunc {
	return func(ctx context.Context, g *rules.Group, ts time.Time) {
		if !r.owns(lang, tenant, g.File(), g.Name(), ts) {
			return
		}
		rules.DefaultEvalIterationFunc(ctx, g, ts)
	}
}

// Rules implements querier.RuleSource: the request tenant's groups.
func (r *Ruler) Rules(ctx context.Context) v1.RulesRetriever {
	id, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ms []*rules.Manager
	for _, l := range r.langs {
		if t, ok := r.tenants[l.name+"/"+id]; ok {
			ms = append(ms, t.manager)
		}
	}
	if len(ms) == 0 {
		return nil
	}
	return managers(ms)
}

// managers are a tenant's rules managers as one.
type managers []*rules.Manager

func (ms managers) RuleGroups() []*rules.Group {
	var out []*rules.Group
	for _, m := range ms {
		out = append(out, m.RuleGroups()...)
	}
	return out
}

func (ms managers) AlertingRules() []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, m := range ms {
		out = append(out, m.AlertingRules()...)
	}
	return out
}

// noDependencies leaves rules' dependencies unknown: they run in order.
type noDependencies struct{}

func (noDependencies) AnalyseRules([]rules.Rule) {}

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
	parse  func(string) (parser.Expr, error)
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
func (l *groupLoader) Parse(query string) (parser.Expr, error) { return l.parse(query) }

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
	var inner storage.Queryable
	if q != nil {
		inner = q()
	}
	if inner == nil {
		return nil, fmt.Errorf("no querier to restore alerts' state from: run one beside the ruler, or set -ruler.query-frontend-url")
	}
	return inner.Querier(mint, maxt)
}

// RemoteRead returns a tenant's storage read through Prometheus's remote
// read of the query path at base (its /prometheus/api/v1/read).
func RemoteRead(base, tenant string) (storage.Queryable, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/prometheus/api/v1/read")
	if err != nil {
		return nil, err
	}
	c, err := remote.NewReadClient("ruler-"+tenant, &remote.ClientConfig{
		URL:              &commoncfg.URL{URL: u},
		Timeout:          model.Duration(time.Minute),
		HTTPClientConfig: commoncfg.DefaultHTTPClientConfig,
		Headers:          map[string]string{"X-Scope-OrgID": tenant},
	})
	if err != nil {
		return nil, err
	}
	return remote.NewSampleAndChunkQueryableClient(c, labels.EmptyLabels(), nil, true, func() (int64, error) { return 0, nil }), nil
}
