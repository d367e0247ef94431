package querier

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/storage/logdelete"
)

// Deletion requests take effect in queries as soon as they are made, as in
// Loki: until the compactor has rewritten the blocks (after the requests'
// cancel period), a querier leaves out the entries a pending request
// deletes, from ingesters and blocks alike. A canceled request stops
// hiding them.

// logDeletes reads the tenants' pending deletion requests, each tenant's at
// most every ttl.
type logDeletes struct {
	store *logdelete.Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	tenants map[string]pendingDeletes
}

type pendingDeletes struct {
	filters []*logdelete.Filter
	at      time.Time
}

// UseDeleteRequests makes the querier leave out the entries that pending
// deletion requests in store delete, reading a tenant's requests at most
// every ttl.
func (l *Logs) UseDeleteRequests(store *logdelete.Store, ttl time.Duration) {
	l.deletes = &logDeletes{store: store, ttl: ttl, now: time.Now, tenants: map[string]pendingDeletes{}}
}

// pending returns the compiled pending requests of a tenant overlapping
// [start, end).
func (d *logDeletes) pending(ctx context.Context, tenant string, start, end int64) ([]*logdelete.Filter, error) {
	d.mu.Lock()
	p, ok := d.tenants[tenant]
	d.mu.Unlock()
	if !ok || d.now().Sub(p.at) > d.ttl {
		reqs, err := d.store.List(ctx, tenant)
		if err != nil {
			return nil, fmt.Errorf("reading deletion requests: %w", err)
		}
		p = pendingDeletes{at: d.now()}
		for _, r := range reqs {
			if r.Processed() {
				continue
			}
			f, err := r.Filter()
			if err != nil {
				return nil, fmt.Errorf("deletion request %s: %w", r.ID, err)
			}
			p.filters = append(p.filters, f)
		}
		d.mu.Lock()
		d.tenants[tenant] = p
		d.mu.Unlock()
	}
	var out []*logdelete.Filter
	for _, f := range p.filters {
		if f.Overlaps(start, end-1) {
			out = append(out, f)
		}
	}
	return out, nil
}

// deletedIterator leaves out of it the entries filters delete.
type deletedIterator struct {
	logql.StreamIterator
	filters []*logdelete.Filter
	// last and streamFilters are the filters of the last stream seen (a
	// stream comes in batches).
	last          labels.Labels
	streamFilters []*logdelete.StreamFilter
	es            []logql.Entry
}

func (it *deletedIterator) Skipped() (lines, bytes int64) { return logql.Skipped(it.StreamIterator) }

func (it *deletedIterator) Next() bool {
	for it.StreamIterator.Next() {
		ls := it.StreamIterator.Labels()
		if it.last.IsEmpty() || !labels.Equal(ls, it.last) {
			it.last, it.streamFilters = ls, it.streamFilters[:0]
			for _, f := range it.filters {
				if f.Selects(ls) {
					it.streamFilters = append(it.streamFilters, f.ForStream(ls))
				}
			}
		}
		in := it.StreamIterator.Entries()
		if len(it.streamFilters) == 0 {
			it.es = in
			return true
		}
		it.es = it.es[:0]
	entries:
		for _, e := range in {
			for _, sf := range it.streamFilters {
				if sf.Deletes(e.Timestamp, e.Line, e.Metadata) {
					continue entries
				}
			}
			it.es = append(it.es, e)
		}
		if len(it.es) > 0 {
			return true
		}
	}
	return false
}

func (it *deletedIterator) Entries() []logql.Entry { return it.es }
