package distributor

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// tenantLimiters are per-tenant rate limiters, each with when it was last
// used so that the state of tenants gone idle can be dropped. The zero
// value is ready; safe for concurrent use.
type tenantLimiters struct {
	mu sync.Mutex
	m  map[string]*tenantLimiter
}

type tenantLimiter struct {
	*rate.Limiter
	lastUsed time.Time
}

// get returns the tenant's limiter with rate r and burst b (the limits may
// have changed since the last call), marking it used at now.
func (t *tenantLimiters) get(tenantID string, r rate.Limit, b int, now time.Time) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	lim, ok := t.m[tenantID]
	if !ok {
		if t.m == nil {
			t.m = map[string]*tenantLimiter{}
		}
		lim = &tenantLimiter{Limiter: rate.NewLimiter(r, b)}
		t.m[tenantID] = lim
	}
	lim.lastUsed = now
	if lim.Limit() != r {
		lim.SetLimit(r)
	}
	if lim.Burst() != b {
		lim.SetBurst(b)
	}
	return lim.Limiter
}

// dropIdle forgets the limiters not used since cutoff, calling forget with
// each of their tenants.
func (t *tenantLimiters) dropIdle(cutoff time.Time, forget func(tenantID string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, lim := range t.m {
		if lim.lastUsed.Before(cutoff) {
			delete(t.m, id)
			forget(id)
		}
	}
}
