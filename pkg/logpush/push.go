// Package logpush decodes the bodies of Loki's push API
// (POST /loki/api/v1/push) as Promtail, Alloy, Fluent Bit and Vector send
// them: snappy-compressed protobuf (Loki's logproto.PushRequest) or JSON.
// The wire formats are Loki's documented ones; this decoder is Canopy's own.
// Decompression and limits are the caller's (the distributor's); this
// package turns bytes into streams, or an error that says what is wrong
// and where.
package logpush

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/canopy-observability/canopy/pkg/util/strutil"
)

// Stream is one log stream of a push: its index labels and its entries, in
// the order they were sent.
type Stream struct {
	Labels  labels.Labels
	Entries []Entry
}

// Entry is one log line.
type Entry struct {
	// Timestamp is in Unix nanoseconds.
	Timestamp int64
	Line      string
	// Metadata is the entry's structured metadata (not indexed), sorted by
	// name; empty when the entry has none.
	Metadata labels.Labels
}

// Error is a push body that cannot be decoded; its message names what and
// where (stream and entry numbers count from 0).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Field numbers of Loki's push.proto (package logproto) and of
// google.protobuf.Timestamp.
const (
	pushStreams        = 1 // PushRequest.streams
	streamLabels       = 1 // StreamAdapter.labels
	streamEntries      = 2 // StreamAdapter.entries
	entryTimestamp     = 1 // EntryAdapter.timestamp
	entryLine          = 2 // EntryAdapter.line
	entryMetadata      = 3 // EntryAdapter.structuredMetadata
	pairName           = 1 // LabelPairAdapter.name
	pairValue          = 2 // LabelPairAdapter.value
	timestampSeconds   = 1
	timestampNanos     = 2
	maxTimestampSecond = math.MaxInt64/1_000_000_000 - 1
)

// selectorParser parses the labels of protobuf streams (PromQL's selector
// syntax, which Loki's `{a="b"}` is).
var selectorParser = parser.NewParser(parser.Options{})

// DecodeProto decodes a logproto.PushRequest (already decompressed). Fields
// it does not know are skipped, as protobuf requires. The lines and
// metadata of the streams share one copy of b.
func DecodeProto(b []byte) ([]Stream, error) {
	d := &protoDecoder{base: b, all: string(b)}
	var streams []Stream
	parsed := map[string]labels.Labels{} // one push repeats a stream's labels
	err := eachField(b, func() string { return "PushRequest" }, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != pushStreams {
			return nil
		}
		if typ != protowire.BytesType {
			return errorf("PushRequest field %d: wrong wire type %d", num, typ)
		}
		s, err := d.stream(v, len(streams), parsed)
		if err != nil {
			return err
		}
		streams = append(streams, s)
		return nil
	})
	return streams, err
}

// protoDecoder decodes one push body; all is the body as a string, of
// which the decoded strings are substrings (one allocation per push).
type protoDecoder struct {
	base []byte
	all  string
}

// str returns v, a subslice of the body, as a substring of all.
func (d *protoDecoder) str(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	off := int(uintptr(unsafe.Pointer(&v[0])) - uintptr(unsafe.Pointer(&d.base[0])))
	return d.all[off : off+len(v)]
}

func (d *protoDecoder) stream(b []byte, n int, parsed map[string]labels.Labels) (Stream, error) {
	var s Stream
	var lbls string
	seenLabels := false
	for len(b) > 0 {
		num, typ, v, rest, err := nextField(b)
		if err != nil {
			return s, errorf("stream %d: %v", n, err)
		}
		b = rest
		switch num {
		case streamLabels:
			if typ != protowire.BytesType {
				return s, errorf("stream %d: labels: wrong wire type %d", n, typ)
			}
			lbls, seenLabels = d.str(v), true
		case streamEntries:
			if typ != protowire.BytesType {
				return s, errorf("stream %d: entries: wrong wire type %d", n, typ)
			}
			e, err := d.entry(v, n, len(s.Entries))
			if err != nil {
				return s, err
			}
			s.Entries = append(s.Entries, e)
		}
	}
	if !seenLabels {
		return s, errorf("stream %d has no labels", n)
	}
	ls, ok := parsed[lbls]
	if !ok {
		var err error
		if ls, err = ParseStreamLabels(lbls); err != nil {
			return s, errorf("stream %d: %v", n, err)
		}
		parsed[lbls] = ls
	}
	s.Labels = ls
	return s, nil
}

