package logs

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/ingester/unit"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// The WAL of the logs unit is Prometheus's segmented write log (wlog) in
// <unit dir>/wal, holding records of Canopy's own encoding (WAL.md). A
// checkpoint (<unit dir>/wal/checkpoint.NNNNNNNN, itself a wlog) holds what
// the ingester had when segment NNNNNNNN began; replay reads the newest
// complete checkpoint, then the segments from NNNNNNNN on (package unit,
// on unitwal's machinery).

const (
	recordEntries = 1 // a tenant's stream and entries it accepted
	recordChunk   = 2 // a tenant's stream and one cut chunk (checkpoints)
)

// snapshot takes what a checkpoint holds of a tenant (unit.Hooks.Snapshot):
// its cut chunks not shipped, as chunk records, and its open chunks'
// entries, as entries records.
func snapshot(in *instance) unit.Records {
	type streamState struct {
		labels labels.Labels
		chunks [][]byte
		head   []logchunk.Entry
	}
	var states []streamState
	for _, s := range in.all() {
		cs, head := s.snapshot(true)
		st := streamState{labels: s.labels, head: head}
		for _, c := range cs {
			st.chunks = append(st.chunks, c.data)
		}
		if len(st.chunks) > 0 || len(head) > 0 {
			states = append(states, st)
		}
	}
	if len(states) == 0 {
		return nil
	}
	return func(emit func([]byte) error) error {
		for _, st := range states {
			for _, c := range st.chunks {
				if err := emit(encodeChunk(nil, in.tenant, st.labels, c)); err != nil {
					return err
				}
			}
			if len(st.head) > 0 {
				if err := emit(encodeEntries(nil, in.tenant, st.labels, st.head)); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// appendRecordHeader writes type, tenant and stream labels.
func appendRecordHeader(b []byte, typ byte, tenant string, ls labels.Labels) []byte {
	b = append(b, typ)
	b = appendString(b, tenant)
	b = binary.AppendUvarint(b, uint64(ls.Len()))
	ls.Range(func(l labels.Label) {
		b = appendString(b, l.Name)
		b = appendString(b, l.Value)
	})
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeEntries is an entries record.
func encodeEntries(b []byte, tenant string, ls labels.Labels, es []logchunk.Entry) []byte {
	b = appendRecordHeader(b, recordEntries, tenant, ls)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = binary.AppendVarint(b, e.Timestamp)
		b = appendString(b, e.Line)
		b = binary.AppendUvarint(b, uint64(e.Metadata.Len()))
		e.Metadata.Range(func(l labels.Label) {
			b = appendString(b, l.Name)
			b = appendString(b, l.Value)
		})
	}
	return b
}

// encodeChunk is a chunk record.
func encodeChunk(b []byte, tenant string, ls labels.Labels, data []byte) []byte {
	b = appendRecordHeader(b, recordChunk, tenant, ls)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

// record is a decoded WAL record. Its strings are copies: the reader's
// buffer is reused.
type record struct {
	typ     byte
	tenant  string
	labels  labels.Labels
	entries []logchunk.Entry
	chunk   []byte
}

type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("a length of %d bytes where %d remain", n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *recordReader) labels(sb *labels.ScratchBuilder) labels.Labels {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errors.New("more labels than bytes")
		return labels.EmptyLabels()
	}
	sb.Reset()
	for i := uint64(0); i < n && r.err == nil; i++ {
		name := string(r.bytes())
		sb.Add(name, string(r.bytes()))
	}
	sb.Sort()
	return sb.Labels()
}

func decodeRecord(b []byte, sb *labels.ScratchBuilder) (record, error) {
	if len(b) == 0 {
		return record{}, errors.New("empty record")
	}
	r := &recordReader{b: b[1:]}
	rec := record{typ: b[0], tenant: string(r.bytes())}
	rec.labels = r.labels(sb)
	switch rec.typ {
	case recordEntries:
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			return record{}, errors.New("more entries than bytes")
		}
		rec.entries = make([]logchunk.Entry, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			e := logchunk.Entry{Timestamp: r.varint(), Line: string(r.bytes())}
			e.Metadata = r.labels(sb)
			rec.entries = append(rec.entries, e)
		}
	case recordChunk:
		rec.chunk = append([]byte(nil), r.bytes()...)
	default:
		return record{}, fmt.Errorf("unknown record type %d", rec.typ)
	}
	if r.err != nil {
		return record{}, r.err
	}
	return rec, nil
}
