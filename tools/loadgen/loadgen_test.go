package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func TestPayloads(t *testing.T) {
	ts := time.Now().UnixMilli()
	for _, proto := range []string{protoRW1, protoRW2} {
		w, err := newRemoteWrite(proto, 1234, 500, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.bs) != 3 {
			t.Fatalf("%s: %d batches, want 3", proto, len(w.bs))
		}
		for i, b := range w.bs {
			// Two rounds: the second patches the first's bytes.
			for round := int64(0); round < 2; round++ {
				if err := checkBatch(proto, b.(*rwBatch), i*500, ts+round*15000); err != nil {
					t.Fatalf("%s batch %d round %d: %v", proto, i, round, err)
				}
			}
		}
	}
}

// TestRun drives a fake receiver that accepts every other request.
func TestRun(t *testing.T) {
	var n, samples atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if n.Add(1)%2 == 0 {
			http.Error(w, "no", 429)
			return
		}
		samples.Add(int64(len(req.Timeseries)))
		w.WriteHeader(204)
	}))
	defer srv.Close()
	r, err := run(config{url: srv.URL, name: "fake", series: 1000, batch: 100, concurrency: 3, protocol: protoRW1, duration: 300 * time.Millisecond, timeout: time.Second, seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Creation.Sent != 1000 || r.Creation.Requests != 10 {
		t.Fatalf("creation: %+v", r.Creation)
	}
	if got := r.Creation.Accepted + r.Steady.Accepted; got != samples.Load() {
		t.Fatalf("accepted %d, receiver took %d", got, samples.Load())
	}
	if r.Steady.Errors["429"] == 0 || !strings.Contains(r.Steady.FirstErrors["429"], "no") {
		t.Fatalf("errors: %v %v", r.Steady.Errors, r.Steady.FirstErrors)
	}
	if r.Steady.Accepted == 0 || r.Steady.LatencyP99Ms <= 0 {
		t.Fatalf("steady: %+v", r.Steady)
	}
}
