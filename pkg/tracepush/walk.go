package tracepush

import (
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of OTLP's trace.proto, common.proto and resource.proto
// (opentelemetry.proto.*.v1), as pdata reads them.
const (
	requestResourceSpans = 1 // TracesData / ExportTraceServiceRequest

	rsResource   = 1
	rsScopeSpans = 2
	rsSchemaURL  = 3
	// rsOldScopeSpans is instrumentation_library_spans, which pdata reads
	// as the scope spans when there are none.
	rsOldScopeSpans = 1000

	resourceAttributes = 1
	resourceDropped    = 2
	resourceEntityRefs = 3

	ssScope     = 1
	ssSpans     = 2
	ssSchemaURL = 3

	scopeName       = 1
	scopeVersion    = 2
	scopeAttributes = 3
	scopeDropped    = 4

	spanTraceID      = 1
	spanSpanID       = 2
	spanTraceState   = 3
	spanParentSpanID = 4
	spanNameField    = 5
	spanKind         = 6
	spanStart        = 7
	spanEnd          = 8
	spanAttributes   = 9
	spanDroppedAttrs = 10
	spanEvents       = 11
	spanDroppedEvts  = 12
	spanLinks        = 13
	spanDroppedLinks = 14
	spanStatus       = 15
	spanFlags        = 16

	eventTime       = 1
	eventName       = 2
	eventAttributes = 3
	eventDropped    = 4

	linkTraceID    = 1
	linkSpanID     = 2
	linkTraceState = 3
	linkAttributes = 4
	linkDropped    = 5
	linkFlags      = 6

	statusMessage = 2
	statusCode    = 3

	kvKey         = 1
	kvValue       = 2
	kvKeyStrindex = 3

	valueString         = 1
	valueBool           = 2
	valueInt            = 3
	valueDouble         = 4
	valueArray          = 5
	valueKvlist         = 6
	valueBytes          = 7
	valueStringStrindex = 8

	listValues = 1 // ArrayValue.values, KeyValueList.values

	// maxValueDepth bounds how deep attribute values nest (arrays and maps
	// in arrays and maps). pdata decodes them recursively: a body of
	// values nested a million deep would exhaust a goroutine's stack and
	// crash the process.
	maxValueDepth = 64

	traceIDSize     = 16
	spanIDSize      = 8
	maxSpanKind     = 5 // SPAN_KIND_CONSUMER
	maxStatusCode   = 2 // STATUS_CODE_ERROR
	maxTimeUnixNano = math.MaxInt64
)

// field is one field of a protobuf message.
type field struct {
	num protowire.Number
	typ protowire.Type
	val []byte // a length-delimited field's bytes
	u   uint64 // a varint or fixed field's value
}

// position is where the walk is in a request, for messages; -1 is "not
// inside one".
type position struct{ rs, ss, span, event, link int }

func (p position) String() string {
	if p.rs < 0 {
		return "request"
	}
	s := spanAt(p.rs, p.ss, p.span)
	if p.event >= 0 {
		s += " event " + strconv.Itoa(p.event)
	}
	if p.link >= 0 {
		s += " link " + strconv.Itoa(p.link)
	}
	return s
}

// owner says whose attribute broke a limit.
type owner uint8

const (
	ownSpan owner = iota
	ownResource
	ownScope
	ownEvent
	ownLink
)

// problemKind says what broke a limit.
type problemKind uint8

const (
	keyTooLong        problemKind = iota // the attribute's key
	innerKeyTooLong                      // a key of a map within its value
	valueTooLong                         // its string or bytes value
	innerValueTooLong                    // a string or bytes within its value
)

// problem is the first attribute of a resource, scope or span that broke
// a limit; reason is empty when there is none. key is the top-level
// attribute's key (a part of the body).
type problem struct {
	reason      Reason
	owner       owner
	index       int // of the event or link
	kind        problemKind
	key         []byte
	size, limit int
}

// spanRef is a span kept: its bytes (a part of the body), its scope and
// the next span of its trace (-1 for none).
type spanRef struct {
	b     []byte
	scope int32
	next  int32
}

// hdrRange is a resource's or scope's header in splitter.hdr: the fields of
// the ResourceSpans or ScopeSpans other than their children.
type hdrRange struct{ off, end int }

type scopeRef struct {
	rs  int32
	hdr hdrRange
}

// traceAcc gathers a trace's spans as a list through spanRef.next.
type traceAcc struct {
	id          pcommon.TraceID
	first, last int32
	spans       int
	start, end  uint64
	size        int  // of its piece
	sizes       int  // where its groups' sizes start in splitter.sizes
	rejected    bool // over MaxBytesPerTrace
}

// splitter walks a request once, checking its structure as pdata reads it
// and its spans against the limits, and gathers the spans kept by trace.
// With check set it only checks the structure.
type splitter struct {
	lim   Limits
	check bool
	pos   position

	// Limits broken by the current resource, scope and span, the one
	// attributes are checked for, and whose attribute it is.
	rsProb, ssProb, spanProb problem
	prob                     *problem
	own                      owner
	ownIndex                 int

	hdr    []byte
	rss    []hdrRange
	scopes []scopeRef
	spans  []spanRef
	traces []traceAcc
	index  map[pcommon.TraceID]int32
	// lastTrace is the trace of the span kept last: a body's spans of one
	// trace tend to come together.
	lastTrace int32
	sizes     []int
	batch     Batch
}

func newSplitter(lim Limits, check bool) *splitter {
	return &splitter{lim: lim, check: check, pos: position{-1, -1, -1, -1, -1}, index: map[pcommon.TraceID]int32{}}
}

func (s *splitter) errorf(format string, args ...any) error {
	return errorf("%s: "+format, append([]any{s.pos}, args...)...)
}

// next reads the field at the start of b into f and returns what follows
// it. One-byte tags and lengths, which most are, take a short way.
func (s *splitter) next(b []byte, f *field) ([]byte, error) {
	if c := b[0]; c >= 1<<3 && c < 0x80 {
		f.num, f.typ = protowire.Number(c>>3), protowire.Type(c&7)
		b = b[1:]
	} else {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, s.errorf("not valid protobuf: %s", parseError(n))
		}
		f.num, f.typ = num, typ
		b = b[n:]
	}
	var n int
	switch f.typ {
	case protowire.BytesType:
		if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) {
			l := int(b[0]) + 1
			f.val = b[1:l]
			return b[l:], nil
		}
		f.val, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		f.u, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.u, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.u = uint64(v)
	default:
		n = protowire.ConsumeFieldValue(f.num, f.typ, b)
	}
	if n < 0 {
		return nil, s.errorf("not valid protobuf: field %d: %s", f.num, parseError(n))
	}
	return b[n:], nil
}

