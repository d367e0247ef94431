package distributor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/canopy-observability/canopy/pkg/rpc/tracespb"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// fakeTracesIngester records the pieces it was sent.
type fakeTracesIngester struct {
	mu     sync.Mutex
	fail   bool
	traces map[[16]byte]int // pieces per trace
	resp   *tracespb.PushResponse
}

func (f *fakeTracesIngester) Push(_ context.Context, req *tracespb.PushRequest) (*tracespb.PushResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("ingester down")
	}
	for _, tr := range req.Traces {
		var u ptrace.ProtoUnmarshaler
		td, err := u.UnmarshalTraces(tr.Spans)
		if err != nil {
			return nil, err
		}
		if td.SpanCount() != int(tr.SpanCount) {
			return nil, fmt.Errorf("span_count %d, piece holds %d", tr.SpanCount, td.SpanCount())
		}
		f.traces[[16]byte(tr.TraceId)]++
	}
	if f.resp != nil {
		return f.resp, nil
	}
	return &tracespb.PushResponse{}, nil
}

type fakeTracesPool map[string]*fakeTracesIngester

func (p fakeTracesPool) TracesPusher(addr string) (TracesPusher, error) {
	if i, ok := p[addr]; ok {
		return i, nil
	}
	return nil, fmt.Errorf("no ingester at %s", addr)
}

// newTestTraces returns the traces write path over n fake ingesters with
// replication factor rf.
func newTestTraces(t *testing.T, n, rf int, limits validation.Limits) (*Traces, []*fakeTracesIngester) {
	d, _ := newTestDistributor(t, n, rf, limits)
	pool := fakeTracesPool{}
	var ings []*fakeTracesIngester
	for i := range n {
		ing := &fakeTracesIngester{traces: map[[16]byte]int{}}
		pool[fmt.Sprintf("ingester-%d:9095", i)] = ing
		ings = append(ings, ing)
	}
	return NewTraces(d, d.ring, pool, nil, log.NewNopLogger(), prometheus.NewRegistry()), ings
}

// someTraces returns n traces of two spans each.
func someTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range n {
		for j := range 2 {
			s := ss.Spans().AppendEmpty()
			s.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 1})
			s.SetSpanID(pcommon.SpanID{byte(j + 1), byte(i), byte(i >> 8)})
			s.SetName("op")
			s.SetStartTimestamp(1e18)
			s.SetEndTimestamp(1e18 + 1000)
		}
	}
	return td
}

func TestTracesShardByTraceID(t *testing.T) {
	for name, tc := range map[string]struct{ n, rf int }{"rf1": {3, 1}, "rf3": {3, 3}} {
		t.Run(name, func(t *testing.T) {
			tr, ings := newTestTraces(t, tc.n, tc.rf, defaultLimits())
			res, err := tr.PushTraces(context.Background(), "t", someTraces(300))
			require.NoError(t, err)
			require.Equal(t, 600, res.Spans)
			require.Zero(t, res.Rejected)
			// Push returns at a quorum; the last replica may come after.
			require.Eventually(t, func() bool {
				total := 0
				for _, ing := range ings {
					ing.mu.Lock()
					total += len(ing.traces)
					ing.mu.Unlock()
				}
				return total == 300*tc.rf
			}, 5*time.Second, 10*time.Millisecond)
			for _, ing := range ings {
				ing.mu.Lock()
				for _, pieces := range ing.traces {
					require.Equal(t, 1, pieces, "a trace is one piece per push")
				}
				if tc.rf == 1 {
					require.Less(t, len(ing.traces), 300, "traces spread over the ingesters")
				}
				ing.mu.Unlock()
			}
		})
	}
}

func TestTracesRejections(t *testing.T) {
	lim := defaultLimits()
	lim.TracesIngestionRateMB = 0.001
	lim.TracesIngestionBurstSizeMB = 0.001 // 1000 bytes
	lim.TracesMaxAttributeValueByte = 10
	tr, ings := newTestTraces(t, 3, 3, lim)

	// A span with a value over the limit is rejected alone, naming it.
	td := someTraces(1)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("k", "a value longer than ten bytes")
	res, err := tr.PushTraces(context.Background(), "t", td)
	require.NoError(t, err)
	require.Equal(t, 1, res.Rejected)
	require.Equal(t, 1, res.Spans)
	require.Equal(t, http.StatusBadRequest, res.Status)
	require.Contains(t, res.Message, "-validation.traces.max-attribute-value-bytes")

	// Over the rate: 429 naming the limit, nothing written.
	_, err = tr.PushTraces(context.Background(), "t", someTraces(50))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusTooManyRequests, e.Code)
	require.Contains(t, e.Msg, "-distributor.traces.ingestion-rate-limit-mb")

	// What ingesters reject comes back with their message.
	tr2, ings2 := newTestTraces(t, 3, 3, defaultLimits())
	for _, ing := range ings2 {
		ing.resp = &tracespb.PushResponse{RejectedTraces: 1, RejectedSpans: 2, FirstError: "too many live traces (-ingester.traces.max-live-traces-per-tenant)", FirstErrorStatus: 429}
	}
	res, err = tr2.PushTraces(context.Background(), "t", someTraces(1))
	require.NoError(t, err)
	require.Equal(t, 2, res.Rejected)
	require.Equal(t, 429, res.Status)
	require.Contains(t, res.Message, "-ingester.traces.max-live-traces-per-tenant")

	// Without a quorum: 503, to retry.
	for _, ing := range ings[:2] {
		ing.mu.Lock()
		ing.fail = true
		ing.mu.Unlock()
	}
	_, err = tr.PushTraces(context.Background(), "other", someTraces(1))
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusServiceUnavailable, e.Code)
}
