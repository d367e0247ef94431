package tempoapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Trace by ID. Grafana asks /api/v2/traces/<id> with Accept:
// application/protobuf and, on 404, /api/traces/<id>; start and end (Unix
// seconds) only when its "time shift" option is on.
//
// Protobuf answers (Accept holding application/protobuf):
//
//	v1: tempopb.Trace             { repeated ResourceSpans resourceSpans = 1; }
//	v2: tempopb.TraceByIDResponse { Trace trace = 1; …; PartialStatus status = 3; }
//
// tempopb.Trace has OTLP TracesData's wire format (field 1, repeated OTLP
// ResourceSpans), so pdata's encoding of the trace is the v1 answer and,
// wrapped in field 1, the v2 one. Status COMPLETE is 0 and so absent.
//
// JSON answers are OTLP JSON (pdata's: hex IDs, enums as numbers, 64-bit
// integers as strings) in Tempo's envelopes: v1 {"batches":[…]}, v2
// {"trace":{"resourceSpans":[…]},"status":"COMPLETE"}. Tempo writes its
// IDs in base64 and its enums by name there; Grafana never reads this JSON.

const (
	contentTypeProtobuf = "application/protobuf"
	// traceByIDResponseTrace is the field number of TraceByIDResponse.trace.
	traceByIDResponseTrace protowire.Number = 1
)

// serveTraceV1 is /api/traces/<id>.
func (a *API) serveTraceV1(w http.ResponseWriter, r *http.Request, tenant string) error {
	td, err := a.traceByID(r, tenant)
	if err != nil {
		return err
	}
	if wantsProtobuf(r) {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			return err
		}
		writeProtobuf(w, nil, b)
		return nil
	}
	spans, err := resourceSpansJSON(td)
	if err != nil {
		return err
	}
	writeRawJSON(w, `{"batches":`, spans, `}`)
	return nil
}

// serveTraceV2 is /api/v2/traces/<id>.
func (a *API) serveTraceV2(w http.ResponseWriter, r *http.Request, tenant string) error {
	if q := strings.TrimSpace(r.Form.Get("q")); q != "" && !isWholeTraceFilter(q) {
		return badf("invalid parameter \"q\": filtering a trace's spans is not supported; leave q out for the whole trace")
	}
	td, err := a.traceByID(r, tenant)
	if err != nil {
		return err
	}
	if wantsProtobuf(r) {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			return err
		}
		// The trace's field is the tag, the length and the bytes, written
		// apart so that a large trace is not copied.
		head := protowire.AppendTag(nil, traceByIDResponseTrace, protowire.BytesType)
		writeProtobuf(w, protowire.AppendVarint(head, uint64(len(b))), b)
		return nil
	}
	spans, err := resourceSpansJSON(td)
	if err != nil {
		return err
	}
	writeRawJSON(w, `{"trace":{"resourceSpans":`, spans, `},"status":"COMPLETE"}`)
	return nil
}

// isWholeTraceFilter reports whether a v2 q asks for every span: {} or
// { true }, which Tempo answers with the whole trace.
func isWholeTraceFilter(q string) bool {
	inner, ok := strings.CutPrefix(q, "{")
	if !ok {
		return false
	}
	inner, ok = strings.CutSuffix(inner, "}")
	if !ok {
		return false
	}
	inner = strings.TrimSpace(inner)
	return inner == "" || inner == "true"
}

// traceByID reads the request's trace ID and range and asks the Backend
// for the trace; errTraceNotFound when it has no spans.
func (a *API) traceByID(r *http.Request, tenant string) (ptrace.Traces, error) {
	id, err := parseTraceID(r.PathValue("id"))
	if err != nil {
		return ptrace.Traces{}, err
	}
	start, end, err := optionalRange(r)
	if err != nil {
		return ptrace.Traces{}, err
	}
	td, found, err := a.b.TraceByID(r.Context(), tenant, id, start, end)
	if err != nil {
		return ptrace.Traces{}, err
	}
	if !found || td.SpanCount() == 0 {
		return ptrace.Traces{}, errTraceNotFound
	}
	return td, nil
}

// wantsProtobuf reports whether the request accepts protobuf, which
// Grafana asks for.
func wantsProtobuf(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, contentTypeProtobuf) {
			return true
		}
	}
	return false
}

// writeProtobuf answers 200 with the protobuf message head+body.
func writeProtobuf(w http.ResponseWriter, head, body []byte) {
	w.Header().Set("Content-Type", contentTypeProtobuf)
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+len(body)))
	_, _ = w.Write(head)
	_, _ = w.Write(body)
}

// writeRawJSON answers 200 with the JSON before+raw+after.
func writeRawJSON(w http.ResponseWriter, before string, raw []byte, after string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(before))
	_, _ = w.Write(raw)
	_, _ = w.Write([]byte(after))
}

// otlpJSONPrefix is how pdata's OTLP JSON of traces with spans begins.
const otlpJSONPrefix = `{"resourceSpans":`

// resourceSpansJSON returns the OTLP JSON array of the trace's resource
// spans.
func resourceSpansJSON(td ptrace.Traces) ([]byte, error) {
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		return nil, err
	}
	// pdata writes {"resourceSpans":[…]} and nothing else: the array is cut
	// out without decoding a large trace again.
	if rest, ok := bytes.CutPrefix(b, []byte(otlpJSONPrefix)); ok && bytes.HasSuffix(rest, []byte("]}")) {
		return rest[:len(rest)-1], nil
	}
	var data struct {
		ResourceSpans json.RawMessage `json:"resourceSpans"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, err
	}
	if len(data.ResourceSpans) == 0 {
		return json.RawMessage(`[]`), nil
	}
	return data.ResourceSpans, nil
}
