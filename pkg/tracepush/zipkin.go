package tracepush

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Zipkin v2's span (https://zipkin.io/zipkin-api/#/default/post_spans), as
// much of it as the mapping reads; other fields are ignored.
type zipkinSpan struct {
	TraceID        string             `json:"traceId"`
	ID             string             `json:"id"`
	ParentID       string             `json:"parentId"`
	Name           string             `json:"name"`
	Kind           string             `json:"kind"`
	Timestamp      json.RawMessage    `json:"timestamp"`
	Duration       json.RawMessage    `json:"duration"`
	Debug          bool               `json:"debug"`
	Shared         bool               `json:"shared"`
	LocalEndpoint  *zipkinEndpoint    `json:"localEndpoint"`
	RemoteEndpoint *zipkinEndpoint    `json:"remoteEndpoint"`
	Annotations    []zipkinAnnotation `json:"annotations"`
	Tags           map[string]string  `json:"tags"`
}

type zipkinEndpoint struct {
	ServiceName string `json:"serviceName"`
	IPv4        string `json:"ipv4"`
	IPv6        string `json:"ipv6"`
	Port        int64  `json:"port"`
}

type zipkinAnnotation struct {
	Timestamp json.RawMessage `json:"timestamp"`
	Value     string          `json:"value"`
}

// Attributes and resource attributes the Zipkin mapping writes (README.md).
const (
	attrServiceName    = "service.name"
	attrPeerService    = "peer.service"
	attrPeerAddress    = "network.peer.address"
	attrPeerPort       = "network.peer.port"
	attrLocalAddress   = "network.local.address"
	attrLocalPort      = "network.local.port"
	attrZipkinShared   = "zipkin.shared"
	attrZipkinDebug    = "zipkin.debug"
	tagError           = "error"
	tagOTelStatusCode  = "otel.status_code"
	tagOTelStatusDesc  = "otel.status_description"
	tagOTelScopeName   = "otel.scope.name"
	tagOTelScopeVer    = "otel.scope.version"
	tagOTelLibraryName = "otel.library.name"
	tagOTelLibraryVer  = "otel.library.version"
)

// maxPutAttrs is how many attributes a span gets one by one, in order;
// beyond it they go in as a map at once: pcommon.Map looks each key up
// before putting it, which for thousands of tags is quadratic.
const maxPutAttrs = 64

// zipkinDecoder groups spans by service (one ResourceSpans each) and by
// instrumentation scope within it.
type zipkinDecoder struct {
	td        ptrace.Traces
	resources map[string]ptrace.ResourceSpans
	scopes    map[zipkinScope]ptrace.SpanSlice
	attrs     []attr
	keys      []string
}

type zipkinScope struct{ service, name, version string }

type attr struct {
	key   string
	value any // string, int64 or bool
}

