package tracepush

import (
	"encoding/hex"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// Tags of the fields a piece is made of, all length-delimited (wire type
// 2): a TracesData's resource_spans, a ResourceSpans's scope_spans, a
// ScopeSpans's spans.
const (
	tagResourceSpans = requestResourceSpans<<3 | 2
	tagScopeSpans    = rsScopeSpans<<3 | 2
	tagSpans         = ssSpans<<3 | 2
)

func isZero(id []byte) bool {
	for _, c := range id {
		if c != 0 {
			return false
		}
	}
	return true
}

func hexID(id []byte) string { return hex.EncodeToString(id) }

// spanName names a span with valid IDs for messages.
func spanName(traceID, spanID []byte) string {
	return "trace " + hexID(traceID) + " span " + hexID(spanID)
}

// keep adds a span to its trace.
func (s *splitter) keep(b, traceID []byte, start, end uint64) {
	id := pcommon.TraceID(traceID)
	ti, ok := s.lastTrace, len(s.traces) > 0 && s.traces[s.lastTrace].id == id
	if !ok { // not the same trace as the span before
		if ti, ok = s.index[id]; !ok {
			ti = int32(len(s.traces))
			s.index[id] = ti
			s.traces = append(s.traces, traceAcc{id: id, first: -1, last: -1})
		}
	}
	n := int32(len(s.spans))
	s.spans = append(s.spans, spanRef{b: b, scope: int32(len(s.scopes) - 1), next: -1})
	s.lastTrace = ti
	t := &s.traces[ti]
	if t.last >= 0 {
		s.spans[t.last].next = n
	} else {
		t.first = n
	}
	t.last = n
	t.spans++
	if start != 0 && (t.start == 0 || start < t.start) {
		t.start = start
	}
	t.end = max(t.end, end)
}

func (s *splitter) rejectSpan(r Reason, traceID, spanID []byte, msg func() string) {
	s.batch.reject(r, 1, func() *Rejection {
		rej := &Rejection{Reason: r, Msg: msg()}
		copy(rej.TraceID[:], traceID)
		return rej
	})
}

// rejectAttr rejects a span for an attribute over a limit (its own, or its
// resource's or scope's).
func (s *splitter) rejectAttr(p *problem, traceID, spanID []byte) {
	s.rejectSpan(p.reason, traceID, spanID, func() string {
		var whose string
		switch p.owner {
		case ownResource:
			whose = "resource "
		case ownScope:
			whose = "scope "
		case ownEvent:
			whose = "event " + strconv.Itoa(p.index) + " "
		case ownLink:
			whose = "link " + strconv.Itoa(p.index) + " "
		}
		var what, name string
		switch p.kind {
		case keyTooLong:
			what, name = "its key is", s.lim.Names.MaxAttributeKeyBytes
		case innerKeyTooLong:
			what, name = "a key in its value is", s.lim.Names.MaxAttributeKeyBytes
		case valueTooLong:
			what, name = "its value is", s.lim.Names.MaxAttributeValueBytes
		case innerValueTooLong:
			what, name = "a value in it is", s.lim.Names.MaxAttributeValueBytes
		}
		return spanName(traceID, spanID) + ": " + whose + "attribute " + strconv.Quote(truncate(string(p.key))) + ": " + what + " " +
			strconv.Itoa(p.size) + " bytes, longer than the limit of " + strconv.Itoa(p.limit) + " bytes" + limitName(name)
	})
}

// cut sizes every trace's piece, rejects those over MaxBytesPerTrace and
// writes the others into one array.
func (s *splitter) cut() *Batch {
	b := &s.batch
	total, kept := 0, 0
	for i := range s.traces {
		t := &s.traces[i]
		t.sizes = len(s.sizes)
		t.size = s.size(t)
		if max := s.lim.MaxBytesPerTrace; max > 0 && t.size > max {
			t.rejected = true
			b.RejectedTraces++
			b.reject(ReasonTraceTooLarge, t.spans, func() *Rejection {
				return &Rejection{Reason: ReasonTraceTooLarge, TraceID: t.id, Msg: "trace " + t.id.String() + ": " + strconv.Itoa(t.size) +
					" bytes exceeds the per-trace limit of " + strconv.Itoa(max) + " bytes" + limitName(s.lim.Names.MaxBytesPerTrace)}
			})
			continue
		}
		total += t.size
		kept++
	}
	out := make([]byte, 0, total)
	b.Traces = make([]Trace, 0, kept)
	for i := range s.traces {
		t := &s.traces[i]
		if t.rejected {
			continue
		}
		start := len(out)
		out = s.write(out, t)
		b.Traces = append(b.Traces, Trace{ID: t.id, Spans: t.spans, Start: t.start, End: t.end, Data: out[start:len(out):len(out)]})
		b.Spans += t.spans
	}
	b.Bytes = len(out)
	return b
}

// sizeField is the size of a length-delimited field of n bytes with a
// one-byte tag.
func sizeField(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// size returns the size of a trace's piece and appends to s.sizes the
// sizes of its ResourceSpans and ScopeSpans, in the order write writes
// them.
func (s *splitter) size(t *traceAcc) int {
	total := 0
	rs, ss := int32(-1), int32(-1)
	rsAt, ssAt := -1, -1 // their places in s.sizes
	for i := t.first; i >= 0; i = s.spans[i].next {
		sp := &s.spans[i]
		if sp.scope != ss {
			if ssAt >= 0 {
				s.sizes[rsAt] += sizeField(s.sizes[ssAt])
			}
			sc := &s.scopes[sp.scope]
			if sc.rs != rs {
				if rsAt >= 0 {
					total += sizeField(s.sizes[rsAt])
				}
				rs, rsAt = sc.rs, len(s.sizes)
				h := s.rss[rs]
				s.sizes = append(s.sizes, h.end-h.off)
			}
			ss, ssAt = sp.scope, len(s.sizes)
			s.sizes = append(s.sizes, sc.hdr.end-sc.hdr.off)
		}
		s.sizes[ssAt] += sizeField(len(sp.b))
	}
	if ssAt >= 0 {
		s.sizes[rsAt] += sizeField(s.sizes[ssAt])
		total += sizeField(s.sizes[rsAt])
	}
	return total
}

// write appends a trace's piece to out.
func (s *splitter) write(out []byte, t *traceAcc) []byte {
	k := t.sizes
	rs, ss := int32(-1), int32(-1)
	for i := t.first; i >= 0; i = s.spans[i].next {
		sp := &s.spans[i]
		if sp.scope != ss {
			sc := &s.scopes[sp.scope]
			if sc.rs != rs {
				rs = sc.rs
				h := s.rss[rs]
				out = append(out, tagResourceSpans)
				out = protowire.AppendVarint(out, uint64(s.sizes[k]))
				out = append(out, s.hdr[h.off:h.end]...)
				k++
			}
			ss = sp.scope
			out = append(out, tagScopeSpans)
			out = protowire.AppendVarint(out, uint64(s.sizes[k]))
			out = append(out, s.hdr[sc.hdr.off:sc.hdr.end]...)
			k++
		}
		out = append(out, tagSpans)
		out = protowire.AppendVarint(out, uint64(len(sp.b)))
		out = append(out, sp.b...)
	}
	return out
}
