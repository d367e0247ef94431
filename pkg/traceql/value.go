package traceql

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// ValueType is the type of a Value.
type ValueType uint8

// Value types. TypeNil is the zero value: no value at all.
const (
	TypeNil ValueType = iota
	TypeString
	TypeInt
	TypeFloat
	TypeBool
	TypeDuration
	TypeStatus
	TypeKind
	TypeArray
)

var typeNames = [...]string{
	TypeNil:      "nil",
	TypeString:   "string",
	TypeInt:      "int",
	TypeFloat:    "float",
	TypeBool:     "bool",
	TypeDuration: "duration",
	TypeStatus:   "status",
	TypeKind:     "kind",
	TypeArray:    "array",
}

func (t ValueType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Status is a span's status code, numbered as in OTLP.
type Status int64

// Span status codes.
const (
	StatusUnset Status = 0
	StatusOk    Status = 1
	StatusError Status = 2
)

var statusNames = map[Status]string{StatusUnset: "unset", StatusOk: "ok", StatusError: "error"}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "status(" + strconv.FormatInt(int64(s), 10) + ")"
}

// Kind is a span's kind, numbered as in OTLP.
type Kind int64

// Span kinds.
const (
	KindUnspecified Kind = 0
	KindInternal    Kind = 1
	KindServer      Kind = 2
	KindClient      Kind = 3
	KindProducer    Kind = 4
	KindConsumer    Kind = 5
)

var kindNames = map[Kind]string{
	KindUnspecified: "unspecified", KindInternal: "internal", KindServer: "server",
	KindClient: "client", KindProducer: "producer", KindConsumer: "consumer",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "kind(" + strconv.FormatInt(int64(k), 10) + ")"
}

// Value is a typed value: a static in a query, an attribute of a span, or a
// result. Only the field that belongs to Type is set: Str for strings, Num
// for ints, durations (nanoseconds), bools (0 or 1), statuses and kinds,
// Float for floats, Array for arrays (whose elements are not arrays). The
// zero Value is nil. Value holds a slice, so compare with Equal, not ==.
type Value struct {
	Type  ValueType
	Str   string
	Num   int64
	Float float64
	Array []Value
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{Type: TypeString, Str: s} }

// IntValue returns an int Value.
func IntValue(i int64) Value { return Value{Type: TypeInt, Num: i} }

// FloatValue returns a float Value.
func FloatValue(f float64) Value { return Value{Type: TypeFloat, Float: f} }

// BoolValue returns a bool Value.
func BoolValue(b bool) Value {
	if b {
		return Value{Type: TypeBool, Num: 1}
	}
	return Value{Type: TypeBool}
}

// DurationValue returns a duration Value.
func DurationValue(d time.Duration) Value { return Value{Type: TypeDuration, Num: int64(d)} }

// StatusValue returns a status Value.
func StatusValue(s Status) Value { return Value{Type: TypeStatus, Num: int64(s)} }

// KindValue returns a kind Value.
func KindValue(k Kind) Value { return Value{Type: TypeKind, Num: int64(k)} }

// ArrayValue returns an array Value of the given elements, which must not
// be arrays themselves.
func ArrayValue(elems ...Value) Value { return Value{Type: TypeArray, Array: elems} }

// IsNil reports whether v is the nil value.
func (v Value) IsNil() bool { return v.Type == TypeNil }

// Bool returns the value of a bool Value.
func (v Value) Bool() bool { return v.Type == TypeBool && v.Num != 0 }

// Duration returns the value of a duration Value.
func (v Value) Duration() time.Duration { return time.Duration(v.Num) }

// isNumeric reports whether v is an int, a float or a duration.
func (v Value) isNumeric() bool {
	return v.Type == TypeInt || v.Type == TypeFloat || v.Type == TypeDuration
}