// DecodeZipkin decodes a Zipkin v2 JSON body (POST /api/v2/spans: a JSON
// array of spans) into OTLP traces, as README.md maps them: spans of one
// localEndpoint service are under one resource, and spans of one
// otel.scope.name and otel.scope.version tag under one scope in it. Unknown
// fields are ignored. Errors are *Error naming the span (counting from 0)
// and the field.
//
// The array is read one span at a time and each span is appended to its
// group: time and memory grow with the body, linearly.
func DecodeZipkin(body []byte) (ptrace.Traces, error) {
	// encoding/json would turn invalid UTF-8 into U+FFFD without a word.
	if !utf8.Valid(body) {
		return ptrace.Traces{}, errorf("Zipkin body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return ptrace.Traces{}, errorf("Zipkin body: a Zipkin v2 body is a JSON array of spans, [{\"traceId\":…,\"id\":…}, …]")
	}
	d := zipkinDecoder{td: ptrace.NewTraces(), resources: map[string]ptrace.ResourceSpans{}, scopes: map[zipkinScope]ptrace.SpanSlice{}}
	for i := 0; dec.More(); i++ {
		var zs zipkinSpan
		if err := dec.Decode(&zs); err != nil {
			return ptrace.Traces{}, zipkinJSONError(err, i)
		}
		if err := d.span(&zs, i); err != nil {
			return ptrace.Traces{}, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return ptrace.Traces{}, zipkinJSONError(err, -1)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ptrace.Traces{}, errorf("Zipkin body: something follows the array of spans")
	}
	return d.td, nil
}

// zipkinJSONError words an encoding/json error about span i (or the body,
// for i < 0).
func zipkinJSONError(err error, i int) error {
	where := "Zipkin body"
	if i >= 0 {
		where = "span " + strconv.Itoa(i)
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		switch field {
		case "":
			return errorf("%s: a span is a JSON object, not a JSON %s", where, typeErr.Value)
		case "tags":
			return errorf("%s: tags: a tag's value is a string, not a JSON %s", where, typeErr.Value)
		}
		return errorf("%s: %s is a JSON %s, not %s", where, field, typeErr.Value, jsonKind(typeErr.Type))
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return errorf("%s: invalid JSON at byte %d: %v", where, syntaxErr.Offset, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errorf("%s: the JSON ends early", where)
	}
	return errorf("%s: %v", where, err)
}

// jsonKind says what JSON a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int64:
		return "a whole number"
	case reflect.Slice:
		return "an array"
	default:
		return "an object"
	}
}

func (d *zipkinDecoder) span(zs *zipkinSpan, i int) error {
	var traceID pcommon.TraceID
	switch len(zs.TraceID) {
	case 0:
		return errorf("span %d has no traceId", i)
	case 16:
		if err := decodeHex(traceID[8:], zs.TraceID, "traceId", i); err != nil {
			return err
		}
	case 32:
		if err := decodeHex(traceID[:], zs.TraceID, "traceId", i); err != nil {
			return err
		}
	default:
		return errorf("span %d: traceId %q has %d hex digits, not 16 or 32", i, truncate(zs.TraceID), len(zs.TraceID))
	}
	var spanID, parentID pcommon.SpanID
	if zs.ID == "" {
		return errorf("span %d has no id", i)
	}
	if err := decodeSpanID(spanID[:], zs.ID, "id", i); err != nil {
		return err
	}
	if zs.ParentID != "" {
		if err := decodeSpanID(parentID[:], zs.ParentID, "parentId", i); err != nil {
			return err
		}
	}
	kind, err := zipkinKind(zs.Kind, i)
	if err != nil {
		return err
	}
	start, err := micros(zs.Timestamp, "timestamp", i)
	if err != nil {
		return err
	}
	dur, err := micros(zs.Duration, "duration", i)
	if err != nil {
		return err
	}
	if dur > maxTimeUnixNano-start {
		return errorf("span %d: timestamp plus duration goes past 2262 (Unix nanoseconds in 63 bits)", i)
	}

	service := ""
	if zs.LocalEndpoint != nil {
		service = zs.LocalEndpoint.ServiceName
	}
	d.attrs = d.attrs[:0]
	if err := d.endpoint(zs.LocalEndpoint, "localEndpoint", attrLocalAddress, attrLocalPort, i); err != nil {
		return err
	}
	if rep := zs.RemoteEndpoint; rep != nil && rep.ServiceName != "" {
		d.attrs = append(d.attrs, attr{attrPeerService, rep.ServiceName})
	}
	if err := d.endpoint(zs.RemoteEndpoint, "remoteEndpoint", attrPeerAddress, attrPeerPort, i); err != nil {
		return err
	}
	scope, code, msg, err := d.tags(zs.Tags, i)
	if err != nil {
		return err
	}
	if zs.Shared {
		d.attrs = append(d.attrs, attr{attrZipkinShared, true})
	}
	if zs.Debug {
		d.attrs = append(d.attrs, attr{attrZipkinDebug, true})
	}
	scope.service = service

	sp := d.spans(scope).AppendEmpty()
	sp.SetTraceID(traceID)
	sp.SetSpanID(spanID)
	sp.SetParentSpanID(parentID)
	sp.SetName(zs.Name)
	sp.SetKind(kind)
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(start + dur))
	sp.Status().SetCode(code)
	sp.Status().SetMessage(msg)
	putAttrs(sp.Attributes(), d.attrs)
	if len(zs.Annotations) > 0 {
		events := sp.Events()
		events.EnsureCapacity(len(zs.Annotations))
		for j, a := range zs.Annotations {
			t, err := micros(a.Timestamp, "annotations["+strconv.Itoa(j)+"].timestamp", i)
			if err != nil {
				return err
			}
			ev := events.AppendEmpty()
			ev.SetTimestamp(pcommon.Timestamp(t))
			ev.SetName(a.Value)
		}
	}
	return nil
}

// spans returns the spans of a service and scope, making its resource
// and scope if they are new.
func (d *zipkinDecoder) spans(key zipkinScope) ptrace.SpanSlice {
	if spans, ok := d.scopes[key]; ok {
		return spans
	}
	rs, ok := d.resources[key.service]
	if !ok {
		rs = d.td.ResourceSpans().AppendEmpty()
		if key.service != "" {
			rs.Resource().Attributes().PutStr(attrServiceName, key.service)
		}
		d.resources[key.service] = rs
	}
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(key.name)
	ss.Scope().SetVersion(key.version)
	d.scopes[key] = ss.Spans()
	return ss.Spans()
}

// endpoint appends an endpoint's address and port as attributes.
func (d *zipkinDecoder) endpoint(ep *zipkinEndpoint, name, addrAttr, portAttr string, i int) error {
	if ep == nil {
		return nil
	}
	var addr netip.Addr
	if ep.IPv4 != "" {
		a, err := netip.ParseAddr(ep.IPv4)
		if err != nil || !a.Is4() {
			return errorf("span %d: %s.ipv4 %q is not an IPv4 address", i, name, truncate(ep.IPv4))
		}
		addr = a
	}
	if ep.IPv6 != "" {
		a, err := netip.ParseAddr(ep.IPv6)
		if err != nil || !a.Is6() {
			return errorf("span %d: %s.ipv6 %q is not an IPv6 address", i, name, truncate(ep.IPv6))
		}
		if !addr.IsValid() {
			addr = a
		}
	}
	if addr.IsValid() {
		d.attrs = append(d.attrs, attr{addrAttr, addr.String()})
	}
	if ep.Port < 0 || ep.Port > math.MaxUint16 {
		return errorf("span %d: %s.port %d is not a port (0 to 65535)", i, name, ep.Port)
	}
	if ep.Port != 0 {
		d.attrs = append(d.attrs, attr{portAttr, ep.Port})
	}
	return nil
}

// tags appends a span's tags as attributes, in key order, but for those
// that give its scope and status, which it returns.
func (d *zipkinDecoder) tags(tags map[string]string, i int) (scope zipkinScope, code ptrace.StatusCode, msg string, err error) {
	d.keys = d.keys[:0]
	for k := range tags {
		d.keys = append(d.keys, k)
	}
	slices.Sort(d.keys)
	for _, k := range d.keys {
		v := tags[k]
		switch k {
		case tagError, tagOTelStatusCode, tagOTelStatusDesc:
		case tagOTelScopeName, tagOTelLibraryName:
			if _, ok := tags[tagOTelScopeName]; k == tagOTelScopeName || !ok {
				scope.name = v
			}
		case tagOTelScopeVer, tagOTelLibraryVer:
			if _, ok := tags[tagOTelScopeVer]; k == tagOTelScopeVer || !ok {
				scope.version = v
			}
		default:
			d.attrs = append(d.attrs, attr{k, v})
		}
	}
	errMsg, isErr := tags[tagError]
	s, hasCode := tags[tagOTelStatusCode]
	switch {
	case !hasCode && isErr, strings.EqualFold(s, "ERROR"):
		code, msg = ptrace.StatusCodeError, errMsg
	case !hasCode, s == "", strings.EqualFold(s, "UNSET"):
	case strings.EqualFold(s, "OK"):
		code = ptrace.StatusCodeOk
	default:
		return scope, code, msg, errorf("span %d: tag %s is %q, not OK, ERROR or UNSET", i, tagOTelStatusCode, truncate(s))
	}
	if desc, ok := tags[tagOTelStatusDesc]; ok {
		msg = desc
	}
	return scope, code, msg, nil
}

// putAttrs puts attributes into an empty map; of two with one key the later
// counts.
func putAttrs(m pcommon.Map, attrs []attr) {
	if len(attrs) <= maxPutAttrs {
		m.EnsureCapacity(len(attrs))
		for _, a := range attrs {
			switch v := a.value.(type) {
			case string:
				m.PutStr(a.key, v)
			case int64:
				m.PutInt(a.key, v)
			case bool:
				m.PutBool(a.key, v)
			}
		}
		return
	}
	raw := make(map[string]any, len(attrs))
	for _, a := range attrs {
		raw[a.key] = a.value
	}
	_ = m.FromRaw(raw) // strings, int64s and bools never fail
}

func zipkinKind(k string, i int) (ptrace.SpanKind, error) {
	switch k {
	case "":
		return ptrace.SpanKindUnspecified, nil
	case "CLIENT":
		return ptrace.SpanKindClient, nil
	case "SERVER":
		return ptrace.SpanKindServer, nil
	case "PRODUCER":
		return ptrace.SpanKindProducer, nil
	case "CONSUMER":
		return ptrace.SpanKindConsumer, nil
	}
	return 0, errorf("span %d: kind %q is not CLIENT, SERVER, PRODUCER or CONSUMER", i, truncate(k))
}

func decodeHex(dst []byte, s, name string, i int) error {
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return errorf("span %d: %s %q is not hex", i, name, truncate(s))
	}
	return nil
}

func decodeSpanID(dst []byte, s, name string, i int) error {
	if len(s) != 16 {
		return errorf("span %d: %s %q has %d hex digits, not 16", i, name, truncate(s), len(s))
	}
	return decodeHex(dst, s, name, i)
}

// micros converts a Zipkin time or duration in microseconds, a JSON number
// (or a string of one), into nanoseconds; absent or null is 0.
func micros(raw json.RawMessage, name string, i int) (uint64, error) {
	n := string(raw)
	if n == "" || n == "null" {
		return 0, nil
	}
	if n[0] == '"' {
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, errorf("span %d: %s %s is not a whole number of microseconds", i, name, truncate(string(raw)))
		}
	}
	v, err := strconv.ParseInt(n, 10, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, errorf("span %d: %s %s is not a whole number of microseconds", i, name, truncate(string(raw)))
	case strings.HasPrefix(n, "-") && (err != nil || v < 0):
		return 0, errorf("span %d: %s %s is negative", i, name, truncate(n))
	case err != nil || v > maxTimeUnixNano/1000:
		return 0, errorf("span %d: %s of %s µs goes past 2262 (Unix nanoseconds in 63 bits)", i, name, truncate(n))
	}
	return uint64(v) * 1000, nil
}
