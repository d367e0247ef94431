// Package tracepush decodes trace push bodies and cuts them into per-trace
// pieces for the ingesters.
//
// Three wire formats come in: OTLP/HTTP's ExportTraceServiceRequest as
// protobuf or as JSON (DecodeOTLP), and Zipkin v2 JSON (DecodeZipkin; the
// mapping is in README.md). The wire formats are the projects' documented
// ones; the decoders are Canopy's own. Decompression and body size limits
// are the caller's (the distributor's).
//
// Two kinds of problem are told apart:
//
//   - A body that cannot be decoded (bad protobuf or JSON, an ID of the
//     wrong length, bad hex, an unknown span kind or status code, a time
//     past 2262) is refused whole with an *Error naming what and where.
//   - A span that decodes but breaks a rule (no trace or span ID, an ID of
//     zeros, an end before its start, an attribute over a size limit), or a
//     trace over the size limit, is rejected alone by Split: the rest of
//     the body is kept, and the Batch says how many spans were rejected,
//     why, and what the first rejection was, naming the limit.
//
// The hot path is SplitProto: an OTLP protobuf body in, one OTLP TracesData
// protobuf per trace out, without building pdata in between. The spans'
// bytes are copied as sent; each trace's piece repeats the resource and
// scope its spans came under.
package tracepush
