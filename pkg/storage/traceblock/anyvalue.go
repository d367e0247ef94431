package traceblock

import (
	"errors"
	"fmt"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// Attribute values other than strings, integers, doubles and booleans are
// stored as OTLP's AnyValue protobuf (opentelemetry/proto/common/v1):
// string_value = 1, bool_value = 2, int_value = 3, double_value = 4,
// array_value = 5 (ArrayValue: repeated AnyValue values = 1), kvlist_value
// = 6 (KeyValueList: repeated KeyValue values = 1; KeyValue: key = 1,
// value = 2), bytes_value = 7.

// maxAnyDepth bounds the nesting of arrays and maps a stored value may
// have, so that a corrupt or hostile block cannot exhaust the stack.
const maxAnyDepth = 64

func marshalAny(v pcommon.Value) ([]byte, error) { return appendAny(nil, v, 0) }

func appendAny(b []byte, v pcommon.Value, depth int) ([]byte, error) {
	if depth > maxAnyDepth {
		return b, fmt.Errorf("nested deeper than %d", maxAnyDepth)
	}
	var err error
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
	case pcommon.ValueTypeStr:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, v.Str())
	case pcommon.ValueTypeBool:
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.Bool()))
	case pcommon.ValueTypeInt:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.Int()))
	case pcommon.ValueTypeDouble:
		b = protowire.AppendTag(b, 4, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.Double()))
	case pcommon.ValueTypeSlice:
		var arr []byte
		s := v.Slice()
		for i := range s.Len() {
			var e []byte
			if e, err = appendAny(nil, s.At(i), depth+1); err != nil {
				return b, err
			}
			arr = protowire.AppendTag(arr, 1, protowire.BytesType)
			arr = protowire.AppendBytes(arr, e)
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, arr)
	case pcommon.ValueTypeMap:
		var kvs []byte
		v.Map().Range(func(k string, mv pcommon.Value) bool {
			var e []byte
			if e, err = appendAny(nil, mv, depth+1); err != nil {
				return false
			}
			var kv []byte
			kv = protowire.AppendTag(kv, 1, protowire.BytesType)
			kv = protowire.AppendString(kv, k)
			kv = protowire.AppendTag(kv, 2, protowire.BytesType)
			kv = protowire.AppendBytes(kv, e)
			kvs = protowire.AppendTag(kvs, 1, protowire.BytesType)
			kvs = protowire.AppendBytes(kvs, kv)
			return true
		})
		if err != nil {
			return b, err
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, kvs)
	case pcommon.ValueTypeBytes:
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, v.Bytes().AsRaw())
	default:
		return b, fmt.Errorf("value type %s is not stored", v.Type())
	}
	return b, nil
}

var errBadAny = errors.New("malformed stored attribute value")

func unmarshalAny(b []byte, v pcommon.Value) error { return readAny(b, v, 0) }

// readAny sets v from the AnyValue in b; an empty b leaves v empty.
func readAny(b []byte, v pcommon.Value, depth int) error {
	if depth > maxAnyDepth {
		return errBadAny
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errBadAny
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			s, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errBadAny
			}
			v.SetStr(string(s))
			b = b[n:]
		case num == 2 && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errBadAny
			}
			v.SetBool(protowire.DecodeBool(x))
			b = b[n:]
		case num == 3 && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errBadAny
			}
			v.SetInt(int64(x))
			b = b[n:]
		case num == 4 && typ == protowire.Fixed64Type:
			x, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return errBadAny
			}
			v.SetDouble(math.Float64frombits(x))
			b = b[n:]
		case num == 5 && typ == protowire.BytesType:
			arr, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errBadAny
			}
			s := v.SetEmptySlice()
			if err := forEachField(arr, func(e []byte) error { return readAny(e, s.AppendEmpty(), depth+1) }); err != nil {
				return err
			}
			b = b[n:]
		case num == 6 && typ == protowire.BytesType:
			kvs, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errBadAny
			}
			m := v.SetEmptyMap()
			err := forEachField(kvs, func(kv []byte) error {
				var key string
				var val []byte
				for len(kv) > 0 {
					num, typ, n := protowire.ConsumeTag(kv)
					if n < 0 || typ != protowire.BytesType {
						return errBadAny
					}
					f, m := protowire.ConsumeBytes(kv[n:])
					if m < 0 {
						return errBadAny
					}
					switch num {
					case 1:
						key = string(f)
					case 2:
						val = f
					}
					kv = kv[n+m:]
				}
				return readAny(val, m.PutEmpty(key), depth+1)
			})
			if err != nil {
				return err
			}
			b = b[n:]
		case num == 7 && typ == protowire.BytesType:
			raw, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errBadAny
			}
			v.SetEmptyBytes().FromRaw(raw)
			b = b[n:]
		default:
			return errBadAny
		}
	}
	return nil
}

// forEachField calls fn with every length-delimited field 1 of b.
func forEachField(b []byte, fn func([]byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return errBadAny
		}
		f, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return errBadAny
		}
		if err := fn(f); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}