// parseError words protowire's error codes (its own messages vary their
// spaces on purpose, so that nobody matches them).
func parseError(n int) string {
	switch n {
	case -1:
		return "unexpected end"
	case -2:
		return "invalid field number"
	case -3:
		return "varint overflows 64 bits"
	case -4:
		return "reserved wire type"
	case -5:
		return "end of group without its start"
	case -6:
		return "groups nest too deep"
	}
	return "error " + strconv.Itoa(n)
}

var wireTypeNames = [...]string{
	protowire.VarintType:     "varint",
	protowire.Fixed64Type:    "fixed64",
	protowire.BytesType:      "length-delimited",
	protowire.StartGroupType: "group",
	protowire.EndGroupType:   "end of group",
	protowire.Fixed32Type:    "fixed32",
}

func wireTypeName(t protowire.Type) string {
	if int(t) < len(wireTypeNames) && wireTypeNames[t] != "" {
		return wireTypeNames[t]
	}
	return "wire type " + strconv.Itoa(int(t))
}

// want checks that f, a field pdata knows, has the wire type pdata reads.
func (s *splitter) want(f *field, typ protowire.Type, name string) error {
	if f.typ != typ {
		return s.errorf("%s (field %d) is %s, not %s", name, f.num, wireTypeName(f.typ), wireTypeName(typ))
	}
	return nil
}

