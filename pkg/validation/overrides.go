package validation

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/grafana/dskit/runtimeconfig"
	"gopkg.in/yaml.v3"
)

// RuntimeConfig is the content of the runtime overrides file:
//
//	overrides:
//	  team-a:
//	    ingestion_rate: 50000
//	    max_global_series_per_tenant: 200000
//
// Fields not given for a tenant keep the flag defaults.
type RuntimeConfig struct {
	Overrides map[string]*Limits `yaml:"overrides"`
}

// NewLoader returns a runtimeconfig loader that fills each tenant's limits from
// defaults before applying the file, and validates the result.
func NewLoader(defaults Limits) runtimeconfig.Loader {
	return func(r io.Reader) (interface{}, error) {
		var raw struct {
			Overrides map[string]yaml.Node `yaml:"overrides"`
		}
		body, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(body))
		dec.KnownFields(true)
		if err := dec.Decode(&raw); err != nil && err != io.EOF {
			return nil, fmt.Errorf("parsing runtime config: %w", err)
		}
		out := &RuntimeConfig{Overrides: make(map[string]*Limits, len(raw.Overrides))}
		for tenant, node := range raw.Overrides {
			l := defaults
			if err := decodeStrict(&node, &l); err != nil {
				return nil, fmt.Errorf("overrides of tenant %q: %w", tenant, err)
			}
			if err := l.Validate(); err != nil {
				return nil, fmt.Errorf("overrides of tenant %q: %w", tenant, err)
			}
			out.Overrides[tenant] = &l
		}
		return out, nil
	}
}

// TenantLimits returns the limits of one tenant. Implementations are safe for
// concurrent use.
type TenantLimits interface {
	ByTenant(tenant string) *Limits
}

// Overrides answers per-tenant limits: the runtime file's entry for the tenant
// or the defaults. Safe for concurrent use; the zero value is not usable.
type Overrides struct {
	defaults *Limits
	source   func() *RuntimeConfig
}

// NewOverrides returns Overrides reading from manager, which may be nil when no
// overrides file is configured.
func NewOverrides(defaults Limits, manager *runtimeconfig.Manager) *Overrides {
	o := &Overrides{defaults: &defaults}
	if manager != nil {
		o.source = func() *RuntimeConfig {
			c, _ := manager.GetConfig().(*RuntimeConfig)
			return c
		}
	}
	return o
}

// NewStaticOverrides returns Overrides with fixed per-tenant limits, for tests
// and tools.
func NewStaticOverrides(defaults Limits, perTenant map[string]*Limits) *Overrides {
	rc := &RuntimeConfig{Overrides: perTenant}
	return &Overrides{defaults: &defaults, source: func() *RuntimeConfig { return rc }}
}

// ByTenant returns the limits in force for tenant.
func (o *Overrides) ByTenant(tenant string) *Limits {
	if o.source != nil {
		if rc := o.source(); rc != nil {
			if l, ok := rc.Overrides[tenant]; ok && l != nil {
				return l
			}
		}
	}
	return o.defaults
}

// decodeStrict decodes node into v, rejecting fields v does not have (a typo
// in an overrides file must not silently fall back to the default).
func decodeStrict(node *yaml.Node, v interface{}) error {
	// Marshalled on its own, an alias would lose the anchor it refers to
	// (tenants sharing limits through an anchor): aliases are expanded.
	budget := maxOverrideNodes
	node, err := expandAliases(node, &budget)
	if err != nil {
		return err
	}
	b, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// maxOverrideNodes bounds the YAML nodes of one tenant's overrides once its
// aliases are expanded: aliases of aliases grow exponentially.
const maxOverrideNodes = 10_000

// expandAliases returns a copy of n with every alias replaced by what it
// refers to, counting the nodes against budget.
func expandAliases(n *yaml.Node, budget *int) (*yaml.Node, error) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return nil, errors.New("alias to nothing")
	}
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("more than %d YAML nodes once aliases are expanded", maxOverrideNodes)
	}
	out := *n
	out.Anchor = ""
	out.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		var err error
		if out.Content[i], err = expandAliases(c, budget); err != nil {
			return nil, err
		}
	}
	return &out, nil
}
