package rpc

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestDecodeBytesField(t *testing.T) {
	field := func(b []byte, num protowire.Number, v string) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), []byte(v))
	}
	unknown := func(b []byte) []byte {
		b = protowire.AppendVarint(protowire.AppendTag(b, 7, protowire.VarintType), 300)
		b = protowire.AppendFixed64(protowire.AppendTag(b, 8, protowire.Fixed64Type), 1)
		b = protowire.AppendFixed32(protowire.AppendTag(b, 9, protowire.Fixed32Type), 1)
		return field(b, 10, "later field")
	}
	for _, tc := range []struct {
		name    string
		msg     []byte
		want    []string
		wantErr string
	}{
		{name: "empty message", msg: nil},
		{name: "the field", msg: field(nil, 1, "abc"), want: []string{"abc"}},
		{name: "unknown fields around it are skipped", msg: unknown(field(unknown(nil), 1, "abc")), want: []string{"abc"}},
		{name: "every occurrence, in order", msg: field(field(nil, 1, "a"), 1, "b"), want: []string{"a", "b"}},
		{name: "the field number with another wire type is skipped", msg: protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5)},
		{name: "truncated value", msg: field(nil, 1, "abc")[:3], wantErr: "decoding field 1"},
		{name: "truncated unknown field", msg: field(nil, 5, "abc")[:3], wantErr: "skipping field 5"},
		{name: "bad tag", msg: []byte{0x80}, wantErr: "decoding field tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := DecodeBytesField(tc.msg, 1, func(v []byte) error {
				got = append(got, string(v))
				return nil
			})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBytesFieldHeader(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 1 << 20} {
		h := AppendBytesFieldHeader(nil, 1, n)
		require.Len(t, h, BytesFieldHeaderLen(1, n))
		num, typ, l := protowire.ConsumeTag(h)
		require.Equal(t, protowire.Number(1), num)
		require.Equal(t, protowire.BytesType, typ)
		v, m := protowire.ConsumeVarint(h[l:])
		require.Equal(t, uint64(n), v)
		require.Equal(t, len(h), l+m)
	}
}

func TestBytesFieldContentLen(t *testing.T) {
	for _, n := range []int{0, 1, 126, 127, 128, 16383, 16384, 1 << 20, 1<<21 - 1, 1 << 21} {
		got, ok := BytesFieldContentLen(1, BytesFieldHeaderLen(1, n)+n)
		require.True(t, ok)
		require.Equal(t, n, got)
	}
	_, ok := BytesFieldContentLen(1, 1) // a tag without a length
	require.False(t, ok)
}
