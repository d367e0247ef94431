package federation

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"
)

// The federation benchmark's world: four leaves of FEDBENCH_SERIES
// (100,000) counter series x each, one sample a minute for FEDBENCH_HOURS
// (24) hours, under one federator with pushdown and one fetching series.
type benchWorld struct {
	leaves        []*httptest.Server
	leafBytes     []*atomic.Int64 // bytes each leaf answered
	pushdown      *httptest.Server
	fetching      *httptest.Server
	start, end    int64 // ms
	series, hours int
}

var (
	benchOnce sync.Once
	benchW    *benchWorld
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// byteCounter counts the bytes a handler writes.
type byteCounter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (b byteCounter) Write(p []byte) (int, error) {
	b.n.Add(int64(len(p)))
	return b.ResponseWriter.Write(p)
}

func newBenchWorld(b *testing.B) *benchWorld {
	w := &benchWorld{series: envInt("FEDBENCH_SERIES", 100_000), hours: envInt("FEDBENCH_HOURS", 24)}
	const interval = int64(60_000)
	w.start = int64(1_700_000_000_000)
	w.end = w.start + int64(w.hours)*3_600_000
	t0 := time.Now()
	stores := make([]storage.Storage, len(clusters))
	var wg sync.WaitGroup
	for i := range clusters {
		// The storages outlive the benchmark function's b (they are
		// shared by its runs): closed at the process's end.
		st, err := teststorage.NewWithError()
		require.NoError(b, err)
		stores[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := st.Appender(context.Background())
			refs := make([]storage.SeriesRef, w.series)
			n := 0
			for ts := w.start; ts <= w.end; ts += interval {
				for s := range w.series {
					ls := labels.EmptyLabels()
					if refs[s] == 0 {
						ls = labels.FromStrings("__name__", "x", "job", fmt.Sprintf("job-%d", s%10), "instance", fmt.Sprintf("i-%d", s))
					}
					ref, err := app.Append(refs[s], ls, ts, float64((ts-w.start)/interval*int64(1+s%7)))
					if err != nil {
						panic(err)
					}
					refs[s] = ref
					if n++; n%1_000_000 == 0 {
						if err := app.Commit(); err != nil {
							panic(err)
						}
						app = st.Appender(context.Background())
					}
				}
			}
			if err := app.Commit(); err != nil {
				panic(err)
			}
		}()
	}
	wg.Wait()
	b.Logf("wrote %d leaves × %d series × %d h in %s", len(clusters), w.series, w.hours, time.Since(t0).Round(time.Second))
	var children []ChildConfig
	for i, cl := range clusters {
		h, err := storeAPI(stores[i])(queryConfig())
		require.NoError(b, err)
		n := &atomic.Int64{}
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(byteCounter{rw, n}, r)
		}))
		w.leaves = append(w.leaves, srv)
		w.leafBytes = append(w.leafBytes, n)
		children = append(children, ChildConfig{Name: cl.name, URL: srv.URL + "/prometheus", ExternalLabels: map[string]string{"cluster": cl.name}, Timeout: 10 * time.Minute})
	}
	for _, disable := range []bool{false, true} {
		api, _ := federatorAPI(b, children, func(c *Config) { c.DisablePushdown = disable })
		h, err := api(queryConfig())
		require.NoError(b, err)
		srv := httptest.NewServer(h)
		if disable {
			w.fetching = srv
		} else {
			w.pushdown = srv
		}
	}
	return w
}

func (w *benchWorld) leafTotal() int64 {
	var n int64
	for _, c := range w.leafBytes {
		n += c.Load()
	}
	return n
}

