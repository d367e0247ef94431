package logblock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// spillFile holds the chunks' filters while a Writer writes the chunks;
// Finish regroups them into the filters file and removes it.
const spillFile = "filters.spill"

// Writer writes a block into a local directory one chunk at a time, so
// that a block of any size is written holding only its streams' labels and
// chunk references in memory: the chunks go to the chunks file as they
// come, their filters to a spill file that Finish lays out row by row.
// Streams come in strictly increasing label order, and a stream's chunks
// in time order, each starting after the one before it ends. A Writer is
// not safe for concurrent use; Close releases it (after Finish too).
type Writer struct {
	bdir    string
	meta    Meta
	cf      *os.File
	cw      *bufio.Writer
	sf      *os.File
	sw      *bufio.Writer
	spilled int64
	off     uint64
	filters []chunkFilter
	streams []writerStream
	symbols map[string]struct{}
	done    bool
}

type writerStream struct {
	labels labels.Labels
	metas  []chunks.Meta
}

// NewWriter starts block m.ULID in dir/<ULID>/. Of m, it keeps ULID,
// Source, Ingester and Sources; Finish fills in the rest.
func NewWriter(dir string, m Meta) (*Writer, error) {
	bdir := filepath.Join(dir, m.ULID.String())
	if err := os.MkdirAll(bdir, 0o750); err != nil {
		return nil, err
	}
	w := &Writer{
		bdir:    bdir,
		meta:    Meta{ULID: m.ULID, Version: Version, Source: m.Source, Ingester: m.Ingester, Sources: m.Sources, MinTime: 1<<63 - 1, MaxTime: -1 << 63},
		symbols: map[string]struct{}{},
	}
	var err error
	if w.cf, err = os.Create(filepath.Join(bdir, ChunksFile)); err != nil {
		return nil, err
	}
	if w.sf, err = os.Create(filepath.Join(bdir, spillFile)); err != nil {
		w.cf.Close()
		return nil, err
	}
	w.cw, w.sw = bufio.NewWriterSize(w.cf, 1<<20), bufio.NewWriterSize(w.sf, 1<<20)
	return w, nil
}

// Add appends a chunk (a logchunk encoding, with its filter) of stream ls.
// ls is the stream of the previous call or one after it in label order; a
// stream's chunk starts after its previous chunk ends.
func (w *Writer) Add(ls labels.Labels, data []byte) error {
	if w.done {
		return errors.New("log block writer: Add after Finish")
	}
	c, err := logchunk.Open(data)
	if err != nil {
		return fmt.Errorf("chunk of stream %s: %w", ls, err)
	}
	var cur *writerStream
	if n := len(w.streams); n > 0 {
		switch cmp := labels.Compare(w.streams[n-1].labels, ls); {
		case cmp == 0:
			cur = &w.streams[n-1]
			if last := cur.metas[len(cur.metas)-1]; c.MinTime() <= last.MaxTime {
				return fmt.Errorf("chunk of stream %s starts at %d, not after the previous one's end %d", ls, c.MinTime(), last.MaxTime)
			}
		case cmp > 0:
			return fmt.Errorf("stream %s added after %s: streams must come in label order", ls, w.streams[n-1].labels)
		}
	}
	if cur == nil {
		ls.Range(func(l labels.Label) {
			w.symbols[l.Name] = struct{}{}
			w.symbols[l.Value] = struct{}{}
		})
		w.streams = append(w.streams, writerStream{labels: ls.Copy()})
		cur = &w.streams[len(w.streams)-1]
	}
	filter, stripped, err := logchunk.SplitFilter(data)
	if err != nil {
		return fmt.Errorf("chunk of stream %s: %w", ls, err)
	}
	if len(stripped) > maxChunkLen || w.off>>40 != 0 {
		return fmt.Errorf("chunk of stream %s: %d bytes at offset %d is beyond the format's limits", ls, len(stripped), w.off)
	}
	if len(filter) > 0 {
		w.filters = append(w.filters, chunkFilter{off: w.off, size: len(filter), at: w.spilled})
		if _, err := w.sw.Write(filter); err != nil {
			return err
		}
		w.spilled += int64(len(filter))
	}
	if _, err := w.cw.Write(stripped); err != nil {
		return err
	}
	cur.metas = append(cur.metas, chunks.Meta{Ref: chunkRef(w.off, uint64(len(stripped))), MinTime: c.MinTime(), MaxTime: c.MaxTime()})
	w.off += uint64(len(stripped))
	w.meta.MinTime = min(w.meta.MinTime, c.MinTime())
	w.meta.MaxTime = max(w.meta.MaxTime, c.MaxTime())
	w.meta.Stats.Chunks++
	w.meta.Stats.Entries += int64(c.Entries())
	w.meta.Stats.RawBytes += c.RawBytes()
	return nil
}

