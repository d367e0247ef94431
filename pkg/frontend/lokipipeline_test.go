package frontend

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// minutesDownstream is a fake Loki querier over one stream {app="m"} with
// an entry at every whole minute, line "m<minute>". A log query answers
// the limit newest (backward) or oldest (forward) entries of its range; a
// metric query answers {app="m"} at every step, valued at its time in
// minutes, whatever the query (each shard alike, so a sharded sum is the
// shards' count times that). It records its calls.
type minutesDownstream struct {
	mu    sync.Mutex
	calls []minutesCall
}

type minutesCall struct {
	path       string
	start, end int64 // ns; the time of an instant query as both
	shard      string
	header     string // the encoding flags
}

func (d *minutesDownstream) Do(_ context.Context, _, path string, form url.Values, header http.Header) (*Response, error) {
	r, err := http.NewRequest(http.MethodPost, path, nil)
	if err != nil {
		return nil, err
	}
	r.Form = form
	c := minutesCall{path: path, shard: form.Get(lokiapi.ShardParam), header: header.Get(lokiapi.EncodingFlagsHeader)}
	expr, err := logql.Parse(form.Get("query"))
	if err != nil {
		return nil, err
	}
	ls := labels.FromStrings("app", "m")
	var res *logql.Result
	if path == lokiapi.PathPrefix+"query" {
		p, err := lokiapi.ParseInstantParams(r, time.Now(), 5000)
		if err != nil {
			return nil, err
		}
		c.start, c.end = p.Time, p.Time
		res = &logql.Result{Type: "vector", Vector: promql.Vector{{Metric: ls, T: p.Time / 1e6, F: float64(p.Time / 60e9)}}}
	} else {
		p, err := lokiapi.ParseRangeParams(r, time.Now(), 5000)
		if err != nil {
			return nil, err
		}
		c.start, c.end = p.Start, p.End
		if _, ok := expr.(*logql.LogExpr); ok {
			var es []logql.Entry
			for m := (p.Start + 60e9 - 1) / 60e9; m*60e9 < p.End; m++ {
				es = append(es, logql.Entry{Timestamp: m * 60e9, Line: fmt.Sprint("m", m)})
			}
			if p.Direction == logql.Backward {
				slices.Reverse(es)
			}
			es = es[:min(len(es), p.Limit)]
			res = &logql.Result{Type: logql.ValueTypeStreams, Streams: []logql.Stream{{Labels: ls, Entries: es}}, Stats: logql.Stats{EntriesReturned: int64(len(es))}}
			if len(es) == 0 {
				res.Streams = nil
			}
		} else {
			s := promql.Series{Metric: ls}
			for t := p.Start / 1e6; t <= p.End/1e6; t += p.Step.Milliseconds() {
				s.Floats = append(s.Floats, promql.FPoint{T: t, F: float64(t / 60_000)})
			}
			res = &logql.Result{Type: "matrix", Matrix: promql.Matrix{s}}
		}
	}
	res.Stats.BytesProcessed, res.Stats.LinesProcessed = 10, 1
	d.mu.Lock()
	d.calls = append(d.calls, c)
	d.mu.Unlock()
	return &Response{Status: http.StatusOK, Header: http.Header{lokiapi.BytesReadHeader: {"10"}}, Body: lokiapi.EncodeQueryResult(res, c.header != "", directionOf(form))}, nil
}

func directionOf(form url.Values) logql.Direction {
	if form.Get("direction") == "forward" {
		return logql.Forward
	}
	return logql.Backward
}

func (d *minutesDownstream) Proxy(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}

// take returns the calls since the last take, in time order.
func (d *minutesDownstream) take() []minutesCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.calls
	d.calls = nil
	slices.SortFunc(out, func(a, b minutesCall) int {
		if a.start != b.start {
			return int(sign(a.start - b.start))
		}
		if a.shard < b.shard {
			return -1
		}
		return 1
	})
	return out
}

