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
// <tenant>/<dir>/<namespace>/<group>, both names path-escaped, the object
// the group's YAML as uploaded (after validation); dir is "rules" for
// PromQL groups, "logql-rules" for LogQL ones. It is safe for concurrent
// use.
type Store struct {
	bkt objstore.Bucket
	dir string
}

// Directories of the rule stores.
const (
	PromQLDir = "rules"
	LogQLDir  = "logql-rules"
)

// NewStore returns the store of PromQL groups over bkt.
func NewStore(bkt objstore.Bucket) *Store { return NewStoreIn(bkt, PromQLDir) }

// NewStoreIn returns a Store of the groups under <tenant>/<dir>/.
func NewStoreIn(bkt objstore.Bucket, dir string) *Store { return &Store{bkt: bkt, dir: dir} }

// ErrGroupNotFound is what Get and Delete answer for a group that is not
// stored.
var ErrGroupNotFound = errors.New("group does not exist")

func (s *Store) rulesDir(tenant string) string { return tenant + "/" + s.dir + "/" }

func (s *Store) namespaceDir(tenant, namespace string) string {
	return s.rulesDir(tenant) + url.PathEscape(namespace) + "/"
}

func (s *Store) groupKey(tenant, namespace, group string) string {
	return s.namespaceDir(tenant, namespace) + url.PathEscape(group)
}

// Set stores (or replaces) one group of a namespace.
func (s *Store) Set(ctx context.Context, tenant, namespace string, g rulefmt.RuleGroup) error {
	b, err := yaml.Marshal(g)
	if err != nil {
		return err
	}
	return s.bkt.Upload(ctx, s.groupKey(tenant, namespace, g.Name), bytes.NewReader(b))
}

// Get returns one group.
func (s *Store) Get(ctx context.Context, tenant, namespace, group string) (rulefmt.RuleGroup, error) {
	var g rulefmt.RuleGroup
	r, err := s.bkt.Get(ctx, s.groupKey(tenant, namespace, group))
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
	err := s.bkt.Delete(ctx, s.groupKey(tenant, namespace, group))
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
	dir := s.rulesDir(tenant)
	if namespace != "" {
		dir = s.namespaceDir(tenant, namespace)
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
		ns, group, ok := strings.Cut(strings.TrimPrefix(key, s.rulesDir(tenant)), "/")
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
