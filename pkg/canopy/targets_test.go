package canopy

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/federation"
)

// targetCase says what one -target must run and serve.
type targetCase struct {
	modules []string // in /services, Running
	absent  []string // not in /services
	serves  []route  // answered by a handler of the target (not 404)
	lacks   []route  // answered 404: no component of the target serves it
}

type route struct{ method, path string }

var (
	pushRoute      = route{http.MethodPost, "/api/v1/push"}
	otlpRoute      = route{http.MethodPost, "/otlp/v1/metrics"}
	ingStatusRoute = route{http.MethodGet, "/ingester/ring-status"}
	promRoute      = route{http.MethodGet, "/prometheus/api/v1/status/buildinfo"}
	rangeRoute     = route{http.MethodGet, "/prometheus/api/v1/query_range?query=up&start=0&end=60&step=15"}
	sgRingRoute    = route{http.MethodGet, "/ring/store-gateway"}
	compactRoute   = route{http.MethodGet, "/ring/compactor"}
	ingRingRoute   = route{http.MethodGet, "/ring/ingester"}
	rulerRoute     = route{http.MethodGet, "/prometheus/config/v1/rules"}
	auditRoute     = route{http.MethodGet, "/remediation/v1/audit"}
	operationsAll  = []route{{http.MethodGet, "/ready"}, {http.MethodGet, "/services"}, {http.MethodGet, "/config"}, {http.MethodGet, "/metrics"}}
)

var targetCases = map[string]targetCase{
	All: {
		modules: []string{Distributor, OTLPReceivers, Ingester, QueryFrontend, Querier, StoreGateway, Compactor, Ruler, Remediator},
		serves:  []route{pushRoute, otlpRoute, ingStatusRoute, promRoute, rangeRoute, sgRingRoute, compactRoute, ingRingRoute, rulerRoute, auditRoute},
	},
	Write: {
		modules: []string{Distributor, OTLPReceivers, Ingester},
		absent:  []string{QueryFrontend, Querier, StoreGateway, Compactor},
		serves:  []route{pushRoute, otlpRoute, ingStatusRoute, ingRingRoute},
		lacks:   []route{promRoute, sgRingRoute, compactRoute},
	},
	Read: {
		modules: []string{QueryFrontend, Querier},
		absent:  []string{Distributor, Ingester, StoreGateway, Compactor},
		serves:  []route{promRoute, rangeRoute, sgRingRoute, ingRingRoute},
		lacks:   []route{pushRoute, otlpRoute, ingStatusRoute, compactRoute},
	},
	Backend: {
		// The ruler and the remediator write through distributors of
		// their own, which serve no push endpoint.
		modules: []string{StoreGateway, Compactor, Ruler, Remediator},
		absent:  []string{Ingester, QueryFrontend, Querier},
		serves:  []route{sgRingRoute, compactRoute, rulerRoute, auditRoute},
		lacks:   []route{pushRoute, otlpRoute, promRoute, ingStatusRoute},
	},
	Distributor: {
		modules: []string{Distributor, OTLPReceivers},
		absent:  []string{Ingester, Querier, QueryFrontend},
		serves:  []route{pushRoute, otlpRoute, ingRingRoute},
		lacks:   []route{promRoute, ingStatusRoute},
	},
	Ingester: {
		modules: []string{Ingester},
		absent:  []string{Distributor, OTLPReceivers, Querier},
		serves:  []route{ingStatusRoute},
		lacks:   []route{pushRoute, promRoute},
	},
	QueryFrontend: {
		modules: []string{QueryFrontend},
		absent:  []string{Querier, Distributor, Ingester},
		serves:  []route{promRoute, rangeRoute},
		lacks:   []route{pushRoute, ingStatusRoute},
	},
	Querier: {
		modules: []string{Querier},
		absent:  []string{QueryFrontend, Distributor, Ingester},
		serves:  []route{promRoute, rangeRoute, ingRingRoute, sgRingRoute},
		lacks:   []route{pushRoute, ingStatusRoute},
	},
	StoreGateway: {
		modules: []string{StoreGateway},
		absent:  []string{Compactor, Querier},
		serves:  []route{sgRingRoute},
		lacks:   []route{pushRoute, promRoute, compactRoute},
	},
	Compactor: {
		modules: []string{Compactor},
		absent:  []string{StoreGateway, Querier},
		serves:  []route{compactRoute},
		lacks:   []route{pushRoute, promRoute, sgRingRoute},
	},
	Ruler: {
		modules: []string{Ruler},
		absent:  []string{Ingester, QueryFrontend, Querier, StoreGateway, Compactor},
		serves:  []route{rulerRoute},
		lacks:   []route{pushRoute, otlpRoute, promRoute, ingStatusRoute},
	},
	Remediator: {
		modules: []string{Remediator},
		absent:  []string{Ingester, QueryFrontend, Querier, StoreGateway, Compactor, Ruler},
		serves:  []route{auditRoute, {http.MethodPost, "/remediation/v1/alertmanager"}},
		lacks:   []route{pushRoute, otlpRoute, promRoute, rulerRoute},
	},
	Federator: {
		modules: []string{Federator},
		absent:  []string{Querier, QueryFrontend, Distributor, Ingester, StoreGateway, Compactor},
		serves:  []route{promRoute, rangeRoute, {http.MethodGet, "/federation/children"}},
		lacks:   []route{pushRoute, ingStatusRoute, sgRingRoute, ingRingRoute},
	},
}

