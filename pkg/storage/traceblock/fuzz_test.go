package traceblock

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func FuzzParseBloom(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "block-v1", BloomFile))
	require.NoError(f, err)
	f.Add(golden)
	f.Add([]byte(bloomMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		bl, err := parseBloom(b)
		if err != nil {
			return
		}
		bl.MayHold([16]byte{1})
		again, err := parseBloom(bl.marshal())
		require.NoError(t, err)
		require.Equal(t, bl, again)
	})
}

func FuzzAnyValue(f *testing.F) {
	v := pcommon.NewValueMap()
	v.Map().PutStr("a", "b")
	v.Map().PutEmptySlice("s").AppendEmpty().SetInt(-3)
	seed, err := marshalAny(v)
	require.NoError(f, err)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		v := pcommon.NewValueEmpty()
		if err := unmarshalAny(b, v); err != nil {
			return
		}
		again, err := marshalAny(v)
		if err != nil {
			return // nested deeper than is stored
		}
		w := pcommon.NewValueEmpty()
		require.NoError(t, unmarshalAny(again, w))
		third, err := marshalAny(w)
		require.NoError(t, err)
		require.Equal(t, again, third) // bytes, not values: NaN is not equal to itself
	})
}

// FuzzDataFile reads traces from a data.parquet whose bytes are the
// fuzzer's (seeded with the golden one): an error or nothing found, never
// a panic.
func FuzzDataFile(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "block-v1", DataFile))
	require.NoError(f, err)
	f.Add(golden, 100, byte(0))
	f.Add(golden, len(golden)-10, byte(0xff))
	f.Fuzz(func(t *testing.T, data []byte, at int, to byte) {
		if at >= 0 && at < len(data) {
			data[at] = to
		}
		dir := t.TempDir()
		bkt, err := filesystem.NewBucket(dir)
		require.NoError(t, err)
		id := ulid.MustParse("01JGZ0000000000000000TRACE")
		bdir := filepath.Join(dir, "t", Signal, id.String())
		require.NoError(t, os.MkdirAll(bdir, 0o750))
		require.NoError(t, os.WriteFile(filepath.Join(bdir, DataFile), data, 0o640))
		require.NoError(t, os.WriteFile(filepath.Join(bdir, BloomFile), newBloom(nil).marshal(), 0o640))
		b, err := OpenBlock(context.Background(), bkt, "t", Meta{ULID: id, MinTraceID: "00", MaxTraceID: "ff", Stats: Stats{DataBytes: int64(len(data))}})
		require.NoError(t, err)
		b.bloom.k = 0 // every ID may be held: read the file
		for _, tid := range [][16]byte{{0x0b, 0x18, 0x6f, 0x96}, {0x4b, 0xf9}, {0xff}} {
			_, _, _ = b.FindTrace(context.Background(), tid)
		}
	})
}
