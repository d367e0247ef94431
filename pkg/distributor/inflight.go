package distributor

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// inflight bounds what all push requests of this distributor hold at once:
// the number of requests, and the bytes of their bodies, read and
// decompressed. Bytes are reserved as they arrive or are produced, never
// from what a request declares, so neither a declared Content-Length nor a
// decompression bomb can make the process allocate more than the limit.
// Safe for concurrent use; a zero limit is no limit.
type inflight struct {
	maxRequests, maxBytes int64
	requests, bytes       atomic.Int64
}

// errOverloaded answers a request beyond an in-flight limit: 503 with
// Retry-After, so senders back off and retry instead of dropping the data.
func errOverloaded(what string, limit int64, flag string) *Error {
	return &Error{Code: http.StatusServiceUnavailable, RetryAfter: "1", Msg: fmt.Sprintf("this distributor is at its limit of %d %s in flight (%s): retry later or add distributors", limit, what, flag)}
}

// start admits one request; the returned reservation holds its bytes and
// must be released once the request no longer holds them.
func (l *inflight) start() (*reservation, error) {
	if n := l.requests.Add(1); l.maxRequests > 0 && n > l.maxRequests {
		l.requests.Add(-1)
		return nil, errOverloaded("push requests", l.maxRequests, "-distributor.instance-limits.max-inflight-push-requests")
	}
	return &reservation{l: l}, nil
}

// reservation is one request's share of the in-flight bytes. Not safe for
// concurrent use: it belongs to the request's goroutine.
type reservation struct {
	l *inflight
	n int64
}

// add reserves n more bytes, or fails when that would pass the limit. A nil
// reservation reserves nothing (decoding outside a request).
func (r *reservation) add(n int) error {
	if r == nil || n <= 0 {
		return nil
	}
	if total := r.l.bytes.Add(int64(n)); r.l.maxBytes > 0 && total > r.l.maxBytes {
		r.l.bytes.Add(-int64(n))
		return errOverloaded("bytes of push requests", r.l.maxBytes, "-distributor.instance-limits.max-inflight-push-requests-bytes")
	}
	r.n += int64(n)
	return nil
}

// sub gives back n bytes of what add reserved.
func (r *reservation) sub(n int) {
	if r == nil || n <= 0 {
		return
	}
	r.l.bytes.Add(-int64(n))
	r.n -= int64(n)
}

// release gives back the request's bytes and its request slot.
func (r *reservation) release() {
	if r == nil {
		return
	}
	r.l.bytes.Add(-r.n)
	r.n = 0
	r.l.requests.Add(-1)
}
