package querier

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// Response headers of the query API: how many series (and, when the tenant
// has a sample limit, samples) the query read from storage. The
// query-frontend adds them up over the shards of a sharded query to apply
// max_fetched_series_per_query and max_fetched_samples_per_query to the
// whole query.
const (
	FetchedSeriesHeader  = "Canopy-Fetched-Series"
	FetchedSamplesHeader = "Canopy-Fetched-Samples"
)

// fetched gathers the limited queriers one API request's query used: their
// counters say what it read.
type fetched struct {
	mu       sync.Mutex
	queriers []*limitedQuerier
}

func (f *fetched) add(q *limitedQuerier) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.queriers, q) {
		f.queriers = append(f.queriers, q)
	}
}

// totals returns the series and samples read; samples are counted only
// under a sample limit.
func (f *fetched) totals() (series, samples int64, countedSamples bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.queriers {
		series += q.series.Load()
		samples += q.samples.Load()
		countedSamples = countedSamples || q.countsSamples.Load()
	}
	return series, samples, countedSamples
}

type fetchedKey struct{}

func withFetched(ctx context.Context) (context.Context, *fetched) {
	f := &fetched{}
	return context.WithValue(ctx, fetchedKey{}, f), f
}

func fetchedFrom(ctx context.Context) *fetched {
	f, _ := ctx.Value(fetchedKey{}).(*fetched)
	return f
}

// fetchedWriter sets the fetched headers as the response starts: the
// Prometheus API writes its answer only once the query has run, so the
// counts are complete by then.
type fetchedWriter struct {
	http.ResponseWriter
	f       *fetched
	started bool
}

func (w *fetchedWriter) WriteHeader(code int) {
	if !w.started {
		w.started = true
		h := w.Header()
		series, samples, counted := w.f.totals()
		h.Set(FetchedSeriesHeader, strconv.FormatInt(series, 10))
		if counted {
			h.Set(FetchedSamplesHeader, strconv.FormatInt(samples, 10))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *fetchedWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
