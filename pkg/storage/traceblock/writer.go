package traceblock

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/oklog/ulid/v2"
	"github.com/parquet-go/parquet-go"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Row groups and pages of data.parquet (FORMAT.md): a lookup by ID reads
// one page of each column of the row group the trace is in, so pages are
// kept small; row groups bound what a writer buffers.
const pageBufferBytes = 32 << 10

// rowsPerRowGroup is a variable for tests that need small row groups.
var rowsPerRowGroup int64 = 64 << 10

// Writer writes a block into a local directory one trace at a time, so
// that a block of any size is written holding one row group and the
// traces' ID hashes in memory. Traces come in strictly increasing trace ID
// order. A Writer is not safe for concurrent use; Close releases it (after
// Finish too).
type Writer struct {
	bdir   string
	meta   Meta
	f      *os.File
	bw     *bufio.Writer
	pw     *parquet.GenericWriter[spanRow]
	hashes []uint64
	last   [16]byte
	rows   []spanRow
	done   bool
}

// NewWriter starts block m.ULID in dir/<ULID>/. Of m, it keeps ULID,
// Source, Ingester and Sources; Finish fills in the rest.
func NewWriter(dir string, m Meta) (*Writer, error) {
	bdir := filepath.Join(dir, m.ULID.String())
	if err := os.MkdirAll(bdir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(bdir, DataFile))
	if err != nil {
		return nil, err
	}
	w := &Writer{
		bdir: bdir,
		meta: Meta{ULID: m.ULID, Version: Version, Source: m.Source, Ingester: m.Ingester, Sources: m.Sources, MinTime: -1},
		f:    f,
		bw:   bufio.NewWriterSize(f, 1<<20),
	}
	w.pw = parquet.NewGenericWriter[spanRow](w.bw,
		parquet.Compression(&parquet.Zstd),
		parquet.PageBufferSize(pageBufferBytes),
		parquet.MaxRowsPerRowGroup(rowsPerRowGroup),
		parquet.CreatedBy("canopy", "", ""),
	)
	return w, nil
}

// Add writes the spans of trace id held in batches (which may hold other
// traces' spans too: they are skipped). Spans with the same span ID and
// start are written once (replicas' copies); spans come out ordered by
// start time.
func (w *Writer) Add(id [16]byte, batches ...ptrace.Traces) error {
	rows, err := collectRows(w.rows[:0], batches, &id)
	w.rows = rows
	if err != nil {
		return fmt.Errorf("trace %x: %w", id, err)
	}
	return w.writeTrace(id, rows)
}

// writeTrace writes the rows of one trace.
func (w *Writer) writeTrace(id [16]byte, rows []spanRow) error {
	if w.done {
		return fmt.Errorf("block %s is finished", w.meta.ULID)
	}
	if w.meta.Stats.Traces > 0 && bytes.Compare(id[:], w.last[:]) <= 0 {
		return fmt.Errorf("trace %x added after %x: traces must come in increasing ID order", id, w.last)
	}
	rows = sealTrace(rows)
	if len(rows) == 0 {
		return nil
	}
	if _, err := w.pw.Write(rows); err != nil {
		return fmt.Errorf("writing trace %x: %w", id, err)
	}
	if w.meta.Stats.Traces == 0 {
		w.meta.MinTraceID = hex.EncodeToString(id[:])
	}
	w.last = id
	w.hashes = append(w.hashes, traceHash(id))
	w.meta.Stats.Traces++
	w.meta.Stats.Spans += int64(len(rows))
	if w.meta.MinTime < 0 || rows[0].TraceStart < w.meta.MinTime {
		w.meta.MinTime = rows[0].TraceStart
	}
	w.meta.MaxTime = max(w.meta.MaxTime, rows[0].TraceEnd)
	clear(rows) // drop references to the batches' strings
	return nil
}

// collectRows appends the rows of the spans in batches to dst: all of
// them, or only trace *only's.
func collectRows(dst []spanRow, batches []ptrace.Traces, only *[16]byte) ([]spanRow, error) {
	for _, td := range batches {
		for i := range td.ResourceSpans().Len() {
			rs := td.ResourceSpans().At(i)
			for j := range rs.ScopeSpans().Len() {
				ss := rs.ScopeSpans().At(j)
				for k := range ss.Spans().Len() {
					s := ss.Spans().At(k)
					if only != nil && s.TraceID() != *only {
						continue
					}
					dst = append(dst, spanRow{})
					if err := rowOf(&dst[len(dst)-1], rs.Resource(), rs.SchemaUrl(), ss.Scope(), ss.SchemaUrl(), s); err != nil {
						return dst, fmt.Errorf("span %x of trace %x: %w", s.SpanID(), s.TraceID(), err)
					}
				}
			}
		}
	}
	return dst, nil
}

