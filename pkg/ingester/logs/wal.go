package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// The WAL of the logs unit is Prometheus's segmented write log (wlog) in
// <unit dir>/wal, holding records of Canopy's own encoding (WAL.md). A
// checkpoint (<unit dir>/wal/checkpoint.NNNNNNNN, itself a wlog) holds what
// the ingester had when segment NNNNNNNN began; replay reads the newest
// complete checkpoint, then the segments from NNNNNNNN on.

const (
	recordEntries = 1 // a tenant's stream and entries it accepted
	recordChunk   = 2 // a tenant's stream and one cut chunk (checkpoints)
	walSegment    = 32 << 20
	checkpointPfx = "checkpoint."
)

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

// checkpoints lists the complete checkpoints in dir, oldest first.
func checkpoints(dir string) ([]int, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, d := range des {
		name := d.Name()
		if !d.IsDir() || !strings.HasPrefix(name, checkpointPfx) || strings.HasSuffix(name, ".tmp") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(name, checkpointPfx))
		if err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

func checkpointDir(dir string, seg int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%08d", checkpointPfx, seg))
}

// replayWAL opens the WAL in dir, calling apply for every record of the
// newest checkpoint and of the segments after it, and returns the WAL open
// for writing. A torn record at the end (a process killed while writing
// it; it was never acknowledged) is cut off.
func replayWAL(dir string, logger *slog.Logger, reg prometheus.Registerer, apply func(record) error) (*wlog.WL, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cps, err := checkpoints(dir)
	if err != nil {
		return nil, err
	}
	first := -1
	var sb labels.ScratchBuilder
	read := func(rd *wlog.Reader) error {
		for rd.Next() {
			rec, err := decodeRecord(rd.Record(), &sb)
			if err != nil {
				return fmt.Errorf("WAL record at segment %d offset %d: %w", rd.Segment(), rd.Offset(), err)
			}
			if err := apply(rec); err != nil {
				return err
			}
		}
		return rd.Err()
	}
	if len(cps) > 0 {
		first = cps[len(cps)-1]
		sr, err := wlog.NewSegmentsReader(checkpointDir(dir, first))
		if err != nil {
			return nil, err
		}
		err = read(wlog.NewReader(sr))
		sr.Close()
		if err != nil {
			return nil, fmt.Errorf("reading checkpoint %d: %w", first, err)
		}
	}
	_, last, err := wlog.Segments(dir)
	if err != nil {
		return nil, err
	}
	w, err := wlog.NewSize(logger, reg, dir, walSegment, compression.Snappy)
	if err != nil {
		return nil, err
	}
	if last >= 0 {
		sr, err := wlog.NewSegmentsRangeReader(wlog.SegmentRange{Dir: dir, First: first, Last: last})
		if err != nil {
			w.Close()
			return nil, err
		}
		rerr := read(wlog.NewReader(sr))
		sr.Close()
		var cerr *wlog.CorruptionErr
		if errors.As(rerr, &cerr) {
			logger.Warn("cutting the WAL at a torn or corrupt record", "segment", cerr.Segment, "offset", cerr.Offset, "err", rerr)
			if err := w.Repair(rerr); err != nil {
				w.Close()
				return nil, fmt.Errorf("repairing the WAL: %w", err)
			}
		} else if rerr != nil {
			w.Close()
			return nil, rerr
		}
	}
	return w, nil
}

// writeCheckpoint writes records into checkpoint seg of dir (atomically:
// a temporary directory renamed once complete), then removes older
// checkpoints and the segments before seg.
func writeCheckpoint(w *wlog.WL, dir string, seg int, records func(emit func([]byte) error) error) error {
	final := checkpointDir(dir, seg)
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	cp, err := wlog.NewSize(nil, nil, tmp, walSegment, compression.Snappy)
	if err != nil {
		return err
	}
	var batch [][]byte
	var size int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := cp.Log(batch...)
		batch, size = batch[:0], 0
		return err
	}
	err = records(func(rec []byte) error {
		batch = append(batch, rec)
		if size += len(rec); size > 4<<20 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if cerr := cp.Close(); err == nil {
		err = cerr // Close syncs
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("writing checkpoint %d: %w", seg, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	cps, err := checkpoints(dir)
	if err != nil {
		return err
	}
	for _, c := range cps {
		if c < seg {
			if err := os.RemoveAll(checkpointDir(dir, c)); err != nil {
				return err
			}
		}
	}
	return w.Truncate(seg)
}