// benchQuery runs q on base and returns the time it took and, from the
// federator's stats header, the longest a child took; it fails the
// benchmark on an error.
func benchQuery(b *testing.B, base, q string, start, end int64, step time.Duration) (took, slowestChild time.Duration) {
	form := url.Values{"query": {q}, "start": {strconv.FormatInt(start/1000, 10)}, "end": {strconv.FormatInt(end/1000, 10)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	t0 := time.Now()
	r, hdr := getJSON(b, base, "/api/v1/query_range", form)
	took = time.Since(t0)
	require.Equal(b, "success", r.Status, "%s: %s", q, r.Error)
	require.NotEmpty(b, matrixOf(b, r), q)
	for _, child := range strings.Split(hdr.Get(StatsHeader), ", ") {
		for _, kv := range strings.Split(child, ";") {
			if v, ok := strings.CutPrefix(kv, "seconds="); ok {
				f, _ := strconv.ParseFloat(v, 64)
				slowestChild = max(slowestChild, time.Duration(f*float64(time.Second)))
			}
		}
	}
	return took, slowestChild
}

// BenchmarkFederation: the global `sum by (cluster) (rate(x[5m]))` over
// FEDBENCH_HOURS at a 5m step through the federator, against what a
// series-fetching federator moves; its latency against the slowest
// child's answer to the federator (overhead-ms: what the federator adds)
// and against the children asked directly, all four at once
// (children-alone-ms, before: it warms them up).
// The series-fetching federator is measured over the last 30 minutes
// (fetching a day of 400,000 series would not fit this machine) and its
// bytes scaled to the whole range by the samples in it.
func BenchmarkFederation(b *testing.B) {
	benchOnce.Do(func() { benchW = newBenchWorld(b) })
	w := benchW
	const q = `sum by (cluster) (rate(x[5m]))`
	step := 5 * time.Minute
	var fed, slowest, alone time.Duration
	var pushBytes int64
	for b.Loop() {
		// Each child's part alone, all at once (as the federator asks
		// them): also warms the leaves up.
		var mu sync.Mutex
		alone = 0
		var wg sync.WaitGroup
		for _, leaf := range w.leaves {
			wg.Add(1)
			go func() {
				defer wg.Done()
				took, _ := benchQuery(b, leaf.URL, q, w.start, w.end, step)
				mu.Lock()
				alone = max(alone, took)
				mu.Unlock()
			}()
		}
		wg.Wait()
		before := w.leafTotal()
		fed, slowest = benchQuery(b, w.pushdown.URL, q, w.start, w.end, step)
		pushBytes = w.leafTotal() - before
	}
	// The same query over the last 30 minutes, both ways.
	shortStart := w.end - 30*60_000
	before := w.leafTotal()
	shortPush, _ := benchQuery(b, w.pushdown.URL, q, shortStart, w.end, step)
	shortPushBytes := w.leafTotal() - before
	before = w.leafTotal()
	shortFetch, _ := benchQuery(b, w.fetching.URL, q, shortStart, w.end, step)
	shortFetchBytes := w.leafTotal() - before
	// Samples a series-fetching federator reads: the range plus the
	// rate's 5m window, per series.
	scale := float64(w.end-w.start+5*60_000) / float64(w.end-shortStart+5*60_000)
	fetchDay := float64(shortFetchBytes) * scale
	b.ReportMetric(float64(pushBytes), "pushdown-bytes")
	b.ReportMetric(fetchDay, "fetching-bytes-scaled")
	b.ReportMetric(100*float64(pushBytes)/fetchDay, "bytes-%")
	b.ReportMetric(float64(fed.Milliseconds()), "federator-ms")
	b.ReportMetric(float64(slowest.Milliseconds()), "slowest-child-ms")
	b.ReportMetric(float64((fed - slowest).Milliseconds()), "overhead-ms")
	b.ReportMetric(float64(alone.Milliseconds()), "children-alone-ms")
	b.ReportMetric(float64(shortPushBytes), "pushdown-30m-bytes")
	b.ReportMetric(float64(shortFetchBytes), "fetching-30m-bytes")
	b.ReportMetric(float64(shortPush.Milliseconds()), "pushdown-30m-ms")
	b.ReportMetric(float64(shortFetch.Milliseconds()), "fetching-30m-ms")
}
