package querier

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
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

// fetched counts what one API request read.
type fetched struct {
	series, samples atomic.Int64
	countedSamples  atomic.Bool
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
		h.Set(FetchedSeriesHeader, strconv.FormatInt(w.f.series.Load(), 10))
		if w.f.countedSamples.Load() {
			h.Set(FetchedSamplesHeader, strconv.FormatInt(w.f.samples.Load(), 10))
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
