package logchunk

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The zstd encoder and decoder are shared by every chunk of the process: each
// holds a fixed set of GOMAXPROCS block coders that EncodeAll and DecodeAll
// calls take in turn, so they are the pool, built once on first use and
// never closed (they start no goroutines in this use). With the scratch
// buffer pools of Encode and Iterate, they are the package's only state, and
// none of it carries data from one call to the next.
var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstdLevel),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(false), // the chunk has its own checksums
			// Chunks are cut at about 1 MiB: a larger window gains them
			// nothing and costs each of the GOMAXPROCS encoders twice its
			// size in history buffers (16 MiB each at the default 8 MiB).
			zstd.WithWindowSize(encoderWindow),
			zstd.WithLowerEncoderMem(true),
		)
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecodeAllCapLimit(true), // never past the length the header declares
			zstd.WithDecoderMaxMemory(maxSection),
			zstd.WithDecoderMaxWindow(maxSection),
		)
	})
)

// encoderWindow is the zstd window chunks are written with.
const encoderWindow = 1 << 20

// zstdLevel is the level chunks are written at; BenchmarkCodecs measures the
// choice and FORMAT.md records why.
const zstdLevel = zstd.SpeedDefault

// compress appends the zstd frame of src to dst.
func compress(dst, src []byte) ([]byte, error) {
	enc, err := zstdEncoder()
	if err != nil {
		return dst, fmt.Errorf("creating zstd encoder: %w", err)
	}
	return enc.EncodeAll(src, dst), nil
}

// decompress decodes the zstd frame src, which must hold exactly n bytes, into
// buf's storage when it has room for them: it never writes more than n
// bytes, nor allocates more than 1.25 n.
func decompress(buf, src []byte, n int) ([]byte, error) {
	dec, err := zstdDecoder()
	if err != nil {
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	if cap(buf) < n {
		// A quarter more than this chunk needs, so that a buffer reused
		// for chunks of about the same size is not replaced at every one
		// a little larger.
		buf = make([]byte, 0, n+n/4)
	}
	out, err := dec.DecodeAll(src, buf[:0:n])
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing: %w", ErrCorrupt, err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("%w: decompressed %d bytes, header declares %d", ErrCorrupt, len(out), n)
	}
	if n > 0 && &out[0] == &buf[:1][0] {
		// Decoded in place: hand back the whole buffer's capacity (out's
		// is cut at n), so that a larger chunk later still fits in it.
		return buf[:n], nil
	}
	return out, nil
}
