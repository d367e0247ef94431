package layout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

// Marker file names. A marker lives in the block's directory and, so that
// one listing finds them all, as markers/<ULID>-<name> too.
const (
	DeletionMarkFilename  = "deletion-mark.json"
	NoCompactMarkFilename = "no-compact-mark.json"
)

// MarkVersion is the marker format version written by this code.
const MarkVersion = 1

// Mark is a deletion or no-compact marker.
type Mark struct {
	ID ulid.ULID `json:"id"`
	// Time is when the mark was placed, Unix seconds.
	Time   int64  `json:"time"`
	Reason string `json:"reason"`
	// Version of the marker format, MarkVersion.
	Version int `json:"version"`
}

func globalMarkerName(id ulid.ULID, kind string) string {
	return path.Join(MarkersDirname, id.String()+"-"+kind)
}

// WriteMark places a marker of kind (DeletionMarkFilename or
// NoCompactMarkFilename) on block id. Marking again is a no-op.
func WriteMark(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, kind, reason string, now time.Time) error {
	if ok, err := bkt.Exists(ctx, globalMarkerName(id, kind)); err != nil {
		return fmt.Errorf("checking %s of block %s: %w", kind, id, err)
	} else if ok {
		return nil
	}
	b, err := json.Marshal(Mark{ID: id, Time: now.Unix(), Reason: reason, Version: MarkVersion})
	if err != nil {
		return err
	}
	if err := bkt.Upload(ctx, path.Join(id.String(), kind), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("writing %s of block %s: %w", kind, id, err)
	}
	if err := bkt.Upload(ctx, globalMarkerName(id, kind), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("writing global %s of block %s: %w", kind, id, err)
	}
	return nil
}

// ListMarks lists the markers of kind in a tenant bucket, from markers/.
// Markers never change once written, so those in known are taken from it
// instead of being read again.
func ListMarks(ctx context.Context, bkt objstore.Bucket, kind string, known []Mark) (map[ulid.ULID]Mark, error) {
	have := make(map[ulid.ULID]Mark, len(known))
	for _, m := range known {
		have[m.ID] = m
	}
	out := map[ulid.ULID]Mark{}
	var names []string
	err := bkt.Iter(ctx, MarkersDirname, func(name string) error {
		idPart, ok := strings.CutSuffix(path.Base(name), "-"+kind)
		if !ok {
			return nil
		}
		if id, err := ulid.Parse(idPart); err == nil {
			if m, ok := have[id]; ok {
				out[id] = m
				return nil
			}
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s markers: %w", kind, err)
	}
	for _, name := range names {
		m, err := readMark(ctx, bkt, name)
		if bkt.IsObjNotFoundErr(err) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out[m.ID] = m
	}
	return out, nil
}

func readMark(ctx context.Context, bkt objstore.Bucket, name string) (Mark, error) {
	r, err := bkt.Get(ctx, name)
	if err != nil {
		return Mark{}, err
	}
	defer r.Close() //nolint:errcheck // read-only
	b, err := io.ReadAll(r)
	if err != nil {
		return Mark{}, fmt.Errorf("reading %s: %w", name, err)
	}
	m, err := decodeMark(b)
	if err != nil {
		return Mark{}, fmt.Errorf("parsing %s: %w", name, err)
	}
	return m, nil
}

// decodeMark parses a marker's JSON.
func decodeMark(b []byte) (Mark, error) {
	var m Mark
	if err := json.Unmarshal(b, &m); err != nil {
		return Mark{}, err
	}
	if m.Version != MarkVersion {
		return Mark{}, fmt.Errorf("marker version %d not supported (want %d)", m.Version, MarkVersion)
	}
	return m, nil
}

// MarkedBlocks returns the blocks of a signal prefix (dir, such as
// "<tenant>/logs"; "" for a TenantBucket) that have a marker of kind,
// from the names in markers/ alone: it reads no marker, so it costs one
// listing.
func MarkedBlocks(ctx context.Context, bkt objstore.BucketReader, dir, kind string) (map[ulid.ULID]struct{}, error) {
	out := map[ulid.ULID]struct{}{}
	err := bkt.Iter(ctx, path.Join(dir, MarkersDirname)+"/", func(name string) error {
		idPart, ok := strings.CutSuffix(path.Base(name), "-"+kind)
		if !ok {
			return nil
		}
		if id, err := ulid.Parse(idPart); err == nil {
			out[id] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s markers: %w", kind, err)
	}
	return out, nil
}
