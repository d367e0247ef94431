package canopy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/canopy-observability/canopy/pkg/api"
	"github.com/canopy-observability/canopy/pkg/logpush"
	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/remediator"
	"github.com/canopy-observability/canopy/pkg/ruler"
	"github.com/canopy-observability/canopy/pkg/util/logging"
)

// initRemediator runs the remediator: Alertmanager's webhook at
// /remediation/v1/alertmanager, the playbooks of
// -remediator.playbooks-file, verifications through this process's query
// path, and the audit trail written into each tenant's logs.
func (c *Canopy) initRemediator() (services.Service, error) {
	cfg := c.cfg.Remediator
	r, err := remediator.New(cfg, remediator.Deps{
		Dir:        filepath.Join(c.cfg.DataDir, "remediator"),
		Query:      ruler.HTTPQuery(cfg.QueryFrontendURL, http.DefaultClient, c.localQueryPath()),
		LogQLQuery: ruler.LokiQuery(cfg.QueryFrontendURL, http.DefaultClient, c.localQueryPath()),
		Log:        c.remediationLog,
		Kube:       remediator.NewKube(cfg.Kubeconfig),
		Parser:     parser.NewParser(querier.ParserOptions(c.cfg.Querier)),
	}, logging.Slog(c.logger), c.reg)
	if err != nil {
		return nil, err
	}
	c.Remediator = r
	c.API.Register(api.Route{Path: remediator.PathWebhook, Methods: []string{http.MethodPost}, Component: "remediator", Help: "Alertmanager's webhook (version 4): runs the matching playbooks"}, r.WebhookHandler())
	h := r.APIHandler()
	c.API.Register(api.Route{Path: remediator.PathAudit, Methods: []string{http.MethodGet}, Component: "remediator", Tenant: true, Help: "the tenant's remediation audit trail (JSON; ?fingerprint=, ?limit=)"}, h)
	c.API.Register(api.Route{Path: remediator.PathApprovals, Methods: []string{http.MethodGet}, Component: "remediator", Tenant: true, Help: "the tenant's actions waiting for approval"}, h)
	c.API.Register(api.Route{Path: remediator.PathApprovals + "/", Prefix: true, Methods: []string{http.MethodPost}, Component: "remediator", Tenant: true, Help: "POST {id}/approve or {id}/deny"}, h)
	c.API.Register(api.Route{Path: remediator.PathReload, Methods: []string{http.MethodPost}, Component: "remediator", Help: "POST: read the playbooks file again"}, h)
	return r, nil
}

// remediationLog writes audit records as log lines of their tenant,
// streams {service_name="canopy-remediator", decision="…"}.
func (c *Canopy) remediationLog(ctx context.Context, tenant string, recs []remediator.Record) error {
	if c.LogsDistributor == nil {
		return errors.New("no logs distributor in this process")
	}
	byDecision := map[remediator.Decision]int{} // index in streams
	var streams []logpush.Stream
	for _, rec := range recs {
		line, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		i, ok := byDecision[rec.Decision]
		if !ok {
			i = len(streams)
			byDecision[rec.Decision] = i
			streams = append(streams, logpush.Stream{Labels: labels.FromStrings("service_name", "canopy-remediator", "decision", string(rec.Decision))})
		}
		streams[i].Entries = append(streams[i].Entries, logpush.Entry{Timestamp: rec.Time.UnixNano(), Line: string(line)})
	}
	_, err := c.LogsDistributor.Push(ctx, tenant, streams)
	return err
}
