package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAdminGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	for name, tc := range map[string]struct {
		guard AdminGuard
		path  string
		auth  string
		code  int
	}{
		"open: flush":                  {AdminGuard{Open: true}, PathIngesterFlush, "", http.StatusOK},
		"closed: flush":                {AdminGuard{}, PathIngesterFlush, "", http.StatusForbidden},
		"closed: pprof":                {AdminGuard{}, "/debug/pprof/heap", "", http.StatusForbidden},
		"closed: runtimeinfo":          {AdminGuard{}, PrefixPrometheusV1 + "status/runtimeinfo", "", http.StatusForbidden},
		"closed: queries still served": {AdminGuard{}, PrefixPrometheusV1 + "query", "", http.StatusOK},
		"closed: ready still served":   {AdminGuard{}, PathReady, "", http.StatusOK},
		"token: missing":               {AdminGuard{Token: "s3cr3t", Open: true}, "/metrics", "", http.StatusUnauthorized},
		"token: wrong":                 {AdminGuard{Token: "s3cr3t"}, "/config", "Bearer nope", http.StatusUnauthorized},
		"token: right":                 {AdminGuard{Token: "s3cr3t"}, PathCompactorRun, "Bearer s3cr3t", http.StatusOK},
		"token: buildinfo is open":     {AdminGuard{Token: "s3cr3t"}, PrefixPrometheusV1 + "status/buildinfo", "", http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			tc.guard.Wrap(ok).ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
		})
	}
}
