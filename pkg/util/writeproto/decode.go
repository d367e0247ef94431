// Package writeproto decodes Prometheus remote write 1.0 and 2.0 requests
// in place, into the 2.0 form Canopy works with: the distributor decodes
// what agents send with it, ingesters what distributors send them.
package writeproto

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Decoded is a remote write request decoded into Canopy's 2.0 form without
// copying: every string points into the bytes it was decoded from, and
// every series' label references and samples are pieces of one shared array
// each. Nothing is allocated per label or per series on the common path
// (series of float samples), where the generated decoder allocates every
// string (and a 1.0 request was then looked up string by string in a symbol
// table).
//
// 1.0 strings are not deduplicated: each label occurrence is its own
// symbol. The request and the bytes belong to one push until Release;
// whoever keeps a string longer (an ingester storing a new series' labels,
// metadata) copies it.
type Decoded struct {
	req       writev2.Request
	onRelease func()
	symbols   []string
	refs      []uint32
	samples   []writev2.Sample
	series    []writev2.TimeSeries
	spans     []seriesSpan
}

// seriesSpan is where one series' references and samples lie in the shared
// arrays while they grow; the slices are cut once decoding is done.
type seriesSpan struct {
	refs, refsEnd, samples, samplesEnd int
	inPlace                            bool // false: the fallback filled the series
}

var decodedPool = sync.Pool{New: func() any { return new(Decoded) }}

// maxPooledSeries bounds the arrays a pooled Decoded keeps.
const maxPooledSeries = 1 << 16

// Get returns an empty Decoded from a pool.
func Get() *Decoded { return decodedPool.Get().(*Decoded) }

// Request is the decoded request, valid until Release.
func (d *Decoded) Request() *writev2.Request { return &d.req }

// OnRelease sets what Release does first: give back the bytes the request
// was decoded from.
func (d *Decoded) OnRelease(f func()) { d.onRelease = f }

// Release runs OnRelease's function and returns d to its pool; d, its
// request and every string of it must not be used afterwards.
func (d *Decoded) Release() {
	if d.onRelease != nil {
		d.onRelease()
		d.onRelease = nil
	}
	if cap(d.series) > maxPooledSeries {
		return
	}
	// What this request used; beyond it, earlier requests cleared their own.
	clear(d.symbols)
	clear(d.series)
	d.req = writev2.Request{}
	decodedPool.Put(d)
}

var errTruncated = io.ErrUnexpectedEOF

// wireString is b[off:off+n] as a string sharing b's memory.
func wireString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// field reads one protobuf field key and, for LEN fields, the payload. It
// returns the field number, wire type, the payload (LEN) or the value
// (VARINT, I64 as bits) and the rest of b.
func field(b []byte) (num int, typ int, payload []byte, value uint64, rest []byte, err error) {
	key, n := uvarint(b)
	if n <= 0 {
		return 0, 0, nil, 0, nil, errTruncated
	}
	b = b[n:]
	num, typ = int(key>>3), int(key&7)
	if num <= 0 {
		return 0, 0, nil, 0, nil, fmt.Errorf("illegal field number %d", num)
	}
	switch typ {
	case 0: // VARINT
		v, n := uvarint(b)
		if n <= 0 {
			return 0, 0, nil, 0, nil, errTruncated
		}
		return num, typ, nil, v, b[n:], nil
	case 1: // I64
		if len(b) < 8 {
			return 0, 0, nil, 0, nil, errTruncated
		}
		return num, typ, nil, binary.LittleEndian.Uint64(b), b[8:], nil
	case 2: // LEN
		l, n := uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return 0, 0, nil, 0, nil, errTruncated
		}
		return num, typ, b[n : n+int(l)], 0, b[n+int(l):], nil
	case 5: // I32
		if len(b) < 4 {
			return 0, 0, nil, 0, nil, errTruncated
		}
		return num, typ, nil, uint64(binary.LittleEndian.Uint32(b)), b[4:], nil
	case 3: // a deprecated group, skipped as the generated decoders do
		rest, err := skipGroup(b)
		return num, typ, nil, 0, rest, err
	}
	return 0, 0, nil, 0, nil, fmt.Errorf("unsupported wire type %d of field %d", typ, num)
}

// skipGroup returns what follows the end of the group b is inside of,
// nested groups included. Like the generated decoders, it looks only at the
// wire types of what it skips.
func skipGroup(b []byte) ([]byte, error) {
	for depth := 1; depth > 0; {
		key, n := uvarint(b)
		if n <= 0 {
			return nil, errTruncated
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			if _, n = uvarint(b); n <= 0 {
				return nil, errTruncated
			}
			b = b[n:]
		case 1, 5:
			w := 8
			if key&7 == 5 {
				w = 4
			}
			if len(b) < w {
				return nil, errTruncated
			}
			b = b[w:]
		case 2:
			l, n := uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return nil, errTruncated
			}
			b = b[n+int(l):]
		case 3:
			depth++
		case 4:
			depth--
		default:
			return nil, fmt.Errorf("unsupported wire type %d", key&7)
		}
	}
	return b, nil
}