// walk walks a TracesData or ExportTraceServiceRequest.
func (s *splitter) walk(b []byte) error {
	for i := 0; len(b) > 0; {
		s.pos = position{-1, -1, -1, -1, -1}
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		if f.num != requestResourceSpans {
			continue
		}
		if err := s.want(&f, protowire.BytesType, "resource_spans"); err != nil {
			return err
		}
		s.pos = position{i, -1, -1, -1, -1}
		if err := s.resourceSpans(f.val); err != nil {
			return err
		}
		i++
	}
	return nil
}

func (s *splitter) resourceSpans(b []byte) error {
	hdr := hdrRange{off: len(s.hdr)}
	s.rsProb = problem{}
	newScopes := false
	for rest := b; len(rest) > 0; {
		var f field
		at := rest
		var err error
		if rest, err = s.next(rest, &f); err != nil {
			return err
		}
		switch f.num {
		case rsScopeSpans:
			if err := s.want(&f, protowire.BytesType, "scope_spans"); err != nil {
				return err
			}
			newScopes = true
			continue
		case rsOldScopeSpans:
			if err := s.want(&f, protowire.BytesType, "instrumentation_library_spans"); err != nil {
				return err
			}
			continue
		case rsResource:
			if err := s.want(&f, protowire.BytesType, "resource"); err != nil {
				return err
			}
			s.prob = &s.rsProb
			if err := s.resource(f.val); err != nil {
				return err
			}
		case rsSchemaURL:
			if err := s.want(&f, protowire.BytesType, "schema_url"); err != nil {
				return err
			}
		}
		if !s.check {
			s.hdr = append(s.hdr, at[:len(at)-len(rest)]...)
		}
	}
	hdr.end = len(s.hdr)
	rs := int32(len(s.rss))
	s.rss = append(s.rss, hdr)
	// Like pdata, read instrumentation_library_spans only when there are
	// no scope_spans, as scope_spans.
	for j := 0; len(b) > 0; {
		var f field
		rest, _ := s.next(b, &f) // read above
		b = rest
		if f.num != rsScopeSpans && f.num != rsOldScopeSpans {
			continue
		}
		keep := (f.num == rsScopeSpans) == newScopes
		s.pos.ss, s.pos.span = j, -1
		if err := s.scopeSpans(f.val, rs, keep); err != nil {
			return err
		}
		if keep {
			j++
		}
	}
	return nil
}

func (s *splitter) resource(b []byte) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case resourceAttributes:
			err = s.attribute(&f, "resource attributes", ownResource, 0)
		case resourceDropped:
			err = s.want(&f, protowire.VarintType, "resource dropped_attributes_count")
		case resourceEntityRefs:
			if err = s.want(&f, protowire.BytesType, "resource entity_refs"); err == nil {
				err = s.strings(f.val, "resource entity_ref")
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// strings checks a message whose known fields are all strings (fields 1
// to 4: an EntityRef's).
func (s *splitter) strings(b []byte, name string) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		if f.num >= 1 && f.num <= 4 {
			if err := s.want(&f, protowire.BytesType, name+" field"); err != nil {
				return err
			}
		}
	}
	return nil
}

