package logs

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/storage/logchunk"
)

// stream is one log stream of a tenant: its open chunk (entries in arrival
// order, not yet compressed) and its cut chunks, kept until shipped and
// then for -ingester.logs.retain-shipped-for. Safe for concurrent use.
type stream struct {
	labels labels.Labels
	hash   uint64

	mu        sync.Mutex
	head      []logchunk.Entry
	arena     lineArena // the head's lines
	headBytes int
	headFirst time.Time // when the open chunk got its first entry
	headMin   int64
	headMax   int64
	chunks    []*memChunk
	// lastTS and lastLine are the newest accepted entry: an exact repeat of
	// it (an agent's retry) is ignored.
	lastTS   int64
	lastLine string
	lastPush time.Time
	// lastCount is how many entries the last cut chunk held: the next
	// open chunk starts with room for as many.
	lastCount int
	// removed is set when the tenant dropped the stream (empty); an append
	// to it fails so that the push looks the stream up again.
	removed bool
}

// memChunk is a cut chunk.
type memChunk struct {
	data     []byte
	chunk    *logchunk.Chunk
	shipped  time.Time // zero until in the bucket
	minT     int64
	maxT     int64
	rawBytes int64
}

// Why an entry is rejected.
const (
	reasonTooFarBehind = "out_of_order"
	reasonStreamLimit  = "stream_limit"
)

// appendResult tells a push what happened to its entries of one stream.
type appendResult struct {
	removed    bool             // the stream was dropped: nothing appended
	accepted   []logchunk.Entry // what was appended, for the WAL
	duplicates int
	tooOld     int
	firstError string
}

// append adds entries, rejecting those further behind the stream's newest
// than window (0 accepts any order; replay passes 0).
func (s *stream) append(entries []logchunk.Entry, window time.Duration, now time.Time) appendResult {
	var res appendResult
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		res.removed = true
		return res
	}
	for _, e := range entries {
		if e.Timestamp == s.lastTS && e.Line == s.lastLine && (len(s.head) > 0 || len(s.chunks) > 0) {
			res.duplicates++
			continue
		}
		if window > 0 && s.lastTS-e.Timestamp > window.Nanoseconds() {
			res.tooOld++
			if res.firstError == "" {
				res.firstError = fmt.Sprintf("entry at %s of stream %s is %s behind the stream's newest entry, more than the out-of-order window of %s (-ingester.logs.out-of-order-window, logs_out_of_order_window)",
					time.Unix(0, e.Timestamp).UTC().Format(time.RFC3339Nano), s.labels, time.Duration(s.lastTS-e.Timestamp), window)
			}
			continue
		}
		if len(s.head) == 0 {
			s.headFirst, s.headMin, s.headMax = now, e.Timestamp, e.Timestamp
			if s.head == nil && s.lastCount > 0 {
				s.head = make([]logchunk.Entry, 0, s.lastCount+s.lastCount/8)
			}
		}
		e.Line = s.arena.copy(e.Line)
		s.headMin = min(s.headMin, e.Timestamp)
		s.headMax = max(s.headMax, e.Timestamp)
		s.head = append(s.head, e)
		s.headBytes += len(e.Line)
		if e.Timestamp >= s.lastTS {
			s.lastTS, s.lastLine = e.Timestamp, e.Line
		}
		res.accepted = append(res.accepted, e)
	}
	if len(res.accepted) > 0 {
		s.lastPush = now
	}
	return res
}

// cutIfDue cuts the open chunk when it is big enough, too old or idle
// (force cuts any open chunk), and returns the bytes of the chunk cut.
func (s *stream) cutIfDue(cfg Config, now time.Time, force bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.head) == 0 {
		return 0, nil
	}
	if !force && s.headBytes < cfg.ChunkTargetSize && now.Sub(s.headFirst) < cfg.MaxChunkAge && now.Sub(s.lastPush) < cfg.ChunkIdlePeriod {
		return 0, nil
	}
	return s.cutLocked()
}

// cutLocked compresses the open chunk. The head's array is never changed
// in place (a checkpoint may be reading it): the cut sorts a copy.
func (s *stream) cutLocked() (int, error) {
	sorted := slices.Clone(s.head)
	logchunk.SortByTime(sorted)
	data, err := logchunk.Encode(nil, sorted)
	if err != nil {
		return 0, fmt.Errorf("cutting a chunk of stream %s: %w", s.labels, err)
	}
	data = bytes.Clone(data) // exactly its size: it stays in memory until shipped

	c, err := logchunk.Open(data)
	if err != nil {
		return 0, fmt.Errorf("opening the chunk just cut of stream %s: %w", s.labels, err)
	}
	s.chunks = append(s.chunks, &memChunk{data: data, chunk: c, minT: c.MinTime(), maxT: c.MaxTime(), rawBytes: c.RawBytes()})
	s.lastCount = len(s.head)
	s.head, s.headBytes = nil, 0
	s.arena = lineArena{}
	return len(data), nil
}

// addChunk adds a chunk replayed from a checkpoint.
func (s *stream) addChunk(data []byte) error {
	c, err := logchunk.Open(data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunks = append(s.chunks, &memChunk{data: data, chunk: c, minT: c.MinTime(), maxT: c.MaxTime(), rawBytes: c.RawBytes()})
	if c.MaxTime() > s.lastTS {
		s.lastTS = c.MaxTime()
	}
	return nil
}

// dropShipped forgets chunks shipped more than retain ago, and says
// whether the stream is now empty.
func (s *stream) dropShipped(now time.Time, retain time.Duration) (empty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.chunks[:0]
	for _, c := range s.chunks {
		if c.shipped.IsZero() || now.Sub(c.shipped) < retain {
			kept = append(kept, c)
		}
	}
	clear(s.chunks[len(kept):])
	s.chunks = kept
	return len(s.chunks) == 0 && len(s.head) == 0
}

// snapshot returns the chunks not yet shipped and the open entries (the
// head's array is only ever appended to, so the slice stays valid), with
// the chunks' time ranges.
func (s *stream) snapshot(unshippedOnly bool) ([]*memChunk, []logchunk.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*memChunk
	for _, c := range s.chunks {
		if !unshippedOnly || c.shipped.IsZero() {
			cs = append(cs, c)
		}
	}
	return cs, s.head[:len(s.head):len(s.head)]
}

// arenaBlock is the size of the blocks a stream's open chunk keeps its
// lines in.
const arenaBlock = 64 << 10

// lineArena copies the lines of an open chunk into blocks of arenaBlock
// bytes: a push's body is not kept alive by the lines taken from it (a body
// holds lines of many streams, each cut at its own time), and a line costs
// no allocation of its own. Blocks are never written again where a line
// was copied, so the strings stay valid while anything holds them.
type lineArena struct {
	block []byte
}

func (a *lineArena) copy(s string) string {
	if len(s) == 0 {
		return ""
	}
	if len(s) > arenaBlock/8 {
		return strings.Clone(s)
	}
	if cap(a.block)-len(a.block) < len(s) {
		a.block = make([]byte, 0, arenaBlock)
	}
	off := len(a.block)
	a.block = append(a.block, s...)
	return unsafe.String(&a.block[off], len(s))
}
