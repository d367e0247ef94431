// Package logblock is the layout of log blocks in the bucket: what an
// ingester ships and the compactor rewrites, and how queriers read them.
// FORMAT.md documents the bytes; a golden test pins them.
package logblock

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/thanos-io/objstore"

	"github.com/canopy-observability/canopy/pkg/storage/layout"
	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// Version is the block format this package writes; it reads versions 1
// and 2 (FORMAT.md, "Versions").
const Version = 2

// minVersion is the oldest block format this package reads.
const minVersion = 1

// File names inside a block directory.
const (
	MetaFile    = "meta.json"
	IndexFile   = "index"
	ChunksFile  = "chunks"
	FiltersFile = "filters" // from version 2
)

// Signal is the directory of log blocks under a tenant in the bucket.
const Signal = "logs"

// Meta is a block's meta.json.
type Meta struct {
	ULID    ulid.ULID `json:"ulid"`
	Version int       `json:"version"`
	// MinTime and MaxTime bound the entries' timestamps, Unix ns, both
	// included.
	MinTime int64  `json:"minTime"`
	MaxTime int64  `json:"maxTime"`
	Stats   Stats  `json:"stats"`
	Source  string `json:"source"` // "ingester" or "compactor"
	// Ingester is the shipping ingester's instance ID (replicas' blocks
	// hold the same entries; the compactor merges them).
	Ingester string `json:"ingester,omitempty"`
	// Sources are the blocks a compacted block replaces.
	Sources []ulid.ULID `json:"sources,omitempty"`
}

// Stats count what a block holds.
type Stats struct {
	Streams  int   `json:"streams"`
	Chunks   int   `json:"chunks"`
	Entries  int64 `json:"entries"`
	RawBytes int64 `json:"rawBytes"`
	Bytes    int64 `json:"bytes"` // of the chunks file
	// FilterBytes are the bytes of the filters file (version 2).
	FilterBytes int64 `json:"filterBytes,omitempty"`
}

// Stream is one stream's chunks (logchunk encodings), for Write.
type Stream struct {
	Labels labels.Labels
	Chunks [][]byte
}

// maxChunkLen is the longest chunk a chunk reference can address.
const maxChunkLen = 1<<24 - 1

// chunkRef packs a chunk's offset in the chunks file and its length.
func chunkRef(off, n uint64) chunks.ChunkRef { return chunks.ChunkRef(off<<24 | n) }

func unpackRef(r chunks.ChunkRef) (off, n uint64) { return uint64(r) >> 24, uint64(r) & maxChunkLen }

// Write writes a block of streams into dir/<id>/ and returns its meta
// (also written). Streams may come in any order; each stream's chunks are
// written in time order, those that overlap merged into one. Streams
// without chunks are left out. For blocks too large to hold in memory, use
// a Writer.
func Write(dir string, id ulid.ULID, streams []Stream, source, ingester string) (Meta, error) {
	streams = slices.Clone(streams)
	slices.SortFunc(streams, func(a, b Stream) int { return labels.Compare(a.Labels, b.Labels) })
	w, err := NewWriter(dir, Meta{ULID: id, Source: source, Ingester: ingester})
	if err != nil {
		return Meta{}, err
	}
	defer w.Close()
	for si, s := range streams {
		if si > 0 && labels.Equal(s.Labels, streams[si-1].Labels) {
			return Meta{}, fmt.Errorf("stream %s given twice", s.Labels)
		}
		chunksOf, err := nonOverlapping(s.Chunks)
		if err != nil {
			return Meta{}, fmt.Errorf("chunks of stream %s: %w", s.Labels, err)
		}
		for _, data := range chunksOf {
			if err := w.Add(s.Labels, data); err != nil {
				return Meta{}, err
			}
		}
	}
	meta, err := w.Finish()
	if err != nil {
		return Meta{}, err
	}
	return meta, w.Close()
}

// nonOverlapping returns a stream's chunks in time order, each starting
// after the previous one ends, as the index needs: chunks that overlap
// (entries that arrived out of order) are merged into one.
func nonOverlapping(in [][]byte) ([][]byte, error) {
	type span struct {
		data       []byte
		minT, maxT int64
	}
	spans := make([]span, len(in))
	for i, data := range in {
		c, err := logchunk.Open(data)
		if err != nil {
			return nil, err
		}
		spans[i] = span{data, c.MinTime(), c.MaxTime()}
	}
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(a.minT, b.minT) })
	var out [][]byte
	for i := 0; i < len(spans); {
		j, maxT := i+1, spans[i].maxT
		for j < len(spans) && spans[j].minT <= maxT {
			maxT = max(maxT, spans[j].maxT)
			j++
		}
		if j == i+1 {
			out = append(out, spans[i].data)
			i = j
			continue
		}
		var entries []logchunk.Entry
		for _, sp := range spans[i:j] {
			c, err := logchunk.Open(sp.data)
			if err != nil {
				return nil, err
			}
			err = c.Iterate(math.MinInt64, math.MaxInt64, true, func(e logchunk.Entry) bool {
				entries = append(entries, logchunk.Entry{Timestamp: e.Timestamp, Line: string([]byte(e.Line)), Metadata: e.Metadata.Copy()})
				return true
			})
			if err != nil {
				return nil, err
			}
		}
		logchunk.SortByTime(entries)
		merged, err := logchunk.Encode(nil, entries)
		if err != nil {
			return nil, err
		}
		out = append(out, merged)
		i = j
	}
	return out, nil
}

// Dir is a block's directory in the bucket.
func Dir(tenant string, id ulid.ULID) string { return path.Join(tenant, Signal, id.String()) }

// Upload uploads the block in dir/<id>/ to the bucket; meta.json goes
// last, so a block whose meta is in the bucket is complete.
func Upload(ctx context.Context, bkt objstore.Bucket, tenant, dir string, id ulid.ULID) error {
	local := filepath.Join(dir, id.String())
	for _, name := range []string{ChunksFile, FiltersFile, IndexFile, MetaFile} {
		f, err := os.Open(filepath.Join(local, name))
		if name == FiltersFile && errors.Is(err, os.ErrNotExist) {
			continue // a version 1 block
		}
		if err != nil {
			return err
		}
		err = bkt.Upload(ctx, path.Join(Dir(tenant, id), name), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("uploading %s of log block %s: %w", name, id, err)
		}
	}
	return nil
}

// ListBlocks returns the metas of a tenant's complete log blocks that
// are not marked for deletion: those a query reads (layout.ListLiveBlocks).
func ListBlocks(ctx context.Context, bkt objstore.BucketReader, tenant string) ([]Meta, error) {
	return layout.ListLiveBlocks(ctx, bkt, tenant, Signal, ReadMeta)
}

var errNoMeta = layout.ErrNoMeta

// ReadMeta reads a block's meta.json.
func ReadMeta(ctx context.Context, bkt objstore.BucketReader, tenant string, id ulid.ULID) (Meta, error) {
	r, err := bkt.Get(ctx, path.Join(Dir(tenant, id), MetaFile))
	if bkt.IsObjNotFoundErr(err) {
		return Meta{}, errNoMeta
	}
	if err != nil {
		return Meta{}, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("meta.json of log block %s: %w", id, err)
	}
	if m.Version < minVersion || m.Version > Version {
		return Meta{}, fmt.Errorf("log block %s has format version %d; this Canopy reads %d to %d", id, m.Version, minVersion, Version)
	}
	return m, nil
}

// readAll reads a whole object.
func readAll(ctx context.Context, bkt objstore.BucketReader, name string) ([]byte, error) {
	r, err := bkt.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(r)
	return buf.Bytes(), err
}