// scopeSpans walks a ScopeSpans of resource rs; keep false walks it only
// to check it (pdata reads it, then drops it).
func (s *splitter) scopeSpans(b []byte, rs int32, keep bool) error {
	hdr := hdrRange{off: len(s.hdr)}
	s.ssProb = problem{}
	record := keep && !s.check
	for rest := b; len(rest) > 0; {
		var f field
		at := rest
		var err error
		if rest, err = s.next(rest, &f); err != nil {
			return err
		}
		switch f.num {
		case ssSpans:
			if err := s.want(&f, protowire.BytesType, "spans"); err != nil {
				return err
			}
			continue
		case ssScope:
			if err := s.want(&f, protowire.BytesType, "scope"); err != nil {
				return err
			}
			s.prob = &s.ssProb
			if err := s.scope(f.val); err != nil {
				return err
			}
		case ssSchemaURL:
			if err := s.want(&f, protowire.BytesType, "schema_url"); err != nil {
				return err
			}
		}
		if record {
			s.hdr = append(s.hdr, at[:len(at)-len(rest)]...)
		}
	}
	hdr.end = len(s.hdr)
	if record {
		s.scopes = append(s.scopes, scopeRef{rs: rs, hdr: hdr})
	}
	for k := 0; len(b) > 0; {
		var f field
		rest, _ := s.next(b, &f) // read above
		b = rest
		if f.num != ssSpans {
			continue
		}
		s.pos.span = k
		if err := s.span(f.val, record); err != nil {
			return err
		}
		k++
	}
	return nil
}

func (s *splitter) scope(b []byte) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case scopeName:
			err = s.want(&f, protowire.BytesType, "scope name")
		case scopeVersion:
			err = s.want(&f, protowire.BytesType, "scope version")
		case scopeAttributes:
			err = s.attribute(&f, "scope attributes", ownScope, 0)
		case scopeDropped:
			err = s.want(&f, protowire.VarintType, "scope dropped_attributes_count")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// span walks a span and, when record, keeps it or rejects it.
func (s *splitter) span(b []byte, record bool) error {
	var (
		traceID, spanID []byte
		start, end      uint64
		events, links   int
	)
	s.spanProb = problem{}
	s.prob = &s.spanProb
	for rest := b; len(rest) > 0; {
		var f field
		var err error
		if rest, err = s.next(rest, &f); err != nil {
			return err
		}
		switch f.num {
		case spanTraceID:
			if err = s.id(&f, "trace_id", traceIDSize); err == nil {
				traceID = f.val
			}
		case spanSpanID:
			if err = s.id(&f, "span_id", spanIDSize); err == nil {
				spanID = f.val
			}
		case spanParentSpanID:
			err = s.id(&f, "parent_span_id", spanIDSize)
		case spanTraceState:
			err = s.want(&f, protowire.BytesType, "trace_state")
		case spanNameField:
			err = s.want(&f, protowire.BytesType, "name")
		case spanKind:
			if err = s.want(&f, protowire.VarintType, "kind"); err == nil && f.u > maxSpanKind {
				err = s.errorf("kind %d is not a span kind (0 to %d)", int64(f.u), maxSpanKind)
			}
		case spanStart:
			if err = s.time(&f, "start_time_unix_nano"); err == nil {
				start = f.u
			}
		case spanEnd:
			if err = s.time(&f, "end_time_unix_nano"); err == nil {
				end = f.u
			}
		case spanAttributes:
			err = s.attribute(&f, "attributes", ownSpan, 0)
		case spanDroppedAttrs:
			err = s.want(&f, protowire.VarintType, "dropped_attributes_count")
		case spanEvents:
			if err = s.want(&f, protowire.BytesType, "events"); err == nil {
				s.pos.event = events
				err = s.event(f.val, events)
				s.pos.event = -1
				events++
			}
		case spanDroppedEvts:
			err = s.want(&f, protowire.VarintType, "dropped_events_count")
		case spanLinks:
			if err = s.want(&f, protowire.BytesType, "links"); err == nil {
				s.pos.link = links
				err = s.link(f.val, links)
				s.pos.link = -1
				links++
			}
		case spanDroppedLinks:
			err = s.want(&f, protowire.VarintType, "dropped_links_count")
		case spanStatus:
			if err = s.want(&f, protowire.BytesType, "status"); err == nil {
				err = s.status(f.val)
			}
		case spanFlags:
			err = s.want(&f, protowire.Fixed32Type, "flags")
		}
		if err != nil {
			return err
		}
	}
	if !record {
		return nil
	}
	switch {
	case isZero(traceID):
		s.rejectSpan(ReasonInvalidTraceID, traceID, spanID, func() string {
			if len(traceID) == 0 {
				return s.pos.String() + " has no trace ID"
			}
			return s.pos.String() + ": the trace ID is all zeros"
		})
	case isZero(spanID):
		s.rejectSpan(ReasonInvalidSpanID, traceID, spanID, func() string {
			what := ": the span ID is all zeros"
			if len(spanID) == 0 {
				what = " has no span ID"
			}
			return "trace " + hexID(traceID) + ": " + s.pos.String() + what
		})
	case end < start:
		s.rejectSpan(ReasonEndBeforeStart, traceID, spanID, func() string {
			return spanName(traceID, spanID) + ": it ends at " + strconv.FormatUint(end, 10) + " before it starts at " + strconv.FormatUint(start, 10) + " (Unix nanoseconds)"
		})
	case s.rsProb.reason != "":
		s.rejectAttr(&s.rsProb, traceID, spanID)
	case s.ssProb.reason != "":
		s.rejectAttr(&s.ssProb, traceID, spanID)
	case s.spanProb.reason != "":
		s.rejectAttr(&s.spanProb, traceID, spanID)
	default:
		s.keep(b, traceID, start, end)
	}
	return nil
}