// sealTrace orders one trace's rows by (start, span ID), drops repeated
// spans and fills in the trace columns.
func sealTrace(rows []spanRow) []spanRow {
	slices.SortStableFunc(rows, func(a, b spanRow) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), bytes.Compare(a.SpanID[:], b.SpanID[:]))
	})
	rows = slices.CompactFunc(rows, func(a, b spanRow) bool { return a.SpanID == b.SpanID && a.Start == b.Start })
	if len(rows) == 0 {
		return rows
	}
	start, end := rows[0].Start, rows[0].Start+rows[0].Duration
	var root *spanRow
	for i := range rows {
		r := &rows[i]
		end = max(end, r.Start+r.Duration)
		if root == nil && r.ParentSpanID == ([8]byte{}) {
			root = r
		}
	}
	var rootService, rootName string
	if root != nil {
		rootService, rootName = root.ServiceName, root.Name
	}
	for i := range rows {
		rows[i].TraceStart, rows[i].TraceEnd = start, end
		rows[i].RootService, rows[i].RootName = rootService, rootName
	}
	return rows
}

// Finish writes the bloom file and meta.json, last, and returns the meta.
func (w *Writer) Finish() (Meta, error) {
	if w.done {
		return Meta{}, fmt.Errorf("block %s is finished", w.meta.ULID)
	}
	w.done = true
	if err := w.pw.Close(); err != nil {
		return Meta{}, fmt.Errorf("writing %s: %w", DataFile, err)
	}
	if err := w.bw.Flush(); err != nil {
		return Meta{}, err
	}
	st, err := w.f.Stat()
	if err != nil {
		return Meta{}, err
	}
	if err := w.f.Sync(); err != nil {
		return Meta{}, err
	}
	w.meta.Stats.DataBytes = st.Size()
	if w.meta.Stats.Traces > 0 {
		w.meta.MaxTraceID = hex.EncodeToString(w.last[:])
	}
	if w.meta.MinTime < 0 {
		w.meta.MinTime = 0
	}
	bl := newBloom(w.hashes).marshal()
	w.meta.Stats.BloomBytes = int64(len(bl))
	if err := writeFileSync(filepath.Join(w.bdir, BloomFile), bl); err != nil {
		return Meta{}, err
	}
	mb, err := json.MarshalIndent(w.meta, "", "\t")
	if err != nil {
		return Meta{}, err
	}
	if err := writeFileSync(filepath.Join(w.bdir, MetaFile), append(mb, '\n')); err != nil {
		return Meta{}, err
	}
	return w.meta, nil
}

// Close releases the writer's file; a block not finished is left
// incomplete (without meta.json) for the caller to remove.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

func writeFileSync(name string, b []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Write writes a block of every span in batches into dir/<id>/ and returns
// its meta: the spans are grouped by trace and the traces written in ID
// order. For blocks too large to hold in memory, use a Writer.
func Write(dir string, id ulid.ULID, batches []ptrace.Traces, source, ingester string) (Meta, error) {
	rows, err := collectRows(nil, batches, nil)
	if err != nil {
		return Meta{}, err
	}
	// Rows are large: sort their indexes, in (trace ID, position) order.
	order := make([]int32, len(rows))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(bytes.Compare(rows[a].TraceID[:], rows[b].TraceID[:]), cmp.Compare(a, b))
	})
	w, err := NewWriter(dir, Meta{ULID: id, Source: source, Ingester: ingester})
	if err != nil {
		return Meta{}, err
	}
	defer w.Close()
	var trace []spanRow
	for len(order) > 0 {
		n := 1
		for n < len(order) && rows[order[n]].TraceID == rows[order[0]].TraceID {
			n++
		}
		trace = trace[:0]
		for _, i := range order[:n] {
			trace = append(trace, rows[i])
		}
		if err := w.writeTrace(rows[order[0]].TraceID, trace); err != nil {
			return Meta{}, err
		}
		order = order[n:]
	}
	m, err := w.Finish()
	if err != nil {
		return Meta{}, err
	}
	return m, w.Close()
}
