package frontend

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/querier"
)

// heldQueryable holds every Select until the query's context ends, and
// records how each one ended: the store read that never finishes.
type heldQueryable struct {
	storage.Queryable
	started chan struct{}
	ended   chan error
}

func (h heldQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := h.Queryable.Querier(mint, maxt)
	return heldQuerier{Querier: q, h: h}, err
}

type heldQuerier struct {
	storage.Querier
	h heldQueryable
}

func (q heldQuerier) Select(ctx context.Context, _ bool, _ *storage.SelectHints, _ ...*labels.Matcher) storage.SeriesSet {
	q.h.started <- struct{}{}
	<-ctx.Done()
	q.h.ended <- ctx.Err()
	return storage.ErrSeriesSet(ctx.Err())
}

// heldDownstream is the querier's real API and engine over a heldQueryable.
func heldDownstream(t *testing.T, timeout time.Duration) (HandlerDownstream, heldQueryable) {
	st := teststorage.New(t)
	t.Cleanup(func() { _ = st.Close() })
	held := heldQueryable{Queryable: st, started: make(chan struct{}, 1000), ended: make(chan error, 1000)}
	var qcfg querier.Config
	qcfg.RegisterFlags(flag.NewFlagSet("", flag.PanicOnError))
	qcfg.Timeout = timeout
	engine := querier.NewEngine(qcfg, nil, prometheus.NewRegistry())
	lim := defaultLimits()
	api := querier.NewAPI(qcfg, engine, querier.NewLimitedQueryable(held, fixedLimits{lim}), st, nil, nil, nil, prometheus.NewRegistry(), prometheus.NewRegistry())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(user.InjectOrgID(r.Context(), r.Header.Get("X-Scope-OrgID"))))
	})
	return HandlerDownstream{Handler: func() http.Handler { return h }}, held
}

// requireEveryReadEnds waits until each of the n held reads has ended with
// want, and checks no other read started.
func requireEveryReadEnds(t *testing.T, held heldQueryable, n int, want error) {
	t.Helper()
	for range n {
		select {
		case err := <-held.ended:
			require.ErrorIs(t, err, want)
		case <-time.After(20 * time.Second):
			require.FailNow(t, "a store read was still running 20 s after its query's context ended")
		}
	}
	require.Empty(t, held.started, "no read starts after the context ended")
}

// TestClientGoneStopsEveryPart: a range query split into 3 days and sharded
// 4 ways holds 12 store reads in the querier; when the client goes away,
// every one of them ends with the client's cancellation, through the
// frontend's split, shard, queue and fan-out, the querier's API, engine and
// limits, down to the store.
func TestClientGoneStopsEveryPart(t *testing.T) {
	down, held := heldDownstream(t, time.Minute)
	lim := defaultLimits()
	lim.QueryShardingTotalShards = 4
	cfg := testConfig()
	cfg.SplitInterval = 24 * time.Hour
	cfg.Parallelism = 16
	f := startFrontend(t, cfg, lim, down)

	form := url.Values{"query": {`sum by (job) (rate(x[5m]))`}, "start": {"0"}, "end": {"259199"}, "step": {"60"}}
	ctx, cancel := context.WithCancel(user.InjectOrgID(context.Background(), "t"))
	req := httptest.NewRequest(http.MethodPost, "/prometheus/api/v1/query_range", strings.NewReader(form.Encode())).WithContext(ctx)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan struct{})
	var answered atomic.Bool
	go func() {
		defer close(done)
		f.ServeHTTP(httptest.NewRecorder(), req)
		answered.Store(true)
	}()
	const parts = 3 * 4
	for range parts {
		select {
		case <-held.started:
		case <-time.After(20 * time.Second):
			require.FailNow(t, "the parts' store reads did not all start")
		}
	}
	require.False(t, answered.Load())
	cancel()
	requireEveryReadEnds(t, held, parts, context.Canceled)
	<-done
}

// TestQueryTimeoutStopsTheStoreRead: the querier's -querier.timeout ends a
// query whose store read never finishes, with the timeout's error.
func TestQueryTimeoutStopsTheStoreRead(t *testing.T) {
	down, held := heldDownstream(t, 200*time.Millisecond)
	f := startFrontend(t, testConfig(), defaultLimits(), down)
	rec := call(f, "t", "query", url.Values{"query": {`x`}, "time": {"100"}})
	<-held.started
	requireEveryReadEnds(t, held, 1, context.DeadlineExceeded)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, "%s", rec.Body)
	require.Contains(t, rec.Body.String(), "timeout")
}