// id checks an ID field: length-delimited, empty or of size bytes (pdata
// refuses other lengths).
func (s *splitter) id(f *field, name string, size int) error {
	if err := s.want(f, protowire.BytesType, name); err != nil {
		return err
	}
	if len(f.val) != 0 && len(f.val) != size {
		return s.errorf("%s of %d bytes: it is %d bytes", name, len(f.val), size)
	}
	return nil
}

// time checks a time field: fixed64 Unix nanoseconds before 2262.
func (s *splitter) time(f *field, name string) error {
	if err := s.want(f, protowire.Fixed64Type, name); err != nil {
		return err
	}
	if f.u > maxTimeUnixNano {
		return s.errorf("%s %d is after 2262 (Unix nanoseconds in 63 bits)", name, f.u)
	}
	return nil
}

func (s *splitter) event(b []byte, n int) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case eventTime:
			err = s.time(&f, "time_unix_nano")
		case eventName:
			err = s.want(&f, protowire.BytesType, "name")
		case eventAttributes:
			err = s.attribute(&f, "attributes", ownEvent, n)
		case eventDropped:
			err = s.want(&f, protowire.VarintType, "dropped_attributes_count")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *splitter) link(b []byte, n int) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case linkTraceID:
			err = s.id(&f, "trace_id", traceIDSize)
		case linkSpanID:
			err = s.id(&f, "span_id", spanIDSize)
		case linkTraceState:
			err = s.want(&f, protowire.BytesType, "trace_state")
		case linkAttributes:
			err = s.attribute(&f, "attributes", ownLink, n)
		case linkDropped:
			err = s.want(&f, protowire.VarintType, "dropped_attributes_count")
		case linkFlags:
			err = s.want(&f, protowire.Fixed32Type, "flags")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *splitter) status(b []byte) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case statusMessage:
			err = s.want(&f, protowire.BytesType, "status message")
		case statusCode:
			if err = s.want(&f, protowire.VarintType, "status code"); err == nil && f.u > maxStatusCode {
				err = s.errorf("status code %d is not a status code (0 to %d)", int64(f.u), maxStatusCode)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// attribute checks a top-level attribute (a KeyValue field) of an owner:
// its structure, and its key and values against the limits.
func (s *splitter) attribute(f *field, name string, own owner, index int) error {
	if err := s.want(f, protowire.BytesType, name); err != nil {
		return err
	}
	s.own, s.ownIndex = own, index
	return s.keyValue(f.val, 0, nil)
}

// broke notes a limit broken by the current attribute, in s.prob unless a
// limit is already noted there.
func (s *splitter) broke(kind problemKind, top []byte, size, limit int) {
	if s.prob.reason != "" {
		return
	}
	*s.prob = problem{reason: ReasonAttributeTooLarge, owner: s.own, index: s.ownIndex, kind: kind, key: top, size: size, limit: limit}
}

// keyValue checks a KeyValue at a nesting depth; top is the key of the
// top-level attribute it is in (nil for that attribute itself).
func (s *splitter) keyValue(b []byte, depth int, top []byte) error {
	var key []byte
	seen := false
	for len(b) > 0 {
		var f field
		var err error
		if b, err = s.next(b, &f); err != nil {
			return err
		}
		switch f.num {
		case kvKey:
			if err := s.want(&f, protowire.BytesType, "attribute key"); err != nil {
				return err
			}
			key, seen = f.val, true
		case kvKeyStrindex:
			err = s.want(&f, protowire.VarintType, "attribute key_strindex")
		case kvValue:
			if !seen {
				// pdata writes the value first: messages name the key.
				key, seen = findKey(b), true
			}
			name := top
			if name == nil {
				name = key
			}
			if err = s.wantIn(&f, protowire.BytesType, name); err == nil {
				err = s.anyValue(f.val, depth, name)
			}
		}
		if err != nil {
			return err
		}
	}
	if max := s.lim.MaxAttributeKeyBytes; max > 0 && len(key) > max {
		kind, name := keyTooLong, key
		if depth > 0 {
			kind, name = innerKeyTooLong, top
		}
		s.broke(kind, name, len(key), max)
	}
	return nil
}

// findKey returns the last key among the fields of a KeyValue; it leaves
// errors to the walk.
func findKey(b []byte) []byte {
	var key []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return key
		}
		b = b[n:]
		if num == kvKey && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return key
			}
			key, b = v, b[m:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return key
		}
		b = b[n:]
	}
	return key
}

