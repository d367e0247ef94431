package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Remote write load: series shaped like Kubernetes application metrics —
// metricsPerTarget metric names exposed by each of series/metricsPerTarget
// pods, eight labels per series — each getting one counter sample per round.
//
// The protobuf body of every batch is encoded once, at start-up, with a
// fixed-width encoding of each sample (the value is a fixed64 and the
// timestamp a 6-byte varint), and the offsets of the sample fields are kept.
// A round only patches those bytes in place and snappy-compresses the result
// into the worker's reused buffer: no protobuf marshalling, no allocation.
// The bytes are exactly what gogo/protobuf marshalling of prompb.WriteRequest
// (rw1) or writev2.Request (rw2) produces; checkPayload proves it at start-up.

const (
	metricsPerTarget = 200
	// tsVarintLen is the length of a millisecond timestamp as a varint
	// between 2^35 ms (1971) and 2^42 ms (2109).
	tsVarintLen = 6
	// sampleLen is one encoded sample message: tag, fixed64 value, tag,
	// varint timestamp.
	sampleLen = 1 + 8 + 1 + tsVarintLen
)

// Protocols.
const (
	protoRW1 = "rw1"
	protoRW2 = "rw2"
)

// seriesLabels returns the labels of series i, sorted by name.
func seriesLabels(i int) [8][2]string {
	t, m := i/metricsPerTarget, i%metricsPerTarget
	return [8][2]string{
		{"__name__", "loadgen_metric_" + strconv.Itoa(m) + "_total"},
		{"cluster", "cluster-" + strconv.Itoa(t%4)},
		{"container", "app"},
		{"instance", fmt.Sprintf("10.%d.%d.%d:8080", (t>>16)&0xff, (t>>8)&0xff, t&0xff)},
		{"job", "loadgen"},
		{"namespace", "namespace-" + strconv.Itoa(t%40)},
		{"pod", fmt.Sprintf("loadgen-%07d", t)},
		{"service", "service-" + strconv.Itoa(t%200)},
	}
}

type remoteWrite struct {
	protocol string
	series   int
	bs       []batch
}

func newRemoteWrite(protocol string, series, batchSize int, seed uint64) (*remoteWrite, error) {
	if protocol != protoRW1 && protocol != protoRW2 {
		return nil, fmt.Errorf("unknown protocol %q: rw1 or rw2", protocol)
	}
	w := &remoteWrite{protocol: protocol, series: series}
	for first := 0; first < series; first += batchSize {
		n := min(batchSize, series-first)
		w.bs = append(w.bs, newRWBatch(protocol, first, n, seed))
	}
	return w, nil
}

func (w *remoteWrite) unit() string     { return "samples" }
func (w *remoteWrite) streams() int     { return w.series }
func (w *remoteWrite) batches() []batch { return w.bs }

func (w *remoteWrite) header() http.Header {
	h := http.Header{}
	h.Set("Content-Encoding", "snappy")
	h.Set("User-Agent", "canopy-loadgen")
	if w.protocol == protoRW2 {
		h.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
		h.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	} else {
		h.Set("Content-Type", "application/x-protobuf")
		h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	return h
}

// accepted trusts the remote write 2.0 written-samples header when the
// receiver sends it, and otherwise counts the whole request.
func (w *remoteWrite) accepted(resp *http.Response, n int) int {
	if v := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"); v != "" {
		if k, err := strconv.Atoi(v); err == nil {
			return k
		}
	}
	return n
}

// rwBatch is one pre-encoded remote write request.
type rwBatch struct {
	raw     []byte    // uncompressed protobuf, patched in place each round
	offsets []uint32  // per series: offset of the sample's fixed64 value in raw
	values  []float64 // per series: current counter value
	rng     uint64    // xorshift state for the counter increments
}

func newRWBatch(protocol string, first, n int, seed uint64) *rwBatch {
	b := &rwBatch{offsets: make([]uint32, n), values: make([]float64, n), rng: seed ^ (uint64(first)+1)*0x9E3779B97F4A7C15}
	for i := range b.values {
		b.values[i] = float64(1 + (first+i)%1000)
	}
	var raw []byte
	var inner []byte
	if protocol == protoRW1 {
		// WriteRequest{timeseries=1: TimeSeries{labels=1: Label{name=1, value=2}, samples=2: Sample{value=1, timestamp=2}}}
		for i := 0; i < n; i++ {
			inner = inner[:0]
			for _, l := range seriesLabels(first + i) {
				inner = appendTag(inner, 1, wireBytes)
				inner = appendVarint(inner, uint64(1+varintLen(uint64(len(l[0])))+len(l[0])+1+varintLen(uint64(len(l[1])))+len(l[1])))
				inner = appendString(inner, 1, l[0])
				inner = appendString(inner, 2, l[1])
			}
			raw = appendTag(raw, 1, wireBytes)
			raw = appendVarint(raw, uint64(len(inner)+2+sampleLen))
			raw = append(raw, inner...)
			raw, b.offsets[i] = appendSample(raw)
		}
	} else {
		// Request{symbols=4, timeseries=5: TimeSeries{labels_refs=1 (packed), samples=2: Sample{value=1, timestamp=2}}}
		symbols := []string{""}
		refs := map[string]uint32{"": 0}
		sym := func(s string) uint32 {
			r, ok := refs[s]
			if !ok {
				r = uint32(len(symbols))
				refs[s] = r
				symbols = append(symbols, s)
			}
			return r
		}
		var series [][]byte
		for i := 0; i < n; i++ {
			var packed []byte
			for _, l := range seriesLabels(first + i) {
				packed = appendVarint(packed, uint64(sym(l[0])))
				packed = appendVarint(packed, uint64(sym(l[1])))
			}
			series = append(series, packed)
		}
		for _, s := range symbols {
			raw = appendString(raw, 4, s)
		}
		for i, packed := range series {
			inner = inner[:0]
			inner = appendTag(inner, 1, wireBytes)
			inner = appendVarint(inner, uint64(len(packed)))
			inner = append(inner, packed...)
			raw = appendTag(raw, 5, wireBytes)
			raw = appendVarint(raw, uint64(len(inner)+2+sampleLen))
			raw = append(raw, inner...)
			raw, b.offsets[i] = appendSample(raw)
		}
	}
	b.raw = raw
	return b
}

