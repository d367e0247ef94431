package integration

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// attempt is one push of a writer: ok says it was acknowledged.
type attempt interface{ ok() bool }

// writer pushes round robin to the live nodes, one push every interval,
// until stopped: push(k, n) sends push k to node n and says what came of
// it. The metrics, logs and traces cluster tests each give it their push.
type writer[A attempt] struct {
	mu       sync.Mutex
	live     []*canopyNode
	inflight *canopyNode // the node a push is being sent to, or nil
	attempts []A
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func startWriter[A attempt](live []*canopyNode, interval time.Duration, push func(k int, n *canopyNode) A) *writer[A] {
	w := &writer[A]{live: append([]*canopyNode(nil), live...), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			w.mu.Lock()
			n := w.live[k%len(w.live)]
			w.inflight = n
			w.mu.Unlock()
			a := push(k, n)
			w.mu.Lock()
			w.attempts = append(w.attempts, a)
			w.inflight = nil
			w.mu.Unlock()
		}
	}()
	return w
}

// acknowledged is how many pushes so far were acknowledged.
func (w *writer[A]) acknowledged() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.attempts {
		if a.ok() {
			n++
		}
	}
	return n
}

// waitAcknowledged waits until n pushes were acknowledged.
func (w *writer[A]) waitAcknowledged(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, 50*time.Millisecond, fmt.Sprintf("%d acknowledged pushes", n), func() error {
		if got := w.acknowledged(); got < n {
			return fmt.Errorf("%d acknowledged", got)
		}
		return nil
	})
}

// remove stops sending to n and waits until no push to n is in flight.
func (w *writer[A]) remove(n *canopyNode) {
	w.mu.Lock()
	out := w.live[:0]
	for _, l := range w.live {
		if l != n {
			out = append(out, l)
		}
	}
	w.live = out
	w.mu.Unlock()
	for {
		w.mu.Lock()
		busy := w.inflight == n
		w.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finish stops the writer, waits for it and returns its attempts. It may
// be called more than once.
func (w *writer[A]) finish() []A {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.attempts
}
