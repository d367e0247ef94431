package tracepush

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

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