// uvarint reads a varint as the generated decoders do: at most ten bytes,
// bits beyond 64 dropped. n is 0 when b ends first, -1 past ten bytes.
func uvarint(b []byte) (v uint64, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	for i, shift := 0, uint(0); shift < 64; i, shift = i+1, shift+7 {
		if i >= len(b) {
			return 0, 0
		}
		c := b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// errWireType says a known field came with the wrong wire type.
func errWireType(msg string, num, typ int) error {
	return fmt.Errorf("%s field %d: wrong wire type %d", msg, num, typ)
}

// DecodeV1 decodes a remote write 1.0 WriteRequest from raw into d's
// request; raw must stay unchanged until Release.
func (d *Decoded) DecodeV1(raw []byte) error {
	d.symbols = append(d.symbols[:0], "")
	d.refs, d.samples, d.series, d.spans = d.refs[:0], d.samples[:0], d.series[:0], d.spans[:0]
	var metadata [][]byte
	for b := raw; len(b) > 0; {
		num, typ, payload, _, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch num {
		case 1:
			if typ != 2 {
				return errWireType("WriteRequest", num, typ)
			}
			if err := d.series1(payload); err != nil {
				return err
			}
		case 3:
			if typ != 2 {
				return errWireType("WriteRequest", num, typ)
			}
			metadata = append(metadata, payload)
		}
	}
	d.cutSpans()
	for _, m := range metadata {
		var md prompb.MetricMetadata
		if err := md.Unmarshal(m); err != nil {
			return err
		}
		if md.MetricFamilyName == "" {
			continue
		}
		n := len(d.symbols)
		d.symbols = append(d.symbols, "__name__", md.MetricFamilyName, md.Help, md.Unit)
		d.series = append(d.series, writev2.TimeSeries{
			LabelsRefs: []uint32{uint32(n), uint32(n + 1)},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_MetricType(md.Type), HelpRef: uint32(n + 2), UnitRef: uint32(n + 3)},
		})
	}
	d.req = writev2.Request{Symbols: d.symbols, Timeseries: d.series}
	return nil
}

// series1 decodes one TimeSeries. Series of labels and float samples only
// are decoded in place; one with exemplars or histograms goes through the
// generated decoder (they are rare, and intricate).
func (d *Decoded) series1(b []byte) error {
	sp := seriesSpan{refs: len(d.refs), samples: len(d.samples)}
	for rest := b; len(rest) > 0; {
		num, typ, payload, _, r, err := field(rest)
		if err != nil {
			return err
		}
		rest = r
		switch num {
		case 1:
			if typ != 2 {
				return errWireType("TimeSeries", num, typ)
			}
			var name, value []byte
			for lb := payload; len(lb) > 0; {
				num, typ, p, _, r, err := field(lb)
				if err != nil {
					return err
				}
				lb = r
				switch {
				case num == 1 && typ == 2:
					name = p
				case num == 2 && typ == 2:
					value = p
				case num <= 2:
					return errWireType("Label", num, typ)
				}
			}
			d.refs = append(d.refs, uint32(len(d.symbols)), uint32(len(d.symbols)+1))
			d.symbols = append(d.symbols, wireString(name), wireString(value))
		case 2:
			if typ != 2 {
				return errWireType("TimeSeries", num, typ)
			}
			s, err := sample(payload, false)
			if err != nil {
				return err
			}
			d.samples = append(d.samples, s)
		case 3, 4:
			// Exemplars or histograms: start this series again with the
			// generated decoder.
			d.refs, d.samples = d.refs[:sp.refs], d.samples[:sp.samples]
			return d.seriesFallback(b)
		}
	}
	sp.refsEnd, sp.samplesEnd, sp.inPlace = len(d.refs), len(d.samples), true
	d.series = append(d.series, writev2.TimeSeries{})
	d.spans = append(d.spans, sp)
	return nil
}

// sample decodes a Sample message: value (1) and timestamp (2), and in 2.0
// start_timestamp (3); 1.0 has no field 3 and skips it as unknown.
func sample(b []byte, v2 bool) (writev2.Sample, error) {
	var s writev2.Sample
	known := 2
	if v2 {
		known = 3
	}
	for len(b) > 0 {
		num, typ, _, v, rest, err := field(b)
		if err != nil {
			return s, err
		}
		b = rest
		switch {
		case num == 1 && typ == 1:
			s.Value = math.Float64frombits(v)
		case num == 2 && typ == 0:
			s.Timestamp = int64(v)
		case num == 3 && typ == 0 && v2:
			s.StartTimestamp = int64(v)
		case num <= known:
			return s, errWireType("Sample", num, typ)
		}
	}
	return s, nil
}

// seriesFallback decodes one TimeSeries with the generated decoder, as
// Canopy converted 1.0 requests before it decoded them in place; its strings are copies.
func (d *Decoded) seriesFallback(b []byte) error {
	var in prompb.TimeSeries
	if err := in.Unmarshal(b); err != nil {
		return err
	}
	refs := make([]uint32, 0, 2*len(in.Labels))
	for _, l := range in.Labels {
		refs = append(refs, uint32(len(d.symbols)), uint32(len(d.symbols)+1))
		d.symbols = append(d.symbols, l.Name, l.Value)
	}
	ts := writev2.TimeSeries{LabelsRefs: refs}
	if len(in.Samples) > 0 {
		ts.Samples = make([]writev2.Sample, len(in.Samples))
		for j, s := range in.Samples {
			ts.Samples[j] = writev2.Sample{Value: s.Value, Timestamp: s.Timestamp}
		}
	}
	for _, h := range in.Histograms {
		if h.IsFloatHistogram() {
			ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(0, h.Timestamp, h.ToFloatHistogram()))
		} else {
			ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(0, h.Timestamp, h.ToIntHistogram()))
		}
	}
	for _, e := range in.Exemplars {
		erefs := make([]uint32, 0, 2*len(e.Labels))
		for _, l := range e.Labels {
			erefs = append(erefs, uint32(len(d.symbols)), uint32(len(d.symbols)+1))
			d.symbols = append(d.symbols, l.Name, l.Value)
		}
		ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: erefs, Value: e.Value, Timestamp: e.Timestamp})
	}
	d.series = append(d.series, ts)
	d.spans = append(d.spans, seriesSpan{})
	return nil
}

