package frontend

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
	"github.com/canopy-observability/canopy/pkg/lokiapi"
)

// BenchmarkLokiMergeLogParts merges four parts of a log query, each the
// 1000 newest entries of its hour over 50 streams, as Grafana's default
// limit asks, from the parts' bodies to the client's.
func BenchmarkLokiMergeLogParts(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	const parts, perPart, streams = 4, 1000, 50
	bodies := make([][]byte, parts)
	for p := range parts {
		byStream := make([]logql.Stream, streams)
		for s := range byStream {
			byStream[s].Labels = labels.FromStrings("app", "a", "pod", fmt.Sprint("p", s))
		}
		for i := range perPart {
			s := &byStream[rng.Intn(streams)]
			ts := int64(p)*3600e9 + int64(perPart-i)*3e9
			s.Entries = append(s.Entries, logql.Entry{Timestamp: ts, Line: fmt.Sprintf("level=info msg=%q status=%d", "request done", 200+rng.Intn(300))})
		}
		bodies[p] = lokiapi.EncodeQueryResult(&logql.Result{Type: logql.ValueTypeStreams, Streams: byStream}, false, logql.Backward)
	}
	st := &lokiRequest{log: true, limit: perPart, dir: logql.Backward}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		results := make([]*logql.Result, parts)
		for i, body := range bodies {
			res, err := decodeLokiResult(body)
			if err != nil {
				b.Fatal(err)
			}
			results[i] = res
		}
		res, err := mergeLokiResults(results, st)
		if err != nil {
			b.Fatal(err)
		}
		_ = lokiapi.EncodeQueryResult(res, false, st.dir)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*parts*perPart), "ns/entry")
}