// nextField reads one field of a message: its number and wire type, its
// bytes (length-delimited fields) and what follows it.
func nextField(b []byte) (protowire.Number, protowire.Type, []byte, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, nil, protowire.ParseError(n)
	}
	b = b[n:]
	var v []byte
	if typ == protowire.BytesType {
		v, n = protowire.ConsumeBytes(b)
	} else {
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, 0, nil, nil, fmt.Errorf("field %d: %v", num, protowire.ParseError(n))
	}
	return num, typ, v, b[n:], nil
}

func (d *protoDecoder) entry(b []byte, stream, n int) (Entry, error) {
	var e Entry
	var md []labels.Label
	at := entryAt{stream, n}
	where := at.String
	seenTimestamp := false
	for len(b) > 0 {
		num, typ, v, rest, err := nextField(b)
		if err != nil {
			return e, errorf("%s: %v", where(), err)
		}
		b = rest
		switch num {
		case entryTimestamp:
			if typ != protowire.BytesType {
				return e, errorf("%s: timestamp: wrong wire type %d", where(), typ)
			}
			ts, err := decodeTimestamp(v, at)
			if err != nil {
				return e, err
			}
			e.Timestamp, seenTimestamp = ts, true
		case entryLine:
			if typ != protowire.BytesType {
				return e, errorf("%s: line: wrong wire type %d", where(), typ)
			}
			e.Line = d.str(v)
		case entryMetadata:
			if typ != protowire.BytesType {
				return e, errorf("%s: structured metadata: wrong wire type %d", where(), typ)
			}
			var l labels.Label
			for len(v) > 0 {
				pnum, ptyp, pv, prest, err := nextField(v)
				if err != nil {
					return e, errorf("%s structured metadata: %v", where(), err)
				}
				v = prest
				if pnum != pairName && pnum != pairValue {
					continue
				}
				if ptyp != protowire.BytesType {
					return e, errorf("%s: structured metadata field %d: wrong wire type %d", where(), pnum, ptyp)
				}
				if pnum == pairName {
					l.Name = d.str(pv)
				} else {
					l.Value = d.str(pv)
				}
			}
			md = append(md, l)
		}
	}
	if !seenTimestamp {
		return e, errorf("%s has no timestamp", where())
	}
	var err error
	if e.Metadata, err = metadata(md, at); err != nil {
		return e, err
	}
	return e, nil
}

// decodeTimestamp decodes a google.protobuf.Timestamp into Unix nanoseconds.
func decodeTimestamp(b []byte, at entryAt) (int64, error) {
	var secs, nanos int64
	for len(b) > 0 {
		num, typ, _, rest, err := nextField(b)
		if err != nil {
			return 0, errorf("%s timestamp: %v", at, err)
		}
		if num == timestampSeconds || num == timestampNanos {
			if typ != protowire.VarintType {
				return 0, errorf("%s: timestamp field %d: wrong wire type %d", at, num, typ)
			}
			v, _ := protowire.ConsumeVarint(b[protowire.SizeTag(num):])
			if num == timestampSeconds {
				secs = int64(v)
			} else {
				nanos = int64(int32(v))
			}
		}
		b = rest
	}
	return unixNanos(secs, nanos, at)
}

// entryAt names an entry in errors (numbers count from 0); it is formatted
// only for an error.
type entryAt struct{ stream, entry int }

func (a entryAt) String() string { return fmt.Sprintf("stream %d entry %d", a.stream, a.entry) }

func unixNanos(secs, nanos int64, at entryAt) (int64, error) {
	if nanos < 0 || nanos >= 1e9 {
		return 0, errorf("%s: timestamp nanoseconds %d are outside [0, 999999999]", at, nanos)
	}
	if secs < 0 || secs > maxTimestampSecond {
		return 0, errorf("%s: timestamp of %d seconds is outside 1970 to 2262 (Unix nanoseconds in 64 bits)", at, secs)
	}
	return secs*1e9 + nanos, nil
}