// TestLogQLReusesTheStages runs LogQL through the query-frontend's shared
// stages, with a fake querier: log queries split by time and merged to
// their limit, not cached; metric queries split on their step grid, cached
// but for the part within the freshness window, sharded when associative;
// the encoding flags forwarded on every call.
func TestLogQLReusesTheStages(t *testing.T) {
	const minNs = int64(60e9)
	day := baseNs // a UTC midnight
	qr := lokiapi.PathPrefix + "query_range"
	// From 00:30 to 03:30.
	rangeForm := func(query string, kv ...string) url.Values {
		f := url.Values{"query": {query}, "start": {fmt.Sprint(day + 30*minNs)}, "end": {fmt.Sprint(day + 210*minNs)}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	longAgo := time.Unix(0, day).Add(30 * 24 * time.Hour)
	minutes := func(from, to int64, desc bool) []logql.Entry {
		var es []logql.Entry
		for m := from; m <= to; m++ {
			es = append(es, logql.Entry{Timestamp: day + m*minNs, Line: fmt.Sprint("m", (day+m*minNs)/minNs)})
		}
		if desc {
			slices.Reverse(es)
		}
		return es
	}
	for _, tc := range []struct {
		name    string
		path    string
		form    url.Values
		header  http.Header
		now     time.Time
		shards  int
		calls   []minutesCall // the first request's
		again   int           // calls when the request is repeated
		hits    float64       // parts of the repeated request from the cache
		entries []logql.Entry // a log query's answer
		matrix  []promql.FPoint
	}{
		{
			name: "log query backward: split by hour, the 50 newest, not cached",
			path: "query_range", form: rangeForm(`{app="m"}`, "limit", "50"), now: longAgo,
			calls: []minutesCall{
				{path: qr, start: day + 30*minNs, end: day + 60*minNs},
				{path: qr, start: day + 60*minNs, end: day + 120*minNs},
				{path: qr, start: day + 120*minNs, end: day + 180*minNs},
				{path: qr, start: day + 180*minNs, end: day + 210*minNs},
			},
			again: 4, entries: minutes(160, 209, true),
		},
		{
			name: "log query forward with an interval, categorized: the 50 oldest, one every 5 minutes",
			path: "query_range", form: rangeForm(`{app="m"}`, "limit", "50", "direction", "forward", "interval", "5m"), now: longAgo,
			header: http.Header{lokiapi.EncodingFlagsHeader: {"categorize-labels"}},
			calls: []minutesCall{
				{path: qr, start: day + 30*minNs, end: day + 60*minNs, header: "categorize-labels"},
				{path: qr, start: day + 60*minNs, end: day + 120*minNs, header: "categorize-labels"},
				{path: qr, start: day + 120*minNs, end: day + 180*minNs, header: "categorize-labels"},
				{path: qr, start: day + 180*minNs, end: day + 210*minNs, header: "categorize-labels"},
			},
			again: 4, entries: []logql.Entry{
				{Timestamp: day + 30*minNs, Line: fmt.Sprint("m", day/minNs+30)},
				{Timestamp: day + 35*minNs, Line: fmt.Sprint("m", day/minNs+35)},
				{Timestamp: day + 40*minNs, Line: fmt.Sprint("m", day/minNs+40)},
				{Timestamp: day + 45*minNs, Line: fmt.Sprint("m", day/minNs+45)},
				{Timestamp: day + 50*minNs, Line: fmt.Sprint("m", day/minNs+50)},
				{Timestamp: day + 55*minNs, Line: fmt.Sprint("m", day/minNs+55)},
				{Timestamp: day + 60*minNs, Line: fmt.Sprint("m", day/minNs+60)},
				{Timestamp: day + 65*minNs, Line: fmt.Sprint("m", day/minNs+65)},
				{Timestamp: day + 70*minNs, Line: fmt.Sprint("m", day/minNs+70)},
				{Timestamp: day + 75*minNs, Line: fmt.Sprint("m", day/minNs+75)},
			},
		},
		{
			name: "metric query: split on the step grid, then from the cache",
			path: "query_range", form: rangeForm(`count_over_time({app="m"}[1m])`, "step", "7m"), now: longAgo,
			calls: []minutesCall{
				{path: qr, start: day + 30*minNs, end: day + 58*minNs},
				{path: qr, start: day + 65*minNs, end: day + 114*minNs},
				{path: qr, start: day + 121*minNs, end: day + 177*minNs},
				{path: qr, start: day + 184*minNs, end: day + 210*minNs},
			},
			hits: 4,
		},
		{
			name: "metric query: the part within the freshness window runs again",
			path: "query_range", form: rangeForm(`count_over_time({app="m"}[1m])`, "step", "7m"), now: time.Unix(0, day+215*minNs),
			calls: []minutesCall{
				{path: qr, start: day + 30*minNs, end: day + 58*minNs},
				{path: qr, start: day + 65*minNs, end: day + 114*minNs},
				{path: qr, start: day + 121*minNs, end: day + 177*minNs},
				{path: qr, start: day + 184*minNs, end: day + 210*minNs},
			},
			again: 1, hits: 3,
		},
		{
			name: "sum sharded two ways in each part",
			path: "query_range", form: rangeForm(`sum(count_over_time({app="m"}[1m]))`, "start", fmt.Sprint(day+150*minNs), "step", "10m"), now: longAgo, shards: 2,
			calls: []minutesCall{
				{path: qr, start: day + 150*minNs, end: day + 170*minNs, shard: "1_of_2"},
				{path: qr, start: day + 150*minNs, end: day + 170*minNs, shard: "2_of_2"},
				{path: qr, start: day + 180*minNs, end: day + 210*minNs, shard: "1_of_2"},
				{path: qr, start: day + 180*minNs, end: day + 210*minNs, shard: "2_of_2"},
			},
			hits: 2,
			matrix: []promql.FPoint{
				{T: (day + 150*minNs) / 1e6, F: 2 * float64(day/minNs+150)},
				{T: (day + 160*minNs) / 1e6, F: 2 * float64(day/minNs+160)},
				{T: (day + 170*minNs) / 1e6, F: 2 * float64(day/minNs+170)},
				{T: (day + 180*minNs) / 1e6, F: 2 * float64(day/minNs+180)},
				{T: (day + 190*minNs) / 1e6, F: 2 * float64(day/minNs+190)},
				{T: (day + 200*minNs) / 1e6, F: 2 * float64(day/minNs+200)},
				{T: (day + 210*minNs) / 1e6, F: 2 * float64(day/minNs+210)},
			},
		},
		{
			name: "instant sum sharded, not cached",
			path: "query", form: url.Values{"query": {`sum(count_over_time({app="m"}[1m]))`}, "time": {fmt.Sprint(day + 100*minNs)}}, now: longAgo, shards: 3,
			calls: []minutesCall{
				{path: lokiapi.PathPrefix + "query", start: day + 100*minNs, end: day + 100*minNs, shard: "1_of_3"},
				{path: lokiapi.PathPrefix + "query", start: day + 100*minNs, end: day + 100*minNs, shard: "2_of_3"},
				{path: lokiapi.PathPrefix + "query", start: day + 100*minNs, end: day + 100*minNs, shard: "3_of_3"},
			},
			again: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SplitInterval = time.Hour
			lim := defaultLimits()
			lim.QueryShardingTotalShards = tc.shards
			down := &minutesDownstream{}
			f := startFrontend(t, cfg, lim, down)
			f.now = func() time.Time { return tc.now }
			for pass, want := range []int{len(tc.calls), tc.again} {
				rec := callLoki(f, http.MethodGet, tc.path, tc.form, tc.header)
				require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
				calls := down.take()
				require.Len(t, calls, want, "pass %d", pass)
				if pass == 0 {
					require.Equal(t, tc.calls, calls)
				}
				res, err := decodeLokiResult(rec.Body.Bytes())
				require.NoError(t, err)
				// Cached parts bring their statistics along.
				require.Equal(t, int64(10*len(tc.calls)), res.Stats.BytesProcessed, "the parts' statistics add up")
				if tc.entries != nil {
					require.Len(t, res.Streams, 1)
					require.Equal(t, tc.entries, res.Streams[0].Entries)
				}
				if tc.matrix != nil {
					require.Len(t, res.Matrix, 1)
					require.Equal(t, tc.matrix, res.Matrix[0].Floats)
				}
			}
			require.Equal(t, tc.hits, testutilCounter(f.cacheHits))
		})
	}
}
