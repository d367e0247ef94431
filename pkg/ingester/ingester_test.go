package ingester

import (
	"context"
	"errors"
	"flag"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/ingester/client"
	"github.com/canopy-observability/canopy/pkg/ingester/metrics"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
	"github.com/canopy-observability/canopy/pkg/validation"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// dskit keeps one process-wide in-memory KV for the "inmemory" ring store.
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*mockKV).loop"),
		goleak.IgnoreAnyFunction("github.com/grafana/dskit/kv/consul.(*Client).cas"),
		goleak.IgnoreTopFunction("github.com/grafana/dskit/kv/consul.(*Client).WatchKey"),
	)
}

// tree lists the files and directories under dir, relative, directories
// with a trailing slash.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	}))
	sort.Strings(out)
	return out
}

func mkfiles(t *testing.T, dir string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			require.NoError(t, os.MkdirAll(full, 0o750))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o750))
		require.NoError(t, os.WriteFile(full, []byte(p), 0o640))
	}
}

func TestMigrateLayout(t *testing.T) {
	for name, tc := range map[string]struct {
		before  []string
		after   []string
		wantErr string
	}{
		"fresh directory": {
			before: nil,
			after:  []string{"layout-version"},
		},
		"layout 1: tenants at the top, one of them named metrics": {
			before: []string{"tokens", "team-a/wal/00000000", "metrics/wal/00000000", "anonymous/01ABC/meta.json"},
			after: []string{
				"layout-version", "metrics.tokens", "metrics/",
				"metrics/anonymous/", "metrics/anonymous/01ABC/", "metrics/anonymous/01ABC/meta.json",
				"metrics/metrics/", "metrics/metrics/wal/", "metrics/metrics/wal/00000000",
				"metrics/team-a/", "metrics/team-a/wal/", "metrics/team-a/wal/00000000",
			},
		},
		"interrupted while moving tenants": {
			before: []string{"metrics.tokens", "metrics.migrating/team-a/wal/1", "team-b/wal/1"},
			after: []string{
				"layout-version", "metrics.tokens", "metrics/",
				"metrics/team-a/", "metrics/team-a/wal/", "metrics/team-a/wal/1",
				"metrics/team-b/", "metrics/team-b/wal/", "metrics/team-b/wal/1",
			},
		},
		"interrupted before the final rename": {
			before: []string{"layout-version", "metrics.migrating/team-a/wal/1"},
			after:  []string{"layout-version", "metrics/", "metrics/team-a/", "metrics/team-a/wal/", "metrics/team-a/wal/1"},
		},
		"layout 2 is left alone": {
			before: []string{"layout-version", "metrics.tokens", "metrics/team-a/wal/1"},
			after:  []string{"layout-version", "metrics.tokens", "metrics/", "metrics/team-a/", "metrics/team-a/wal/", "metrics/team-a/wal/1"},
		},
		"unknown files stay": {
			before: []string{"README.txt", "lost+found/x", "team-a/wal/1"},
			after: []string{
				"README.txt", "layout-version", "lost+found/", "lost+found/x", "metrics/",
				"metrics/team-a/", "metrics/team-a/wal/", "metrics/team-a/wal/1",
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ingester")
			mkfiles(t, dir, tc.before...)
			if strings.Contains(name, "layout 2") || strings.Contains(name, "before the final rename") {
				require.NoError(t, os.WriteFile(filepath.Join(dir, layoutFile), []byte("2\n"), 0o640))
			}
			require.NoError(t, migrateLayout(dir, log.NewNopLogger()))
			got := tree(t, dir)
			require.Equal(t, tc.after, got)
			// Idempotent: a second start changes nothing.
			require.NoError(t, migrateLayout(dir, log.NewNopLogger()))
			require.Equal(t, got, tree(t, dir))
		})
	}

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, layoutFile), []byte("3\n"), 0o640))
	require.ErrorContains(t, migrateLayout(dir, log.NewNopLogger()), `layout "3"`)
}

func metricsUnit(t *testing.T, cfg metrics.Config, dir, tokens string) *metrics.Ingester {
	t.Helper()
	var limits validation.Limits
	limits.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	m, err := metrics.New(cfg, dir, tokens, ringconfig.Instance{ID: "ingester-1", Addr: "127.0.0.1", Port: 9095},
		validation.NewStaticOverrides(limits, nil), nil, nil, log.NewNopLogger(), nil)
	require.NoError(t, err)
	return m
}

func testConfig(t *testing.T) Config {
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	cfg.Metrics.Ring.Store = ringconfig.StoreInMemory
	cfg.Metrics.Ring.HeartbeatPeriod = 100 * time.Millisecond
	cfg.Metrics.ShipInterval = 0
	require.NoError(t, cfg.Validate())
	return cfg
}

