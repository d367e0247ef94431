package rpc

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// AppendBytesFieldHeader appends the tag and length of a bytes field numbered
// num holding n bytes, after which the caller appends (or marshals in place)
// exactly n bytes.
func AppendBytesFieldHeader(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// BytesFieldHeaderLen is the length of AppendBytesFieldHeader's output.
func BytesFieldHeaderLen(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeVarint(uint64(n))
}

// DecodeBytesField calls f with the contents of every occurrence of the
// bytes field numbered num in the protobuf message b (protobuf's rule for a
// repeated scalar field is that the last one wins: f must replace, not
// merge) and skips every other field, so a message from a newer peer with
// fields this version does not know decodes. f must not retain its argument.
func DecodeBytesField(b []byte, num protowire.Number, f func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("decoding field tag: %w", protowire.ParseError(l))
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return fmt.Errorf("decoding field %d: %w", n, protowire.ParseError(l))
			}
			if err := f(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return fmt.Errorf("skipping field %d: %w", n, protowire.ParseError(l))
		}
		b = b[l:]
	}
	return nil
}

// BytesFieldContentLen is the inverse of BytesFieldHeaderLen: the content
// length n of a bytes field numbered num whose header and content take total
// bytes, so a message marshalling into a buffer sized by its MarshalSize need
// not compute its size again. ok is false when no n fits.
func BytesFieldContentLen(num protowire.Number, total int) (n int, ok bool) {
	tag := protowire.SizeTag(num)
	for v := 1; v <= protowire.SizeVarint(^uint64(0)); v++ {
		n = total - tag - v
		if n >= 0 && protowire.SizeVarint(uint64(n)) == v {
			return n, true
		}
	}
	return 0, false
}
