package ruler

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"go.yaml.in/yaml/v3"

	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// evaluations records which ruler pushed which recorded series at which
// evaluation time.
type evaluations struct {
	mu  sync.Mutex
	got map[string]map[int64][]string // series → time → rulers
}

func (e *evaluations) pusher(ruler string) Pusher {
	return func(_ context.Context, _ string, req *writev2.Request) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, ts := range req.Timeseries {
			var b labels.ScratchBuilder
			ls, err := ts.ToLabels(&b, req.Symbols)
			if err != nil {
				return err
			}
			name := ls.Get(labels.MetricName)
			if !strings.HasPrefix(name, "rec_") {
				continue
			}
			for _, s := range ts.Samples {
				if e.got[name] == nil {
					e.got[name] = map[int64][]string{}
				}
				e.got[name][s.Timestamp] = append(e.got[name][s.Timestamp], ruler)
			}
		}
		return nil
	}
}

// by returns, per series, the rulers that evaluated it.
func (e *evaluations) by() map[string]map[string]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]map[string]bool{}
	for name, times := range e.got {
		out[name] = map[string]bool{}
		for _, rs := range times {
			for _, r := range rs {
				out[name][r] = true
			}
		}
	}
	return out
}

// twice returns the evaluations two rulers made of one group at one time.
func (e *evaluations) twice() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for name, times := range e.got {
		for ts, rs := range times {
			if len(rs) > 1 {
				out = append(out, fmt.Sprintf("%s at %d by %v", name, ts, rs))
			}
		}
	}
	return out
}

func (e *evaluations) latest(name string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var max int64
	for ts := range e.got[name] {
		if ts > max {
			max = ts
		}
	}
	return max
}

func testConfig(t *testing.T) Config {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.PanicOnError))
	cfg.Ring.Store = ringconfig.StoreInMemory
	cfg.Ring.HeartbeatPeriod = 100 * time.Millisecond
	cfg.Ring.HeartbeatTimeout = 5 * time.Second
	cfg.PollInterval = time.Hour // ring changes and Sync drive the tests
	return cfg
}

func startRuler(t *testing.T, cfg Config, id string, bkt objstore.Bucket, push Pusher) *Ruler {
	return startRulerAt(t, cfg, id, 1, bkt, push)
}

