package traces

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/canopy-observability/canopy/pkg/ingester/unit"
)

// The traces unit's WAL (WAL.md) is unitwal's: Prometheus's write log in
// <unit dir>/wal with checkpoints, holding records of this encoding.

const recordPieces = 1 // a tenant's pieces of traces

// piece is spans of one trace.
type piece struct {
	id         [16]byte
	spans      []byte
	start, end int64 // Unix ns; 0 when not known
}

// encodePieces is a pieces record: 0x01, tenant (uvarint length + bytes),
// uvarint count, then per piece the 16-byte trace ID, the spans' earliest
// start and latest end (varints, Unix ns, 0 when not known) and the spans
// (uvarint length + bytes).
func encodePieces(b []byte, tenant string, ps []piece) []byte {
	b = append(b, recordPieces)
	b = binary.AppendUvarint(b, uint64(len(tenant)))
	b = append(b, tenant...)
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = append(b, p.id[:]...)
		b = binary.AppendVarint(b, p.start)
		b = binary.AppendVarint(b, p.end)
		b = binary.AppendUvarint(b, uint64(len(p.spans)))
		b = append(b, p.spans...)
	}
	return b
}

var errBadRecord = errors.New("malformed traces WAL record")

// decodePieces decodes a pieces record; the pieces' spans are copies.
func decodePieces(b []byte) (string, []piece, error) {
	if len(b) == 0 || b[0] != recordPieces {
		return "", nil, fmt.Errorf("%w: unknown record type", errBadRecord)
	}
	b = b[1:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, true
	}
	tenant, ok := field()
	if !ok {
		return "", nil, errBadRecord
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return "", nil, errBadRecord
	}
	b = b[k:]
	ps := make([]piece, 0, n)
	for range n {
		if len(b) < 16 {
			return "", nil, errBadRecord
		}
		var p piece
		copy(p.id[:], b)
		b = b[16:]
		for _, v := range []*int64{&p.start, &p.end} {
			x, k := binary.Varint(b)
			if k <= 0 {
				return "", nil, errBadRecord
			}
			*v, b = x, b[k:]
		}
		spans, ok := field()
		if !ok {
			return "", nil, errBadRecord
		}
		p.spans = append([]byte(nil), spans...)
		ps = append(ps, p)
	}
	if len(b) != 0 {
		return "", nil, fmt.Errorf("%w: %d bytes after the pieces", errBadRecord, len(b))
	}
	return string(tenant), ps, nil
}

// snapshot takes what a checkpoint holds of a tenant (unit.Hooks.Snapshot):
// one pieces record per trace not yet in the bucket, live or cut.
func snapshot(in *instance) unit.Records {
	ts := in.snapshot()
	if len(ts) == 0 {
		return nil
	}
	return func(emit func([]byte) error) error {
		for _, t := range ts {
			ps := make([]piece, len(t.pieces))
			for j, sp := range t.pieces {
				ps[j] = piece{id: t.id, spans: sp, start: t.start, end: t.end}
			}
			if err := emit(encodePieces(nil, in.tenant, ps)); err != nil {
				return err
			}
		}
		return nil
	}
}
