package ruler

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/canopy-observability/canopy/pkg/rpc"
	"github.com/canopy-observability/canopy/pkg/util/ringconfig"
)

// Config is the ruler's configuration (the `ruler` section).
type Config struct {
	// AlertmanagerURLs are where alerts go: comma-separated http(s) URLs
	// of Alertmanagers (their API root, /api/v2/alerts is appended), or
	// dns+http://name:port/prefix to send to every address name resolves
	// to, re-resolved every 30s.
	AlertmanagerURLs string `yaml:"alertmanager_url"`
	// EvaluationInterval is a group's interval when it sets none.
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// PollInterval is how often the rule groups are read from the bucket.
	PollInterval time.Duration `yaml:"poll_interval"`
	// QueryFrontendURL is where rules query (a query-frontend's root,
	// /prometheus/api/v1/query is appended); empty: the process's own
	// query-frontend or querier.
	QueryFrontendURL string `yaml:"query_frontend_url"`
	// TenantLabel is the label each alert gets with its tenant, so that
	// Alertmanager and the remediator know whose alert it is ("": none).
	TenantLabel string `yaml:"tenant_label"`
	// ExternalURL is the URL alerts link to (their generatorURL).
	ExternalURL string `yaml:"external_url"`
	// ForGracePeriod, OutageTolerance and ResendDelay are Prometheus's
	// rule manager settings of the same names.
	ForGracePeriod  time.Duration `yaml:"for_grace_period"`
	OutageTolerance time.Duration `yaml:"for_outage_tolerance"`
	ResendDelay     time.Duration `yaml:"resend_delay"`
	// Ring shards the rule groups over the rulers: each group is
	// evaluated by the one ruler owning its hash.
	Ring ringconfig.Config `yaml:"ring"`
	// Client is how queriers ask rulers for their rule state.
	Client rpc.ClientConfig `yaml:"client"`
}

// RegisterFlags registers the ruler's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.AlertmanagerURLs, "ruler.alertmanager-url", "", "Comma-separated Alertmanager URLs the ruler sends alerts to (http://am:9093); dns+http://name:9093 sends to every address the name resolves to.")
	f.DurationVar(&c.EvaluationInterval, "ruler.evaluation-interval", time.Minute, "How often a rule group is evaluated when it sets no interval.")
	f.DurationVar(&c.PollInterval, "ruler.poll-interval", time.Minute, "How often the ruler reads the rule groups from the bucket (a change through the config API of this process applies at once).")
	f.StringVar(&c.QueryFrontendURL, "ruler.query-frontend-url", "", "Where rules query: a query-frontend's root URL (empty: this process's query-frontend or querier).")
	f.StringVar(&c.TenantLabel, "ruler.tenant-label", "tenant", "The label every alert gets with its tenant (empty: none).")
	f.StringVar(&c.ExternalURL, "ruler.external-url", "", "The URL alerts link back to (their generatorURL).")
	f.DurationVar(&c.ForGracePeriod, "ruler.for-grace-period", 10*time.Minute, "Minimum 'for' duration left, after a restart restores it, before an alert fires.")
	f.DurationVar(&c.OutageTolerance, "ruler.for-outage-tolerance", time.Hour, "How long the ruler may have been down for a 'for' state to be restored.")
	f.DurationVar(&c.ResendDelay, "ruler.resend-delay", time.Minute, "How long to wait before sending a firing alert to Alertmanager again.")
	c.Ring.RegisterFlags("ruler.", f)
	c.Client.RegisterFlagsWithPrefix("ruler.client", f)
}

// Validate checks c.
func (c *Config) Validate() error {
	for _, u := range c.alertmanagers() {
		if _, err := parseAlertmanagerURL(u); err != nil {
			return err
		}
	}
	if c.QueryFrontendURL != "" {
		if u, err := url.Parse(c.QueryFrontendURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("ruler.query-frontend-url %q is not an http(s) URL", c.QueryFrontendURL)
		}
	}
	if err := c.Ring.Validate(); err != nil {
		return fmt.Errorf("ruler ring: %w", err)
	}
	if err := c.Client.Validate("ruler.client"); err != nil {
		return err
	}
	if c.EvaluationInterval <= 0 || c.PollInterval <= 0 {
		return errors.New("ruler.evaluation-interval and ruler.poll-interval must be positive")
	}
	return nil
}

func (c *Config) alertmanagers() []string {
	var out []string
	for _, u := range strings.Split(c.AlertmanagerURLs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// alertmanagerURL is one -ruler.alertmanager-url.
type alertmanagerURL struct {
	dns bool // resolve the host's name to every address
	*url.URL
}

func parseAlertmanagerURL(s string) (alertmanagerURL, error) {
	dns := false
	if rest, ok := strings.CutPrefix(s, "dns+"); ok {
		dns, s = true, rest
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return alertmanagerURL{}, fmt.Errorf("ruler.alertmanager-url %q is not an http(s) URL (or dns+http://name:port)", s)
	}
	if dns && u.Port() == "" {
		return alertmanagerURL{}, fmt.Errorf("ruler.alertmanager-url %q: a dns+ URL needs a port", s)
	}
	return alertmanagerURL{dns: dns, URL: u}, nil
}