// startRulerAt is startRuler advertising port in the ring.
func startRulerAt(t *testing.T, cfg Config, id string, port int, bkt objstore.Bucket, push Pusher) *Ruler {
	r, err := New(cfg, Deps{
		Bucket: bkt,
		Query: func(string) rules.QueryFunc {
			return func(_ context.Context, _ string, ts time.Time) (promql.Vector, error) {
				return promql.Vector{{T: ts.UnixMilli(), F: 1, Metric: labels.EmptyLabels()}}, nil
			}
		},
		Push:   push,
		Parser: parser.NewParser(parser.Options{}),
		Self:   ringconfig.Instance{ID: id, Addr: "127.0.0.1", Port: port},
	}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	return r
}

func putGroups(t *testing.T, bkt objstore.Bucket, n int) []string {
	store := NewStore(bkt)
	var names []string
	for i := range n {
		tenant := fmt.Sprintf("t%d", i%2)
		name := fmt.Sprintf("rec_%d", i)
		var g rulefmt.RuleGroup
		require.NoError(t, yaml.Unmarshal(fmt.Appendf(nil, "name: g%d\ninterval: 200ms\nrules:\n- record: %s\n  expr: vector(1)\n", i, name), &g))
		require.NoError(t, store.Set(context.Background(), tenant, "ns", g))
		names = append(names, name)
	}
	return names
}

// TestRulersShareGroups: rulers in one ring evaluate each group once,
// the groups spread over them; when one leaves, its groups move to the
// others, when one joins it takes some, and when one dies its groups move
// once its heartbeat times out: never evaluated twice at one time.
func TestRulersShareGroups(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	names := putGroups(t, bkt, 24)
	cfg := testConfig(t)
	ev := &evaluations{got: map[string]map[int64][]string{}}
	a := startRuler(t, cfg, "ruler-a", bkt, ev.pusher("a"))
	defer services.StopAndAwaitTerminated(context.Background(), a) //nolint:errcheck
	b := startRuler(t, cfg, "ruler-b", bkt, ev.pusher("b"))

	evaluatedSince := func(since time.Time) error {
		for _, n := range names {
			if ev.latest(n) < since.UnixMilli() {
				return fmt.Errorf("%s not evaluated since %s", n, since.Format(time.StampMilli))
			}
		}
		return nil
	}
	settle := func(what string) time.Time {
		// Both rulers see the ring and have synced.
		a.Sync()
		b.Sync()
		since := time.Now().Add(time.Second)
		require.Eventually(t, func() bool { return evaluatedSince(since) == nil }, 15*time.Second, 50*time.Millisecond, what)
		return since
	}
	settle("every group evaluated with two rulers")
	byA, byB := 0, 0
	for _, n := range names {
		if ev.by()[n]["a"] {
			byA++
		}
		if ev.by()[n]["b"] {
			byB++
		}
	}
	require.NotZero(t, byA, "ruler a evaluates some groups")
	require.NotZero(t, byB, "ruler b evaluates some groups")

	// b leaves: a takes every group.
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), b))
	since := settle("every group evaluated after b left")
	time.Sleep(500 * time.Millisecond)
	ev.mu.Lock()
	for name, times := range ev.got {
		for ts, rs := range times {
			if ts > since.UnixMilli() {
				require.Equal(t, []string{"a"}, rs, "%s at %d", name, ts)
			}
		}
	}
	ev.mu.Unlock()

	// c joins: it takes some groups from a.
	c := startRuler(t, cfg, "ruler-c", bkt, ev.pusher("c"))
	require.Eventually(t, func() bool {
		for _, rs := range ev.by() {
			if rs["c"] {
				return true
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond, "c evaluates some groups")
	since = time.Now()
	require.Eventually(t, func() bool { return evaluatedSince(since) == nil }, 15*time.Second, 50*time.Millisecond, "every group evaluated after c joined")

	// c dies: its ring entry stays ACTIVE with its last heartbeat (as after
	// kill -9). Once that heartbeat is older than the timeout, a takes c's
	// groups; later a forgets c.
	killed := time.Now()
	kill(t, c)
	require.Eventually(t, func() bool { return evaluatedSince(killed.Add(cfg.Ring.HeartbeatTimeout+time.Second)) == nil },
		cfg.Ring.HeartbeatTimeout+15*time.Second, 50*time.Millisecond, "every group evaluated after c died")
	require.Eventually(t, func() bool { return !a.ring.HasInstance("ruler-c") },
		forgetAfter*cfg.Ring.HeartbeatTimeout+10*time.Second, 100*time.Millisecond, "the dead ruler is forgotten")

	require.Empty(t, ev.twice(), "a group evaluated twice at one time")
}

// kill stops r as kill -9 would: it evaluates nothing more and its ring
// entry stays ACTIVE, with the last heartbeat it sent.
func kill(t *testing.T, r *Ruler) {
	desc, err := r.lifecycler.KVStore.Get(context.Background(), RingKey)
	require.NoError(t, err)
	last := desc.(*ring.Desc).Ingesters[r.lifecycler.ID]
	r.lifecycler.SetUnregisterOnShutdown(false)
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), r))
	require.NoError(t, r.lifecycler.KVStore.CAS(context.Background(), RingKey, func(in any) (any, bool, error) {
		d := ring.GetOrCreateRingDesc(in)
		d.Ingesters[r.lifecycler.ID] = last
		return d, true, nil
	}))
}

