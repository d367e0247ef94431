package lokiapi

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// The responses are written by hand rather than through encoding/json:
// Grafana's parser streams, so the order of fields matters (encodingFlags
// before result), timestamps and values must be strings where Loki writes
// strings, and a log response of thousands of lines is written without a
// reflection pass per value.

// flagCategorizeLabels is the encoding flag of categorized labels
// (X-Loki-Response-Encoding-Flags request header, encodingFlags field).
const flagCategorizeLabels = "categorize-labels"

// jw appends JSON to a buffer.
type jw struct{ b []byte }

func (w *jw) raw(s string) { w.b = append(w.b, s...) }
func (w *jw) byte(c byte)  { w.b = append(w.b, c) }
func (w *jw) str(s string) { w.b = appendString(w.b, s) }
func (w *jw) int(n int64)  { w.b = strconv.AppendInt(w.b, n, 10) }

// key writes "k": after a comma unless first.
func (w *jw) key(k string, first bool) {
	if !first {
		w.byte(',')
	}
	w.str(k)
	w.byte(':')
}

// labels writes a label set as an object, in label order.
func (w *jw) labels(ls labels.Labels) {
	w.byte('{')
	first := true
	ls.Range(func(l labels.Label) {
		w.key(l.Name, first)
		w.str(l.Value)
		first = false
	})
	w.byte('}')
}

// strings writes a list of strings; nil is [].
func (w *jw) strings(ss []string) {
	w.byte('[')
	for i, s := range ss {
		if i > 0 {
			w.byte(',')
		}
		w.str(s)
	}
	w.byte(']')
}