// TestEveryTargetRuns starts each -target the help names, alone, and checks
// the services it runs and the routes it serves. A query-frontend without a
// querier is given a fake downstream.
func TestEveryTargetRuns(t *testing.T) {
	names := TargetNames()
	require.Len(t, targetCases, len(names), "every target needs a case here")
	help := targetHelp(t)
	for _, name := range names {
		require.Contains(t, help, name, "-target's help does not name %s", name)
		tc, ok := targetCases[name]
		require.True(t, ok, "no case for target %s", name)
		t.Run(name, func(t *testing.T) {
			var downstreamHits atomic.Int64
			downstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				downstreamHits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
			}))
			defer downstream.Close()

			cfg := targetTestConfig(t, name)
			if name == QueryFrontend {
				cfg.Frontend.DownstreamURL = downstream.URL
			}
			if name == Federator {
				cfg.Federation.Children = []federation.ChildConfig{{Name: "child", URL: downstream.URL, ExternalLabels: map[string]string{"cluster": "c1"}}}
			}
			c := startTarget(t, cfg)
			base := "http://" + c.Server.HTTPListenAddr().String()

			services := get(t, base+"/services")
			for _, m := range tc.modules {
				require.Regexp(t, `(?m)^`+m+`\s+Running$`, services, "module %s of target %s", m, name)
			}
			for _, m := range tc.absent {
				require.NotRegexp(t, `(?m)^`+m+`\s`, services, "target %s runs %s", name, m)
			}
			for _, r := range append(append([]route{}, operationsAll...), tc.serves...) {
				code := status(t, r.method, base+r.path)
				require.NotEqual(t, http.StatusNotFound, code, "%s %s on target %s", r.method, r.path, name)
			}
			// Every route the process lists (its index page) is served.
			for _, r := range c.API.Routes() {
				method, path := http.MethodGet, r.Path
				if len(r.Methods) > 0 {
					method = r.Methods[0]
				}
				if r.Prefix {
					path += "status/buildinfo"
				}
				require.True(t, routed(t, method, base+path), "%s %s listed by target %s", method, path, name)
				require.Contains(t, get(t, base+"/"), r.Path, "the index page lists %s", r.Path)
			}
			for _, r := range tc.lacks {
				require.Equal(t, http.StatusNotFound, status(t, r.method, base+r.path), "%s %s on target %s", r.method, r.path, name)
			}
			require.Eventually(t, func() bool { return status(t, http.MethodGet, base+"/ready") == http.StatusOK },
				30*time.Second, 50*time.Millisecond, "target %s never became ready", name)
			if name == QueryFrontend || name == Federator {
				require.Equal(t, http.StatusOK, status(t, http.MethodGet, base+rangeRoute.path))
				require.Positive(t, downstreamHits.Load(), "the %s did not send the query downstream", name)
			}
		})
	}
}

