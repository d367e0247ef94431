package frontend

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/cache"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/canopy-observability/canopy/pkg/validation"
)

// The results cache holds the downstream's successful answers to parts of
// queries, as their bodies, under a key naming tenant, query and range.
// Parts ending within the tenant's max_cache_freshness are not cached: late
// samples may still change them.

// cachedParts looks the parts of req up in the results cache. keys[i] is
// the key of part i, "" when it is not cacheable (no cache, a request with
// no cache key, or a part within the freshness window); bodies[i] is its
// cached answer, nil when there is none.
func (s *stages) cachedParts(ctx context.Context, id string, lim *validation.Limits, req *Request, parts []part) (keys []string, bodies [][]byte) {
	keys, bodies = make([]string, len(parts)), make([][]byte, len(parts))
	if s.cache == nil || req.CacheKey == "" {
		return keys, bodies
	}
	freshFrom := s.now().Add(-time.Duration(lim.ResultsCacheMaxFreshness)).UnixMilli()
	var cacheable []string
	for i, p := range parts {
		if p.end < freshFrom {
			keys[i] = cacheKey(id, req.CacheKey, p.start, p.end, req.Step)
			cacheable = append(cacheable, keys[i])
		}
	}
	if len(cacheable) == 0 {
		return keys, bodies
	}
	hits := s.cache.get(ctx, cacheable)
	for i, k := range keys {
		if b, ok := hits[k]; ok && k != "" {
			bodies[i] = b
		}
	}
	s.cacheHits.Add(float64(len(hits)))
	s.cacheMisses.Add(float64(len(cacheable) - len(hits)))
	return keys, bodies
}

// resultsCache stores the bodies of successful query responses. It is safe
// for concurrent use; set may store asynchronously, and may drop values.
type resultsCache interface {
	get(ctx context.Context, keys []string) map[string][]byte
	set(values map[string][]byte)
	stop()
}

func newResultsCache(cfg CacheConfig, logger log.Logger, reg prometheus.Registerer) (resultsCache, error) {
	switch cfg.Backend {
	case CacheInMemory:
		return newLRU(int64(cfg.Size)), nil
	case CacheMemcached:
		c, err := cache.NewMemcachedClientWithConfig(logger, "frontend-results", cfg.Memcached, prometheus.WrapRegistererWithPrefix("canopy_query_frontend_", reg))
		if err != nil {
			return nil, fmt.Errorf("results cache memcached client: %w", err)
		}
		return remoteCache{c, cfg.TTL}, nil
	}
	return nil, nil
}

// cacheKey names the result of one query over [start, end] at step for a
// tenant; query is the Request's CacheKey. Keys are hashed: memcached keys
// are at most 250 bytes. The format is pinned (TestPromQLCacheKeysArePinned):
// a change empties every cache on upgrade.
func cacheKey(tenant, query string, start, end, step int64) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d\x00%d", tenant, query, start, end, step))
	return "qf1:" + hex.EncodeToString(h[:])
}

type remoteCache struct {
	c   cache.Cache
	ttl time.Duration
}

func (r remoteCache) get(ctx context.Context, keys []string) map[string][]byte {
	return r.c.GetMulti(ctx, keys)
}
func (r remoteCache) set(values map[string][]byte) { r.c.SetMultiAsync(values, r.ttl) }
func (r remoteCache) stop()                        { r.c.Stop() }

// lru is the in-process cache: least recently used out, bounded in bytes.
type lru struct {
	max   int64
	mu    sync.Mutex
	size  int64
	order *list.List
	items map[string]*list.Element
}

type lruItem struct {
	key   string
	value []byte
}

func newLRU(maxBytes int64) *lru {
	return &lru{max: maxBytes, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru) get(_ context.Context, keys []string) map[string][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]byte{}
	for _, k := range keys {
		if e, ok := l.items[k]; ok {
			l.order.MoveToFront(e)
			out[k] = e.Value.(*lruItem).value
		}
	}
	return out
}

func (l *lru) set(values map[string][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range values {
		if int64(len(v)) > l.max {
			continue
		}
		if e, ok := l.items[k]; ok {
			l.size -= int64(len(e.Value.(*lruItem).value))
			l.order.Remove(e)
		}
		l.items[k] = l.order.PushFront(&lruItem{k, v})
		l.size += int64(len(v))
	}
	for l.size > l.max {
		e := l.order.Back()
		it := e.Value.(*lruItem)
		l.order.Remove(e)
		delete(l.items, it.key)
		l.size -= int64(len(it.value))
	}
}

func (l *lru) stop() {}