// TestRulerAlertsReachAlertmanager: an alerting rule's alert is posted to
// Alertmanager's API with the tenant label; the rule state is the
// tenant's.
func TestRulerAlertsReachAlertmanager(t *testing.T) {
	type amAlert struct {
		Labels map[string]string `json:"labels"`
	}
	var mu sync.Mutex
	var posted []amAlert
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prefix/api/v2/alerts" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var as []amAlert
		_ = json.Unmarshal(body, &as)
		mu.Lock()
		posted = append(posted, as...)
		mu.Unlock()
	}))
	defer am.Close()
	bkt := objstore.NewInMemBucket()
	var g rulefmt.RuleGroup
	require.NoError(t, yaml.Unmarshal([]byte("name: alerts\ninterval: 200ms\nrules:\n- alert: Always\n  expr: vector(1)\n  labels: {severity: page}\n"), &g))
	require.NoError(t, NewStore(bkt).Set(context.Background(), "team-a", "ns", g))
	cfg := testConfig(t)
	cfg.AlertmanagerURLs = am.URL + "/prefix"
	cfg.ResendDelay = 100 * time.Millisecond
	ev := &evaluations{got: map[string]map[int64][]string{}}
	r := startRuler(t, cfg, "ruler-alerts", bkt, ev.pusher("r"))
	defer services.StopAndAwaitTerminated(context.Background(), r) //nolint:errcheck
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range posted {
			if a.Labels["alertname"] == "Always" && a.Labels["tenant"] == "team-a" && a.Labels["severity"] == "page" {
				return true
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond, "the alert at Alertmanager")
	require.NotNil(t, r.Rules(user.InjectOrgID(context.Background(), "team-a")))
	require.Nil(t, r.Rules(user.InjectOrgID(context.Background(), "team-b")))
	require.Len(t, r.Alertmanagers(context.Background()).Alertmanagers(), 1)
}