// TestOTLPListenerFailureFailsProcess: an OTLP port that cannot be bound
// fails the start, naming the flag, instead of leaving a ready process
// without its OTLP receiver.
func TestOTLPListenerFailureFailsProcess(t *testing.T) {
	taken := httptest.NewServer(http.NotFoundHandler())
	defer taken.Close()
	cfg := targetTestConfig(t, Distributor)
	cfg.Distributor.OTLPHTTPListenAddress = taken.Listener.Addr().String()
	c, err := New(cfg, log.NewNopLogger())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = c.Start(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), "-distributor.otlp.http-listen-address")
}

// targetTestConfig is a loopback configuration running target, with every
// port chosen by the kernel.
func targetTestConfig(t *testing.T, target string) Config {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet("canopy", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	cfg.Target = []string{target}
	cfg.DataDir = t.TempDir()
	cfg.Instance.ID = "target-" + target
	cfg.Server.HTTPListenAddress = "127.0.0.1"
	cfg.Server.HTTPListenPort = 0
	cfg.Server.GRPCListenAddress = "127.0.0.1"
	cfg.Server.GRPCListenPort = 0
	cfg.Server.ServerGracefulShutdownTimeout = time.Second
	cfg.MemberlistKV.TCPTransport.BindAddrs = []string{"127.0.0.1"}
	cfg.MemberlistKV.TCPTransport.BindPort = 0
	cfg.Distributor.OTLPGRPCListenAddress = "127.0.0.1:0"
	cfg.Distributor.OTLPHTTPListenAddress = "127.0.0.1:0"
	cfg.Ingester.Metrics.Ring.HeartbeatPeriod = time.Second
	return cfg
}

// startTarget starts a process with cfg until the test ends; the services
// live as long as the context given to Start.
func startTarget(t *testing.T, cfg Config) *Canopy {
	t.Helper()
	logger := level.NewFilter(log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr)), level.AllowWarn())
	c, err := New(cfg, logger)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { require.NoError(t, c.Stop()) })
	return c
}

// targetHelp is the help text of -target.
func targetHelp(t *testing.T) string {
	var cfg Config
	fs := flag.NewFlagSet("canopy", flag.PanicOnError)
	cfg.RegisterFlags(fs)
	return fs.Lookup("target").Usage
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", u, b)
	return string(b)
}

// routed reports whether a component's handler answered (the router's own
// 404 says "404 page not found"; a component's 404 says what it did not
// find).
func routed(t *testing.T, method, u string) bool {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(""))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "404 page not found")
}

func status(t *testing.T, method, u string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(""))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestAdminPathsDefaults: the admin and debug paths are open in the single
// process (-target=all), closed (403) in any other target unless
// -auth.admin-token-file is set, and then need that token.
func TestAdminPathsDefaults(t *testing.T) {
	tokenFile := t.TempDir() + "/token"
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cr3t\n"), 0o600))
	for name, tc := range map[string]struct {
		target, tokenFile, auth string
		code                    int
	}{
		"all, no token":            {target: All, code: http.StatusOK},
		"ingester, no token":       {target: Ingester, code: http.StatusForbidden},
		"ingester, token missing":  {target: Ingester, tokenFile: tokenFile, code: http.StatusUnauthorized},
		"ingester, token sent":     {target: Ingester, tokenFile: tokenFile, auth: "Bearer s3cr3t", code: http.StatusOK},
		"all, token set, not sent": {target: All, tokenFile: tokenFile, code: http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := targetTestConfig(t, tc.target)
			cfg.AdminTokenFile = tc.tokenFile
			c := startTarget(t, cfg)
			base := "http://" + c.Server.HTTPListenAddr().String()
			for _, path := range []string{"/config", "/metrics", "/debug/pprof/"} {
				req, err := http.NewRequest(http.MethodGet, base+path, nil)
				require.NoError(t, err)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, tc.code, resp.StatusCode, path)
			}
			ready := status(t, http.MethodGet, base+"/ready")
			require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, ready, "/ready is never guarded")
		})
	}
}