// metadata checks and sorts an entry's structured metadata.
func metadata(md []labels.Label, at entryAt) (labels.Labels, error) {
	if len(md) == 0 {
		return labels.EmptyLabels(), nil
	}
	for _, l := range md {
		if l.Name == "" {
			return labels.EmptyLabels(), errorf("%s: structured metadata with an empty name", at)
		}
	}
	slices.SortStableFunc(md, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(md); i++ {
		if md[i].Name == md[i-1].Name {
			return labels.EmptyLabels(), errorf("%s: structured metadata %q given more than once", at, md[i].Name)
		}
	}
	return labels.New(md...), nil
}

// eachField calls f with every field of the protobuf message b: its
// number, wire type and, for a length-delimited field its bytes, for a
// varint or fixed field its value.
func eachField(b []byte, where func() string, f func(num protowire.Number, typ protowire.Type, bytes []byte, value uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errorf("%s: %v", where(), protowire.ParseError(n))
		}
		b = b[n:]
		var (
			v     []byte
			value uint64
		)
		switch typ {
		case protowire.VarintType:
			value, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			value, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			value = uint64(v32)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errorf("%s: field %d: %v", where(), num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, value); err != nil {
			return err
		}
	}
	return nil
}

// ParseStreamLabels parses a stream's labels as the protobuf push carries
// them, `{name="value", …}` in PromQL's syntax: only equality, each name
// once, no empty value, valid UTF-8.
func ParseStreamLabels(s string) (labels.Labels, error) {
	if !utf8.ValidString(s) {
		return labels.EmptyLabels(), errors.New("stream labels are not valid UTF-8")
	}
	if ls, ok := parsePlainLabels(s); ok {
		return ls, nil
	}
	ms, err := selectorParser.ParseMetricSelector(s)
	if err != nil {
		return labels.EmptyLabels(), fmt.Errorf("stream labels %s: %v", truncate(s), err)
	}
	b := labels.NewScratchBuilder(len(ms))
	for _, m := range ms {
		if m.Type != labels.MatchEqual {
			return labels.EmptyLabels(), fmt.Errorf("stream labels %s: %s is not name=\"value\"", truncate(s), m)
		}
		if m.Value == "" {
			return labels.EmptyLabels(), fmt.Errorf("stream labels %s: label %q has an empty value", truncate(s), m.Name)
		}
		if !IsLabelName(m.Name) {
			return labels.EmptyLabels(), fmt.Errorf("stream labels %s: invalid label name %q: a label name is letters, digits and _, not starting with a digit", truncate(s), m.Name)
		}
		b.Add(m.Name, m.Value)
	}
	b.Sort()
	ls := b.Labels()
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return labels.EmptyLabels(), fmt.Errorf("stream labels %s: label %q given more than once", truncate(s), name)
	}
	if ls.IsEmpty() {
		return labels.EmptyLabels(), fmt.Errorf("stream labels %s: a stream needs at least one label", truncate(s))
	}
	return ls, nil
}

// truncate bounds what an error message quotes of the client's input.
func truncate(s string) string { return strutil.Truncate(s, 120) }

// parsePlainLabels reads the form agents write, {name="value", …} with
// plain names and values without escapes, without the PromQL parser; it
// says false for anything else (escapes, quoted names, empty values,
// repeated names, no labels), which the parser then reads or rejects with
// its message.
func parsePlainLabels(s string) (labels.Labels, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return labels.EmptyLabels(), false
	}
	var pairs [16]labels.Label
	ls := pairs[:0]
	i := 1
	space := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		space()
		start := i
		for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > start && s[i] >= '0' && s[i] <= '9') {
			i++
		}
		name := s[start:i]
		space()
		if name == "" || i >= len(s) || s[i] != '=' {
			return labels.EmptyLabels(), false
		}
		i++
		space()
		if i >= len(s) || s[i] != '"' {
			return labels.EmptyLabels(), false
		}
		end := strings.IndexAny(s[i+1:], "\"\\")
		if end <= 0 || s[i+1+end] != '"' {
			return labels.EmptyLabels(), false // empty, escaped or unterminated
		}
		value := s[i+1 : i+1+end]
		for k := 0; k < len(value); k++ {
			if value[k] < ' ' {
				return labels.EmptyLabels(), false // the parser's business
			}
		}
		ls = append(ls, labels.Label{Name: name, Value: value})
		i += end + 2
		space()
		if i == len(s)-1 {
			break
		}
		if s[i] != ',' {
			return labels.EmptyLabels(), false
		}
		i++
		space()
		if i == len(s)-1 {
			break // a trailing comma
		}
	}
	slices.SortFunc(ls, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	for k := 1; k < len(ls); k++ {
		if ls[k].Name == ls[k-1].Name {
			return labels.EmptyLabels(), false
		}
	}
	return labels.New(ls...), true
}
