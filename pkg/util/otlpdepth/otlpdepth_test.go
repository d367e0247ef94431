package otlpdepth

import (
	"errors"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Where a log record's body is, in an ExportLogsServiceRequest: request
// resource_logs (1), ResourceLogs scope_logs (2), ScopeLogs log_records
// (2), LogRecord body (5). Innermost first.
var logBodyPath = []protowire.Number{5, 2, 2, 1}

// nestedArrays returns a protobuf AnyValue holding levels arrays, each the
// only value of the one before, around the string "x", as the field path
// (innermost first) of the messages around it. It builds the body
// backwards, then turns it around: linear in its size.
func nestedArrays(levels int, path ...protowire.Number) []byte {
	rev := []byte{'x', 1, 0x0a} // string_value (field 1) "x", backwards
	wrap := func(num protowire.Number) {
		h := protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.BytesType), uint64(len(rev)))
		for i := len(h) - 1; i >= 0; i-- {
			rev = append(rev, h[i])
		}
	}
	for range levels {
		wrap(1) // ArrayValue.values
		wrap(5) // AnyValue.array_value
	}
	for _, num := range path {
		wrap(num)
	}
	out := make([]byte, len(rev))
	for i, c := range rev {
		out[len(rev)-1-i] = c
	}
	return out
}

// nestedArraysJSON is nestedArrays as a log record's body in OTLP JSON.
func nestedArraysJSON(levels int) []byte {
	return []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":` +
		strings.Repeat(`{"arrayValue":{"values":[`, levels) + `{"stringValue":"x"}` + strings.Repeat(`]}}`, levels) +
		`}]}]}]}`)
}

// chain returns n length-delimited fields (number 1), each the only
// content of the one before, around content.
func chain(n int, content []byte) []byte {
	b := content
	for range n {
		b = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), b)
	}
	return b
}

func wantRefused(t *testing.T, err error, limit int, json bool) {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "want *Error, got %v", err)
	require.Equal(t, limit, e.Limit)
	require.Equal(t, json, e.JSON)
}

func TestCheckProto(t *testing.T) {
	deep := nestedArrays(100_000, logBodyPath...)
	err := CheckProto(deep)
	wantRefused(t, err, MaxProtoDepth, false)
	require.EqualError(t, err, "nests more than 256 levels deep at byte 1028 (protobuf messages within messages, such as attribute values within attribute values)")

	for name, tc := range map[string]struct {
		body    []byte
		max     int
		refused bool
	}{
		"empty":                    {nil, 0, false},
		"one field":                {[]byte{0x08, 0x01}, 0, false},
		"empty field at the bound": {chain(1, nil), 0, false},
		"string at the bound":      {chain(1, []byte("x")), 0, true},
		"chain of 256":             {chain(256, []byte{0x08, 0x01}), MaxProtoDepth, false},
		"chain of 257":             {chain(257, []byte{0x08, 0x01}), MaxProtoDepth, true},
		"chain of 3, bound 3":      {chain(3, []byte("x")), 3, false},
		"chain of 4, bound 3":      {chain(4, []byte("x")), 3, true},
		// Strings and bytes are entered as if they were messages, and
		// left where they stop parsing.
		"text":                  {chain(3, []byte("GET /api/v1/users?id=42 HTTP/1.1")), 3, false},
		"empty innermost field": {chain(4, nil), 3, false},
		// Not protobuf: the decoder will say so; its prefix is checked.
		"truncated":            {[]byte{0x0a, 0x05, 0x01}, 0, false},
		"deep, then truncated": {append(chain(5, []byte("x")), 0x0a, 0x05), 3, true},
		"bad wire type":        {[]byte{0x0f, 0x0a, 0x01, 0x01}, 0, false},
		"field number 0":       {[]byte{0x02, 0x01, 0x01}, 0, false},
		"11-byte varint":       {[]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, false},
		"length past the end":  {[]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a}, 0, false},
		"deep in a field that fails later": {
			chain(1, append(chain(4, []byte("x")), 0xff)), 3, true,
		},
		// pdata reads a tag's varint to 10 bytes and drops the bits past
		// 64 (protowire does not): what follows such a tag is checked.
		"after a 10-byte tag": {
			append([]byte{0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f, 0x01}, chain(5, []byte("x"))...), 3, true,
		},
		"after a 10-byte varint": {
			append([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, chain(5, []byte("x"))...), 3, true,
		},
		// pdata reads the fields between group markers one by one, as
		// any other fields.
		"within a group": {
			append(append([]byte{0x0b}, chain(5, []byte("x"))...), 0x0c), 3, true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkProto(tc.body, tc.max)
			if !tc.refused {
				require.NoError(t, err)
				return
			}
			wantRefused(t, err, tc.max, false)
		})
	}
}

func TestCheckJSON(t *testing.T) {
	err := CheckJSON(nestedArraysJSON(100_000))
	wantRefused(t, err, MaxJSONDepth, true)
	require.EqualError(t, err, "nests more than 514 levels deep at byte 4279 (JSON objects and arrays, such as attribute values within attribute values)")

	for name, tc := range map[string]struct {
		body    string
		refused bool
	}{
		"empty":                       {``, false},
		"three":                       {`[{"a":[1]}]`, false},
		"four":                        {`[{"a":[[1]]}]`, true},
		"four, closed between":        {`[[[]]] [[[]]]`, false},
		"brackets in a string":        {`[[["[[[[{{{{"]]]`, false},
		"escaped quote":               {`[[["\"[[[["]]]`, false},
		"escaped backslash":           {`[[["\\"]]]`, false},
		"escaped backslash, then [":   {`[[["\\",[]]]]`, true},
		"unicode escape of backslash": {`[[["\u005c",[1]]]]`, true},
		"unterminated string":         {`[[["[[[[`, false},
		"closing too many":            {`]]]]]][[[[`, true},
		"not JSON":                    {`[[[x[`, true},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkJSON([]byte(tc.body), 3)
			if !tc.refused {
				require.NoError(t, err)
				return
			}
			wantRefused(t, err, 3, true)
		})
	}
}

