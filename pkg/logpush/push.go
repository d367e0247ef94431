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
// it does not know are skipped, as protobuf requires.
func DecodeProto(b []byte) ([]Stream, error) {
	var streams []Stream
	parsed := map[string]labels.Labels{} // one push repeats a stream's labels
	err := eachField(b, "PushRequest", func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != pushStreams {
			return nil
		}
		if typ != protowire.BytesType {
			return errorf("PushRequest field %d: wrong wire type %d", num, typ)
		}
		s, err := decodeStream(v, len(streams), parsed)
		if err != nil {
			return err
		}
		streams = append(streams, s)
		return nil
	})
	return streams, err
}

func decodeStream(b []byte, n int, parsed map[string]labels.Labels) (Stream, error) {
	var s Stream
	var lbls string
	seenLabels := false
	err := eachField(b, fmt.Sprintf("stream %d", n), func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case streamLabels:
			if typ != protowire.BytesType {
				return errorf("stream %d: labels: wrong wire type %d", n, typ)
			}
			lbls, seenLabels = string(v), true
		case streamEntries:
			if typ != protowire.BytesType {
				return errorf("stream %d: entries: wrong wire type %d", n, typ)
			}
			e, err := decodeEntry(v, n, len(s.Entries))
			if err != nil {
				return err
			}
			s.Entries = append(s.Entries, e)
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if !seenLabels {
		return s, errorf("stream %d has no labels", n)
	}
	ls, ok := parsed[lbls]
	if !ok {
		if ls, err = ParseStreamLabels(lbls); err != nil {
			return s, errorf("stream %d: %v", n, err)
		}
		parsed[lbls] = ls
	}
	s.Labels = ls
	return s, nil
}

func decodeEntry(b []byte, stream, n int) (Entry, error) {
	var e Entry
	var md []labels.Label
	where := fmt.Sprintf("stream %d entry %d", stream, n)
	seenTimestamp := false
	err := eachField(b, where, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case entryTimestamp:
			if typ != protowire.BytesType {
				return errorf("%s: timestamp: wrong wire type %d", where, typ)
			}
			ts, err := decodeTimestamp(v, where)
			if err != nil {
				return err
			}
			e.Timestamp, seenTimestamp = ts, true
		case entryLine:
			if typ != protowire.BytesType {
				return errorf("%s: line: wrong wire type %d", where, typ)
			}
			e.Line = string(v)
		case entryMetadata:
			if typ != protowire.BytesType {
				return errorf("%s: structured metadata: wrong wire type %d", where, typ)
			}
			var l labels.Label
			err := eachField(v, where+" structured metadata", func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != pairName && num != pairValue {
					return nil
				}
				if typ != protowire.BytesType {
					return errorf("%s: structured metadata field %d: wrong wire type %d", where, num, typ)
				}
				if num == pairName {
					l.Name = string(v)
				} else {
					l.Value = string(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			md = append(md, l)
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	if !seenTimestamp {
		return e, errorf("%s has no timestamp", where)
	}
	if e.Metadata, err = metadata(md, where); err != nil {
		return e, err
	}
	return e, nil
}

// decodeTimestamp decodes a google.protobuf.Timestamp into Unix nanoseconds.
func decodeTimestamp(b []byte, where string) (int64, error) {
	var secs, nanos int64
	err := eachField(b, where+" timestamp", func(num protowire.Number, typ protowire.Type, _ []byte, v uint64) error {
		switch num {
		case timestampSeconds, timestampNanos:
			if typ != protowire.VarintType {
				return errorf("%s: timestamp field %d: wrong wire type %d", where, num, typ)
			}
			if num == timestampSeconds {
				secs = int64(v)
			} else {
				nanos = int64(int32(v))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return unixNanos(secs, nanos, where)
}

func unixNanos(secs, nanos int64, where string) (int64, error) {
	if nanos < 0 || nanos >= 1e9 {
		return 0, errorf("%s: timestamp nanoseconds %d are outside [0, 999999999]", where, nanos)
	}
	if secs < 0 || secs > maxTimestampSecond {
		return 0, errorf("%s: timestamp of %d seconds is outside 1970 to 2262 (Unix nanoseconds in 64 bits)", where, secs)
	}
	return secs*1e9 + nanos, nil
}

// metadata checks and sorts an entry's structured metadata.
func metadata(md []labels.Label, where string) (labels.Labels, error) {
	if len(md) == 0 {
		return labels.EmptyLabels(), nil
	}
	for _, l := range md {
		if l.Name == "" {
			return labels.EmptyLabels(), errorf("%s: structured metadata with an empty name", where)
		}
	}
	slices.SortStableFunc(md, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(md); i++ {
		if md[i].Name == md[i-1].Name {
			return labels.EmptyLabels(), errorf("%s: structured metadata %q given more than once", where, md[i].Name)
		}
	}
	return labels.New(md...), nil
}

// eachField calls f with every field of the protobuf message b: its
// number, wire type and, for a length-delimited field its bytes, for a
// varint or fixed field its value.
func eachField(b []byte, msg string, f func(num protowire.Number, typ protowire.Type, bytes []byte, value uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errorf("%s: %v", msg, protowire.ParseError(n))
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
			return errorf("%s: field %d: %v", msg, num, protowire.ParseError(n))
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
