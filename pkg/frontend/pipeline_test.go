package frontend

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// numbersCodec is a toy signal with nothing of PromQL in it, standing for
// LogQL and TraceQL: a query names a sequence and a range, from..to every
// step (milliseconds), and the answer is the sorted list of the sequence's
// numbers in that range, which is every time on the step grid. The answers
// to consecutive parts are merged by concatenation.
type numbersCodec struct{}

func (numbersCodec) DecodeRequest(r *http.Request) (*Request, error) {
	if err := r.ParseForm(); err != nil {
		return nil, badRequest{fmt.Sprintf("invalid form: %v", err)}
	}
	var v [3]int64
	for i, k := range []string{"from", "to", "step"} {
		n, err := strconv.ParseInt(r.Form.Get(k), 10, 64)
		if err != nil {
			return nil, badRequest{fmt.Sprintf("%s: %v", k, err)}
		}
		v[i] = n
	}
	if v[1] < v[0] || v[2] <= 0 {
		return nil, badRequest{"from must not be after to, and step must be positive"}
	}
	name := r.Form.Get("name")
	return &Request{Query: name, Start: v[0], End: v[1], Step: v[2], CacheKey: "numbers\x00" + name, Split: true}, nil
}

func (numbersCodec) EncodeRequest(req *Request) (string, url.Values) {
	return "numbers", url.Values{"name": {req.Query}, "from": {fmt.Sprint(req.Start)}, "to": {fmt.Sprint(req.End)}, "step": {fmt.Sprint(req.Step)}}
}

func (numbersCodec) DecodeResponse(_ *Request, body []byte) ([]int64, error) {
	var out []int64
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decoding numbers: %w", err)
	}
	return out, nil
}

func (numbersCodec) MergeResponses(_ *Request, parts [][]int64) ([]int64, error) {
	return slices.Concat(parts...), nil
}

func (numbersCodec) Prefix() string { return "/numbers/api/v1/" }

func (numbersCodec) EncodeError(code int, _, msg string) *Response {
	return &Response{Status: code, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte(msg)}
}

func (numbersCodec) EncodeResponse(_ *Request, res []int64) (*Response, error) {
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// numbersDownstream answers numbersCodec's calls and records their ranges.
// With gate set, every call says it started and waits for the gate to
// close.
type numbersDownstream struct {
	gate    chan struct{}
	started chan string // the tenant of each call, when gate is set

	mu    sync.Mutex
	calls [][2]int64
}

func (d *numbersDownstream) Do(ctx context.Context, tenant, path string, form url.Values, _ http.Header) (*Response, error) {
	if path != "/numbers/api/v1/numbers" {
		return nil, fmt.Errorf("unexpected path %q", path)
	}
	if d.gate != nil {
		d.started <- tenant
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var v [3]int64
	for i, k := range []string{"from", "to", "step"} {
		n, err := strconv.ParseInt(form.Get(k), 10, 64)
		if err != nil {
			return nil, err
		}
		v[i] = n
	}
	d.mu.Lock()
	d.calls = append(d.calls, [2]int64{v[0], v[1]})
	d.mu.Unlock()
	b, err := json.Marshal(numbers(v[0], v[1], v[2]))
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusOK, Header: http.Header{}, Body: b}, nil
}

func (d *numbersDownstream) Proxy(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotFound)
}

// takeCalls returns the ranges called since the last take, sorted.
func (d *numbersDownstream) takeCalls() [][2]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.calls
	d.calls = nil
	slices.SortFunc(out, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	return out
}

func numbers(from, to, step int64) []int64 {
	out := []int64{}
	for n := from; n <= to; n += step {
		out = append(out, n)
	}
	return out
}

func callNumbers(h http.Handler, tenant string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/numbers/api/v1/query_range", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req = req.WithContext(user.InjectOrgID(req.Context(), tenant))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const (
	minute = int64(60_000)
	hour   = 60 * minute
)

