package integration

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// formatEntries are the distinctive lines every push format carries, made
// distinct per format by tag: unicode (astral, CJK, combining, right to
// left, joiners), tabs, quotes and backslashes, control characters and
// NUL, CR LF and U+2028, a trailing newline, a 64 KiB line, two entries at
// one nanosecond, structured metadata on some. Timestamps use every
// nanosecond digit.
func formatEntries(tag string, base int64) []logEntry {
	long := make([]byte, 0, 64<<10)
	for i := 0; len(long) < 64<<10; i++ {
		long = fmt.Appendf(long, "%s %06d ÿ€𝄞|", tag, i)
	}
	long = long[:64<<10]
	for !utf8.Valid(long) { // cut inside a rune: end in ASCII instead
		long = long[:len(long)-1]
	}
	for len(long) < 64<<10 {
		long = append(long, '.')
	}
	ts := func(i int) int64 { return base + int64(i)*1_234_567_891 + 7 }
	return []logEntry{
		{ts: ts(0), line: "plain ascii line " + tag},
		{ts: ts(1), line: "unicode 🌲 日本語 café cafe\u0301 עברית \u200fRTL 👩\u200d💻 Ωμέγα " + tag},
		{ts: ts(2), line: "tabs\tand \"double\" and 'single' quotes \\ backslash \\n not a newline " + tag},
		{ts: ts(3), line: `{"level":"info","msg":"json \"body\"","format":"` + tag + `"}`, md: map[string]string{"trace_id": "0af7651916cd43dd8448eb211c80319c", "user": "zoë 🌲"}},
		{ts: ts(4), line: "control \x00 nul \x01 \x1b[31mred\x1b[0m \r\n crlf \u2028 line separator <tag>&amp; " + tag},
		{ts: ts(5), line: string(long)},
		{ts: ts(5), line: "same nanosecond as the long line " + tag, md: map[string]string{"k": `v with spaces = and "quotes" \ and 日本`}},
		{ts: ts(6), line: "trailing newline " + tag + "\n"},
		{ts: ts(7), line: `level=warn msg="logfmt line" format=` + tag, md: map[string]string{"pod": "p-1"}},
	}
}

// otlpLogs builds an OTLP request carrying entries as Loki's OTLP mapping
// sees them, and the stream it must be read back as: resource service.name
// an index label, host.name structured metadata, scope name and version,
// record attributes, severity, observed time.
func otlpLogs(service string, entries []logEntry) (plogotlp.ExportRequest, logStream) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", service)
	rl.Resource().Attributes().PutStr("host.name", "it-host")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("canopy-it")
	sl.Scope().SetVersion("1.2.3")
	want := logStream{labels: map[string]string{"service_name": service}}
	for i, e := range entries {
		rec := sl.LogRecords().AppendEmpty()
		rec.SetTimestamp(pcommon.Timestamp(e.ts))
		rec.Body().SetStr(e.line)
		md := map[string]string{"host_name": "it-host", "scope_name": "canopy-it", "scope_version": "1.2.3"}
		for k, v := range e.md {
			rec.Attributes().PutStr(k, v)
			md[k] = v
		}
		if i == 1 {
			rec.SetSeverityText("INFO")
			rec.SetSeverityNumber(plog.SeverityNumberInfo)
			rec.SetObservedTimestamp(pcommon.Timestamp(e.ts + 5))
			rec.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
			md["severity_text"] = "INFO"
			md["severity_number"] = "9"
			md["observed_timestamp"] = strconv.FormatInt(e.ts+5, 10)
			md["span_id"] = "0102030405060708"
		}
		want.entries = append(want.entries, logEntry{ts: e.ts, line: e.line, md: md})
	}
	return plogotlp.NewExportRequestFromLogs(ld), want
}

