package tempoapi

import "testing"

// FuzzDecodeSearch: any search answer a child may send is read or
// refused, never a crash.
func FuzzDecodeSearch(f *testing.F) {
	f.Add([]byte(`{"traces":[{"traceID":"a1","rootServiceName":"s","startTimeUnixNano":"1","durationMs":2,"spanSets":[{"spans":[{"spanID":"0102030405060708","startTimeUnixNano":"1","durationNanos":"2","attributes":[{"key":"k","value":{"intValue":"3"}}]}],"matched":1}]}],"metrics":{"inspectedTraces":1}}`))
	f.Add([]byte(`{"traces":[{"traceID":"","spanSet":{"spans":[]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if res, err := DecodeSearch(b); err == nil {
			for _, tr := range res.Traces {
				if len(tr.TraceID) != 16 {
					t.Fatalf("trace ID of %d bytes", len(tr.TraceID))
				}
			}
		}
	})
}
