package frontend

import (
	"testing"
)

// FuzzMergeRange feeds arbitrary part answers to the merge: it may reject
// them, never panic.
func FuzzMergeRange(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"]]}]}}`), []byte(`{"status":"success","data":{"resultType":"matrix","result":[],"stats":{"timings":{"x":1},"samples":{"totalQueryableSamples":3,"peakSamples":2}}},"warnings":["w"]}`))
	f.Add([]byte(`{}`), []byte(`null`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		_, _ = mergeRange([][]byte{a, b})
	})
}

// FuzzParseParams checks the time and step parsers never panic and never
// accept what they cannot represent.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"1700000000.123", "2023-11-14T22:13:20Z", "1e300", "NaN", "-Inf", "5m", "15", "1y2w", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseTime(s)
		_, _ = parseStep(s)
	})
}