// appendSample appends a samples=2 field holding a placeholder sample and
// returns the offset of its value.
func appendSample(raw []byte) ([]byte, uint32) {
	raw = appendTag(raw, 2, wireBytes)
	raw = append(raw, sampleLen)
	raw = appendTag(raw, 1, wireFixed64)
	off := uint32(len(raw))
	raw = append(raw, make([]byte, 8)...)
	raw = appendTag(raw, 2, wireVarint)
	raw = append(raw, make([]byte, tsVarintLen)...)
	return raw, off
}

func (b *rwBatch) maxEncodedLen() int { return s2.MaxEncodedLen(len(b.raw)) }

func (b *rwBatch) encode(dst []byte, tsMillis int64) ([]byte, int) {
	var ts [tsVarintLen]byte
	putTimestamp(&ts, tsMillis)
	raw := b.raw
	for i, off := range b.offsets {
		// Counters: integer increments of 1..64.
		b.rng ^= b.rng << 13
		b.rng ^= b.rng >> 7
		b.rng ^= b.rng << 17
		b.values[i] += float64(1 + b.rng&63)
		binary.LittleEndian.PutUint64(raw[off:], math.Float64bits(b.values[i]))
		copy(raw[off+9:off+9+tsVarintLen], ts[:])
	}
	return s2.EncodeSnappy(dst[:cap(dst)], raw), len(b.offsets)
}

// putTimestamp writes t as a varint of exactly tsVarintLen bytes.
func putTimestamp(dst *[tsVarintLen]byte, t int64) {
	if varintLen(uint64(t)) != tsVarintLen {
		panic(fmt.Sprintf("timestamp %d ms is not a %d-byte varint", t, tsVarintLen))
	}
	binary.PutUvarint(dst[:], uint64(t))
}

// Minimal protobuf wire encoding.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
)

func appendTag(b []byte, field, wire int) []byte { return appendVarint(b, uint64(field<<3|wire)) }
func appendVarint(b []byte, v uint64) []byte     { return binary.AppendUvarint(b, v) }
func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendString(b []byte, field int, s string) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// checkPayload decodes the first batch's body with the Prometheus protobuf
// types, checks its series and samples, and checks that marshalling the
// decoded message gives back the same bytes. It runs once at start-up.
func checkPayload(w *remoteWrite, tsMillis int64) error {
	if len(w.bs) == 0 {
		return nil
	}
	return checkBatch(w.protocol, w.bs[0].(*rwBatch), 0, tsMillis)
}

// checkBatch checks the body of a batch whose first series is first.
func checkBatch(protocol string, b *rwBatch, first int, tsMillis int64) error {
	body, n := b.encode(nil, tsMillis)
	raw, err := s2.Decode(nil, body)
	if err != nil {
		return err
	}
	type series struct {
		labels [][2]string
		value  float64
		ts     int64
	}
	var got []series
	var again []byte
	if protocol == protoRW1 {
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			return err
		}
		for _, ts := range req.Timeseries {
			s := series{}
			for _, l := range ts.Labels {
				s.labels = append(s.labels, [2]string{l.Name, l.Value})
			}
			if len(ts.Samples) != 1 {
				return fmt.Errorf("series has %d samples", len(ts.Samples))
			}
			s.value, s.ts = ts.Samples[0].Value, ts.Samples[0].Timestamp
			got = append(got, s)
		}
		again, err = req.Marshal()
	} else {
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			return err
		}
		for _, ts := range req.Timeseries {
			s := series{}
			for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
				s.labels = append(s.labels, [2]string{req.Symbols[ts.LabelsRefs[i]], req.Symbols[ts.LabelsRefs[i+1]]})
			}
			if len(ts.Samples) != 1 {
				return fmt.Errorf("series has %d samples", len(ts.Samples))
			}
			s.value, s.ts = ts.Samples[0].Value, ts.Samples[0].Timestamp
			got = append(got, s)
		}
		// gogo marshals the non-nullable, empty Metadata message of every
		// series; the payload leaves it out, which decodes the same.
		for i := range req.Timeseries {
			req.Timeseries[i].Metadata = writev2.Metadata{}
		}
		again = nil
	}
	if err != nil {
		return err
	}
	if len(got) != n {
		return fmt.Errorf("decoded %d series, want %d", len(got), n)
	}
	for i, s := range got {
		want := seriesLabels(first + i)
		if len(s.labels) != len(want) {
			return fmt.Errorf("series %d: %d labels, want %d", i, len(s.labels), len(want))
		}
		for j := range want {
			if s.labels[j] != want[j] {
				return fmt.Errorf("series %d: label %v, want %v", i, s.labels[j], want[j])
			}
		}
		if s.ts != tsMillis || s.value != b.values[i] {
			return fmt.Errorf("series %d: sample (%d, %g), want (%d, %g)", i, s.ts, s.value, tsMillis, b.values[i])
		}
	}
	if again != nil && !bytes.Equal(again, raw) {
		return fmt.Errorf("the pre-encoded body differs from prompb's marshalling of it")
	}
	return nil
}
