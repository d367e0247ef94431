// Package ruler keeps tenants' Prometheus-format rule groups in the bucket
// and serves the Mimir-compatible config API that Grafana's rule editor and
// mimirtool speak (configapi.go).
package ruler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/thanos-io/objstore"
	"go.yaml.in/yaml/v3"
)

// Store keeps rule groups in the bucket, one object per group:
// <tenant>/rules/<namespace>/<group>, both names path-escaped, the object
// the group's YAML as uploaded (after validation). It is safe for
// concurrent use.
type Store struct {
	bkt objstore.Bucket
}

// NewStore returns a Store over bkt.
func NewStore(bkt objstore.Bucket) *Store { return &Store{bkt: bkt} }

// ErrGroupNotFound is what Get and Delete answer for a group that is not
// stored.
var ErrGroupNotFound = errors.New("group does not exist")

func rulesDir(tenant string) string { return tenant + "/rules/" }

func namespaceDir(tenant, namespace string) string {
	return rulesDir(tenant) + url.PathEscape(namespace) + "/"
}

func groupKey(tenant, namespace, group string) string {
	return namespaceDir(tenant, namespace) + url.PathEscape(group)
}

// Set stores (or replaces) one group of a namespace.
func (s *Store) Set(ctx context.Context, tenant, namespace string, g rulefmt.RuleGroup) error {
	b, err := yaml.Marshal(g)
	if err != nil {
		return err
	}
	return s.bkt.Upload(ctx, groupKey(tenant, namespace, g.Name), bytes.NewReader(b))
}

// Get returns one group.
func (s *Store) Get(ctx context.Context, tenant, namespace, group string) (rulefmt.RuleGroup, error) {
	var g rulefmt.RuleGroup
	r, err := s.bkt.Get(ctx, groupKey(tenant, namespace, group))
	if s.bkt.IsObjNotFoundErr(err) {
		return g, ErrGroupNotFound
	}
	if err != nil {
		return g, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return g, err
	}
	if err := yaml.Unmarshal(b, &g); err != nil {
		return g, fmt.Errorf("rule group %s/%s in the bucket: %w", namespace, group, err)
	}
	return g, nil
}

// Delete removes one group.
func (s *Store) Delete(ctx context.Context, tenant, namespace, group string) error {
	err := s.bkt.Delete(ctx, groupKey(tenant, namespace, group))
	if s.bkt.IsObjNotFoundErr(err) {
		return ErrGroupNotFound
	}
	return err
}

// DeleteNamespace removes every group of a namespace; it reports
// ErrGroupNotFound when there was none.
func (s *Store) DeleteNamespace(ctx context.Context, tenant, namespace string) error {
	groups, err := s.List(ctx, tenant, namespace)
	if err != nil {
		return err
	}
	if len(groups[namespace]) == 0 {
		return ErrGroupNotFound
	}
	for _, g := range groups[namespace] {
		if err := s.Delete(ctx, tenant, namespace, g.Name); err != nil && !errors.Is(err, ErrGroupNotFound) {
			return err
		}
	}
	return nil
}

// List returns a tenant's groups by namespace: every namespace's, or only
// namespace's when it is not empty. Groups are in name order.
func (s *Store) List(ctx context.Context, tenant, namespace string) (map[string][]rulefmt.RuleGroup, error) {
	dir := rulesDir(tenant)
	if namespace != "" {
		dir = namespaceDir(tenant, namespace)
	}
	var keys []string
	err := s.bkt.Iter(ctx, dir, func(key string) error {
		if !strings.HasSuffix(key, "/") {
			keys = append(keys, key)
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return nil, err
	}
	out := map[string][]rulefmt.RuleGroup{}
	for _, key := range keys {
		ns, group, ok := strings.Cut(strings.TrimPrefix(key, rulesDir(tenant)), "/")
		if !ok || strings.Contains(group, "/") {
			continue // not a group this store wrote
		}
		nsName, err1 := url.PathUnescape(ns)
		groupName, err2 := url.PathUnescape(group)
		if err1 != nil || err2 != nil {
			continue
		}
		g, err := s.Get(ctx, tenant, nsName, groupName)
		if errors.Is(err, ErrGroupNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out[nsName] = append(out[nsName], g)
	}
	for _, gs := range out {
		slices.SortFunc(gs, func(a, b rulefmt.RuleGroup) int { return strings.Compare(a.Name, b.Name) })
	}
	return out, nil
}