// sample writes [<seconds>,"<value>"] as Prometheus does.
func (w *jw) sample(tMillis int64, v float64) {
	w.byte('[')
	w.raw(model.Time(tMillis).String())
	w.raw(`,"`)
	w.raw(model.SampleValue(v).String())
	w.raw(`"]`)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json writes
// it: HTML characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// writeJSON sends a JSON body with status 200.
func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// EncodeQueryResult writes the answer of query and query_range:
// {"status":"success","data":{"resultType":…,["encodingFlags":[…],]
// "result":…,"stats":{…}}}. With categorize, res's streams are grouped by
// their labels less the names of their entries' metadata and parsed labels,
// entries in dir's order. The query-frontend writes the answers it merges
// with it, so that they are the querier's byte for byte in shape.
func EncodeQueryResult(res *logql.Result, categorize bool, dir logql.Direction) []byte {
	w := &jw{b: make([]byte, 0, 4096)}
	w.raw(`{"status":"success","data":{"resultType":`)
	w.str(string(res.Type))
	if categorize {
		// Grafana reads the flag only if it comes before the result.
		w.raw(`,"encodingFlags":["` + flagCategorizeLabels + `"]`)
	}
	w.raw(`,"result":`)
	returned := res.Stats.EntriesReturned
	switch res.Type {
	case logql.ValueTypeStreams:
		if categorize {
			w.categorizedStreams(res.Streams, dir)
		} else {
			w.streams(res.Streams)
		}
	case "matrix":
		w.matrix(res.Matrix)
		returned = int64(len(res.Matrix))
	case "vector":
		w.vector(res.Vector)
		returned = int64(len(res.Vector))
	case "scalar":
		w.sample(res.Scalar.T, res.Scalar.V)
		returned = 1
	default:
		w.raw("[]")
	}
	w.raw(`,"stats":`)
	w.stats(res.Stats, returned)
	w.raw("}")
	if len(res.Warnings) > 0 {
		// Beside data, as Loki and Prometheus give them.
		w.raw(`,"warnings":[`)
		for i, warning := range res.Warnings {
			if i > 0 {
				w.byte(',')
			}
			w.str(warning)
		}
		w.byte(']')
	}
	w.byte('}')
	return w.b
}

// streams writes streams with [ts, line] values.
func (w *jw) streams(ss []logql.Stream) {
	w.byte('[')
	for i, s := range ss {
		if i > 0 {
			w.byte(',')
		}
		w.raw(`{"stream":`)
		w.labels(s.Labels)
		w.raw(`,"values":[`)
		for j, e := range s.Entries {
			if j > 0 {
				w.byte(',')
			}
			w.entry(e, false)
		}
		w.raw("]}")
	}
	w.byte(']')
}

// entry writes ["<ns>","<line>"], and with categorize a third element
// {"structuredMetadata":{…},"parsed":{…}} without the empty ones.
func (w *jw) entry(e logql.Entry, categorize bool) {
	w.raw(`["`)
	w.int(e.Timestamp)
	w.raw(`",`)
	w.str(e.Line)
	if categorize {
		w.raw(",{")
		if !e.Metadata.IsEmpty() {
			w.raw(`"structuredMetadata":`)
			w.labels(e.Metadata)
		}
		if !e.Parsed.IsEmpty() {
			if !e.Metadata.IsEmpty() {
				w.byte(',')
			}
			w.raw(`"parsed":`)
			w.labels(e.Parsed)
		}
		w.byte('}')
	}
	w.byte(']')
}

// categorizedStreams writes streams grouped by their stream labels alone:
// an entry's labels less the names of its structured metadata and parsed
// labels, entries in the query's direction.
func (w *jw) categorizedStreams(ss []logql.Stream, dir logql.Direction) {
	type group struct {
		labels  labels.Labels
		entries []logql.Entry
	}
	var groups []*group
	byKey := map[string]*group{}
	var b labels.Builder
	for _, s := range ss {
		for _, e := range s.Entries {
			ls := s.Labels
			if !e.Metadata.IsEmpty() || !e.Parsed.IsEmpty() {
				b.Reset(s.Labels)
				e.Metadata.Range(func(l labels.Label) { b.Del(l.Name) })
				e.Parsed.Range(func(l labels.Label) { b.Del(l.Name) })
				ls = b.Labels()
			}
			key := ls.String()
			g := byKey[key]
			if g == nil {
				g = &group{labels: ls}
				byKey[key] = g
				groups = append(groups, g)
			}
			g.entries = append(g.entries, e)
		}
	}
	slices.SortFunc(groups, func(a, b *group) int { return labels.Compare(a.labels, b.labels) })
	w.byte('[')
	for i, g := range groups {
		if i > 0 {
			w.byte(',')
		}
		// Entries of one group may come from several engine streams: put
		// them back in the query's order.
		sortEntries(g.entries, dir)
		w.raw(`{"stream":`)
		w.labels(g.labels)
		w.raw(`,"values":[`)
		for j, e := range g.entries {
			if j > 0 {
				w.byte(',')
			}
			w.entry(e, true)
		}
		w.raw("]}")
	}
	w.byte(']')
}

// sortEntries orders entries merged from several streams by timestamp,
// newest first for backward; equal timestamps keep their order.
func sortEntries(es []logql.Entry, dir logql.Direction) {
	slices.SortStableFunc(es, func(a, b logql.Entry) int {
		if dir == logql.Backward {
			return cmp.Compare(b.Timestamp, a.Timestamp)
		}
		return cmp.Compare(a.Timestamp, b.Timestamp)
	})
}

func (w *jw) matrix(m promql.Matrix) {
	w.byte('[')
	for i, s := range m {
		if i > 0 {
			w.byte(',')
		}
		w.raw(`{"metric":`)
		w.labels(s.Metric)
		w.raw(`,"values":[`)
		for j, p := range s.Floats {
			if j > 0 {
				w.byte(',')
			}
			w.sample(p.T, p.F)
		}
		w.raw("]}")
	}
	w.byte(']')
}

func (w *jw) vector(v promql.Vector) {
	w.byte('[')
	for i, s := range v {
		if i > 0 {
			w.byte(',')
		}
		w.raw(`{"metric":`)
		w.labels(s.Metric)
		w.raw(`,"value":`)
		w.sample(s.T, s.F)
		w.byte('}')
	}
	w.byte(']')
}

// zeroChunk and zeroCache are statistics blocks Canopy's engine does not
// count (chunks, caches): Loki's shape with zeros.
const zeroChunk = `{"headChunkBytes":0,"headChunkLines":0,"decompressedBytes":0,"decompressedLines":0,"compressedBytes":0,"totalDuplicates":0,"postFilterLines":0,"headChunkStructuredMetadataBytes":0,"decompressedStructuredMetadataBytes":0}`

const zeroCache = `{"entriesFound":0,"entriesRequested":0,"entriesStored":0,"bytesReceived":0,"bytesSent":0,"requests":0,"downloadTime":0,"queryLengthServed":0}`

// stats writes Loki's statistics block. Canopy's engine counts the lines
// and bytes it read and the entries it returned; they fill the summary
// and the querier's store block, every other counter is zero.
func (w *jw) stats(st logql.Stats, returned int64) {
	secs := st.ExecTime.Seconds()
	var bps, lps int64
	if secs > 0 {
		bps = int64(float64(st.BytesProcessed) / secs)
		lps = int64(float64(st.LinesProcessed) / secs)
	}
	w.raw(`{"summary":{"bytesProcessedPerSecond":`)
	w.int(bps)
	w.raw(`,"linesProcessedPerSecond":`)
	w.int(lps)
	w.raw(`,"totalBytesProcessed":`)
	w.int(st.BytesProcessed)
	w.raw(`,"totalLinesProcessed":`)
	w.int(st.LinesProcessed)
	w.raw(`,"execTime":`)
	w.b = strconv.AppendFloat(w.b, secs, 'f', -1, 64)
	w.raw(`,"queueTime":0,"subqueries":0,"totalEntriesReturned":`)
	w.int(returned)
	w.raw(`,"splits":0,"shards":0,"totalPostFilterLines":0,"totalStructuredMetadataBytesProcessed":0}`)
	w.raw(`,"querier":{"store":{"totalChunksRef":0,"totalChunksDownloaded":0,"chunksDownloadTime":0,"queryReferencedStructuredMetadata":false,"chunk":`)
	chunk := strings.Replace(zeroChunk, `"decompressedBytes":0,"decompressedLines":0`,
		`"decompressedBytes":`+strconv.FormatInt(st.BytesProcessed, 10)+`,"decompressedLines":`+strconv.FormatInt(st.LinesProcessed, 10), 1)
	w.raw(chunk)
	w.raw(`,"chunkRefsFetchTime":0,"congestionControlLatency":0,"pipelineWrapperFilteredLines":0}}`)
	w.raw(`,"ingester":{"totalReached":0,"totalChunksMatched":0,"totalBatches":0,"totalLinesSent":0,"store":{"totalChunksRef":0,"totalChunksDownloaded":0,"chunksDownloadTime":0,"queryReferencedStructuredMetadata":false,"chunk":` + zeroChunk + `,"chunkRefsFetchTime":0,"congestionControlLatency":0,"pipelineWrapperFilteredLines":0}}`)
	w.raw(`,"cache":{`)
	for i, name := range []string{"chunk", "index", "result", "statsResult", "volumeResult", "seriesResult", "labelResult", "instantMetricResult"} {
		w.key(name, i == 0)
		w.raw(zeroCache)
	}
	w.raw(`},"index":{"totalChunks":0,"postFilterChunks":0,"shardsDuration":0,"usedBloomFilters":false}}`)
}
