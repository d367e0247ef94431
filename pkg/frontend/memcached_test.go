package frontend

import (
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/stretchr/testify/require"
)

// startMemcached runs a real memcached (tools/install-peers.sh installs it)
// on a free loopback port and returns its address.
func startMemcached(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not installed: run `make peers` (tools/install-peers.sh installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0", "-m", "64", "-u", "nobody")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	return addr
}

// TestMemcachedResultsCache runs the query-frontend with a real memcached as
// its results cache: a second frontend (another process, say) answers a
// repeated query from the parts the first one stored, identically.
func TestMemcachedResultsCache(t *testing.T) {
	addr := startMemcached(t)
	lim := defaultLimits()
	down, st := promDownstream(t, lim)
	generate(t, st, rand.New(rand.NewSource(1)))
	cfg := testConfig()
	cfg.ResultsCache.Backend = CacheMemcached
	cfg.ResultsCache.Memcached.Addresses = flagext.StringSliceCSV{addr}
	require.NoError(t, cfg.Validate())
	form := url.Values{"query": {"sum by (job) (rate(c_total[5m]))"}, "start": {fmt.Sprint(base / 1000)}, "end": {fmt.Sprint(base/1000 + 3*86400 - 60)}, "step": {"300"}}
	now := func() time.Time { return time.UnixMilli(base).Add(30 * 24 * time.Hour) }

	first := startFrontend(t, cfg, lim, down)
	first.now = now
	a := call(first, "t", "query_range", form)
	require.Equal(t, http.StatusOK, a.Code, a.Body.String())
	require.Zero(t, testutilCounter(first.cacheHits))

	second := startFrontend(t, cfg, lim, down)
	second.now = now
	// Stores are asynchronous.
	require.Eventually(t, func() bool {
		misses := testutilCounter(second.cacheMisses)
		b := call(second, "t", "query_range", form)
		require.Equal(t, http.StatusOK, b.Code, b.Body.String())
		if testutilCounter(second.cacheMisses) > misses {
			return false
		}
		require.True(t, a.Body.String() == b.Body.String(), "the cached answer differs")
		return true
	}, 10*time.Second, 100*time.Millisecond)
	require.Positive(t, testutilCounter(second.cacheHits))

	// Another tenant's identical query is not answered from the cache.
	hits := testutilCounter(second.cacheHits)
	c := call(second, "u", "query_range", form)
	require.Equal(t, http.StatusOK, c.Code)
	require.Equal(t, hits, testutilCounter(second.cacheHits))
	require.Positive(t, testutilCounter(second.cacheMisses))
}
