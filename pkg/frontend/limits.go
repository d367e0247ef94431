package frontend

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canopy-observability/canopy/pkg/querier"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// The per-tenant limits the query-frontend applies, whatever the signal.

// errTooManyOutstanding is returned when a tenant has its maximum of queries outstanding.
type errTooManyOutstanding struct{ limit int }

func (e errTooManyOutstanding) Error() string {
	return fmt.Sprintf("too many outstanding requests: the tenant already has %d queries waiting or running, its limit max_outstanding_requests_per_tenant (-query-frontend.max-outstanding-requests-per-tenant)", e.limit)
}

// admission counts each tenant's outstanding queries, queued or running, of
// every signal: a query counts once however many parts and shards it runs
// as. It is safe for concurrent use.
type admission struct {
	limits validation.TenantLimits

	mu          sync.Mutex
	outstanding map[string]int // queries per tenant
}

func newAdmission(limits validation.TenantLimits) *admission {
	return &admission{limits: limits, outstanding: map[string]int{}}
}

// admit counts a query of the tenant as outstanding, unless the tenant is at
// its max_outstanding_requests_per_tenant. Every admitted query is released.
func (a *admission) admit(id string) error {
	limit := a.limits.ByTenant(id).MaxOutstandingPerTenant
	a.mu.Lock()
	defer a.mu.Unlock()
	if limit > 0 && a.outstanding[id] >= limit {
		return errTooManyOutstanding{limit}
	}
	a.outstanding[id]++
	return nil
}

func (a *admission) release(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.outstanding[id]--; a.outstanding[id] <= 0 {
		delete(a.outstanding, id)
	}
}

// errQueryTooLong is returned for a query spanning more than the tenant's
// max_query_length.
type errQueryTooLong struct{ length, limit model.Duration }

func (e errQueryTooLong) Error() string {
	return fmt.Sprintf("the query time range exceeds the limit (query length: %s, limit: %s): max_query_length (-query-frontend.max-query-length)", e.length, e.limit)
}

// checkQueryLength rejects req when its time range is longer than the
// tenant's max_query_length.
func checkQueryLength(lim *validation.Limits, req *Request) error {
	length := time.Duration(req.End-req.Start) * time.Millisecond
	if max := time.Duration(lim.MaxQueryLength); max > 0 && length > max {
		return errQueryTooLong{model.Duration(length), lim.MaxQueryLength}
	}
	return nil
}

// fetched adds up the series and samples the queriers read for one query,
// as they report them in their answers' headers. Each shard of a sharded
// query stays within the per-query limits; together they are one query.
type fetched struct{ series, samples int64 }

// add adds one answer's counts, and says whether it reported its series.
func (f *fetched) add(h http.Header) bool {
	n, err := strconv.ParseInt(h.Get(querier.FetchedSeriesHeader), 10, 64)
	m, _ := strconv.ParseInt(h.Get(querier.FetchedSamplesHeader), 10, 64)
	f.series, f.samples = f.series+n, f.samples+m
	return err == nil
}

// overLimit returns the answer (422, naming the limit) to a query whose
// shards together read more than the tenant's per-query limits, else nil.
func (f fetched) overLimit(enc requestEncoder, lim *validation.Limits, shards int) *Response {
	if max := int64(lim.MaxFetchedSeriesPerQuery); max > 0 && f.series > max {
		return enc.EncodeError(http.StatusUnprocessableEntity, "execution", fmt.Sprintf("the query read %d series over its %d shards, more than %d, the tenant's limit max_fetched_series_per_query (-querier.max-fetched-series-per-query): narrow its selectors or time range", f.series, shards, max))
	}
	if max := int64(lim.MaxFetchedSamplesPerQuery); max > 0 && f.samples > max {
		return enc.EncodeError(http.StatusUnprocessableEntity, "execution", fmt.Sprintf("the query read %d samples over its %d shards, more than %d, the tenant's limit max_fetched_samples_per_query (-querier.max-fetched-samples-per-query): narrow its selectors or time range", f.samples, shards, max))
	}
	return nil
}
