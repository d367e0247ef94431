package api

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// adminPrefixes are the paths that change state, reveal the server
// (configuration, host, profiles) or list tenants: the admin and debug
// paths an admin credential protects.
var adminPrefixes = []string{
	PathIngesterFlush,
	PathCompactorRun,
	PathFederationReload,
	"/remediation/v1/reload",
	PathConfig,
	"/metrics",
	"/debug/",
	PrefixPrometheusV1 + "status/runtimeinfo",
	PrefixPrometheusV1 + "status/flags",
	PrefixPrometheusV1 + "status/config",
	PrefixPrometheusV1 + "status/tsdb",
	PrefixPrometheusV1 + "admin/",
}

// IsAdmin reports whether path is an admin or debug path.
func IsAdmin(path string) bool {
	for _, p := range adminPrefixes {
		if path == p || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// AdminGuard protects the admin and debug paths. With a Token, they need
// "Authorization: Bearer <token>" (401 otherwise); without one they are
// open when Open is set (the single-process mode) and refused with 403
// naming the flag otherwise. Every other path passes.
type AdminGuard struct {
	Token string
	Open  bool
}

// Wrap returns next behind the guard.
func (g AdminGuard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsAdmin(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case g.Token != "":
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(g.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="canopy admin"`)
				http.Error(w, r.URL.Path+" is an admin path: send Authorization: Bearer <the token in -auth.admin-token-file>", http.StatusUnauthorized)
				return
			}
		case !g.Open:
			http.Error(w, r.URL.Path+" is an admin path, closed in a process that is not -target=all: set -auth.admin-token-file to reach it with that token", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
