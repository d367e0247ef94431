package logpush

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// encodeProto writes streams as Loki's logproto.PushRequest, labels in
// PromQL selector syntax; extra appends unknown fields where protobuf
// allows them.
func encodeProto(streams []Stream, extra bool) []byte {
	var b []byte
	for _, s := range streams {
		var sb []byte
		sb = protowire.AppendTag(sb, streamLabels, protowire.BytesType)
		sb = protowire.AppendString(sb, s.Labels.String())
		for _, e := range s.Entries {
			var eb, tb []byte
			tb = protowire.AppendTag(tb, timestampSeconds, protowire.VarintType)
			tb = protowire.AppendVarint(tb, uint64(e.Timestamp/1e9))
			tb = protowire.AppendTag(tb, timestampNanos, protowire.VarintType)
			tb = protowire.AppendVarint(tb, uint64(e.Timestamp%1e9))
			eb = protowire.AppendTag(eb, entryTimestamp, protowire.BytesType)
			eb = protowire.AppendBytes(eb, tb)
			eb = protowire.AppendTag(eb, entryLine, protowire.BytesType)
			eb = protowire.AppendString(eb, e.Line)
			e.Metadata.Range(func(l labels.Label) {
				var pb []byte
				pb = protowire.AppendTag(pb, pairName, protowire.BytesType)
				pb = protowire.AppendString(pb, l.Name)
				pb = protowire.AppendTag(pb, pairValue, protowire.BytesType)
				pb = protowire.AppendString(pb, l.Value)
				eb = protowire.AppendTag(eb, entryMetadata, protowire.BytesType)
				eb = protowire.AppendBytes(eb, pb)
			})
			if extra {
				eb = protowire.AppendTag(eb, 4, protowire.BytesType) // parsed: read path only
				eb = protowire.AppendBytes(eb, []byte{0x0a, 0x01, 'x'})
			}
			sb = protowire.AppendTag(sb, streamEntries, protowire.BytesType)
			sb = protowire.AppendBytes(sb, eb)
		}
		if extra {
			sb = protowire.AppendTag(sb, 3, protowire.VarintType) // hash
			sb = protowire.AppendVarint(sb, 12345)
		}
		b = protowire.AppendTag(b, pushStreams, protowire.BytesType)
		b = protowire.AppendBytes(b, sb)
	}
	if extra {
		b = protowire.AppendTag(b, 2, protowire.BytesType) // format
		b = protowire.AppendString(b, "x")
		b = protowire.AppendTag(b, 99, protowire.StartGroupType)
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 7)
		b = protowire.AppendTag(b, 99, protowire.EndGroupType)
	}
	return b
}

