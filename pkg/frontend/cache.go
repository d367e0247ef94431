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
)

// resultsCache stores the bodies of successful query responses.
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
// tenant. Keys are hashed: memcached keys are at most 250 bytes.
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
