package tempoapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestEcho(t *testing.T) {
	r := get(t, newTestAPI(t, testConfig(), newFake()), "echo", nil)
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "echo", string(r.body))
}

func TestBuildInfo(t *testing.T) {
	r := get(t, newTestAPI(t, testConfig(), newFake()), "status/buildinfo", nil)
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var bi pbBuildInfo
	decodeStrict(t, r.body, &bi)
	require.Equal(t, TempoVersion, bi.Version)
	require.Equal(t, runtime.Version(), bi.GoVersion)
	require.NotEmpty(t, bi.CanopyVersion)
	// Grafana turns gRPC streaming on from 2.2.0 (semver: a pre-release
	// is below its release).
	require.True(t, strings.HasPrefix(bi.Version, "2.1."), bi.Version)
}

// decodeTraceByIDResponse reads tempopb.TraceByIDResponse as Grafana does
// (field 1: the Trace; 2 metrics, 3 status, 4 message) and returns the
// trace and the status.
func decodeTraceByIDResponse(t *testing.T, b []byte) (ptrace.Traces, uint64) {
	t.Helper()
	var trace []byte
	var status uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		require.GreaterOrEqual(t, n, 0, "tag")
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			require.GreaterOrEqual(t, n, 0, "trace")
			trace, b = v, b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			require.GreaterOrEqual(t, n, 0, "status")
			status, b = v, b[n:]
		default:
			t.Fatalf("unexpected field %d of wire type %d", num, typ)
		}
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(trace)
	require.NoError(t, err)
	return td, status
}

// requireSameTrace compares traces by their OTLP JSON.
func requireSameTrace(t *testing.T, want, got ptrace.Traces) {
	t.Helper()
	w, err := (&ptrace.JSONMarshaler{}).MarshalTraces(want)
	require.NoError(t, err)
	g, err := (&ptrace.JSONMarshaler{}).MarshalTraces(got)
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g))
}

func TestTraceByID(t *testing.T) {
	const short = "abcdef012345678" // testTraceID without its leading zeros
	for _, tc := range []struct {
		name      string
		path      string
		params    url.Values
		accept    string
		wantCode  int
		wantBody  string // for errors
		golden    string // for JSON answers
		wantProto string // "v1" or "v2"
		wantStart time.Time
		wantEnd   time.Time
	}{
		{name: "v2, protobuf, as Grafana asks", path: "v2/traces/" + short, accept: "application/protobuf", wantCode: 200, wantProto: "v2"},
		{name: "v1, protobuf, Grafana's fallback", path: "traces/" + short, accept: "application/protobuf", wantCode: 200, wantProto: "v1"},
		{name: "protobuf among other types", path: "v2/traces/" + short, accept: "application/json;q=0.5, application/protobuf", wantCode: 200, wantProto: "v2"},
		{name: "v1, JSON by default", path: "traces/" + short, wantCode: 200, golden: "trace_v1.json"},
		{name: "v2, JSON", path: "v2/traces/" + short, accept: "application/json", wantCode: 200, golden: "trace_v2.json"},
		{name: "32 digits, upper case", path: "v2/traces/00000000000000000ABCDEF012345678", accept: "application/protobuf", wantCode: 200, wantProto: "v2"},
		{
			name: "time range in seconds", path: "v2/traces/" + short, accept: "application/protobuf",
			params: vals("start", "1700000000", "end", "1700003600"), wantCode: 200, wantProto: "v2",
			wantStart: t0, wantEnd: t0.Add(time.Hour),
		},
		{
			name: "time range in RFC3339", path: "traces/" + short, accept: "application/protobuf",
			params: vals("start", "2023-11-14T22:13:20Z", "end", "2023-11-14T23:13:20Z"), wantCode: 200, wantProto: "v1",
			wantStart: t0, wantEnd: t0.Add(time.Hour),
		},
		{name: "v2, q {} is the whole trace", path: "v2/traces/" + short, params: vals("q", "{ }"), accept: "application/protobuf", wantCode: 200, wantProto: "v2"},
		{name: "v2, q { true } is the whole trace", path: "v2/traces/" + short, params: vals("q", "{ true }"), accept: "application/protobuf", wantCode: 200, wantProto: "v2"},
		{name: "not found, v2", path: "v2/traces/1234", accept: "application/protobuf", wantCode: 404, wantBody: "trace not found"},
		{name: "not found, v1", path: "traces/1234", wantCode: 404, wantBody: "trace not found"},
		{name: "found without spans is not found", path: "traces/e", wantCode: 404, wantBody: "trace not found"},
		{name: "not hex", path: "traces/xyz", wantCode: 400, wantBody: `invalid trace ID "xyz": it must be 1 to 32 hex digits`},
		{name: "too long", path: "v2/traces/" + strings.Repeat("a", 33), wantCode: 400, wantBody: `invalid trace ID "` + strings.Repeat("a", 33) + `": it must be 1 to 32 hex digits`},
		{name: "start without end", path: "traces/" + short, params: vals("start", "1700000000"), wantCode: 400, wantBody: `invalid parameter "end": give both start and end, or neither`},
		{name: "end before start", path: "traces/" + short, params: vals("start", "1700003600", "end", "1700000000"), wantCode: 400, wantBody: `invalid parameters "start" and "end": start (2023-11-14T23:13:20Z) must be before end (2023-11-14T22:13:20Z)`},
		{name: "bad time", path: "traces/" + short, params: vals("start", "soon", "end", "1700000000"), wantCode: 400, wantBody: `invalid parameter "start": cannot parse "soon" as a time (Unix seconds, Unix nanoseconds or RFC3339)`},
		{name: "v2, a span filter", path: "v2/traces/" + short, params: vals("q", `{ .http.status_code = 500 }`), wantCode: 400, wantBody: `invalid parameter "q": filtering a trace's spans is not supported; leave q out for the whole trace`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.traces[string(mustID(t, "e"))] = ptrace.NewTraces()
			h := newTestAPI(t, testConfig(), f)
			var header []string
			if tc.accept != "" {
				header = []string{"Accept", tc.accept}
			}
			r := get(t, h, tc.path, tc.params, header...)
			require.Equal(t, tc.wantCode, r.code, string(r.body))
			if tc.wantCode != http.StatusOK {
				require.Equal(t, tc.wantBody, string(r.body))
				require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
				return
			}
			require.Equal(t, testTraceID, f.traceID, "the ID is left-padded to 16 bytes")
			require.Equal(t, "team-a", f.tenant)
			require.True(t, tc.wantStart.Equal(f.traceStart), f.traceStart)
			require.True(t, tc.wantEnd.Equal(f.traceEnd), f.traceEnd)
			switch tc.wantProto {
			case "v2":
				require.Equal(t, "application/protobuf", r.header.Get("Content-Type"))
				td, status := decodeTraceByIDResponse(t, r.body)
				require.Zero(t, status, "COMPLETE")
				requireSameTrace(t, testTrace(), td)
			case "v1":
				require.Equal(t, "application/protobuf", r.header.Get("Content-Type"))
				td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r.body)
				require.NoError(t, err)
				requireSameTrace(t, testTrace(), td)
			default:
				require.Equal(t, "application/json", r.header.Get("Content-Type"))
				requireGolden(t, tc.golden, r.body)
			}
		})
	}
}