// Chunks is how many chunks have been added.
func (w *Writer) Chunks() int { return w.meta.Stats.Chunks }

// Finish writes the filters, the index and, last, meta.json, and returns
// the meta. A block needs at least one chunk.
func (w *Writer) Finish() (Meta, error) {
	if w.done {
		return Meta{}, errors.New("log block writer: Finish called twice")
	}
	w.done = true
	if w.meta.Stats.Chunks == 0 {
		return Meta{}, errors.New("a block needs at least one chunk")
	}
	for _, f := range []struct {
		w *bufio.Writer
		f *os.File
	}{{w.cw, w.cf}, {w.sw, w.sf}} {
		if err := f.w.Flush(); err != nil {
			return Meta{}, err
		}
	}
	if err := w.cf.Sync(); err != nil {
		return Meta{}, err
	}
	w.meta.Stats.Streams, w.meta.Stats.Bytes = len(w.streams), int64(w.off)
	if err := w.writeFilters(); err != nil {
		return Meta{}, err
	}
	if err := w.writeIndex(); err != nil {
		return Meta{}, err
	}
	b, err := json.MarshalIndent(w.meta, "", "\t")
	if err != nil {
		return Meta{}, err
	}
	return w.meta, os.WriteFile(filepath.Join(w.bdir, MetaFile), b, 0o640)
}

func (w *Writer) writeFilters() error {
	ff, err := os.Create(filepath.Join(w.bdir, FiltersFile))
	if err != nil {
		return err
	}
	defer ff.Close()
	bw := bufio.NewWriterSize(ff, 1<<20)
	if w.meta.Stats.FilterBytes, err = writeFilters(bw, w.filters, w.sf); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := ff.Sync(); err != nil {
		return err
	}
	if err := w.sf.Close(); err != nil {
		return err
	}
	w.sf = nil
	return os.Remove(filepath.Join(w.bdir, spillFile))
}

func (w *Writer) writeIndex() error {
	iw, err := index.NewWriter(context.Background(), filepath.Join(w.bdir, IndexFile))
	if err != nil {
		return err
	}
	syms := make([]string, 0, len(w.symbols))
	for s := range w.symbols {
		syms = append(syms, s)
	}
	slices.Sort(syms)
	for _, s := range syms {
		if err := iw.AddSymbol(s); err != nil {
			iw.Close()
			return err
		}
	}
	for si, s := range w.streams {
		if err := iw.AddSeries(storage.SeriesRef(si+1), s.labels, s.metas...); err != nil {
			iw.Close()
			return fmt.Errorf("indexing stream %s: %w", s.labels, err)
		}
	}
	return iw.Close()
}

// Close releases the writer's files; the block's directory stays.
func (w *Writer) Close() error {
	var errs []error
	for _, f := range []*os.File{w.cf, w.sf} {
		if f != nil {
			if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	w.cf, w.sf = nil, nil
	return errors.Join(errs...)
}
