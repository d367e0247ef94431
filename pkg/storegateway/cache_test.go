package storegateway

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// wait bounds how long a test waits for something that must happen: far
// longer than it ever takes, so only a hang trips it.
const wait = 30 * time.Second

type getResult struct {
	data []byte
	err  error
}

// TestPageCacheCancelledLoad checks that concurrent reads of one page share
// its load, and that the end of one reader's context fails that reader
// only: the other one gets the page.
func TestPageCacheCancelledLoad(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cancelLoader bool // else the waiter is cancelled
		want         string
	}{
		{name: "loader cancelled: the waiter loads the page itself", cancelLoader: true, want: "waiter's"},
		{name: "waiter cancelled: the loader goes on", cancelLoader: false, want: "loader's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newPageCache(1<<20, prometheus.NewRegistry())
			key := pageKey{"t/block/index", 0}
			loaderCtx, cancelLoader := context.WithCancel(context.Background())
			defer cancelLoader()
			waiterCtx, cancelWaiter := context.WithCancel(context.Background())
			defer cancelWaiter()

			fetching, release := make(chan struct{}), make(chan struct{})
			loader := make(chan getResult, 1)
			go func() {
				data, err := c.get(loaderCtx, key, func() ([][]byte, error) {
					close(fetching)
					select {
					case <-loaderCtx.Done():
						return nil, loaderCtx.Err()
					case <-release:
						return [][]byte{[]byte("loader's")}, nil
					}
				})
				loader <- getResult{data, err}
			}()
			receive(t, fetching)
			waiter := make(chan getResult, 1)
			go func() {
				data, err := c.get(waiterCtx, key, func() ([][]byte, error) {
					return [][]byte{[]byte("waiter's")}, nil
				})
				waiter <- getResult{data, err}
			}()
			require.Eventually(t, func() bool { return counterValue(t, c.shared) == 1 }, wait, time.Millisecond, "the second read waits for the first one's load")

			cancelled, other := loader, waiter
			if tc.cancelLoader {
				cancelLoader()
			} else {
				cancelled, other = waiter, loader
				cancelWaiter()
			}
			res := receive(t, cancelled)
			require.ErrorIs(t, res.err, context.Canceled)
			close(release)
			res = receive(t, other)
			require.NoError(t, res.err)
			require.Equal(t, tc.want, string(res.data))
			require.True(t, c.cached(key), "the page is cached")
		})
	}
}

// receive returns what ch delivers, failing the test if it never does.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("nothing received in %s", wait)
		panic("unreachable")
	}
}