// pushOTLPHTTP POSTs an OTLP logs request as protobuf or JSON and requires
// 200 and a response without rejections.
func pushOTLPHTTP(t *testing.T, u, tenant string, req plogotlp.ExportRequest, asJSON bool) {
	t.Helper()
	var (
		body []byte
		err  error
		ct   = "application/x-protobuf"
	)
	if asJSON {
		body, err = req.MarshalJSON()
		ct = "application/json"
	} else {
		body, err = req.MarshalProto()
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := do(http.MethodPost, u, tenant, ct, body, nil)
	if err != nil {
		t.Fatalf("OTLP push to %s: %v", u, err)
	}
	if r.code != http.StatusOK {
		t.Fatalf("OTLP push (%s) to %s: %s, want 200", ct, u, r)
	}
	resp := plogotlp.NewExportResponse()
	if asJSON {
		err = resp.UnmarshalJSON(r.body)
	} else {
		err = resp.UnmarshalProto(r.body)
	}
	if err != nil {
		t.Fatalf("OTLP push (%s) to %s: decoding the answer: %v", ct, u, err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedLogRecords() != 0 || ps.ErrorMessage() != "" {
		t.Fatalf("OTLP push (%s) to %s: %d rejected: %s", ct, u, ps.RejectedLogRecords(), ps.ErrorMessage())
	}
}

// TestLogsPushFormats pushes the same distinctive lines in every format the
// distributor takes (Loki's snappy protobuf and JSON, each plain, gzip and
// zstd; OTLP over HTTP as protobuf and JSON on both ports, OTLP gRPC), each
// to a stream of its own, and reads every one back through the Loki API
// byte for byte: lines, nanosecond timestamps, stream labels and
// structured metadata, with and without categorized labels. A metric
// query, labels, label values and series answer what was pushed, per
// tenant.
func TestLogsPushFormats(t *testing.T) {
	requireIntegration(t)
	ports := freePorts(t, 2)
	otlpGRPC := "127.0.0.1:" + strconv.Itoa(ports[0])
	otlpHTTP := "127.0.0.1:" + strconv.Itoa(ports[1])
	node := startLogsNode(t, "-distributor.otlp.grpc-listen-address="+otlpGRPC, "-distributor.otlp.http-listen-address="+otlpHTTP)

	const lokiTenant, otlpTenant = "logs-formats", "logs-formats-otlp"
	now := time.Now()
	base := now.Add(-5*time.Minute).Truncate(time.Second).UnixNano() + 123_456_789
	start, end := base-int64(time.Minute), now.Add(time.Minute).UnixNano()

	// Loki's push API: one stream per format and encoding.
	lokiFormats := []struct {
		name, contentType, encoding string
		reverse                     bool // entries sent newest first
	}{
		{name: "proto"},
		{name: "proto-gzip", encoding: "gzip"},
		{name: "proto-zstd", encoding: "zstd"},
		{name: "json", contentType: "application/json", reverse: true},
		{name: "json-gzip", contentType: "application/json", encoding: "gzip"},
		{name: "json-zstd", contentType: "application/json; charset=utf-8", encoding: "zstd"},
	}
	var lokiStreams []logStream
	for _, f := range lokiFormats {
		s := logStream{labels: map[string]string{"suite": "formats", "format": f.name}, entries: formatEntries(f.name, base)}
		lokiStreams = append(lokiStreams, s)
		sent := s
		if f.reverse {
			sent.entries = slices.Clone(s.entries)
			slices.Reverse(sent.entries)
		}
		var body []byte
		if f.contentType == "" {
			body = lokiProto([]logStream{sent})
		} else {
			body = lokiJSON([]logStream{sent})
		}
		switch f.encoding {
		case "gzip":
			if f.contentType == "" {
				// Content-Encoding wraps the snappy-compressed protobuf.
				body = gzipped(t, snappyBlock(body))
			} else {
				body = gzipped(t, body)
			}
		case "zstd":
			if f.contentType == "" {
				body = zstded(t, snappyBlock(body))
			} else {
				body = zstded(t, body)
			}
		}
		ct := f.contentType
		if ct == "" && f.encoding != "" {
			ct = "application/x-protobuf" // body already snappy-compressed
		}
		mustPushLoki(t, node.url(), lokiTenant, ct, f.encoding, body)
	}

	// OTLP: over HTTP on the main port (protobuf, JSON), on the OTLP HTTP
	// port, and over gRPC.
	var otlpStreams []logStream
	otlpPush := func(service string, push func(plogotlp.ExportRequest)) {
		req, want := otlpLogs(service, formatEntries(service, base))
		push(req)
		otlpStreams = append(otlpStreams, want)
	}
	otlpPush("otlp-http-proto", func(r plogotlp.ExportRequest) {
		pushOTLPHTTP(t, node.url()+otlpLogsPath, otlpTenant, r, false)
	})
	otlpPush("otlp-http-json", func(r plogotlp.ExportRequest) {
		pushOTLPHTTP(t, node.url()+otlpLogsPath, otlpTenant, r, true)
	})
	otlpPush("otlp-port-http", func(r plogotlp.ExportRequest) {
		pushOTLPHTTP(t, "http://"+otlpHTTP+"/v1/logs", otlpTenant, r, false)
	})
	otlpPush("otlp-grpc", func(r plogotlp.ExportRequest) {
		conn, err := grpc.NewClient(otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := plogotlp.NewGRPCClient(conn).Export(metadata.AppendToOutgoingContext(ctx, tenantHeader, otlpTenant), r)
		if err != nil {
			t.Fatalf("OTLP gRPC export to %s: %v", otlpGRPC, err)
		}
		if ps := resp.PartialSuccess(); ps.RejectedLogRecords() != 0 || ps.ErrorMessage() != "" {
			t.Fatalf("OTLP gRPC export: %d rejected: %s", ps.RejectedLogRecords(), ps.ErrorMessage())
		}
	})

	loki := lokiAPI{base: node.url(), tenant: lokiTenant}
	otlp := lokiAPI{base: node.url(), tenant: otlpTenant}

	t.Run("read back", func(t *testing.T) {
		for _, s := range lokiStreams {
			loki.checkLogs(t, lokiSelector(s.labels), start, end, []logStream{s})
		}
		loki.checkLogs(t, `{suite="formats"}`, start, end, lokiStreams)
		for _, s := range otlpStreams {
			otlp.checkLogs(t, lokiSelector(s.labels), start, end, []logStream{s})
		}
		otlp.checkLogs(t, `{service_name=~"otlp-.+"}`, start, end, otlpStreams)
		// Structured metadata filters like a label, and a line filter
		// matches inside the long line.
		loki.checkLogs(t, `{suite="formats"} | user="zoë 🌲"`, start, end, filterEntries(lokiStreams, func(e logEntry) bool { return e.md["user"] == "zoë 🌲" }))
		otlp.checkLogs(t, `{service_name="otlp-grpc"} |= "otlp-grpc 000100 ÿ€𝄞|"`, start, end, filterEntries(otlpStreams[3:], func(e logEntry) bool { return len(e.line) == 64<<10 }))
	})

	t.Run("tenants", func(t *testing.T) {
		for _, c := range []struct {
			api   lokiAPI
			query string
		}{{loki, `{service_name=~".+"}`}, {otlp, `{suite="formats"}`}} {
			got, err := c.api.queryLogs(c.query, start, end, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Errorf("tenant %s reads %d entries of %s, the other tenant's: %v", c.api.tenant, len(got), c.query, firstN(got, 3))
			}
		}
	})

	t.Run("metric query", func(t *testing.T) {
		got, err := loki.metricVector(`sum by (format) (count_over_time({suite="formats"}[1h]))`, end)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, f := range lokiFormats {
			want[lokiSelector(map[string]string{"format": f.name})] = strconv.Itoa(len(formatEntries(f.name, base)))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("count_over_time by format: %v, want %v", got, want)
		}
		got, err = otlp.metricVector(`sum(count_over_time({service_name=~"otlp-.+"} |= "🌲" [1h]))`, end)
		if err != nil {
			t.Fatal(err)
		}
		// One line of each stream holds the tree (another's structured
		// metadata does, which |= does not search).
		if want := map[string]string{"{}": strconv.Itoa(len(otlpStreams))}; !reflect.DeepEqual(got, want) {
			t.Errorf(`count_over_time |= "🌲": %v, want %v`, got, want)
		}
	})

	t.Run("labels and series", func(t *testing.T) {
		rng := url.Values{"start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}}
		for _, c := range []struct {
			api  lokiAPI
			want []string
		}{
			// Structured metadata names are not labels.
			{loki, []string{"format", "suite"}},
			{otlp, []string{"service_name"}},
		} {
			var names []string
			if err := c.api.data("labels", rng, &names); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names, c.want) {
				t.Errorf("tenant %s labels: %v, want %v", c.api.tenant, names, c.want)
			}
		}
		var values []string
		if err := loki.data("label/format/values", rng, &values); err != nil {
			t.Fatal(err)
		}
		var wantValues []string
		for _, f := range lokiFormats {
			wantValues = append(wantValues, f.name)
		}
		slices.Sort(wantValues)
		if !reflect.DeepEqual(values, wantValues) {
			t.Errorf("label/format/values: %v, want %v", values, wantValues)
		}
		values = nil
		if err := otlp.data("label/service_name/values", rng, &values); err != nil {
			t.Fatal(err)
		}
		if want := []string{"otlp-grpc", "otlp-http-json", "otlp-http-proto", "otlp-port-http"}; !reflect.DeepEqual(values, want) {
			t.Errorf("label/service_name/values: %v, want %v", values, want)
		}

		for _, c := range []struct {
			api     lokiAPI
			match   string
			streams []logStream
		}{
			{loki, `{suite="formats"}`, lokiStreams},
			{loki, `{format=~"json.*"}`, lokiStreams[3:]},
			{otlp, `{service_name=~".+"}`, otlpStreams},
		} {
			var series []map[string]string
			params := maps.Clone(rng)
			params.Set("match[]", c.match)
			if err := c.api.data("series", params, &series); err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, s := range series {
				got = append(got, lokiSelector(s))
			}
			for _, s := range c.streams {
				want = append(want, lokiSelector(s.labels))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("tenant %s series %s: %v, want %v", c.api.tenant, c.match, got, want)
			}
		}
	})

	// The same bytes come back from the bucket's blocks: flushed, the
	// ingester's directory deleted, the process started again.
	t.Run("from the bucket", func(t *testing.T) {
		postEach(t, []*canopyNode{node}, "/ingester/flush")
		node.terminate(t, 60*time.Second)
		if err := os.RemoveAll(filepath.Join(node.dataDir, "ingester")); err != nil {
			t.Fatal(err)
		}
		node.start(t)
		node.waitReady(t, 60*time.Second)
		loki.checkLogs(t, `{suite="formats"}`, start, end, lokiStreams)
		otlp.checkLogs(t, `{service_name=~"otlp-.+"}`, start, end, otlpStreams)
	})
}

// filterEntries returns the streams with only the entries keep keeps.
func filterEntries(streams []logStream, keep func(logEntry) bool) []logStream {
	var out []logStream
	for _, s := range streams {
		f := logStream{labels: s.labels}
		for _, e := range s.entries {
			if keep(e) {
				f.entries = append(f.entries, e)
			}
		}
		if len(f.entries) > 0 {
			out = append(out, f)
		}
	}
	return out
}
