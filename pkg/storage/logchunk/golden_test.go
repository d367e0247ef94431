package logchunk

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

const goldenFile = "chunk-v1.golden"

// goldenEntries are the entries of testdata/chunk-v1.golden: lines of the
// three kinds, equal timestamps, an empty line, metadata on some entries.
func goldenEntries() []Entry {
	const t0 = int64(1709632800000000000) // 2024-03-05T10:00:00Z
	return []Entry{
		{Timestamp: t0, Line: `10.0.3.17 - - [05/Mar/2024:10:00:00 +0000] "GET /api/v1/orders/8812?page=2 HTTP/1.1" 200 5123 "-" "curl/8.5.0" 0.012`},
		{Timestamp: t0 + 1_500_000, Line: `ts=2024-03-05T10:00:00.0015Z level=info caller=server.go:214 msg="request handled" method=GET path=/api/v1/orders status=200 duration=12.3ms trace_id=4bf92f3577b34da6a3ce929d0e0e4736`,
			Metadata: labels.FromStrings("pod", "api-7d9f8b6c5-x2k4q", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")},
		{Timestamp: t0 + 1_500_000, Line: `ts=2024-03-05T10:00:00.0015Z level=warn caller=cache/lru.go:131 msg="cache miss" key=orders:8812`,
			Metadata: labels.FromStrings("pod", "api-7d9f8b6c5-x2k4q")},
		{Timestamp: t0 + 2_000_000, Line: ``},
		{Timestamp: t0 + 7_000_000, Line: `{"time":"2024-03-05T10:00:00.007Z","level":"error","logger":"payments","msg":"charge declined","trace_id":"0af7651916cd43dd8448eb211c80319c","http":{"method":"POST","path":"/api/v1/payments","status":402},"customer":"cus_9f86d081884c"}`,
			Metadata: labels.FromStrings("pod", "api-7d9f8b6c5-m8wzt", "user_id", "31337")},
		{Timestamp: t0 + 1_000_000_000, Line: `10.2.200.4 - - [05/Mar/2024:10:00:01 +0000] "POST /login HTTP/1.1" 401 87 "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36" 0.004`},
		{Timestamp: t0 + 60_000_000_000, Line: `ts=2024-03-05T10:01:00Z level=error caller=db/pool.go:310 msg="context deadline exceeded" query="SELECT id, total FROM orders WHERE customer_id = $1" duration=5000.0ms`},
		{Timestamp: t0 + 60_000_000_001, Line: "multi\nline\tand \x00 binary \xff bytes, and ünïcode"},
	}
}

// goldenNeedles are needles MayContain must answer true for in the golden
// chunk (from its lines) and ones it answers false for today: the filter's
// hashing is part of the format, so its answers are pinned too.
var (
	goldenPresent = []string{"4bf92f3577b34da6a3ce929d0e0e4736", "context deadline exceeded", "charge declined", "/api/v1/payments", "ünïcode"}
	goldenAbsent  = []string{"9c1e2f0a77b34d00aa00bb11cc22dd33", "connection refused", "/api/v2/cart/1234"}
)

// TestGolden pins the format: the golden entries encode to exactly
// testdata/chunk-v1.golden, and the golden file opens and iterates to them.
// -update rewrites the file; do so only with FORMAT.md updated, and never
// for a change that old chunks in buckets would not survive.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", goldenFile)
	got, err := Encode(nil, goldenEntries())
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)

	c, err := Open(want)
	require.NoError(t, err)
	requireEntries(t, goldenEntries(), readAll(t, c, math.MinInt64, math.MaxInt64, true))
	require.Equal(t, int64(1709632860000000001), c.MaxTime())
	require.NotEmpty(t, c.filter)
	for _, n := range goldenPresent {
		require.True(t, c.MayContain(n), n)
	}
	for _, n := range goldenAbsent {
		require.False(t, c.MayContain(n), n)
	}

	if !bytes.Equal(want, got) {
		// Tell a change of the format from a change of the zstd library's
		// output, which old readers still decode.
		cg, err := Open(got)
		require.NoError(t, err)
		require.Equal(t, want[:offLinesLen], got[:offLinesLen], "the header changed: the stored format changed")
		require.Equal(t, c.filter, cg.filter, "the filter changed: the stored format changed")
		require.Equal(t, binary.LittleEndian.Uint32(want[offMetaRawLen:]), binary.LittleEndian.Uint32(got[offMetaRawLen:]), "the metadata section's size changed: the stored format changed")
		require.Failf(t, "the compressed sections differ", "only the zstd frames differ (the library's output changed, which old readers still decode): check, then run go test ./pkg/storage/logchunk -run TestGolden -update")
	}
}
