// Package unitwal is the write-ahead log machinery every ingester unit
// shares: Prometheus's segmented write log (tsdb/wlog) holding records of
// the unit's own encoding, checkpoints that hold what the unit had when a
// segment began, and a replay that reads the newest complete checkpoint and
// then the segments after it, cutting a torn record off the end. A unit
// documents its records beside its code (e.g. ../logs/WAL.md).
package unitwal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
)

const (
	// SegmentSize is the size of WAL and checkpoint segments.
	SegmentSize   = 32 << 20
	checkpointPfx = "checkpoint."
)

// Checkpoints lists the complete checkpoints in dir, oldest first.
func Checkpoints(dir string) ([]int, error) {
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

// Replay opens the WAL in dir, calling apply for every record of the
// newest checkpoint and of the segments after it, and returns the WAL open
// for writing. A torn record at the end (a process killed while writing
// it; it was never acknowledged) is cut off. The record apply gets is only
// valid during the call.
func Replay(dir string, logger *slog.Logger, reg prometheus.Registerer, apply func(rec []byte) error) (*wlog.WL, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cps, err := Checkpoints(dir)
	if err != nil {
		return nil, err
	}
	first := -1
	read := func(rd *wlog.Reader) error {
		for rd.Next() {
			if err := apply(rd.Record()); err != nil {
				return fmt.Errorf("WAL record at segment %d offset %d: %w", rd.Segment(), rd.Offset(), err)
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
	w, err := wlog.NewSize(logger, reg, dir, SegmentSize, compression.Snappy)
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

// WriteCheckpoint writes records into checkpoint seg of dir (atomically:
// a temporary directory renamed once complete), then removes older
// checkpoints and the segments before seg.
func WriteCheckpoint(w *wlog.WL, dir string, seg int, records func(emit func([]byte) error) error) error {
	final := checkpointDir(dir, seg)
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	cp, err := wlog.NewSize(nil, nil, tmp, SegmentSize, compression.Snappy)
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
	cps, err := Checkpoints(dir)
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
