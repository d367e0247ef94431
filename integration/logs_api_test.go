package integration

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/encoding/protowire"
)

// The helpers of the logs tests: Loki push bodies built by hand (the
// protobuf with protowire, field numbers of Loki's push.proto as
// pkg/logpush documents them), and the Loki query API read back into
// records that compare byte for byte.

const (
	lokiPushPath  = "/loki/api/v1/push"
	lokiQueryPath = "/loki/api/v1/"
	otlpLogsPath  = "/otlp/v1/logs"
	// lokiMaxLimit is the default -querier.logs.max-entries-limit-per-query.
	lokiMaxLimit = 5000
)

// logEntry is one pushed log line.
type logEntry struct {
	ts   int64             // Unix nanoseconds
	line string            // as sent
	md   map[string]string // structured metadata; nil: none
}

// logStream is a stream as pushed: its index labels and entries.
type logStream struct {
	labels  map[string]string
	entries []logEntry
}

// lokiSelector renders labels as the protobuf push carries them,
// {a="b", c="d"}, names sorted.
func lokiSelector(ls map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(ls)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(ls[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// Field numbers of Loki's logproto.PushRequest (push.proto) and
// google.protobuf.Timestamp.
const (
	pbPushStreams    = 1
	pbStreamLabels   = 1
	pbStreamEntries  = 2
	pbEntryTimestamp = 1
	pbEntryLine      = 2
	pbEntryMetadata  = 3
	pbPairName       = 1
	pbPairValue      = 2
	pbTsSeconds      = 1
	pbTsNanos        = 2
)

func pbAppendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func pbAppendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// protoTimestamp encodes a google.protobuf.Timestamp of secs and nanos as
// given (so tests can send invalid ones).
func protoTimestamp(secs int64, nanos int32) []byte {
	var b []byte
	b = protowire.AppendTag(b, pbTsSeconds, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(secs))
	b = protowire.AppendTag(b, pbTsNanos, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(int64(nanos)))
}

// protoEntry encodes a logproto.EntryAdapter with the timestamp already
// encoded.
func protoEntry(ts []byte, line string, md map[string]string) []byte {
	var b []byte
	b = pbAppendMessage(b, pbEntryTimestamp, ts)
	b = pbAppendString(b, pbEntryLine, line)
	for _, k := range slices.Sorted(maps.Keys(md)) {
		var p []byte
		p = pbAppendString(p, pbPairName, k)
		p = pbAppendString(p, pbPairValue, md[k])
		b = pbAppendMessage(b, pbEntryMetadata, p)
	}
	return b
}

// protoStream encodes a logproto.StreamAdapter of a labels string as given
// and entries already encoded.
func protoStream(labels string, entries ...[]byte) []byte {
	var b []byte
	b = pbAppendString(b, pbStreamLabels, labels)
	for _, e := range entries {
		b = pbAppendMessage(b, pbStreamEntries, e)
	}
	return b
}

// lokiProto encodes streams as an (uncompressed) logproto.PushRequest.
func lokiProto(streams []logStream) []byte {
	var b []byte
	for _, s := range streams {
		var es [][]byte
		for _, e := range s.entries {
			es = append(es, protoEntry(protoTimestamp(e.ts/1e9, int32(e.ts%1e9)), e.line, e.md))
		}
		b = pbAppendMessage(b, pbPushStreams, protoStream(lokiSelector(s.labels), es...))
	}
	return b
}

// lokiJSON encodes streams as Loki's JSON push body.
func lokiJSON(streams []logStream) []byte {
	type jsonStream struct {
		Stream map[string]string `json:"stream"`
		Values [][]any           `json:"values"`
	}
	body := struct {
		Streams []jsonStream `json:"streams"`
	}{}
	for _, s := range streams {
		js := jsonStream{Stream: s.labels}
		for _, e := range s.entries {
			v := []any{strconv.FormatInt(e.ts, 10), e.line}
			if e.md != nil {
				v = append(v, e.md)
			}
			js.Values = append(js.Values, v)
		}
		body.Streams = append(body.Streams, js)
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // only strings: cannot happen
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// snappyBlock compresses b as Promtail does (snappy's block format).
func snappyBlock(b []byte) []byte { return snappy.Encode(nil, b) }

// pushLoki POSTs a Loki push body: contentType "" is snappy protobuf as
// Promtail sends it (body is then the uncompressed protobuf), else sent as
// given; encoding is the Content-Encoding header, body already encoded.
func pushLoki(base, tenant, contentType, encoding string, body []byte) (response, error) {
	if contentType == "" {
		contentType = "application/x-protobuf"
		body = snappyBlock(body)
	}
	var hdr map[string]string
	if encoding != "" {
		hdr = map[string]string{"Content-Encoding": encoding}
	}
	return doTimeout(30*time.Second, http.MethodPost, base+lokiPushPath, tenant, contentType, body, hdr)
}

// mustPushLoki pushes and fails the test unless the answer is 204.
func mustPushLoki(t *testing.T, base, tenant, contentType, encoding string, body []byte) {
	t.Helper()
	r, err := pushLoki(base, tenant, contentType, encoding, body)
	if err != nil {
		t.Fatalf("Loki push (%s %s): %v", contentType, encoding, err)
	}
	if r.code != http.StatusNoContent {
		t.Fatalf("Loki push (%s %s): %s, want 204", contentType, encoding, r)
	}
}

// logRecord is one entry as the query API returned it, in a form that
// compares exactly: labels and metadata as sorted selectors, the timestamp
// as the string on the wire.
type logRecord struct {
	labels string
	ts     string
	line   string
	md     string // "" when the answer carries none
}

func (r logRecord) String() string {
	line := r.line
	if len(line) > 80 {
		line = fmt.Sprintf("%s…(%d bytes)", line[:80], len(line))
	}
	s := fmt.Sprintf("%s %s %q", r.labels, r.ts, line)
	if r.md != "" {
		s += " md=" + r.md
	}
	return s
}

func compareRecords(a, b logRecord) int {
	return cmp.Or(strings.Compare(a.labels, b.labels), strings.Compare(a.ts, b.ts), strings.Compare(a.line, b.line), strings.Compare(a.md, b.md))
}

// wantRecords is what a query over streams must return: with categorize,
// stream labels and structured metadata apart; without, as Loki answers,
// the metadata merged into the stream's labels.
func wantRecords(streams []logStream, categorize bool) []logRecord {
	var out []logRecord
	for _, s := range streams {
		for _, e := range s.entries {
			r := logRecord{labels: lokiSelector(s.labels), ts: strconv.FormatInt(e.ts, 10), line: e.line}
			if categorize {
				if len(e.md) > 0 {
					r.md = lokiSelector(e.md)
				}
			} else if len(e.md) > 0 {
				merged := maps.Clone(s.labels)
				maps.Copy(merged, e.md)
				r.labels = lokiSelector(merged)
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compareRecords)
	return out
}

// diffRecords reports how got differs from want (both sorted), or "".
func diffRecords(got, want []logRecord) string {
	var missing, extra []logRecord
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want) || i < len(got) && compareRecords(got[i], want[j]) < 0:
			extra = append(extra, got[i])
			i++
		case i == len(got) || compareRecords(got[i], want[j]) > 0:
			missing = append(missing, want[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	return fmt.Sprintf("%d records, want %d: %d missing, e.g. %v; %d unexpected, e.g. %v", len(got), len(want), len(missing), firstN(missing, 3), len(extra), firstN(extra, 3))
}

func firstN[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// lokiAPI is the Loki query API of one node, as one tenant.
type lokiAPI struct {
	base, tenant string
}

func (l lokiAPI) call(path string, params url.Values, hdr map[string]string) (response, error) {
	return doTimeout(60*time.Second, http.MethodGet, l.base+lokiQueryPath+path+"?"+params.Encode(), l.tenant, "", nil, hdr)
}

// data GETs path and decodes the data of a success answer into out.
func (l lokiAPI) data(path string, params url.Values, out any) error {
	r, err := l.call(path, params, nil)
	if err != nil {
		return err
	}
	if r.code != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, r)
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		return fmt.Errorf("GET %s: decoding %s: %w", path, truncateBody(r.body), err)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: status %q: %s", path, env.Status, truncateBody(r.body))
	}
	return json.Unmarshal(env.Data, out)
}

func truncateBody(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// queryLogs runs a log query over [start, end) forward and returns its
// entries as records, sorted. It checks the answer's shape: result type
// streams, the encoding flag exactly when categorize, every stream's
// entries in forward order, fewer entries than the limit (none cut off).
func (l lokiAPI) queryLogs(query string, start, end int64, categorize bool) ([]logRecord, error) {
	params := url.Values{
		"query": {query}, "start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)},
		"direction": {"forward"}, "limit": {strconv.Itoa(lokiMaxLimit)},
	}
	var hdr map[string]string
	if categorize {
		hdr = map[string]string{"X-Loki-Response-Encoding-Flags": "categorize-labels"}
	}
	r, err := l.call("query_range", params, hdr)
	if err != nil {
		return nil, err
	}
	if r.code != http.StatusOK {
		return nil, fmt.Errorf("query_range %s: %s", query, truncateBody(r.body))
	}
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			ResultType    string   `json:"resultType"`
			EncodingFlags []string `json:"encodingFlags"`
			Result        []struct {
				Stream map[string]string   `json:"stream"`
				Values [][]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		return nil, fmt.Errorf("query_range %s: decoding: %w: %s", query, err, truncateBody(r.body))
	}
	if resp.Status != "success" || resp.Data.ResultType != "streams" {
		return nil, fmt.Errorf("query_range %s: status %q resultType %q, want success streams", query, resp.Status, resp.Data.ResultType)
	}
	if got := slices.Contains(resp.Data.EncodingFlags, "categorize-labels"); got != categorize {
		return nil, fmt.Errorf("query_range %s: encodingFlags %v with categorize=%v", query, resp.Data.EncodingFlags, categorize)
	}
	var out []logRecord
	for _, s := range resp.Data.Result {
		labels := lokiSelector(s.Stream)
		var prev int64
		for _, v := range s.Values {
			want := 2
			if categorize {
				want = 3
			}
			if len(v) != want {
				return nil, fmt.Errorf("query_range %s: stream %s: a value of %d elements, want %d", query, labels, len(v), want)
			}
			rec := logRecord{labels: labels}
			if err := json.Unmarshal(v[0], &rec.ts); err != nil {
				return nil, fmt.Errorf("query_range %s: stream %s: timestamp %s is not a string", query, labels, v[0])
			}
			ts, err := strconv.ParseInt(rec.ts, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("query_range %s: stream %s: timestamp %q is not Unix nanoseconds", query, labels, rec.ts)
			}
			if ts < prev {
				return nil, fmt.Errorf("query_range %s forward: stream %s: %d after %d", query, labels, ts, prev)
			}
			prev = ts
			if err := json.Unmarshal(v[1], &rec.line); err != nil {
				return nil, fmt.Errorf("query_range %s: stream %s: line %s is not a string", query, labels, truncateBody(v[1]))
			}
			if categorize {
				var cat struct {
					StructuredMetadata map[string]string `json:"structuredMetadata"`
					Parsed             map[string]string `json:"parsed"`
				}
				if err := json.Unmarshal(v[2], &cat); err != nil {
					return nil, fmt.Errorf("query_range %s: stream %s: categorized labels %s: %w", query, labels, v[2], err)
				}
				if len(cat.Parsed) > 0 {
					return nil, fmt.Errorf("query_range %s: stream %s: parsed labels %v from a query without a parser", query, labels, cat.Parsed)
				}
				if len(cat.StructuredMetadata) > 0 {
					rec.md = lokiSelector(cat.StructuredMetadata)
				}
			}
			out = append(out, rec)
		}
	}
	if len(out) >= lokiMaxLimit {
		return nil, fmt.Errorf("query_range %s: %d entries, the limit: the answer may be cut off", query, len(out))
	}
	slices.SortFunc(out, compareRecords)
	return out, nil
}

// checkLogs reads query back with and without categorized labels and
// requires exactly the entries of want.
func (l lokiAPI) checkLogs(t *testing.T, query string, start, end int64, want []logStream) {
	t.Helper()
	for _, categorize := range []bool{false, true} {
		got, err := l.queryLogs(query, start, end, categorize)
		if err != nil {
			t.Error(err)
			continue
		}
		if d := diffRecords(got, wantRecords(want, categorize)); d != "" {
			t.Errorf("query_range %s (tenant %s, categorize-labels %v): %s", query, l.tenant, categorize, d)
		}
	}
}

// metricVector runs an instant metric query and returns the value of each
// series by its labels' selector.
func (l lokiAPI) metricVector(query string, ts int64) (map[string]string, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		} `json:"result"`
	}
	if err := l.data("query", url.Values{"query": {query}, "time": {strconv.FormatInt(ts, 10)}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %q, want vector", query, data.ResultType)
	}
	out := map[string]string{}
	for _, s := range data.Result {
		var v string
		if err := json.Unmarshal(s.Value[1], &v); err != nil {
			return nil, fmt.Errorf("query %s: value %s is not a string", query, s.Value[1])
		}
		out[lokiSelector(s.Metric)] = v
	}
	return out, nil
}

// logsRingStates returns instance ID -> state as node's
// /ring/logs-ingester page reports it.
func logsRingStates(n *canopyNode) (map[string]string, error) {
	return ringStatesOf(n, "logs-ingester")
}

// waitLogsRingActive waits until on every node the logs ring holds exactly
// the given instances, all ACTIVE.
func waitLogsRingActive(t *testing.T, nodes []*canopyNode, ids []string, timeout time.Duration) {
	t.Helper()
	waitRingActiveOf(t, nodes, ids, timeout, "logs-ingester")
}

var walReplayed = regexp.MustCompile(`msg="replayed the logs WAL".* entries=(\d+)`)

// lastLogsWALReplay returns the entries count of the last "replayed the
// logs WAL" line in the process's log, or -1 when there is none.
func lastLogsWALReplay(t *testing.T, p *process) int {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	ms := walReplayed.FindAllSubmatch(b, -1)
	if len(ms) == 0 {
		return -1
	}
	n, err := strconv.Atoi(string(ms[len(ms)-1][1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startLogsNode starts one complete process with multi-tenancy on and
// waits until its logs ring is ACTIVE.
func startLogsNode(t *testing.T, extra ...string) *canopyNode {
	t.Helper()
	args := append([]string{"-auth.multitenancy-enabled"}, extra...)
	n := newCanopyNodes(t, logDir(t), 1, args...)[0]
	n.start(t)
	n.waitReady(t, 60*time.Second)
	waitLogsRingActive(t, []*canopyNode{n}, []string{n.id}, 30*time.Second)
	return n
}