// AsFloat returns a numeric value as a float64; durations count in
// nanoseconds. ok is false for the other types.
func (v Value) AsFloat() (f float64, ok bool) {
	switch v.Type {
	case TypeInt, TypeDuration:
		return float64(v.Num), true
	case TypeFloat:
		return v.Float, true
	}
	return 0, false
}

// Equal reports whether two values have the same type and content.
func (v Value) Equal(o Value) bool {
	if v.Type != o.Type {
		return false
	}
	switch v.Type {
	case TypeString:
		return v.Str == o.Str
	case TypeFloat:
		return v.Float == o.Float || (math.IsNaN(v.Float) && math.IsNaN(o.Float))
	case TypeArray:
		if len(v.Array) != len(o.Array) {
			return false
		}
		for i := range v.Array {
			if !v.Array[i].Equal(o.Array[i]) {
				return false
			}
		}
		return true
	case TypeNil:
		return true
	}
	return v.Num == o.Num
}

// String renders the value as TraceQL writes it: strings quoted, enums and
// booleans bare, durations in Go's notation, arrays in brackets.
func (v Value) String() string {
	var b strings.Builder
	v.write(&b)
	return b.String()
}

func (v Value) write(b *strings.Builder) {
	switch v.Type {
	case TypeNil:
		b.WriteString("nil")
	case TypeString:
		b.WriteString(strconv.Quote(v.Str))
	case TypeInt:
		switch v.Num {
		case math.MinInt64:
			b.WriteString("minInt")
		case math.MaxInt64:
			b.WriteString("maxInt")
		default:
			b.WriteString(strconv.FormatInt(v.Num, 10))
		}
	case TypeFloat:
		b.WriteString(formatFloat(v.Float))
	case TypeBool:
		b.WriteString(strconv.FormatBool(v.Num != 0))
	case TypeDuration:
		b.WriteString(time.Duration(v.Num).String())
	case TypeStatus:
		b.WriteString(Status(v.Num).String())
	case TypeKind:
		b.WriteString(Kind(v.Num).String())
	case TypeArray:
		b.WriteByte('[')
		for i, e := range v.Array {
			if i > 0 {
				b.WriteString(", ")
			}
			e.write(b)
		}
		b.WriteByte(']')
	}
}

// Text renders the value for people and for labels: like String, but
// strings are not quoted.
func (v Value) Text() string {
	if v.Type == TypeString {
		return v.Str
	}
	return v.String()
}

// formatFloat writes a float so that it lexes back as the same float (never
// as an int).
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if strings.ContainsAny(s, ".eIN") {
		return s
	}
	return s + ".0"
}

// compatible reports whether values of the two types can be compared:
// the same type, or two numeric types.
func compatible(a, b ValueType) bool {
	if a == b {
		return true
	}
	return isNumericType(a) && isNumericType(b)
}

func isNumericType(t ValueType) bool {
	return t == TypeInt || t == TypeFloat || t == TypeDuration
}

// compareScalars orders two non-array values of compatible types: -1, 0
// or 1; ok is false when they cannot be compared. Ints and durations
// compare exactly; a float against either compares as floats. Floats
// order NaN below everything, so the order is total.
func compareScalars(a, b Value) (c int, ok bool) {
	if !compatible(a.Type, b.Type) {
		return 0, false
	}
	switch a.Type {
	case TypeString:
		return strings.Compare(a.Str, b.Str), true
	case TypeBool, TypeStatus, TypeKind:
		return cmpInt(a.Num, b.Num), true
	}
	if a.Type != TypeFloat && b.Type != TypeFloat {
		return cmpInt(a.Num, b.Num), true
	}
	x, _ := a.AsFloat()
	y, _ := b.AsFloat()
	switch {
	case x < y:
		return -1, true
	case x > y:
		return 1, true
	case x == y:
		return 0, true
	case math.IsNaN(x) && math.IsNaN(y):
		return 0, true
	case math.IsNaN(x):
		return -1, true
	default:
		return 1, true
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
