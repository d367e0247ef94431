package main

import "net/http"

// A workload is one kind of telemetry load: Prometheus remote write today;
// logs (Loki push, OTLP logs) and traces (OTLP traces) are meant to be added
// as further implementations, reusing the driver (pacing, workers, latency,
// CPU and RSS accounting) unchanged.
//
// A workload keeps a fixed set of active streams (series, log streams,
// trace-producing services) split into batches; each batch becomes one request
// per round, and every round carries one new item (sample, line, span) per
// stream. Everything that can be computed once is computed in newWorkload, so
// that producing a request costs as little as possible.
type workload interface {
	// unit names the items counted: "samples", "lines", "spans".
	unit() string
	// streams is the number of active streams (series) the load keeps.
	streams() int
	// batches returns the request producers. The driver gives each batch to
	// exactly one worker, so a batch needs no locking and its streams receive
	// their items in order.
	batches() []batch
	// header returns the headers every request carries (Content-Type,
	// Content-Encoding, protocol version); the driver adds the tenant.
	header() http.Header
	// accepted returns how many of the n items of a request a 2xx response
	// acknowledged.
	accepted(resp *http.Response, n int) int
}

// A batch produces the successive requests of a fixed group of streams.
type batch interface {
	// encode writes the request for the round at timestamp tsMillis (Unix
	// milliseconds, strictly increasing from call to call) into dst, reusing
	// its capacity, and returns the body and the number of items it carries.
	encode(dst []byte, tsMillis int64) (body []byte, items int)
	// maxEncodedLen bounds the length of the bodies encode returns, so that
	// the caller can allocate its buffer once.
	maxEncodedLen() int
}
