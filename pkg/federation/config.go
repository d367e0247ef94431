package federation

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// Config is the federator's configuration: the `federation` section of
// the config file.
type Config struct {
	Children []ChildConfig `yaml:"children"`
	// ReplicaLabels tell HA replicas apart: children whose external
	// labels differ only in these hold the same data.
	ReplicaLabels []string `yaml:"replica_labels"`
	// PartialResponse is what a query does when a child fails: "abort"
	// (fail, naming the child) or "warn" (answer from the others, with a
	// warning naming it). A request's partial_response parameter
	// overrides it; rules always abort.
	PartialResponse string `yaml:"partial_response"`
	// TenantPartialResponse overrides PartialResponse per tenant.
	TenantPartialResponse map[string]string `yaml:"tenant_partial_response"`
	// DefaultTimeout bounds a child's answer when its own timeout is 0.
	DefaultTimeout time.Duration `yaml:"default_timeout"`
	// ReloadInterval is how often the config file is read again for
	// children added or removed.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// DisablePushdown makes the federator fetch series and compute every
	// query itself, as a series-fetching federator does: for comparison
	// and diagnosis, never faster.
	DisablePushdown bool `yaml:"disable_pushdown"`
	// MaxFetchedLogLines bounds the log lines a LogQL query that cannot
	// be pushed to the children whole fetches from them.
	MaxFetchedLogLines int `yaml:"max_fetched_log_lines"`
}

// ChildConfig is one child: a Canopy cluster's query-frontend, another
// federator, or any endpoint of the Prometheus HTTP API.
type ChildConfig struct {
	Name string `yaml:"name"`
	// URL is the root of the child's Prometheus HTTP API: /api/v1/query is
	// appended to it.
	URL string `yaml:"url"`
	// ExternalLabels are the labels the child's data has without storing
	// them (its cluster, region, ...): added to its answers, matched
	// against a query's selectors to decide whether to ask it.
	ExternalLabels map[string]string `yaml:"external_labels"`
	// TempoURL is the root of the child's Tempo HTTP API, asked for
	// traces by ID (empty: for a URL ending in /prometheus, /tempo beside
	// it, as a Canopy cluster serves it; else the child has no traces).
	TempoURL string `yaml:"tempo_url"`
	// LokiURL is the root of the child's Loki HTTP API (/loki/api/v1/query
	// is appended to it; empty: for a URL ending in /prometheus, the host
	// root, as a Canopy cluster serves it; else the child has no logs).
	LokiURL string `yaml:"loki_url"`
	// Tenant is sent as X-Scope-OrgID (empty: the request's own tenant).
	Tenant  string        `yaml:"tenant"`
	Timeout time.Duration `yaml:"timeout"`
	// HTTP client settings as in Prometheus's scrape configs: tls_config,
	// basic_auth, authorization, oauth2, proxy_url, ...
	HTTPClientConfig commoncfg.HTTPClientConfig `yaml:",inline"`
}

// RegisterFlags registers the flags of the settings that have them.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.PartialResponse, "federation.partial-response", "abort", "What a federated query does when a child fails: abort (fail, naming the child) or warn (answer from the others with a warning naming it). A request's partial_response parameter overrides it; rules always abort.")
	f.DurationVar(&c.DefaultTimeout, "federation.child-timeout", 30*time.Second, "How long the federator waits for a child that sets no timeout of its own.")
	f.IntVar(&c.MaxFetchedLogLines, "federation.max-fetched-log-lines", 200_000, "The most log lines a federated LogQL query that the children cannot compute whole (an aggregation that does not decompose) fetches from them; above it the query fails, naming this flag.")
	f.DurationVar(&c.ReloadInterval, "federation.reload-interval", 10*time.Second, "How often the federator reads its config file again for children added or removed (0: never; POST /-/reload always does).")
}

// Validate checks c.
func (c *Config) Validate() error {
	if c.PartialResponse != "abort" && c.PartialResponse != "warn" {
		return fmt.Errorf("federation.partial_response: %q is neither abort nor warn", c.PartialResponse)
	}
	for tenant, v := range c.TenantPartialResponse {
		if v != "abort" && v != "warn" {
			return fmt.Errorf("federation.tenant_partial_response %q: %q is neither abort nor warn", tenant, v)
		}
	}
	seen := map[string]bool{}
	groups := map[string]string{}
	for i := range c.Children {
		ch := &c.Children[i]
		if ch.Name == "" {
			return fmt.Errorf("federation.children[%d]: name is empty", i)
		}
		if seen[ch.Name] {
			return fmt.Errorf("federation.children: %q is named twice", ch.Name)
		}
		seen[ch.Name] = true
		u, err := url.Parse(ch.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("federation.children %q: url %q is not an http(s) URL", ch.Name, ch.URL)
		}
		for key, v := range map[string]string{"tempo_url": ch.TempoURL, "loki_url": ch.LokiURL} {
			if v == "" {
				continue
			}
			if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("federation.children %q: %s %q is not an http(s) URL", ch.Name, key, v)
			}
		}
		for k := range ch.ExternalLabels {
			if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
				return fmt.Errorf("federation.children %q: external label %q is not a valid label name", ch.Name, k)
			}
		}
		if ch.Timeout < 0 {
			return fmt.Errorf("federation.children %q: timeout %s is negative", ch.Name, ch.Timeout)
		}
		if err := ch.HTTPClientConfig.Validate(); err != nil {
			return fmt.Errorf("federation.children %q: %w", ch.Name, err)
		}
		// Two children with the same external labels would answer with
		// the same series: only HA replicas may, told apart by a replica
		// label.
		key := labels.FromMap(c.groupLabels(ch)).String()
		if other, ok := groups[key]; ok && !c.hasReplicaLabel(ch) {
			return fmt.Errorf("federation.children %q and %q have the same external labels %s: give each its own (cluster, region, ...), or tell HA replicas apart by a label in replica_labels", other, ch.Name, key)
		}
		groups[key] = ch.Name
	}
	if c.MaxFetchedLogLines < 0 {
		return fmt.Errorf("federation.max_fetched_log_lines: %d is negative", c.MaxFetchedLogLines)
	}
	if len(c.Children) == 0 {
		return errors.New("federation.children: none configured")
	}
	return nil
}

// groupLabels are a child's external labels without the replica labels.
func (c *Config) groupLabels(ch *ChildConfig) map[string]string {
	out := map[string]string{}
	for k, v := range ch.ExternalLabels {
		if !slices.Contains(c.ReplicaLabels, k) {
			out[k] = v
		}
	}
	return out
}

func (c *Config) hasReplicaLabel(ch *ChildConfig) bool {
	for _, l := range c.ReplicaLabels {
		if _, ok := ch.ExternalLabels[l]; ok {
			return true
		}
	}
	return false
}