// encodeJSON writes streams as Loki's JSON push body.
func encodeJSON(t testing.TB, streams []Stream) []byte {
	type body struct {
		Streams []map[string]any `json:"streams"`
	}
	var out body
	for _, s := range streams {
		var values [][]any
		for _, e := range s.Entries {
			v := []any{strconv.FormatInt(e.Timestamp, 10), e.Line}
			if !e.Metadata.IsEmpty() {
				v = append(v, e.Metadata.Map())
			}
			values = append(values, v)
		}
		out.Streams = append(out.Streams, map[string]any{"stream": s.Labels.Map(), "values": values})
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return b
}

// sampleStreams are the test's streams; long adds a 10,000-byte line (not
// for fuzz seeds: Go's fuzzer stalls minimizing inputs that large).
func sampleStreams(long ...bool) []Stream {
	longLine := "short"
	if len(long) > 0 && long[0] {
		longLine = strings.Repeat("x", 10_000)
	}
	return []Stream{
		{Labels: labels.FromStrings("app", "api", "namespace", "prod"), Entries: []Entry{
			{Timestamp: 1_700_000_000_123_456_789, Line: `level=info msg="hello \"world\""`, Metadata: labels.EmptyLabels()},
			{Timestamp: 1_700_000_001_000_000_000, Line: "ünïcödé ✓", Metadata: labels.FromStrings("span_id", "0102", "trace_id", "abcdef")},
			{Timestamp: 0, Line: "", Metadata: labels.EmptyLabels()},
		}},
		{Labels: labels.FromStrings("job", `quote"and\backslash`, "service_name", "checkout"), Entries: []Entry{
			{Timestamp: 1_700_000_002_000_000_001, Line: longLine, Metadata: labels.EmptyLabels()},
		}},
		{Labels: labels.FromStrings("k8s_pod_name", "a-b"), Entries: nil},
	}
}

func TestDecodeBothFormats(t *testing.T) {
	want := sampleStreams(true)
	for _, extra := range []bool{false, true} {
		got, err := DecodeProto(encodeProto(want, extra))
		require.NoError(t, err)
		require.Equal(t, want, got, "protobuf, unknown fields %v", extra)
	}
	got, err := DecodeJSON(encodeJSON(t, want))
	require.NoError(t, err)
	for i := range want { // JSON leaves Entries empty, not nil
		if want[i].Entries == nil {
			want[i].Entries = []Entry{}
		}
	}
	require.Equal(t, want, got, "JSON")
}

func TestDecodeErrors(t *testing.T) {
	entry := func(fields ...[]byte) []byte {
		var b []byte
		for _, f := range fields {
			b = append(b, f...)
		}
		return b
	}
	field := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	ts := func(secs, nanos uint64) []byte {
		b := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), secs)
		return protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), nanos)
	}
	push := func(lbls string, entries ...[]byte) []byte {
		s := field(streamLabels, []byte(lbls))
		for _, e := range entries {
			s = append(s, field(streamEntries, e)...)
		}
		return field(pushStreams, s)
	}
	line := field(entryLine, []byte("x"))
	for name, tc := range map[string]struct {
		body []byte
		want string
	}{
		"garbage":              {[]byte{0xff, 0xff, 0xff}, "PushRequest"},
		"truncated":            {push(`{a="b"}`, entry(field(entryTimestamp, ts(1, 0)), line))[:10], "unexpected EOF"},
		"no labels":            {field(pushStreams, field(streamEntries, entry(field(entryTimestamp, ts(1, 0)), line))), "stream 0 has no labels"},
		"regex labels":         {push(`{a=~"b"}`), `is not name="value"`},
		"empty selector":       {push(`{}`), "stream 0"},
		"duplicate label":      {push(`{a="b", a="c"}`), `label "a" given more than once`},
		"empty label value":    {push(`{a=""}`), `label "a" has an empty value`},
		"quoted label name":    {push(`{"foo-bar"="x"}`), `invalid label name "foo-bar"`},
		"invalid UTF-8 labels": {push("{a=\"\xff\"}"), "not valid UTF-8"},
		"no timestamp":         {push(`{a="b"}`, entry(line)), "stream 0 entry 0 has no timestamp"},
		"bad nanoseconds":      {push(`{a="b"}`, entry(field(entryTimestamp, ts(1, 2e9)), line)), "nanoseconds 2000000000"},
		"year 2263":            {push(`{a="b"}`, entry(field(entryTimestamp, ts(1<<40, 0)), line)), "outside 1970 to 2262"},
		"wrong wire type":      {push(`{a="b"}`, entry(protowire.AppendVarint(protowire.AppendTag(nil, entryLine, protowire.VarintType), 1))), "line: wrong wire type"},
		"metadata no name":     {push(`{a="b"}`, entry(field(entryTimestamp, ts(1, 0)), field(entryMetadata, field(pairValue, []byte("v"))))), "empty name"},
		"metadata twice":       {push(`{a="b"}`, entry(field(entryTimestamp, ts(1, 0)), field(entryMetadata, field(pairName, []byte("k"))), field(entryMetadata, field(pairName, []byte("k"))))), `"k" given more than once`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeProto(tc.body)
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
	for name, tc := range map[string]struct{ body, want string }{
		"not JSON":           {`{"streams":`, "JSON push body"},
		"invalid UTF-8":      {"{\"streams\":[{\"stream\":{\"a\":\"\xff\"}}]}", "not valid UTF-8"},
		"number timestamp":   {`{"streams":[{"stream":{"a":"b"},"values":[[1700000000000000000,"x"]]}]}`, "must be a string of Unix nanoseconds"},
		"bad timestamp":      {`{"streams":[{"stream":{"a":"b"},"values":[["yesterday","x"]]}]}`, `timestamp "yesterday"`},
		"one element":        {`{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}`, "not 1 elements"},
		"nested metadata":    {`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":{"n":1}}]]}]}`, "structured metadata must be an object of strings"},
		"no labels":          {`{"streams":[{"values":[["1","x"]]}]}`, "stream 0: a stream needs at least one label"},
		"empty label value":  {`{"streams":[{"stream":{"a":""}}]}`, `label "a" has an empty value`},
		"two values":         {`{"streams":[]} {}`, "more than one JSON value"},
		"line not a string":  {`{"streams":[{"stream":{"a":"b"},"values":[["1",5]]}]}`, "the line must be a string"},
		"negative timestamp": {`{"streams":[{"stream":{"a":"b"},"values":[["-5","x"]]}]}`, "is not Unix nanoseconds"},
		"misspelt streams":   {`{"stream":[{"stream":{"a":"b"},"values":[["1","x"]]}]}`, `unknown field "stream"`},
		"unknown field":      {`{"streams":[{"stream":{"a":"b"},"lables":{}}]}`, `unknown field "lables"`},
		"bad label name":     {`{"streams":[{"stream":{"foo-bar":"b"},"values":[["1","x"]]}]}`, `invalid label name "foo-bar"`},
		"array body":         {`[1,2,3]`, "the body must not be a JSON array"},
	} {
		t.Run("json "+name, func(t *testing.T) {
			_, err := DecodeJSON([]byte(tc.body))
			var e *Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// FuzzDecodeProto: no input crashes the decoder; what decodes encodes back
// to what decodes the same.
func FuzzDecodeProto(f *testing.F) {
	f.Add(encodeProto(sampleStreams(), false))
	f.Add(encodeProto(sampleStreams(), true))
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		streams, err := DecodeProto(b)
		if err != nil {
			var e *Error
			require.True(t, errors.As(err, &e), "error of type %T: %v", err, err)
			return
		}
		again, err := DecodeProto(encodeProto(streams, false))
		require.NoError(t, err)
		requireSameStreams(t, streams, again)
	})
}

// FuzzDecodeJSON: no input crashes the decoder; what decodes encodes back
// to what decodes the same.
func FuzzDecodeJSON(f *testing.F) {
	f.Add(string(encodeJSON(f, sampleStreams())))
	f.Add(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":"v"}]]}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		streams, err := DecodeJSON([]byte(s))
		if err != nil {
			var e *Error
			require.True(t, errors.As(err, &e), "error of type %T: %v", err, err)
			return
		}
		again, err := DecodeJSON(encodeJSON(t, streams))
		require.NoError(t, err)
		requireSameStreams(t, streams, again)
	})
}

// requireSameStreams compares without testify's diff, which takes minutes
// over long lines.
func requireSameStreams(t *testing.T, want, got []Stream) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, labels.Equal(want[i].Labels, got[i].Labels), "stream %d labels %s, then %s", i, want[i].Labels, got[i].Labels)
		require.Len(t, got[i].Entries, len(want[i].Entries), "stream %d", i)
		for j, w := range want[i].Entries {
			g := got[i].Entries[j]
			require.True(t, w.Timestamp == g.Timestamp && w.Line == g.Line && labels.Equal(w.Metadata, g.Metadata),
				"stream %d entry %d: %d %q %s, then %d %q %s", i, j, w.Timestamp, truncate(w.Line), w.Metadata, g.Timestamp, truncate(g.Line), g.Metadata)
		}
	}
}

