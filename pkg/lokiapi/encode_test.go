package lokiapi

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/logql"
)

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "tab\tnl\ncr\r\b\f\x00\x1f\x7f", "<html>&amp;</html>",
		"\u2028\u2029", "héllo wörld ✓", "\xff\xfe bad utf8 \xc3", "emoji 😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString(nil, s)))
	})
}

func TestEncodeCategorizedRegroups(t *testing.T) {
	// Engine streams whose labels hold structured metadata and parsed
	// labels too: the encoder groups entries by the stream labels alone
	// and keeps the query's order across the merged streams.
	res := &logql.Result{Type: logql.ValueTypeStreams, Streams: []logql.Stream{
		{Labels: labels.FromStrings("app", "a", "trace_id", "t1"), Entries: []logql.Entry{
			{Timestamp: 3, Line: "three", Metadata: labels.FromStrings("trace_id", "t1")},
			{Timestamp: 1, Line: "one", Metadata: labels.FromStrings("trace_id", "t1")},
		}},
		{Labels: labels.FromStrings("app", "a", "status", "200"), Entries: []logql.Entry{
			{Timestamp: 2, Line: "two", Parsed: labels.FromStrings("status", "200")},
		}},
		{Labels: labels.FromStrings("app", "b"), Entries: []logql.Entry{{Timestamp: 5, Line: "five"}}},
	}}
	got := string(EncodeQueryResult(res, true, logql.Backward))
	require.JSONEq(t, `{"status":"success","data":{"resultType":"streams","encodingFlags":["categorize-labels"],"result":[
		{"stream":{"app":"a"},"values":[
			["3","three",{"structuredMetadata":{"trace_id":"t1"}}],
			["2","two",{"parsed":{"status":"200"}}],
			["1","one",{"structuredMetadata":{"trace_id":"t1"}}]]},
		{"stream":{"app":"b"},"values":[["5","five",{}]]}],"stats":{}}}`, withoutStats(t, got))
}

func TestEncodeSamples(t *testing.T) {
	res := &logql.Result{Type: "matrix", Matrix: promql.Matrix{
		{Metric: labels.FromStrings("a", "b"), Floats: []promql.FPoint{{T: 1500, F: 0.5}, {T: 2000, F: math.Inf(1)}, {T: 2001, F: math.NaN()}, {T: 3000, F: -1e-7}}},
	}}
	require.JSONEq(t, `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"a":"b"},"values":[[1.5,"0.5"],[2,"+Inf"],[2.001,"NaN"],[3,"-0.0000001"]]}],"stats":{}}}`,
		withoutStats(t, string(EncodeQueryResult(res, false, logql.Backward))))
	res = &logql.Result{Type: "vector", Vector: promql.Vector{}}
	require.JSONEq(t, `{"status":"success","data":{"resultType":"vector","result":[],"stats":{}}}`,
		withoutStats(t, string(EncodeQueryResult(res, false, logql.Backward))))
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1000: "1000B", 1024: "1KB", 10 << 30: "10GB", 1536: "1536B", 1 << 60: "1EB"} {
		require.Equal(t, want, formatBytes(n))
	}
}