// nestedMap sets v to maps nested levels deep (arrays when arrays), the
// innermost holding a string.
func nestedMap(v pcommon.Value, levels int, arrays bool) {
	for range levels {
		if arrays {
			v = v.SetEmptySlice().AppendEmpty()
		} else {
			v = v.SetEmptyMap().PutEmpty("k")
		}
	}
	v.SetStr("x")
}

// deepAttrs puts attribute values nested 64 deep, as maps and as arrays,
// in m.
func deepAttrs(m pcommon.Map) {
	nestedMap(m.PutEmpty("maps"), 64, false)
	nestedMap(m.PutEmpty("arrays"), 64, true)
}

// TestRealRequests: requests with attribute values nested 64 deep (as many
// as tracepush admits) in every place OTLP has attributes are accepted in
// protobuf and in JSON, and pdata decodes them.
func TestRealRequests(t *testing.T) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	deepAttrs(rm.Resource().Attributes())
	sm := rm.ScopeMetrics().AppendEmpty()
	deepAttrs(sm.Scope().Attributes())
	m := sm.Metrics().AppendEmpty()
	m.SetName("latency")
	deepAttrs(m.Metadata())
	dp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
	deepAttrs(dp.Attributes())
	deepAttrs(dp.Exemplars().AppendEmpty().FilteredAttributes())
	edp := sm.Metrics().AppendEmpty().SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	deepAttrs(edp.Exemplars().AppendEmpty().FilteredAttributes())

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	deepAttrs(rl.Resource().Attributes())
	sl := rl.ScopeLogs().AppendEmpty()
	deepAttrs(sl.Scope().Attributes())
	lr := sl.LogRecords().AppendEmpty()
	deepAttrs(lr.Attributes())
	nestedMap(lr.Body(), 64, false)
	nestedMap(sl.LogRecords().AppendEmpty().Body(), 64, true)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	deepAttrs(rs.Resource().Attributes())
	ss := rs.ScopeSpans().AppendEmpty()
	deepAttrs(ss.Scope().Attributes())
	sp := ss.Spans().AppendEmpty()
	deepAttrs(sp.Attributes())
	deepAttrs(sp.Events().AppendEmpty().Attributes())
	deepAttrs(sp.Links().AppendEmpty().Attributes())

	type request interface {
		MarshalProto() ([]byte, error)
		MarshalJSON() ([]byte, error)
		UnmarshalProto([]byte) error
		UnmarshalJSON([]byte) error
	}
	for name, tc := range map[string]struct {
		req   request
		fresh func() request
	}{
		"metrics": {pmetricotlp.NewExportRequestFromMetrics(md), func() request { return pmetricotlp.NewExportRequest() }},
		"logs":    {plogotlp.NewExportRequestFromLogs(ld), func() request { return plogotlp.NewExportRequest() }},
		"traces":  {ptraceotlp.NewExportRequestFromTraces(td), func() request { return ptraceotlp.NewExportRequest() }},
	} {
		t.Run(name, func(t *testing.T) {
			pb, err := tc.req.MarshalProto()
			require.NoError(t, err)
			require.NoError(t, CheckProto(pb))
			require.NoError(t, tc.fresh().UnmarshalProto(pb))
			js, err := tc.req.MarshalJSON()
			require.NoError(t, err)
			require.NoError(t, CheckJSON(js))
			require.NoError(t, tc.fresh().UnmarshalJSON(js))
		})
	}
	for name, b := range map[string][]byte{
		"metrics": metricsBody(t, 50, 20),
		"logs":    logsBody(t, 1000),
	} {
		require.NoError(t, CheckProto(b), name)
	}
}

// TestPdataOverflows shows what the checks are for: pdata decoding the
// bodies CheckProto and CheckJSON refuse kills the process with "fatal
// error: stack overflow". The decoding runs in a child process whose
// stacks are bounded to 16 MB, where 100,000 levels are enough (by default
// the bound is 1 GB, reached by 2 million levels: a 20 MB body).
func TestPdataOverflows(t *testing.T) {
	const env = "OTLPDEPTH_TEST_DECODE"
	switch os.Getenv(env) {
	case "protobuf":
		debug.SetMaxStack(16 << 20)
		_ = plogotlp.NewExportRequest().UnmarshalProto(nestedArrays(100_000, logBodyPath...))
		return
	case "json":
		debug.SetMaxStack(16 << 20)
		_ = plogotlp.NewExportRequest().UnmarshalJSON(nestedArraysJSON(200_000))
		return
	}
	for _, enc := range []string{"protobuf", "json"} {
		t.Run(enc, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPdataOverflows$")
			cmd.Env = append(os.Environ(), env+"="+enc)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the child process decoded the body and lived")
			require.Contains(t, string(out), "fatal error: stack overflow")
		})
	}
}
