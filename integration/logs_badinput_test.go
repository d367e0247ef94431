package integration

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogsBadInput sends the Loki push API what broken and hostile clients
// send — garbage, bad compression, decompression bombs, lines too long or
// not UTF-8, bad timestamps, unknown JSON fields, streams without labels or
// with too many — and requires for each a 4xx answer whose body names the
// problem (and the flag, where a limit applies), the process up after each,
// and, where a push mixes good entries with bad ones, exactly the good ones
// written.
func TestLogsBadInput(t *testing.T) {
	requireIntegration(t)
	const maxDecompressed = 12 << 20
	node := startLogsNode(t, "-distributor.max-decompressed-size="+strconv.Itoa(maxDecompressed))
	const tenant = "logs-bad"

	now := time.Now()
	start, end := now.Add(-time.Hour).UnixNano(), now.Add(time.Minute).UnixNano()
	tsN := now.Add(-time.Minute).UnixNano()
	nextTS := func() int64 { tsN += 1001; return tsN }
	stream := func(name string, extra ...string) map[string]string {
		ls := map[string]string{"suite": "bad", "case": name}
		for i := 0; i+1 < len(extra); i += 2 {
			ls[extra[i]] = extra[i+1]
		}
		return ls
	}
	good := func(name string) logStream {
		return logStream{labels: stream(name), entries: []logEntry{{ts: nextTS(), line: "good entry of " + name}}}
	}
	// withBad returns the good stream of a case and the same stream with
	// bad entries added after its good one.
	withBad := func(name string, bad ...logEntry) (logStream, logStream) {
		g := good(name)
		sent := g
		sent.entries = append(append([]logEntry(nil), g.entries...), bad...)
		return g, sent
	}
	zeros := make([]byte, 32<<20) // 32 MiB, far over the 12 MiB limit once inflated
	jsonOf := func(s string) []byte { return []byte(s) }
	ts := func() string { return strconv.FormatInt(nextTS(), 10) }

	type badCase struct {
		name        string
		contentType string // "": the body is a protobuf to snappy-compress
		encoding    string
		path        string // "": the Loki push API
		body        []byte
		code        int      // 0: any 4xx
		want        []string // in the answer
		written     []logStream
	}
	var cases []badCase
	add := func(c badCase) { cases = append(cases, c) }

	add(badCase{name: "garbage protobuf body", contentType: "application/x-protobuf", body: []byte("this is not snappy, nor protobuf"), code: 400, want: []string{"snappy"}})
	add(badCase{name: "garbage JSON body", contentType: "application/json", body: jsonOf(`{"streams":[{"stream":`), code: 400, want: []string{"JSON"}})
	add(badCase{name: "JSON not an object", contentType: "application/json", body: jsonOf(`[1,2,3]`), code: 400, want: []string{"JSON"}})
	{
		b := snappyBlock(lokiProto([]logStream{good("bad snappy")}))
		add(badCase{name: "bad snappy", contentType: "application/x-protobuf", body: b[:len(b)-7], code: 400, want: []string{"snappy"}})
	}
	add(badCase{name: "snappy of garbage", contentType: "application/x-protobuf", body: snappyBlock([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}), code: 400, want: []string{"PushRequest"}})
	add(badCase{name: "gzip bomb", contentType: "application/json", encoding: "gzip", body: gzipped(t, zeros), code: 413, want: []string{"-distributor.max-decompressed-size"}})
	add(badCase{name: "zstd bomb", contentType: "application/json", encoding: "zstd", body: zstded(t, zeros), code: 413, want: []string{"-distributor.max-decompressed-size"}})
	add(badCase{name: "snappy bomb", contentType: "application/x-protobuf", body: snappyBlock(zeros), code: 413, want: []string{"-distributor.max-decompressed-size"}})
	add(badCase{name: "gzip bomb on OTLP", contentType: "application/x-protobuf", path: otlpLogsPath, encoding: "gzip", body: gzipped(t, zeros), code: 413, want: []string{"-distributor.max-decompressed-size"}})
	add(badCase{name: "not gzip", contentType: "application/json", encoding: "gzip", body: lokiJSON([]logStream{good("not gzip")}), code: 400, want: []string{"gzip"}})
	add(badCase{name: "unknown content encoding", contentType: "application/json", encoding: "br", body: lokiJSON([]logStream{good("br")}), code: 415, want: []string{"Content-Encoding", "br"}})
	add(badCase{name: "unknown content type", contentType: "text/plain", body: []byte("a line"), code: 415, want: []string{"text/plain"}})
	add(badCase{name: "garbage OTLP", contentType: "application/x-protobuf", path: otlpLogsPath, body: []byte("\xff\xff\xff\xff not OTLP"), code: 400, want: []string{"OTLP"}})

	{
		g, sent := withBad("10 MB line", logEntry{ts: nextTS(), line: strings.Repeat("x", 10_000_000)})
		add(badCase{name: g.labels["case"], body: lokiProto([]logStream{sent}), code: 400, want: []string{"10000000 bytes", "-validation.logs.max-line-size"}, written: []logStream{g}})
	}
	{
		g, sent := withBad("invalid UTF-8 line", logEntry{ts: nextTS(), line: "bad \xff\xfe bytes"})
		add(badCase{name: g.labels["case"], body: lokiProto([]logStream{sent}), code: 400, want: []string{"UTF-8"}, written: []logStream{g}})
	}
	add(badCase{name: "invalid UTF-8 in JSON", contentType: "application/json", body: []byte(`{"streams":[{"stream":{"suite":"bad","case":"json utf8"},"values":[["` + ts() + "\",\"bad \xff\xfe bytes\"]]}]}"), code: 400, want: []string{"UTF-8"}})
	add(badCase{name: "non-numeric timestamp", contentType: "application/json", body: jsonOf(`{"streams":[{"stream":{"suite":"bad","case":"ts"},"values":[["yesterday","x"]]}]}`), code: 400, want: []string{"timestamp", "yesterday"}})
	add(badCase{name: "negative timestamp", contentType: "application/json", body: jsonOf(`{"streams":[{"stream":{"suite":"bad","case":"ts"},"values":[["-1000","x"]]}]}`), code: 400, want: []string{"timestamp", "-1000"}})
	add(badCase{name: "timestamp as a JSON number", contentType: "application/json", body: jsonOf(`{"streams":[{"stream":{"suite":"bad","case":"ts"},"values":[[` + ts() + `,"x"]]}]}`), code: 400, want: []string{"timestamp"}})
	add(badCase{name: "negative protobuf timestamp", body: pbAppendMessage(nil, pbPushStreams, protoStream(`{suite="bad", case="pbts"}`, protoEntry(protoTimestamp(-5, 0), "x", nil))), code: 400, want: []string{"timestamp"}})
	add(badCase{name: "protobuf nanoseconds out of range", body: pbAppendMessage(nil, pbPushStreams, protoStream(`{suite="bad", case="pbts"}`, protoEntry(protoTimestamp(now.Unix(), 1_500_000_000), "x", nil))), code: 400, want: []string{"nanoseconds"}})
	add(badCase{name: "protobuf entry without timestamp", body: pbAppendMessage(nil, pbPushStreams, protoStream(`{suite="bad", case="pbts"}`, pbAppendString(nil, pbEntryLine, "x"))), code: 400, want: []string{"timestamp"}})
	{
		g, sent := withBad("far future", logEntry{ts: now.Add(time.Hour).UnixNano(), line: "from the future"})
		add(badCase{name: g.labels["case"], contentType: "application/json", body: lokiJSON([]logStream{sent}), code: 400, want: []string{"future", "-validation.logs.create-grace-period"}, written: []logStream{g}})
	}
	{
		g, sent := withBad("too old", logEntry{ts: now.Add(-8 * 24 * time.Hour).UnixNano(), line: "from last week"})
		// Out of order: older than the good entry, as an agent catching up.
		add(badCase{name: g.labels["case"], body: lokiProto([]logStream{sent}), code: 400, want: []string{"older", "-validation.logs.reject-old-samples-max-age"}, written: []logStream{g}})
	}
	add(badCase{name: "unknown top-level JSON field", contentType: "application/json", body: jsonOf(`{"stream":[{"stream":{"suite":"bad","case":"typo"},"values":[["` + ts() + `","x"]]}]}`), want: []string{`"stream"`}})
	add(badCase{name: "unknown stream JSON field", contentType: "application/json", body: jsonOf(`{"streams":[{"stream":{"suite":"bad","case":"typo"},"values":[["` + ts() + `","x"]],"lables":{"a":"b"}}]}`), want: []string{`"lables"`}})
	add(badCase{name: "Loki's legacy JSON shape", contentType: "application/json", body: jsonOf(`{"streams":[{"labels":"{suite=\"bad\"}","entries":[{"ts":"2024-01-01T00:00:00Z","line":"x"}]}]}`), want: []string{"label"}})
	add(badCase{name: "JSON stream without labels", contentType: "application/json", body: jsonOf(`{"streams":[{"stream":{},"values":[["` + ts() + `","x"]]}]}`), code: 400, want: []string{"label"}})
	add(badCase{name: "protobuf stream with empty labels", body: pbAppendMessage(nil, pbPushStreams, protoStream(`{}`, protoEntry(protoTimestamp(now.Unix(), 0), "x", nil))), code: 400, want: []string{"label"}})
	add(badCase{name: "protobuf stream without labels field", body: pbAppendMessage(nil, pbPushStreams, pbAppendMessage(nil, pbStreamEntries, protoEntry(protoTimestamp(now.Unix(), 0), "x", nil))), code: 400, want: []string{"no labels"}})
	add(badCase{name: "protobuf labels not a selector", body: pbAppendMessage(nil, pbPushStreams, protoStream(`suite=bad`, protoEntry(protoTimestamp(now.Unix(), 0), "x", nil))), code: 400, want: []string{"suite=bad"}})
	add(badCase{name: "protobuf labels with a regexp", body: pbAppendMessage(nil, pbPushStreams, protoStream(`{suite=~"bad"}`, protoEntry(protoTimestamp(now.Unix(), 0), "x", nil))), code: 400, want: []string{`suite=~"bad"`}})
	add(badCase{name: "empty label value", contentType: "application/json", body: jsonOf(`{"streams":[{"stream":{"suite":"bad","case":""},"values":[["` + ts() + `","x"]]}]}`), code: 400, want: []string{"case", "empty"}})
	{
		var many []string
		for i := 0; i < 16; i++ {
			many = append(many, fmt.Sprintf("l%02d", i), "v")
		}
		g := good("too many labels")
		bad := logStream{labels: stream("too many labels", many...), entries: []logEntry{{ts: nextTS(), line: "18 labels"}}}
		add(badCase{name: "too many labels", contentType: "application/json", body: lokiJSON([]logStream{bad, g}), code: 400, want: []string{"18 labels", "-validation.logs.max-label-names-per-stream"}, written: []logStream{g}})
	}
	{
		g := good("label value too long")
		bad := logStream{labels: stream("label value too long", "long", strings.Repeat("v", 3000)), entries: []logEntry{{ts: nextTS(), line: "x"}}}
		add(badCase{name: "label value too long", body: lokiProto([]logStream{g, bad}), code: 400, want: []string{"long", "-validation.logs.max-length-label-value"}, written: []logStream{g}})
	}
	{
		g, sent := withBad("structured metadata too large", logEntry{ts: nextTS(), line: "x", md: map[string]string{"big": strings.Repeat("m", 70_000)}})
		add(badCase{name: g.labels["case"], body: lokiProto([]logStream{sent}), code: 400, want: []string{"structured metadata", "-validation.logs.max-structured-metadata-size"}, written: []logStream{g}})
	}
	// A stream label that is not a label name: Loki refuses it ("invalid
	// label name"); no LogQL selector could name it.
	add(badCase{name: "invalid label name in JSON", contentType: "application/json", body: lokiJSON([]logStream{{labels: stream("bad name json", "foo-bar", "x"), entries: []logEntry{{ts: nextTS(), line: "x"}}}}), code: 400, want: []string{"foo-bar"}})
	add(badCase{name: "invalid label name in protobuf", body: pbAppendMessage(nil, pbPushStreams, protoStream(`{suite="bad", case="bad name pb", "foo-bar"="x"}`, protoEntry(protoTimestamp(now.Unix(), 0), "x", nil))), code: 400, want: []string{"foo-bar"}})

	var written []logStream
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var (
				r   response
				err error
			)
			if c.path != "" {
				var hdr map[string]string
				if c.encoding != "" {
					hdr = map[string]string{"Content-Encoding": c.encoding}
				}
				r, err = doTimeout(30*time.Second, http.MethodPost, node.url()+c.path, tenant, c.contentType, c.body, hdr)
			} else {
				r, err = pushLoki(node.url(), tenant, c.contentType, c.encoding, c.body)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("answer: %s", truncateBody([]byte(r.String())))
			if c.code != 0 && r.code != c.code || r.code < 400 || r.code > 499 {
				want := "4xx"
				if c.code != 0 {
					want = strconv.Itoa(c.code)
				}
				t.Errorf("answer %s, want %s", truncateBody([]byte(r.String())), want)
			}
			for _, w := range c.want {
				if !strings.Contains(string(r.body), w) {
					t.Errorf("answer %s does not name %q", truncateBody([]byte(r.String())), w)
				}
			}
			if code, body, err := httpGet(node.url()+"/ready", nil); err != nil || code != http.StatusOK {
				t.Fatalf("after %s: /ready %d %s %v", c.name, code, body, err)
			}
		})
		written = append(written, c.written...)
	}

	// Exactly the good entries were written: none of the rejected ones,
	// every accepted one.
	lokiAPI{base: node.url(), tenant: tenant}.checkLogs(t, `{suite="bad"}`, start, end, written)

	_, body, err := httpGet(node.url()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"line_too_long", "too_old", "too_far_in_future", "invalid_labels", "invalid_utf8", "structured_metadata_too_large"} {
		if v, ok := metricValue(body, "canopy_discarded_log_entries_total", map[string]string{"tenant": tenant, "reason": reason}); !ok || v < 1 {
			t.Errorf("canopy_discarded_log_entries_total{reason=%q} = %v (found %v), want at least 1", reason, v, ok)
		}
	}
	if !node.running() {
		t.Fatal("the process exited")
	}
}
