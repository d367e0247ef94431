package distributor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/require"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
)

// allocatedDuring returns the bytes the process allocated while f ran.
// Allocation is cumulative and does not depend on the GC's timing.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// stallingBody yields some bytes, then blocks until released: a client that
// declares a large Content-Length and sends almost nothing.
type stallingBody struct {
	data    []byte
	sent    chan struct{}
	release chan struct{}
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	select {
	case <-b.sent:
	default:
		close(b.sent)
	}
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

// TestDeclaredLengthReservesNothing: a push declaring 100 MiB and sending 3
// bytes allocates for what arrived, not for what was declared, and holds
// only the capacity of its buffers against the in-flight budget.
func TestDeclaredLengthReservesNothing(t *testing.T) {
	d, _ := newTestDistributor(t, 1, 1, defaultLimits())
	for name, h := range map[string]http.Handler{
		"remote write": d.RemoteWriteHandler(tenant.Resolver{}),
		"otlp":         d.OTLPHandler(tenant.Resolver{}),
	} {
		t.Run(name, func(t *testing.T) {
			body := &stallingBody{data: []byte("abc"), sent: make(chan struct{}), release: make(chan struct{})}
			req := httptest.NewRequest(http.MethodPost, "/", body)
			req.ContentLength = 100 << 20
			req.Header.Set("Content-Type", "application/x-protobuf")
			done := make(chan int)
			allocated := allocatedDuring(func() {
				go func() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					done <- rec.Code
				}()
				<-body.sent
			})
			require.Less(t, allocated, uint64(8<<20), "bytes allocated for a body of 3 bytes declaring 100 MiB")
			require.LessOrEqual(t, d.inflight.bytes.Load(), int64(readChunk), "in-flight bytes held: the buffers' capacity for 3 bytes")
			close(body.release)
			require.Equal(t, http.StatusBadRequest, <-done)
			require.Zero(t, d.inflight.bytes.Load(), "released")
			require.Zero(t, d.inflight.requests.Load(), "released")
		})
	}
}

// TestSnappyHeaderBomb: a 7-byte snappy block whose header declares 199 MiB
// is refused before anything is allocated for it.
func TestSnappyHeaderBomb(t *testing.T) {
	d, _ := newTestDistributor(t, 1, 1, defaultLimits())
	h := d.RemoteWriteHandler(tenant.Resolver{})
	bomb := binary.AppendUvarint(nil, 199<<20)
	bomb = append(bomb, 0, 0, 0)
	var rec *httptest.ResponseRecorder
	allocated := allocatedDuring(func() { rec = post(t, h, bomb, nil) })
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "declares 208666624 bytes")
	require.Less(t, allocated, uint64(4<<20))
}

// TestDecompressionBombStopsAtTheBudget: a gzip bomb (100 MiB of zeros) is
// decompressed only until the in-flight budget is spent, then refused with
// a retryable 503 naming the limit; a bomb under the budget but over the
// per-request limit gets 413.
func TestDecompressionBombStopsAtTheBudget(t *testing.T) {
	var gz bytes.Buffer
	w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	require.NoError(t, err)
	_, err = w.Write(make([]byte, 100<<20))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	for name, tc := range map[string]struct {
		budget, maxDecompressed int
		code                    int
		msg                     string
		maxAlloc                uint64
	}{
		"over the in-flight budget":    {budget: 16 << 20, maxDecompressed: 200 << 20, code: http.StatusServiceUnavailable, msg: "-distributor.instance-limits.max-inflight-push-requests-bytes", maxAlloc: 48 << 20},
		"over the per-request maximum": {budget: 512 << 20, maxDecompressed: 8 << 20, code: http.StatusRequestEntityTooLarge, msg: "-distributor.max-decompressed-size", maxAlloc: 64 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			d, _ := newTestDistributor(t, 1, 1, defaultLimits())
			d.cfg.MaxDecompressedSize = tc.maxDecompressed
			d.inflight.maxBytes = int64(tc.budget)
			h := d.OTLPHandler(tenant.Resolver{})
			var rec *httptest.ResponseRecorder
			allocated := allocatedDuring(func() {
				req := httptest.NewRequest(http.MethodPost, "/otlp/v1/metrics", bytes.NewReader(gz.Bytes()))
				req.Header.Set("Content-Type", "application/x-protobuf")
				req.Header.Set("Content-Encoding", "gzip")
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, req)
			})
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.msg)
			if tc.code == http.StatusServiceUnavailable {
				require.Equal(t, "1", rec.Header().Get("Retry-After"))
			}
			require.Less(t, allocated, tc.maxAlloc, "bytes allocated decompressing a 100 MiB bomb")
			require.Zero(t, d.inflight.bytes.Load())
		})
	}
}

