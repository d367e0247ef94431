package tempoapi

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeBackend answers with canned data and records the last request of
// each kind. Safe for concurrent use.
type fakeBackend struct {
	mu sync.Mutex
	// traces by padded hex ID.
	traces  map[string]ptrace.Traces
	search  SearchResponse
	tags    TagsResponse
	values  TagValuesResponse
	rng     MetricsRangeResponse
	instant MetricsInstantResponse
	// err is returned by every call when set.
	err error
	// block makes every call wait for its context to end.
	block bool

	tenant     string
	traceID    []byte
	traceStart time.Time
	traceEnd   time.Time
	searchReq  SearchRequest
	tagsReq    TagsRequest
	valuesReq  TagValuesRequest
	metricsReq MetricsRequest
}

func (f *fakeBackend) enter(ctx context.Context, tenant string) error {
	f.mu.Lock()
	f.tenant = tenant
	block, err := f.block, f.err
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (f *fakeBackend) TraceByID(ctx context.Context, tenant string, id []byte, start, end time.Time) (ptrace.Traces, bool, error) {
	if err := f.enter(ctx, tenant); err != nil {
		return ptrace.Traces{}, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traceID, f.traceStart, f.traceEnd = id, start, end
	td, ok := f.traces[string(id)]
	return td, ok, nil
}

func (f *fakeBackend) Search(ctx context.Context, tenant string, req SearchRequest) (SearchResponse, error) {
	if err := f.enter(ctx, tenant); err != nil {
		return SearchResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searchReq = req
	return cloneSearch(f.search), nil
}

func (f *fakeBackend) SearchTags(ctx context.Context, tenant string, req TagsRequest) (TagsResponse, error) {
	if err := f.enter(ctx, tenant); err != nil {
		return TagsResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tagsReq = req
	out := TagsResponse{}
	for _, s := range f.tags.Scopes {
		out.Scopes = append(out.Scopes, TagScope{Name: s.Name, Tags: append([]string(nil), s.Tags...)})
	}
	return out, nil
}

func (f *fakeBackend) TagValues(ctx context.Context, tenant string, req TagValuesRequest) (TagValuesResponse, error) {
	if err := f.enter(ctx, tenant); err != nil {
		return TagValuesResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valuesReq = req
	return TagValuesResponse{Values: append([]TagValue(nil), f.values.Values...)}, nil
}

func (f *fakeBackend) MetricsQueryRange(ctx context.Context, tenant string, req MetricsRequest) (MetricsRangeResponse, error) {
	if err := f.enter(ctx, tenant); err != nil {
		return MetricsRangeResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metricsReq = req
	out := MetricsRangeResponse{Metrics: f.rng.Metrics}
	for _, s := range f.rng.Series {
		out.Series = append(out.Series, TimeSeries{
			Labels:    s.Labels,
			Samples:   append([]Sample(nil), s.Samples...),
			Exemplars: append([]Exemplar(nil), s.Exemplars...),
		})
	}
	return out, nil
}

func (f *fakeBackend) MetricsQueryInstant(ctx context.Context, tenant string, req MetricsRequest) (MetricsInstantResponse, error) {
	if err := f.enter(ctx, tenant); err != nil {
		return MetricsInstantResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metricsReq = req
	return MetricsInstantResponse{Series: append([]InstantSeries(nil), f.instant.Series...), Metrics: f.instant.Metrics}, nil
}

// cloneSearch copies the slices the API reorders.
func cloneSearch(in SearchResponse) SearchResponse {
	out := SearchResponse{Metrics: in.Metrics}
	for _, t := range in.Traces {
		c := t
		c.SpanSets = nil
		for _, ss := range t.SpanSets {
			ss.Spans = append([]Span(nil), ss.Spans...)
			c.SpanSets = append(c.SpanSets, ss)
		}
		out.Traces = append(out.Traces, c)
	}
	return out
}

// The test data lives around t0; "now" is t0+1h.
var t0 = time.Unix(1_700_000_000, 0)

// testTraceID is the trace the fake holds, a 64-bit ID left-padded.
var testTraceID = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78}

// testTrace is a root span and its child in two services.
func testTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	tid := pcommon.TraceID(testTraceID)
	add := func(service, name string, id, parent [8]byte, start, end time.Duration, kind ptrace.SpanKind) {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("canopy-test")
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID(id))
		if parent != ([8]byte{}) {
			sp.SetParentSpanID(pcommon.SpanID(parent))
		}
		sp.SetName(name)
		sp.SetKind(kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(end)))
		sp.Attributes().PutInt("http.status_code", 200)
		sp.Status().SetCode(ptrace.StatusCodeOk)
	}
	add("frontend", "GET /cart", [8]byte{1, 1, 1, 1, 1, 1, 1, 1}, [8]byte{}, 0, 120*time.Millisecond, ptrace.SpanKindServer)
	add("cart", "SELECT cart", [8]byte{2, 2, 2, 2, 2, 2, 2, 2}, [8]byte{1, 1, 1, 1, 1, 1, 1, 1}, 10*time.Millisecond, 90*time.Millisecond, ptrace.SpanKindClient)
	return td
}

func newFake() *fakeBackend {
	return &fakeBackend{traces: map[string]ptrace.Traces{string(testTraceID): testTrace()}}
}

func testConfig() Config {
	var cfg Config
	flagext.DefaultValues(&cfg)
	return cfg
}

// newTestAPI returns the API over b, behind the tenant resolver with
// multi-tenancy on as Canopy registers it, whose clock says t0+1h.
func newTestAPI(t testing.TB, cfg Config, b Backend) http.Handler {
	t.Helper()
	require.NoError(t, cfg.Validate())
	a := NewHandler(cfg, b, nil)
	a.now = func() time.Time { return t0.Add(time.Hour) }
	return tenant.Resolver{Enabled: true}.Wrap(a)
}

// response is an answer's status, headers and body.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// get sends a GET of PathPrefix+path with params as tenant "team-a" and
// the given header pairs.
func get(t testing.TB, h http.Handler, path string, params url.Values, header ...string) response {
	t.Helper()
	u := PathPrefix + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	return getRaw(t, h, u, header...)
}

// getRaw sends a GET of the raw target as tenant "team-a".
func getRaw(t testing.TB, h http.Handler, target string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set(tenant.Header, "team-a")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return response{code: rec.Code, header: rec.Result().Header, body: body}
}

// vals builds url.Values from pairs.
func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// requireGolden checks that body is testdata/name once indentation is
// removed: the same fields in the same order. With -update it rewrites
// the file.
func requireGolden(t testing.TB, name string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		var out bytes.Buffer
		require.NoError(t, json.Indent(&out, body, "", "  "))
		out.WriteByte('\n')
		require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, want))
	require.Equal(t, compact.String(), string(body))
}

// decodeStrict decodes body into v refusing unknown fields, as Grafana's
// jsonpb decoding of tempopb messages does.
func decodeStrict(t testing.TB, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), string(body))
}