// TestToyCodecReusesTheStages plugs numbersCodec into the query-frontend's
// stages: splitting, the results cache and its freshness window and the
// query length limit work for it with no PromQL code, as they will for
// LogQL and TraceQL.
func TestToyCodecReusesTheStages(t *testing.T) {
	// From 00:30 to 03:30 every 10 minutes.
	form := url.Values{"name": {"n"}, "from": {fmt.Sprint(30 * minute)}, "to": {fmt.Sprint(210 * minute)}, "step": {fmt.Sprint(10 * minute)}}
	longAgo := time.UnixMilli(30 * 24 * hour)
	for _, c := range []struct {
		name           string
		split          time.Duration
		maxQueryLength time.Duration
		now            time.Time
		form           url.Values
		code           int
		errorNames     string     // what an error answer must say
		calls          [][2]int64 // ranges run on the downstream, first request
		again          [][2]int64 // and when the request is repeated
		hits           float64    // parts of the repeated request from the cache
	}{
		{
			name:  "split at hours on the step grid, then from the cache",
			split: time.Hour, now: longAgo, form: form, code: http.StatusOK,
			calls: [][2]int64{{30 * minute, 50 * minute}, {60 * minute, 110 * minute}, {120 * minute, 170 * minute}, {180 * minute, 210 * minute}},
			hits:  4,
		},
		{
			name:  "a part within the freshness window is run again",
			split: time.Hour, now: time.UnixMilli(215 * minute), form: form, code: http.StatusOK,
			calls: [][2]int64{{30 * minute, 50 * minute}, {60 * minute, 110 * minute}, {120 * minute, 170 * minute}, {180 * minute, 210 * minute}},
			again: [][2]int64{{180 * minute, 210 * minute}},
			hits:  3,
		},
		{
			name: "unsplit, one part",
			now:  longAgo, form: form, code: http.StatusOK,
			calls: [][2]int64{{30 * minute, 210 * minute}},
			hits:  1,
		},
		{
			name:  "longer than max_query_length",
			split: time.Hour, maxQueryLength: 2 * time.Hour, now: longAgo, form: form,
			code: http.StatusBadRequest, errorNames: "max_query_length",
		},
		{
			name:  "a request the codec cannot read",
			split: time.Hour, now: longAgo, form: url.Values{"name": {"n"}, "from": {"x"}, "to": {"1"}, "step": {"1"}},
			code: http.StatusBadRequest, errorNames: "from: ",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SplitInterval = c.split
			lim := defaultLimits()
			lim.MaxQueryLength = model.Duration(c.maxQueryLength)
			down := &numbersDownstream{}
			f := startFrontend(t, cfg, lim, down)
			f.now = func() time.Time { return c.now }
			h := newPipeline[[]int64](f.stages, numbersCodec{}, "numbers")

			for pass, wantCalls := range [][][2]int64{c.calls, c.again} {
				rec := callNumbers(h, "t", c.form)
				require.Equal(t, c.code, rec.Code, "pass %d: %s", pass, rec.Body.String())
				require.Equal(t, wantCalls, down.takeCalls(), "pass %d", pass)
				if c.code != http.StatusOK {
					require.Contains(t, rec.Body.String(), c.errorNames)
					continue
				}
				var got []int64
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
				require.Equal(t, numbers(30*minute, 210*minute, 10*minute), got, "pass %d", pass)
			}
			require.Equal(t, c.hits, testutilCounter(f.cacheHits))
			require.Equal(t, 2.0, testutil.ToFloat64(f.queries.WithLabelValues("numbers")))
		})
	}
}

// TestToyCodecOutstandingLimit: numbersCodec's queries count against the
// tenant's max_outstanding_requests_per_tenant, together with its PromQL
// queries.
func TestToyCodecOutstandingLimit(t *testing.T) {
	lim := defaultLimits()
	lim.MaxOutstandingPerTenant = 1
	down := &numbersDownstream{gate: make(chan struct{}), started: make(chan string, 2)}
	f := startFrontend(t, testConfig(), lim, down)
	h := newPipeline[[]int64](f.stages, numbersCodec{}, "numbers")
	form := url.Values{"name": {"n"}, "from": {"0"}, "to": {fmt.Sprint(hour)}, "step": {fmt.Sprint(minute)}}

	codes := make(chan int, 2)
	var wg sync.WaitGroup
	for _, tenant := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- callNumbers(h, tenant, form).Code
		}()
		require.Equal(t, tenant, <-down.started, "the query runs on the downstream")
	}
	// Tenant a has its one query outstanding: whatever the signal, the next
	// is rejected; tenant b's does not count against a's limit.
	rec := callNumbers(h, "a", form)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Contains(t, rec.Body.String(), "max_outstanding_requests_per_tenant")
	rec = call(f, "a", "query", url.Values{"query": {"1"}})
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, 2.0, testutil.ToFloat64(f.rejected.WithLabelValues("max_outstanding_requests_per_tenant")))

	close(down.gate)
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusOK, code)
	}
	require.Equal(t, http.StatusOK, callNumbers(h, "a", form).Code, "a's query is no longer outstanding")
}

// failingDownstream answers numbersCodec's calls: the part starting at
// fail with 400 at once, every other part once its context ends, which it
// reports; started counts those other parts.
type failingDownstream struct {
	fail    int64
	started *atomic.Int64
	ended   chan error
}

func (d failingDownstream) Do(ctx context.Context, _, _ string, form url.Values, _ http.Header) (*Response, error) {
	if form.Get("from") == fmt.Sprint(d.fail) {
		return &Response{Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("part refused")}, nil
	}
	d.started.Add(1)
	<-ctx.Done()
	d.ended <- ctx.Err()
	return nil, ctx.Err()
}

func (failingDownstream) Proxy(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotFound)
}

// TestFailFast: the first part to fail is the query's answer at once, and
// its other parts, still running, are canceled (parts still queued when it
// fails may never reach the downstream).
func TestFailFast(t *testing.T) {
	cfg := testConfig()
	cfg.SplitInterval = time.Hour
	down := failingDownstream{fail: 2 * hour, started: &atomic.Int64{}, ended: make(chan error, 4)}
	f := startFrontend(t, cfg, defaultLimits(), down)
	h := newPipeline[[]int64](f.stages, numbersCodec{}, "numbers")
	rec := callNumbers(h, "t", url.Values{"name": {"n"}, "from": {"0"}, "to": {fmt.Sprint(4*hour - minute)}, "step": {fmt.Sprint(minute)}})
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Equal(t, "part refused", rec.Body.String(), "the failed part's answer, not a cancellation")
	ended := 0
	require.Eventually(t, func() bool {
		for {
			select {
			case err := <-down.ended:
				require.ErrorIs(t, err, context.Canceled)
				ended++
			default:
				return int64(ended) == down.started.Load()
			}
		}
	}, 10*time.Second, 10*time.Millisecond, "every part that reached the downstream is canceled")
	require.LessOrEqual(t, ended, 3)
}