func push(t *testing.T, m *metrics.Ingester, tenant, name string, ts int64) {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", name), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: ts}},
	}}}
	req.Symbols = st.Symbols()
	_, err := m.Push(user.InjectOrgID(context.Background(), tenant), req)
	require.NoError(t, err)
}

func names(t *testing.T, m *metrics.Ingester, tenant string) []string {
	t.Helper()
	resp, err := m.LabelValues(user.InjectOrgID(context.Background(), tenant), &client.LabelsRequest{Start: math.MinInt64, End: math.MaxInt64, Name: "__name__"})
	require.NoError(t, err)
	return resp.Values
}

// TestUpgradeKeepsMetrics: an ingester directory written by a Canopy from
// before ingesters hosted several signals (tenants' TSDBs directly under
// <data-dir>/ingester) is moved once; the metrics unit then replays every
// tenant's WAL from <data-dir>/ingester/metrics/<tenant>.
func TestUpgradeKeepsMetrics(t *testing.T) {
	cfg := testConfig(t)
	dir := filepath.Join(t.TempDir(), "ingester")
	ts := time.Now().UnixMilli()

	old := metricsUnit(t, cfg.Metrics, dir, filepath.Join(dir, legacyTokens)) // layout 1
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), old))
	push(t, old, "team-a", "a_total", ts)
	push(t, old, "metrics", "m_total", ts) // a tenant named like the signal
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), old))

	m := metricsUnit(t, cfg.Metrics, Dir(dir, metrics.Signal), TokensFile(dir, metrics.Signal))
	ing := New(dir, []Unit{m}, log.NewNopLogger())
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), ing))
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), ing)) }()
	require.Equal(t, []string{"a_total"}, names(t, m, "team-a"))
	require.Equal(t, []string{"m_total"}, names(t, m, "metrics"))
	require.FileExists(t, filepath.Join(dir, "metrics", "team-a", "wal", "00000000"))
	require.NoFileExists(t, filepath.Join(dir, legacyTokens))
	require.Eventually(t, func() bool { return ing.CheckReady(context.Background()) == nil }, 10*time.Second, 20*time.Millisecond)

	// POST /ingester/flush reports each unit's part.
	rec := httptest.NewRecorder()
	ing.FlushHandler(rec, httptest.NewRequest(http.MethodPost, "/ingester/flush", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code, "shipping is off: the flush says the blocks stay local")
	require.Contains(t, rec.Body.String(), `"metrics":{"tenants":2,"shipped":0,"errors":["shipping is off`)
}

// failingUnit fails while running, as a unit whose ring lifecycler died.
type failingUnit struct {
	services.Service
	fail chan struct{}
}

func newFailingUnit() *failingUnit {
	u := &failingUnit{fail: make(chan struct{})}
	u.Service = services.NewBasicService(nil, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-u.fail:
			return errors.New("ring lifecycler failed")
		}
	}, nil)
	return u
}

func (*failingUnit) Signal() string                                 { return "test" }
func (*failingUnit) CheckReady(context.Context) error               { return nil }
func (*failingUnit) RingStatus() http.Handler                       { return http.NotFoundHandler() }
func (*failingUnit) FlushAndShip(context.Context) (int, int, error) { return 0, 0, nil }

// TestUnitFailureFailsIngester: a unit that fails takes the ingester (and
// so the process) down instead of leaving it running and ready.
func TestUnitFailureFailsIngester(t *testing.T) {
	u := newFailingUnit()
	ing := New(t.TempDir(), []Unit{u}, log.NewNopLogger())
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), ing))
	close(u.fail)
	err := ing.AwaitTerminated(context.Background())
	require.ErrorContains(t, err, "ring lifecycler failed")
	require.Error(t, ing.CheckReady(context.Background()))
}

func TestSignalsFlag(t *testing.T) {
	for name, tc := range map[string]struct {
		args    []string
		wantErr string
	}{
		"default": {args: nil},
		"metrics": {args: []string{"-ingester.signals=metrics"}},
		"both":    {args: []string{"-ingester.signals=metrics,logs"}},
		"all":     {args: []string{"-ingester.signals=metrics,logs,traces"}},
		"unknown": {args: []string{"-ingester.signals=metrics,profiles"}, wantErr: `unknown signal "profiles": known signals are metrics, logs, traces`},
		"empty":   {args: []string{"-ingester.signals="}, wantErr: "-ingester.signals is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			require.NoError(t, fs.Parse(tc.args))
			err := cfg.Validate()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.True(t, cfg.Hosts(metrics.Signal))
		})
	}
}
