package remediator

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// Paths of the remediator's API.
const (
	PathWebhook   = "/remediation/v1/alertmanager"
	PathAudit     = "/remediation/v1/audit"
	PathApprovals = "/remediation/v1/approvals"
	PathReload    = "/remediation/v1/reload"
)

// WebhookHandler receives Alertmanager's webhook: authenticated (bearer
// token or basic auth, when configured), decoded and checked, then taken
// on; 200 once the notification is recorded, before its actions run.
func (r *Remediator) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.authenticate(req); err != nil {
			r.metrics.webhooks.WithLabelValues("unauthorized").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="canopy-remediator"`)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		lim := DefaultLimits
		lim.MaxBytes = r.cfg.MaxPayloadBytes
		p, err := Decode(req.Body, lim)
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ErrTooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			r.metrics.webhooks.WithLabelValues("invalid").Inc()
			http.Error(w, err.Error(), code)
			return
		}
		if err := r.Handle(p); err != nil {
			r.metrics.webhooks.WithLabelValues("error").Inc()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		r.metrics.webhooks.WithLabelValues("accepted").Inc()
		writeJSON(w, map[string]any{"status": "success", "alerts": len(p.Alerts)})
	})
}

// authenticate checks the credentials Alertmanager's http_config sends.
// TLS client certificates are checked by the server's TLS settings.
func (r *Remediator) authenticate(req *http.Request) error {
	if r.cfg.BearerTokenFile == "" && r.cfg.BasicAuthFile == "" {
		return nil
	}
	if f := r.cfg.BearerTokenFile; f != "" {
		want, err := readSecret(f)
		if err != nil {
			return err
		}
		if got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			return nil
		}
	}
	if f := r.cfg.BasicAuthFile; f != "" {
		want, err := readSecret(f)
		if err != nil {
			return err
		}
		if u, p, ok := req.BasicAuth(); ok && subtle.ConstantTimeCompare([]byte(u+":"+p), []byte(want)) == 1 {
			return nil
		}
	}
	return errors.New("the webhook needs the remediator's credentials (-remediator.bearer-token-file or -remediator.basic-auth-file)")
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading a remediator credential file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// APIHandler serves the tenant's audit trail and approvals, and the
// playbooks' reload; the tenant must be in the request context.
//
//	GET  /remediation/v1/audit?fingerprint=&limit=   the audit records (JSON)
//	GET  /remediation/v1/approvals                   the pending approvals
//	POST /remediation/v1/approvals/{id}/approve      approve one
//	POST /remediation/v1/approvals/{id}/deny         deny one
//	POST /remediation/v1/reload                      read the playbooks again
func (r *Remediator) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathAudit, func(w http.ResponseWriter, req *http.Request) {
		id, ok := tenantOf(w, req)
		if !ok {
			return
		}
		limit, _ := strconv.Atoi(req.URL.Query().Get("limit"))
		recs := r.Audit(id, req.URL.Query().Get("fingerprint"), limit)
		if recs == nil {
			recs = []Record{}
		}
		writeJSON(w, map[string]any{"status": "success", "data": recs})
	})
	mux.HandleFunc("GET "+PathApprovals, func(w http.ResponseWriter, req *http.Request) {
		id, ok := tenantOf(w, req)
		if !ok {
			return
		}
		pending := r.Pending(id)
		if pending == nil {
			pending = []*approval{}
		}
		writeJSON(w, map[string]any{"status": "success", "data": pending})
	})
	decide := func(approve bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			id, ok := tenantOf(w, req)
			if !ok {
				return
			}
			if err := r.Approve(id, req.PathValue("id"), approve); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			writeJSON(w, map[string]any{"status": "success"})
		}
	}
	mux.HandleFunc("POST "+PathApprovals+"/{id}/approve", decide(true))
	mux.HandleFunc("POST "+PathApprovals+"/{id}/deny", decide(false))
	mux.HandleFunc(PathApprovals+"/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such approval action: POST "+PathApprovals+"/{id}/approve or /deny", http.StatusNotFound)
	})
	mux.HandleFunc("POST "+PathReload, func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Reload(); err != nil {
			http.Error(w, "reading the playbooks: "+err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]any{"status": "success", "playbooks": len(r.playbooks.Load().Playbooks)})
	})
	return mux
}

func tenantOf(w http.ResponseWriter, req *http.Request) (string, bool) {
	id, err := tenant.ID(req.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return "", false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