// TestHTTPQuery: rules query a Prometheus API over HTTP with their tenant,
// and read vectors (native histograms too) and scalars.
func TestHTTPQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/prometheus/api/v1/query", r.URL.Path)
		require.NoError(t, r.ParseForm())
		if r.Header.Get("X-Scope-OrgID") != "team-a" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"no tenant"}`))
			return
		}
		switch r.Form.Get("query") {
		case "scalar":
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[12.5,"3"]}}`))
		case "bad":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
		default:
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[12.5,"7"]},{"metric":{"job":"h"},"histogram":[12.5,{"count":"2","sum":"3","buckets":[[0,"1","2","2"]]}]}]}}`))
		}
	}))
	defer srv.Close()
	q := HTTPQuery(srv.URL, srv.Client(), nil)("team-a")
	v, err := q(context.Background(), "up", time.UnixMilli(12500))
	require.NoError(t, err)
	require.Len(t, v, 2)
	require.Equal(t, `{job="a"}`, v[0].Metric.String())
	require.Equal(t, 7.0, v[0].F)
	require.NotNil(t, v[1].H)
	require.Equal(t, 2.0, v[1].H.Count)
	v, err = q(context.Background(), "scalar", time.UnixMilli(12500))
	require.NoError(t, err)
	require.Equal(t, promql.Vector{{T: 12500, F: 3, Metric: labels.EmptyLabels()}}, v)
	_, err = q(context.Background(), "bad", time.UnixMilli(12500))
	require.ErrorContains(t, err, "parse error")
	_, err = HTTPQuery(srv.URL, srv.Client(), nil)("team-b")(context.Background(), "up", time.Now())
	require.ErrorContains(t, err, "no tenant")
	_, err = HTTPQuery("", nil, func() http.Handler { return nil })("team-a")(context.Background(), "up", time.Now())
	require.ErrorContains(t, err, "-ruler.query-frontend-url")
}

func TestConfigValidate(t *testing.T) {
	cfg := testConfig(t)
	for _, bad := range []string{"ftp://am", "dns+http://am", "http://"} {
		cfg.AlertmanagerURLs = bad
		require.Error(t, cfg.Validate(), bad)
	}
	cfg.AlertmanagerURLs = "http://am:9093, dns+http://am.svc:9093/prefix"
	require.NoError(t, cfg.Validate())
	cfg.QueryFrontendURL = "qf:8080"
	require.ErrorContains(t, cfg.Validate(), "ruler.query-frontend-url")
}

// TestLogQLRules: LogQL groups are checked as Loki checks them, and
// evaluated with the LogQL query function: their recorded series are
// pushed like PromQL rules'.
func TestLogQLRules(t *testing.T) {
	good := "name: logs\ninterval: 200ms\nrules:\n- record: app:errors:rate1m\n  expr: sum by (app) (rate({app=\"checkout\"} |= \"error\" [1m]))\n- alert: ManyErrors\n  expr: sum by (app) (count_over_time({app=\"checkout\"} |= \"error\" [1m])) > 2\n  annotations: {summary: \"{{ $labels.app }}\"}\n"
	g, errs := ParseLogQLGroup([]byte(good))
	require.Empty(t, errs)
	for _, tc := range []struct{ body, want string }{
		{strings.Replace(good, `sum by (app) (rate(`, `sum by (app) (rate(`+"(", 1), `5:9: group "logs", rule 1, "app:errors:rate1m": could not parse expression`},
		{strings.Replace(good, `expr: sum by (app) (count_over_time({app="checkout"} |= "error" [1m])) > 2`, `expr: '{app="checkout"} |= "error"'`, 1), "a log query cannot be a rule"},
		{strings.Replace(good, `{{ $labels.app }}`, `{{ $labels.app `, 1), `annotation "summary"`},
		{strings.Replace(good, "- alert: ManyErrors", "- alert: ManyErrors\n  record: x", 1), "only one of 'record' and 'alert'"},
		{good + "extra: 1\n", "field extra not found"},
	} {
		_, errs := ParseLogQLGroup([]byte(tc.body))
		require.NotEmpty(t, errs, tc.want)
		require.Contains(t, fmt.Sprint(errs), tc.want)
	}

	bkt := objstore.NewInMemBucket()
	require.NoError(t, NewStoreIn(bkt, LogQLDir).Set(context.Background(), "team-a", "ns", g))
	var mu sync.Mutex
	var asked []string
	cfg := testConfig(t)
	ev := &evaluations{got: map[string]map[int64][]string{}}
	r, err := New(cfg, Deps{
		Bucket: bkt,
		Query:  func(string) rules.QueryFunc { return nil },
		LogQLQuery: func(tenant string) rules.QueryFunc {
			return func(_ context.Context, q string, ts time.Time) (promql.Vector, error) {
				mu.Lock()
				asked = append(asked, tenant+": "+q)
				mu.Unlock()
				return promql.Vector{{T: ts.UnixMilli(), F: 3, Metric: labels.FromStrings("app", "checkout")}}, nil
			}
		},
		Push: func(ctx context.Context, tenant string, req *writev2.Request) error {
			for _, ts := range req.Timeseries {
				var b labels.ScratchBuilder
				ls, _ := ts.ToLabels(&b, req.Symbols)
				if ls.Get(labels.MetricName) == "app:errors:rate1m" {
					ev.mu.Lock()
					ev.got["app:errors:rate1m"] = map[int64][]string{0: {tenant}}
					ev.mu.Unlock()
				}
			}
			return nil
		},
		Parser: parser.NewParser(parser.Options{}),
		Self:   ringconfig.Instance{ID: "ruler-logql", Addr: "127.0.0.1", Port: 1},
	}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	defer services.StopAndAwaitTerminated(context.Background(), r) //nolint:errcheck
	require.Eventually(t, func() bool { return len(ev.by()["app:errors:rate1m"]) > 0 }, 10*time.Second, 20*time.Millisecond)
	mu.Lock()
	require.Contains(t, asked, `team-a: sum by (app) (rate({app="checkout"} |= "error" [1m]))`)
	mu.Unlock()
	require.Eventually(t, func() bool {
		rr := r.Rules(user.InjectOrgID(context.Background(), "team-a"))
		return rr != nil && len(rr.AlertingRules()) == 1 && len(rr.AlertingRules()[0].ActiveAlerts()) == 1
	}, 10*time.Second, 20*time.Millisecond, "the LogQL alert fires")
}