// TestTraceByIDJSONIsOTLP checks that the JSON answers hold the trace as
// OTLP JSON under Tempo's keys.
func TestTraceByIDJSONIsOTLP(t *testing.T) {
	h := newTestAPI(t, testConfig(), newFake())
	for _, tc := range []struct {
		path string
		keys []string
	}{
		{path: "traces/abcdef012345678", keys: []string{"batches"}},
		{path: "v2/traces/abcdef012345678", keys: []string{"trace", "resourceSpans"}},
	} {
		r := get(t, h, tc.path, nil)
		require.Equal(t, http.StatusOK, r.code)
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(r.body, &m))
		if len(tc.keys) == 2 {
			require.Equal(t, `"COMPLETE"`, string(m["status"]))
			require.NoError(t, json.Unmarshal(m[tc.keys[0]], &m))
		}
		spans, ok := m[tc.keys[len(tc.keys)-1]]
		require.True(t, ok, string(r.body))
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(`{"resourceSpans":` + string(spans) + `}`))
		require.NoError(t, err)
		requireSameTrace(t, testTrace(), td)
	}
}

func mustID(t *testing.T, s string) []byte {
	t.Helper()
	id, err := parseTraceID(s)
	require.NoError(t, err)
	return id
}

func TestParseTraceID(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string // hex of the 16 bytes
		wantErr bool
	}{
		{in: "1", want: "00000000000000000000000000000001"},
		{in: "abcdef012345678", want: "00000000000000000abcdef012345678"},  // odd length
		{in: "0123456789abcdef", want: "00000000000000000123456789abcdef"}, // 64-bit
		{in: "0123456789ABCDEF0123456789abcdef", want: "0123456789abcdef0123456789abcdef"},
		{in: "", wantErr: true},
		{in: "0123456789abcdef0123456789abcdef0", wantErr: true},
		{in: "g", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "12 4", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, err := parseTraceID(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Len(t, id, 16)
			require.Equal(t, tc.want, strings.ToLower(hexString(id)))
		})
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestTraceIDString(t *testing.T) {
	require.Equal(t, "abcdef012345678", traceIDString(testTraceID))
	require.Equal(t, "0", traceIDString(make([]byte, 16)))
	require.Equal(t, "10000000000000000000000000000001", traceIDString([]byte{0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}))
}
