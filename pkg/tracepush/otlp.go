package tracepush

import (
	"bytes"
	"mime"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// OTLP/HTTP's media types.
const (
	ContentTypeProtobuf = "application/x-protobuf"
	ContentTypeJSON     = "application/json"
)

// maxJSONDepth bounds how deep an OTLP JSON body nests: a span attribute's
// value is 12 deep at most, and each level of a map value within it adds 4
// (each level of an array 3). pdata decodes JSON recursively too.
const maxJSONDepth = 12 + 4*maxValueDepth

// DecodeOTLP decodes an OTLP/HTTP traces export body (already
// decompressed) by its Content-Type: an ExportTraceServiceRequest in
// protobuf (application/x-protobuf) or in OTLP JSON (application/json, IDs
// in hex, unknown fields ignored). A body pdata would read but which cannot
// be stored is refused too: a span kind or status code OTLP does not
// define, a time past 2262, attribute values nested more than 64 deep
// (which pdata would read recursively, exhausting the stack). Errors are
// *Error. The Traces do not share memory with body.
//
// For protobuf bodies on the push path, SplitProto does the decoding's
// checks and the splitting without pdata; DecodeOTLP is for what needs the
// spans themselves.
func DecodeOTLP(body []byte, contentType string) (ptrace.Traces, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ptrace.Traces{}, errorf("Content-Type %q: %v", truncate(contentType), err)
	}
	switch mt {
	case ContentTypeProtobuf:
		if err := newSplitter(Limits{}, true).walk(body); err != nil {
			return ptrace.Traces{}, err
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			// The walk checks what pdata reads: this is a bug here.
			return ptrace.Traces{}, errorf("OTLP protobuf body: %v", err)
		}
		return req.Traces(), nil
	case ContentTypeJSON:
		return decodeOTLPJSON(body)
	}
	return ptrace.Traces{}, errorf("Content-Type %q: OTLP traces are %s or %s", truncate(contentType), ContentTypeProtobuf, ContentTypeJSON)
}

func decodeOTLPJSON(body []byte) (ptrace.Traces, error) {
	// pdata would turn invalid UTF-8 into U+FFFD without a word.
	if !utf8.Valid(body) {
		return ptrace.Traces{}, errorf("OTLP JSON body is not valid UTF-8")
	}
	if err := checkJSON(body, maxJSONDepth); err != nil {
		return ptrace.Traces{}, err
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(body)
	if err != nil {
		return ptrace.Traces{}, errorf("OTLP JSON body: %v", err)
	}
	// What pdata reads but cannot be stored (a span kind OTLP does not
	// define, a time past 2262, values nested too deep) is refused as in
	// protobuf bodies, by the same walk.
	var m ptrace.ProtoMarshaler
	pb, err := m.MarshalTraces(td)
	if err != nil {
		return ptrace.Traces{}, errorf("OTLP JSON body: %v", err)
	}
	if err := newSplitter(Limits{}, true).walk(pb); err != nil {
		return ptrace.Traces{}, err
	}
	return td, nil
}

// checkJSON refuses a JSON body nested deeper than max or with more than
// whitespace after its first value. Anything else wrong is the decoder's
// to say.
func checkJSON(b []byte, max int) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			if depth++; depth > max {
				return errorf("JSON body nests more than %d deep (at byte %d)", max, i)
			}
		case '}', ']':
			if depth--; depth == 0 {
				if len(bytes.TrimSpace(b[i+1:])) > 0 {
					return errorf("JSON body: more than one JSON value (from byte %d)", i+1)
				}
				return nil
			}
			if depth < 0 {
				return nil
			}
		}
	}
	return nil
}
