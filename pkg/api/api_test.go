package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

func TestRegisterServesAndLists(t *testing.T) {
	router := mux.NewRouter()
	a := New(router, tenant.Resolver{Enabled: true})
	echoTenant := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := user.ExtractOrgID(r.Context())
		require.NoError(t, err)
		_, _ = io.WriteString(w, id)
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	a.RegisterDistributor(ok, ok)
	a.RegisterPrometheusAPI("querier", echoTenant)
	a.RegisterRing("ingester", "querier", ok)

	for _, tc := range []struct {
		method, path, tenant string
		code                 int
		body                 string
	}{
		{http.MethodPost, PathPush, "", http.StatusOK, "ok"},
		{http.MethodGet, PathPush, "", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, PrefixPrometheusV1 + "query", "team-a", http.StatusOK, "team-a"},
		{http.MethodGet, PrefixPrometheusV1 + "labels", "", http.StatusUnauthorized, "X-Scope-OrgID"},
		{http.MethodGet, PrefixRing + "ingester", "", http.StatusOK, "ok"},
		{http.MethodGet, PrefixRing + "compactor", "", http.StatusNotFound, ""},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.tenant != "" {
			req.Header.Set(tenant.Header, tc.tenant)
		}
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		require.Equal(t, tc.code, rec.Code, "%s %s", tc.method, tc.path)
		require.Contains(t, rec.Body.String(), tc.body, "%s %s", tc.method, tc.path)
	}

	var paths []string
	for _, r := range a.Routes() {
		paths = append(paths, r.Path)
	}
	require.Equal(t, []string{PathPush, PathOTLPMetrics, PrefixPrometheusV1, PrefixRing + "ingester"}, paths)
}

// TestLokiDeleteIsTheCompactors: the deletion path under the Loki API's
// prefix goes to its own handler, whichever registers first.
func TestLokiDeleteIsTheCompactors(t *testing.T) {
	for _, deleteFirst := range []bool{false, true} {
		router := mux.NewRouter()
		a := New(router, tenant.Resolver{})
		say := func(s string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, s) })
		}
		if deleteFirst {
			a.RegisterLokiDelete(say("delete"))
		}
		a.RegisterLokiAPI("querier", say("query"))
		if !deleteFirst {
			a.RegisterLokiDelete(say("delete"))
		}
		for path, want := range map[string]string{PathLokiDelete: "delete", PrefixLokiV1 + "query_range": "query"} {
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			require.Equal(t, want, rec.Body.String(), "%s (delete registered first: %v)", path, deleteFirst)
		}
	}
}
