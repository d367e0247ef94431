package logs

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// instance is one tenant's streams in this ingester. Safe for concurrent
// use.
type instance struct {
	tenant string

	mu      sync.RWMutex
	streams map[uint64][]*stream // by labels hash; a collision chains
	count   int
}

func newInstance(tenant string) *instance {
	return &instance{tenant: tenant, streams: map[uint64][]*stream{}}
}

// get returns the stream of ls, or nil.
func (in *instance) get(ls labels.Labels, h uint64) *stream {
	in.mu.RLock()
	defer in.mu.RUnlock()
	for _, s := range in.streams[h] {
		if labels.Equal(s.labels, ls) {
			return s
		}
	}
	return nil
}

// errStreamLimit is a stream the tenant's stream limit refuses.
type errStreamLimit struct {
	global, local int
}

func (e errStreamLimit) Error() string {
	return fmt.Sprintf("tenant's log stream limit of %d reached (this ingester's share: %d); raise -ingester.logs.max-global-streams-per-tenant or logs_max_global_streams_per_tenant in the runtime overrides file", e.global, e.local)
}

// getOrCreate returns the stream of ls, creating it unless the tenant has
// limit streams already (limit 0: no limit). ls is copied when kept.
func (in *instance) getOrCreate(ls labels.Labels, limit int) (*stream, bool, error) {
	h := ls.Hash()
	if s := in.get(ls, h); s != nil {
		return s, false, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range in.streams[h] {
		if labels.Equal(s.labels, ls) {
			return s, false, nil
		}
	}
	if limit > 0 && in.count >= limit {
		return nil, false, errStreamLimit{local: limit}
	}
	s := &stream{labels: ls.Copy(), hash: h}
	in.streams[h] = append(in.streams[h], s)
	in.count++
	return s, true, nil
}

// all returns every stream.
func (in *instance) all() []*stream {
	in.mu.RLock()
	defer in.mu.RUnlock()
	out := make([]*stream, 0, in.count)
	for _, ss := range in.streams {
		out = append(out, ss...)
	}
	return out
}

// removeEmpty drops streams with no data left.
func (in *instance) removeEmpty(now time.Time, retain time.Duration) {
	for _, s := range in.all() {
		if !s.dropShipped(now, retain) {
			continue
		}
		in.mu.Lock()
		s.mu.Lock()
		empty := len(s.chunks) == 0 && len(s.head) == 0
		if empty {
			s.removed = true // a push holding it looks the stream up again
		}
		s.mu.Unlock()
		if empty {
			chain := in.streams[s.hash]
			for i, c := range chain {
				if c == s {
					chain = append(chain[:i], chain[i+1:]...)
					break
				}
			}
			if len(chain) == 0 {
				delete(in.streams, s.hash)
			} else {
				in.streams[s.hash] = chain
			}
			in.count--
		}
		in.mu.Unlock()
	}
}