// DecodeV2 decodes a remote write 2.0 Request from raw into d's request:
// symbols point into raw, and series of float samples take their label
// references and samples from shared arrays. A series with histograms or
// exemplars goes through the generated decoder. raw must stay unchanged
// until Release.
func (d *Decoded) DecodeV2(raw []byte) error {
	d.symbols = d.symbols[:0]
	d.refs, d.samples, d.series, d.spans = d.refs[:0], d.samples[:0], d.series[:0], d.spans[:0]
	for b := raw; len(b) > 0; {
		num, typ, payload, _, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch num {
		case 4:
			if typ != 2 {
				return errWireType("Request", num, typ)
			}
			d.symbols = append(d.symbols, wireString(payload))
		case 5:
			if typ != 2 {
				return errWireType("Request", num, typ)
			}
			if err := d.series2(payload); err != nil {
				return err
			}
		}
	}
	d.cutSpans()
	d.req = writev2.Request{Symbols: d.symbols, Timeseries: d.series}
	return nil
}

// cutSpans gives the series decoded in place their slices of the shared
// arrays, now that those no longer grow.
func (d *Decoded) cutSpans() {
	for i, sp := range d.spans {
		if !sp.inPlace {
			continue
		}
		ts := &d.series[i]
		ts.LabelsRefs = d.refs[sp.refs:sp.refsEnd:sp.refsEnd]
		if sp.samplesEnd > sp.samples {
			ts.Samples = d.samples[sp.samples:sp.samplesEnd:sp.samplesEnd]
		}
	}
}

func (d *Decoded) series2(b []byte) error {
	sp := seriesSpan{refs: len(d.refs), samples: len(d.samples), inPlace: true}
	var md writev2.Metadata
	for rest := b; len(rest) > 0; {
		num, typ, payload, v, r, err := field(rest)
		if err != nil {
			return err
		}
		rest = r
		switch num {
		case 1:
			switch typ {
			case 0:
				d.refs = append(d.refs, uint32(v))
			case 2:
				for p := payload; len(p) > 0; {
					ref, n := uvarint(p)
					if n <= 0 {
						return errTruncated
					}
					d.refs = append(d.refs, uint32(ref))
					p = p[n:]
				}
			default:
				return errWireType("TimeSeries", num, typ)
			}
		case 2:
			if typ != 2 {
				return errWireType("TimeSeries", num, typ)
			}
			s, err := sample(payload, true)
			if err != nil {
				return err
			}
			d.samples = append(d.samples, s)
		case 3, 4:
			d.refs, d.samples = d.refs[:sp.refs], d.samples[:sp.samples]
			var ts writev2.TimeSeries
			if err := ts.Unmarshal(b); err != nil {
				return err
			}
			d.series = append(d.series, ts)
			d.spans = append(d.spans, seriesSpan{})
			return nil
		case 5:
			if typ != 2 {
				return errWireType("TimeSeries", num, typ)
			}
			for mb := payload; len(mb) > 0; {
				num, typ, _, v, r, err := field(mb)
				if err != nil {
					return err
				}
				mb = r
				switch {
				case num == 1 && typ == 0:
					md.Type = writev2.Metadata_MetricType(v)
				case num == 3 && typ == 0:
					md.HelpRef = uint32(v)
				case num == 4 && typ == 0:
					md.UnitRef = uint32(v)
				case num == 1 || num == 3 || num == 4:
					return errWireType("Metadata", num, typ)
				}
			}
		}
	}
	sp.refsEnd, sp.samplesEnd = len(d.refs), len(d.samples)
	d.series = append(d.series, writev2.TimeSeries{Metadata: md})
	d.spans = append(d.spans, sp)
	return nil
}