// wantIn is want for the fields inside the value of attribute top.
func (s *splitter) wantIn(f *field, typ protowire.Type, top []byte) error {
	if f.typ != typ {
		return s.errorf("attribute %q: field %d of its value is %s, not %s", truncate(string(top)), f.num, wireTypeName(f.typ), wireTypeName(typ))
	}
	return nil
}

func (s *splitter) anyValue(b []byte, depth int, top []byte) error {
	if depth > maxValueDepth {
		return s.errorf("attribute %q: its value nests more than %d deep", truncate(string(top)), maxValueDepth)
	}
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case valueString, valueBytes:
			if err = s.wantIn(&f, protowire.BytesType, top); err != nil {
				return err
			}
			if max := s.lim.MaxAttributeValueBytes; max > 0 && len(f.val) > max {
				kind := valueTooLong
				if depth > 0 {
					kind = innerValueTooLong
				}
				s.broke(kind, top, len(f.val), max)
			}
		case valueBool, valueInt, valueStringStrindex:
			err = s.wantIn(&f, protowire.VarintType, top)
		case valueDouble:
			err = s.wantIn(&f, protowire.Fixed64Type, top)
		case valueArray, valueKvlist:
			if err = s.wantIn(&f, protowire.BytesType, top); err == nil {
				err = s.list(f.val, f.num == valueKvlist, depth+1, top)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// list checks an ArrayValue or (kv) a KeyValueList.
func (s *splitter) list(b []byte, kv bool, depth int, top []byte) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		if f.num != listValues {
			continue
		}
		if err := s.wantIn(&f, protowire.BytesType, top); err != nil {
			return err
		}
		if kv {
			err = s.keyValue(f.val, depth, top)
		} else {
			err = s.anyValue(f.val, depth, top)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
