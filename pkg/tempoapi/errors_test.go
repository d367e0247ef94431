package tempoapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// everyEndpoint is a request to each endpoint that reaches the Backend.
var everyEndpoint = []string{
	"traces/1", "v2/traces/1", "search", "search/tags", "v2/search/tags",
	"search/tag/x/values", "v2/search/tag/x/values",
	"metrics/query_range?q=%7B%7D+%7C+rate%28%29", "metrics/query?q=%7B%7D+%7C+rate%28%29",
}

func TestBackendErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantCode int
		wantBody string
	}{
		{name: "store failure", err: errors.New("reading block 01H: connection reset"), wantCode: 500, wantBody: "reading block 01H: connection reset"},
		{name: "bad query", err: fmt.Errorf("%w: parsing the query: unexpected }", ErrBadRequest), wantCode: 400, wantBody: "bad request: parsing the query: unexpected }"},
		{name: "canceled", err: context.Canceled, wantCode: 499, wantBody: "the request was canceled by the client"},
		{name: "deadline", err: fmt.Errorf("reading: %w", context.DeadlineExceeded), wantCode: 504, wantBody: "the query ran longer than -querier.traces.query-timeout allows: narrow the time range or the query, or raise the timeout"},
	} {
		for _, target := range everyEndpoint {
			t.Run(tc.name+"/"+target, func(t *testing.T) {
				f := newFake()
				f.err = tc.err
				r := getRaw(t, newTestAPI(t, testConfig(), f), PathPrefix+target)
				require.Equal(t, tc.wantCode, r.code)
				require.Equal(t, tc.wantBody, string(r.body))
				require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
			})
		}
	}
}

// TestQueryTimeout: a Backend that runs past -querier.traces.query-timeout
// sees its context end, and the answer is 504.
func TestQueryTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.QueryTimeout = time.Millisecond
	f := newFake()
	f.block = true
	for _, target := range everyEndpoint {
		r := getRaw(t, newTestAPI(t, cfg, f), PathPrefix+target)
		require.Equal(t, http.StatusGatewayTimeout, r.code, target)
	}
}

// TestClientGone: a request whose client went away is answered 499.
func TestClientGone(t *testing.T) {
	f := newFake()
	f.block = true
	h := newTestAPI(t, testConfig(), f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, PathPrefix+"search", nil).WithContext(ctx)
	req.Header.Set("X-Scope-OrgID", "team-a")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, statusClientClosedRequest, rec.Code)
}

// TestTenant: the tenant reaches the Backend; without the resolver the
// API answers 401 rather than guess one.
func TestTenant(t *testing.T) {
	f := newFake()
	r := get(t, newTestAPI(t, testConfig(), f), "search", nil)
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "team-a", f.tenant)

	// Behind the resolver, a request without X-Scope-OrgID is refused.
	rec := httptest.NewRecorder()
	newTestAPI(t, testConfig(), f).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathPrefix+"search", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)

	// Registered without it, every endpoint reaching the Backend is 401.
	a := NewHandler(testConfig(), f, nil)
	for _, target := range everyEndpoint {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathPrefix+target, nil))
		require.Equal(t, http.StatusUnauthorized, rec.Code, target)
		require.Contains(t, rec.Body.String(), "X-Scope-OrgID")
	}
	// Echo and buildinfo need no tenant.
	for _, target := range []string{"echo", "status/buildinfo"} {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathPrefix+target, nil))
		require.Equal(t, http.StatusOK, rec.Code, target)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	h := newTestAPI(t, testConfig(), newFake())
	for _, tc := range []struct {
		method, target string
		wantCode       int
	}{
		{method: http.MethodPost, target: "search", wantCode: http.StatusMethodNotAllowed},
		{method: http.MethodHead, target: "echo", wantCode: http.StatusOK},
		{method: http.MethodGet, target: "nothing", wantCode: http.StatusNotFound},
		{method: http.MethodGet, target: "traces/1/extra", wantCode: http.StatusNotFound},
	} {
		req := httptest.NewRequest(tc.method, PathPrefix+tc.target, nil)
		req.Header.Set("X-Scope-OrgID", "team-a")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, tc.wantCode, rec.Code, tc.method+" "+tc.target)
	}
}
