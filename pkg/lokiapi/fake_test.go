package lokiapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/logql"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeBackend holds streams in memory. Safe for concurrent use.
type fakeBackend struct {
	mu      sync.Mutex
	streams []logql.Stream // entries in timestamp order
	err     error          // returned by every call when set
}

func (f *fakeBackend) add(ls labels.Labels, es ...logql.Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.streams {
		if labels.Equal(f.streams[i].Labels, ls) {
			f.streams[i].Entries = append(f.streams[i].Entries, es...)
			slices.SortStableFunc(f.streams[i].Entries, func(a, b logql.Entry) int { return int(a.Timestamp - b.Timestamp) })
			return
		}
	}
	f.streams = append(f.streams, logql.Stream{Labels: ls, Entries: es})
}

func matches(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// selected returns copies of the streams matching ms with their entries
// in [start, end).
func (f *fakeBackend) selected(ms []*labels.Matcher, start, end int64) []logql.Stream {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []logql.Stream
	for _, s := range f.streams {
		if !matches(ms, s.Labels) {
			continue
		}
		var es []logql.Entry
		for _, e := range s.Entries {
			if e.Timestamp >= start && e.Timestamp < end {
				es = append(es, e)
			}
		}
		if len(es) > 0 {
			out = append(out, logql.Stream{Labels: s.Labels, Entries: es})
		}
	}
	return out
}

func (f *fakeBackend) Select(_ context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &fakeIterator{streams: f.selected(p.Matchers, p.Start, p.End), i: -1}, nil
}

func (f *fakeBackend) Labels(_ context.Context, start, end int64, ms []*labels.Matcher) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	var names []string
	for _, s := range f.selected(ms, start, end) {
		s.Labels.Range(func(l labels.Label) {
			if !slices.Contains(names, l.Name) {
				names = append(names, l.Name)
			}
		})
	}
	slices.Sort(names)
	return names, nil
}

func (f *fakeBackend) LabelValues(_ context.Context, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	var values []string
	for _, s := range f.selected(ms, start, end) {
		if v := s.Labels.Get(name); v != "" && !slices.Contains(values, v) {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	return values, nil
}

func (f *fakeBackend) Series(_ context.Context, start, end int64, sets [][]*labels.Matcher) ([]labels.Labels, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []labels.Labels
	for _, ms := range sets {
		for _, s := range f.selected(ms, start, end) {
			if !slices.ContainsFunc(out, func(l labels.Labels) bool { return labels.Equal(l, s.Labels) }) {
				out = append(out, s.Labels)
			}
		}
	}
	return out, nil
}

type fakeIterator struct {
	streams []logql.Stream
	i       int
}

func (it *fakeIterator) Next() bool             { it.i++; return it.i < len(it.streams) }
func (it *fakeIterator) Labels() labels.Labels  { return it.streams[it.i].Labels }
func (it *fakeIterator) Entries() []logql.Entry { return it.streams[it.i].Entries }
func (it *fakeIterator) Err() error             { return nil }
func (it *fakeIterator) Close() error           { return nil }

// The test data: three streams around t0; "now" is t0+10s.
const t0 = int64(1_700_000_000) * 1e9

func at(d time.Duration) int64 { return t0 + int64(d) }

func testBackend() *fakeBackend {
	f := &fakeBackend{}
	f.add(labels.FromStrings("app", "api", "env", "prod", "job", "fake"),
		logql.Entry{Timestamp: at(1 * time.Second), Line: `level=info msg="request done" status=200 duration=15ms`},
		logql.Entry{Timestamp: at(2 * time.Second), Line: `level=error msg=failed status=500 duration=1.5s`},
		logql.Entry{Timestamp: at(3 * time.Second), Line: `level=info msg="request done" status=200 duration=20ms`, Metadata: labels.FromStrings("trace_id", "abc")},
	)
	f.add(labels.FromStrings("app", "web", "env", "dev", "job", "fake"),
		logql.Entry{Timestamp: at(1500 * time.Millisecond), Line: `{"level":"warn","msg":"slow","latency_ms":250,"req":{"method":"GET","path":"/a"}}`},
		logql.Entry{Timestamp: at(4 * time.Second), Line: `{"level":"info","msg":"ok","latency_ms":12.5,"req":{"method":"POST","path":"/b"}}`},
	)
	f.add(labels.FromStrings("app", "db", "env", "prod", "job", "other"),
		logql.Entry{Timestamp: at(2500 * time.Millisecond), Line: `ERROR connection refused`},
		logql.Entry{Timestamp: at(5 * time.Second), Line: `checkpoint complete`},
	)
	return f
}

func testConfig() Config {
	var cfg Config
	flagext.DefaultValues(&cfg)
	return cfg
}

// newTestAPI returns an API over b whose clock says t0+10s.
func newTestAPI(t testing.TB, cfg Config, b Backend) *API {
	t.Helper()
	require.NoError(t, cfg.Validate())
	a := NewHandler(cfg, logql.NewEngine(nil, nil), b, nil)
	a.now = func() time.Time { return time.Unix(0, at(10*time.Second)) }
	return a
}

// call sends a GET (params in the query string) or a POST (params as a
// form body) and returns the status and the body.
func call(t testing.TB, h http.Handler, method, path string, params url.Values, header http.Header) (int, string, http.Header) {
	t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequest(method, path, strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		u := path
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
		req = httptest.NewRequest(method, u, nil)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, string(body), rec.Result().Header
}

// get is call with GET and no header.
func get(t testing.TB, h http.Handler, path string, params url.Values) (int, string) {
	code, body, _ := call(t, h, http.MethodGet, path, params, nil)
	return code, body
}

// withoutStats returns a query response with data.stats replaced by {}
// after checking that it has Loki's blocks.
func withoutStats(t testing.TB, body string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	data, ok := m["data"].(map[string]any)
	require.True(t, ok, body)
	st, ok := data["stats"].(map[string]any)
	require.True(t, ok, body)
	for _, k := range []string{"summary", "querier", "ingester", "cache", "index"} {
		require.Contains(t, st, k)
	}
	data["stats"] = map[string]any{}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return string(out)
}

// vals builds url.Values from pairs.
func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
