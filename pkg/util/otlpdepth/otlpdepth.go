// Package otlpdepth refuses OTLP request bodies that nest too deep, before
// pdata decodes them. pdata's protobuf and JSON decoders recurse once per
// level of nesting without a bound: attribute values nested in each other
// two million deep (a 20 MB protobuf body, a few tens of KB gzipped)
// exhaust a goroutine's 1 GB stack, and "fatal error: stack overflow" kills
// the process; recover cannot catch it.
//
// # Why a generic bound on protobuf, not OTLP's schema
//
// CheckProto knows nothing of OTLP: it enters every length-delimited field
// as if it were a message and refuses the body when such fields nest more
// than MaxProtoDepth deep. A walk that follows OTLP's schema down to every
// AnyValue (as tracepush does for traces) would count attribute values
// exactly, but it protects only the fields it knows: a field pdata learns
// to decode after an upgrade (a new place for attributes, a new signal)
// would recurse unchecked. The generic walk bounds every recursion pdata can
// make, whatever the message: pdata recurses only into length-delimited
// fields, and the walk reads field boundaries as pdata does (its varints,
// field numbers and group markers), stopping in a message no earlier than
// pdata stops as malformed, so it enters every field pdata would, and
// before pdata would. Fields that are strings or bytes are entered too;
// where their content stops parsing as protobuf, the walk steps back out.
// No byte is read twice: the cost is one pass, with no allocation.
//
// The bound is far above real requests and far below the stack: a request
// nests 3 to 6 messages before its attributes (resource, scope, metric,
// data point, exemplar), then 3 per level of a map within a map and 2 per
// level of an array within an array. 256 lets attribute values nest 64
// deep anywhere (as deep as tracepush admits), and the deepest body
// accepted takes pdata some hundred KB of stack.
package otlpdepth

import (
	"bytes"
	"fmt"
)

const (
	// MaxProtoDepth bounds how deep the length-delimited fields of a
	// protobuf body nest; the request itself is depth 0.
	MaxProtoDepth = 256
	// MaxJSONDepth bounds how deep the objects and arrays of a JSON body
	// nest. OTLP JSON writes each message as an object and each repeated
	// field as an array, so a JSON body whose protobuf encoding is within
	// MaxProtoDepth nests at most 2 levels per message, plus the request
	// object and an array of numbers.
	MaxJSONDepth = 2*MaxProtoDepth + 2
)

// Error says where a body nests deeper than its bound. Its message
// completes a sentence whose subject is the request: "OTLP logs request
// nests more than 256 levels deep at byte 1234 (protobuf messages ...)".
type Error struct {
	Limit  int  // the bound exceeded: MaxProtoDepth or MaxJSONDepth
	Offset int  // the byte at which the first level past Limit begins
	JSON   bool // the body is JSON, not protobuf
}

func (e *Error) Error() string {
	what := "protobuf messages within messages"
	if e.JSON {
		what = "JSON objects and arrays"
	}
	return fmt.Sprintf("nests more than %d levels deep at byte %d (%s, such as attribute values within attribute values)", e.Limit, e.Offset, what)
}

// CheckProto returns an *Error when the length-delimited fields of the
// protobuf message b nest more than MaxProtoDepth deep, and nil otherwise,
// even when b is not valid protobuf: that is for the decoder to say.
// It does not allocate unless it refuses b.
func CheckProto(b []byte) error { return checkProto(b, MaxProtoDepth) }

// checkProto is CheckProto with max (at most MaxProtoDepth) as its bound.
// It reads fields as pdata does: a tag is a varint of up to 10 bytes (the
// bits past 64 dropped) whose int32 field number must be positive, and a
// group's markers carry nothing (pdata reads the fields of a group one by
// one, as any others, without recursing).
func checkProto(b []byte, max int) error {
	// ends[d] is where the field entered at depth d ends (ends[0]: the
	// body). A field entered is read to its end, or to where it stops
	// parsing, then the walk goes on after it, one level up: each byte is
	// read once at most.
	var ends [MaxProtoDepth + 1]int
	depth, pos, end := 0, 0, len(b)
	ends[0] = end
	for {
		if pos < end {
			var tag uint64
			if c := b[pos]; c < 0x80 {
				tag, pos = uint64(c), pos+1
			} else {
				tag, pos = uvarint(b[:end], pos)
			}
			if pos > 0 && int32(tag>>3) > 0 {
				switch tag & 7 {
				case 0: // varint
					if pos < end && b[pos] < 0x80 {
						pos++
						continue
					}
					if _, pos = uvarint(b[:end], pos); pos > 0 {
						continue
					}
				case 1: // fixed64
					if pos += 8; pos <= end {
						continue
					}
				case 2: // length-delimited
					var n uint64
					if pos < end && b[pos] < 0x80 {
						n, pos = uint64(b[pos]), pos+1
					} else {
						n, pos = uvarint(b[:end], pos)
					}
					if pos > 0 && n <= uint64(end-pos) {
						if n == 0 {
							continue
						}
						// Enter the field.
						if depth == max {
							return &Error{Limit: max, Offset: pos}
						}
						depth++
						ends[depth] = pos + int(n)
						end = pos + int(n)
						continue
					}
				case 3, 4: // group markers
					continue
				case 5: // fixed32
					if pos += 4; pos <= end {
						continue
					}
				}
			}
			// What is left at this depth does not parse as protobuf: a
			// string or bytes, or a body the decoder will refuse. pdata
			// reads no further in it than the walk did.
		}
		if depth == 0 {
			return nil
		}
		pos = ends[depth]
		depth--
		end = ends[depth]
	}
}

// uvarint reads a varint at b[pos:] as pdata does: up to 10 bytes, the bits
// past 64 dropped. It returns the value and the position after it, or a
// negative position when there is no varint there.
func uvarint(b []byte, pos int) (uint64, int) {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if pos >= len(b) {
			return 0, -1
		}
		c := b[pos]
		pos++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, pos
		}
	}
	return 0, -1
}

// CheckJSON returns an *Error when the objects and arrays of the JSON body
// b nest more than MaxJSONDepth deep, and nil otherwise, even when b is not
// valid JSON: that is for the decoder to say. Brackets within strings do
// not count. It does not allocate unless it refuses b.
func CheckJSON(b []byte) error { return checkJSON(b, MaxJSONDepth) }

// checkJSON is CheckJSON with max as its bound.
func checkJSON(b []byte, max int) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i+1)
		case '{', '[':
			if depth++; depth > max {
				return &Error{Limit: max, Offset: i, JSON: true}
			}
		case '}', ']':
			// More closing than opening brackets: the decoder stops
			// there, but counting on from zero is as safe.
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// stringEnd returns the position of the quote that ends the JSON string
// whose content starts at b[i:], or len(b) when it does not end.
func stringEnd(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		q := i + j
		// The quote is escaped when an odd number of backslashes
		// precede it.
		k := q
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q
		}
		i = q + 1
	}
}