// TestInflightRequestsLimit: beyond the in-flight requests limit a push is
// answered 503 with Retry-After, and admitted again once one finishes.
func TestInflightRequestsLimit(t *testing.T) {
	d, _ := newTestDistributor(t, 1, 1, defaultLimits())
	d.inflight.maxRequests = 1
	h := d.RemoteWriteHandler(tenant.Resolver{})
	body := &stallingBody{data: []byte("x"), sent: make(chan struct{}), release: make(chan struct{})}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/push", body)
	req.Header.Set("Content-Type", "application/x-protobuf")
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	<-body.sent
	rec := post(t, h, snappyProto(t, makeV1(1, time.Now().UnixMilli())), nil)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, rec.Body.String(), "-distributor.instance-limits.max-inflight-push-requests")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	close(body.release)
	<-done
	require.Equal(t, http.StatusNoContent, post(t, h, snappyProto(t, makeV1(1, time.Now().UnixMilli())), nil).Code)
}

// TestNoIngestersIsRetryable: while no ingester is in the ring (start-up)
// or too few are live for the quorum, a push is answered 503 with
// Retry-After, never 500.
func TestNoIngestersIsRetryable(t *testing.T) {
	for name, tc := range map[string]struct{ ingesters, rf int }{
		"empty ring":       {0, 1},
		"quorum not found": {1, 3},
	} {
		t.Run(name, func(t *testing.T) {
			d, ings := newTestDistributor(t, tc.ingesters, tc.rf, defaultLimits())
			for _, ing := range ings {
				ing.fail = true
			}
			rec := post(t, d.RemoteWriteHandler(tenant.Resolver{}), snappyProto(t, makeV1(3, time.Now().UnixMilli())), nil)
			require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
			require.Equal(t, "1", rec.Header().Get("Retry-After"))
		})
	}
}

// TestRemoteWriteVersionMismatch: a body of one remote write version sent
// with the other's Content-Type is a 400 naming the mismatch, never a 204
// that wrote nothing.
func TestRemoteWriteVersionMismatch(t *testing.T) {
	d, _ := newTestDistributor(t, 1, 1, defaultLimits())
	h := d.RemoteWriteHandler(tenant.Resolver{})
	now := time.Now().UnixMilli()
	v1 := snappyProto(t, makeV1(2, now))
	v2 := snappyProto(t, FromV1(makeV1(2, now)))
	for name, tc := range map[string]struct {
		body        []byte
		contentType string
		code        int
		msg         string
	}{
		"1.0 body, 2.0 type": {v1, "application/x-protobuf;proto=io.prometheus.write.v2.Request", http.StatusBadRequest, "no io.prometheus.write.v2.Request time series"},
		"2.0 body, 1.0 type": {v2, "application/x-protobuf;proto=prometheus.WriteRequest", http.StatusBadRequest, "no prometheus.WriteRequest time series"},
		"1.0 body, 1.0 type": {v1, "application/x-protobuf", http.StatusNoContent, ""},
		"2.0 body, 2.0 type": {v2, "application/x-protobuf;proto=io.prometheus.write.v2.Request", http.StatusNoContent, ""},
	} {
		t.Run(name, func(t *testing.T) {
			rec := post(t, h, tc.body, map[string]string{"Content-Type": tc.contentType})
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.msg)
		})
	}
}

// TestReadBoundedReservesWhatItAllocates: a body over the limit leaves
// nothing reserved once refused; one under it holds its buffer, of about its
// size, reserved.
func TestReadBoundedReservesWhatItAllocates(t *testing.T) {
	l := &inflight{maxBytes: 1 << 30}
	res, err := l.start()
	require.NoError(t, err)
	const limit = 3<<20 + 17
	buf := getBuf()
	err = readBounded(buf, bytes.NewReader(make([]byte, 10<<20)), limit, res, "over %d", "reading")
	require.ErrorContains(t, err, fmt.Sprintf("over %d", limit))
	require.Zero(t, l.bytes.Load(), "a refused body holds nothing")

	require.NoError(t, readBounded(buf, bytes.NewReader(make([]byte, limit)), limit, res, "over %d", "reading"))
	require.Equal(t, limit, buf.Len())
	require.GreaterOrEqual(t, l.bytes.Load(), int64(limit))
	require.LessOrEqual(t, l.bytes.Load(), int64(buf.Cap()), "reserved: the buffer's capacity, no more")
	res.release()
	require.Zero(t, l.bytes.Load())
	putBuf(buf)
}
