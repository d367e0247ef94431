package tracepush_test

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/tracepush"
)

// A distributor's push: decode what is not OTLP protobuf, split, send each
// piece to the ingesters that own its trace ID, answer with what was
// rejected.
func ExampleSplit() {
	body := []byte(`[
		{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"00f067aa0ba902b7","name":"get /","timestamp":1700000000000000,"duration":1500,"localEndpoint":{"serviceName":"api"}},
		{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"00f067aa0ba902b8","parentId":"00f067aa0ba902b7","name":"select","timestamp":1700000000000100,"duration":900,"localEndpoint":{"serviceName":"api"},"tags":{"db.statement":"select * from orders where id in (1, 2, 3, 4, 5, 6, 7, 8, 9)"}},
		{"traceId":"5af7183fb1d4cf5f","id":"352bff9a74ca9ad2","name":"get /health","timestamp":1700000001000000,"duration":10,"localEndpoint":{"serviceName":"api"}}
	]`)
	td, err := tracepush.DecodeZipkin(body)
	if err != nil {
		fmt.Println(err) // 400
		return
	}
	batch, err := tracepush.Split(td, tracepush.Limits{
		MaxAttributeValueBytes: 32,
		Names:                  tracepush.LimitNames{MaxAttributeValueBytes: "-validation.traces.max-attribute-value-bytes"},
	})
	if err != nil {
		fmt.Println(err) // 400
		return
	}
	for _, tr := range batch.Traces {
		// Shard by tr.ID; send tr.Data (an OTLP TracesData) as it is.
		var u ptrace.ProtoUnmarshaler
		piece, _ := u.UnmarshalTraces(tr.Data)
		fmt.Println(tr.ID, tr.Spans, "span(s),", piece.SpanCount(), "in the piece")
	}
	fmt.Println(batch.RejectedSpans, "rejected:", batch.Rejected)
	fmt.Println(batch.FirstRejection)
	// Output:
	// 4bf92f3577b34da6a3ce929d0e0e4736 1 span(s), 1 in the piece
	// 00000000000000005af7183fb1d4cf5f 1 span(s), 1 in the piece
	// 1 rejected: map[attribute_too_large:1]
	// trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b8: attribute "db.statement": its value is 60 bytes, longer than the limit of 32 bytes (-validation.traces.max-attribute-value-bytes)
}