// BenchmarkDecodeProto decodes a push of 64 streams of 16 lines each.
func BenchmarkDecodeProto(b *testing.B) {
	var streams []Stream
	raw := 0
	for s := 0; s < 64; s++ {
		st := Stream{Labels: labels.FromStrings("app", "bench", "pod", fmt.Sprintf("pod-%d", s))}
		for e := 0; e < 16; e++ {
			line := fmt.Sprintf(`ts=2026-12-01T10:00:00Z level=info msg="request served" path=/api/v1/items/%d status=200 duration=12.3ms trace_id=4bf92f3577b34da6a3ce929d0e0e4736`, e)
			raw += len(line)
			st.Entries = append(st.Entries, Entry{Timestamp: int64(1e18 + e), Line: line, Metadata: labels.EmptyLabels()})
		}
		streams = append(streams, st)
	}
	body := encodeProto(streams, false)
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeProto(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParsePlainLabels: the fast reading of agents' labels agrees with the
// PromQL parser's wherever it accepts the input.
func FuzzParsePlainLabels(f *testing.F) {
	for _, s := range []string{`{a="b"}`, `{app="api", pod="p-1"}`, `{ a = "b" ,}`, `{a="b",a="c"}`, `{a=""}`, `{a="\"x"}`, `{}`, `{1a="b"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := parsePlainLabels(s)
		if !ok || !utf8.ValidString(s) {
			return
		}
		ms, err := selectorParser.ParseMetricSelector(s)
		require.NoError(t, err, "accepted %q", s)
		sb := labels.NewScratchBuilder(len(ms))
		for _, m := range ms {
			require.Equal(t, labels.MatchEqual, m.Type)
			sb.Add(m.Name, m.Value)
		}
		sb.Sort()
		require.Equal(t, sb.Labels().String(), fast.String(), "%q", s)
	})
}
