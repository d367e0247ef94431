package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRemediationCommands(t *testing.T) {
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Scope-OrgID"))
		switch {
		case r.URL.Path == "/remediation/v1/approvals":
			_, _ = io.WriteString(w, `{"status":"success","data":[{"id":"ab12","tenant":"team-a","playbook":"restart","step":1,"action":"restart","target":"k8s:prod/shop/Deployment/checkout","expires":"2026-12-02T10:00:00Z"}]}`)
		case r.URL.Path == "/remediation/v1/approvals/ab12/approve":
			_, _ = io.WriteString(w, `{"status":"success"}`)
		case r.URL.Path == "/remediation/v1/audit":
			_, _ = io.WriteString(w, `{"status":"success","data":[{"time":"2026-12-02T09:00:00Z","alert":"Stuck","fingerprint":"f1","decision":"approval_pending","playbook":"restart","step":1}]}`)
		default:
			http.Error(w, "no such pending approval", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	var out strings.Builder
	base := []string{"-address", srv.URL, "-tenant", "team-a", "remediation"}
	require.NoError(t, run(append(base, "pending"), &out))
	require.Contains(t, out.String(), "ab12")
	require.Contains(t, out.String(), "k8s:prod/shop/Deployment/checkout")
	out.Reset()
	require.NoError(t, run(append(base, "approve", "ab12"), &out))
	require.Equal(t, "ab12: approved\n", out.String())
	err := run(append(base, "deny", "zz"), &out)
	require.ErrorContains(t, err, "HTTP 404: no such pending approval")
	out.Reset()
	require.NoError(t, run(append(base, "audit", "-fingerprint", "f1", "-limit", "5"), &out))
	require.Contains(t, out.String(), "approval_pending")
	require.Equal(t, []string{
		"GET /remediation/v1/approvals team-a",
		"POST /remediation/v1/approvals/ab12/approve team-a",
		"POST /remediation/v1/approvals/zz/deny team-a",
		"GET /remediation/v1/audit?fingerprint=f1&limit=5 team-a",
	}, calls)
	require.ErrorContains(t, run([]string{"remediation"}, &out), "usage")
	require.ErrorContains(t, run([]string{"remediation", "approve"}, &out), "needs an approval id")
}
