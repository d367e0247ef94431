package lokiapi

import (
	"context"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// storeSource marks the Backend's errors as the store's (500), apart from
// the engine's errors about the query (400).
type storeSource struct{ src logql.Source }

func (s storeSource) Select(ctx context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	it, err := s.src.Select(ctx, p)
	if err != nil {
		return nil, &storeError{err: err}
	}
	return storeIterator{it}, nil
}

type storeIterator struct{ logql.StreamIterator }

func (it storeIterator) Skipped() (lines, bytes int64) { return logql.Skipped(it.StreamIterator) }

func (it storeIterator) Err() error {
	if err := it.StreamIterator.Err(); err != nil {
		return &storeError{err: err}
	}
	return nil
}

// source returns what the engine reads for a query: the Backend, with
// detected_level discovered when the query names it.
func (a *API) source(query string) logql.Source {
	var src logql.Source = storeSource{a.b}
	if a.cfg.DiscoverLogLevels && strings.Contains(query, detectedLevelLabel) {
		src = levelSource{src}
	}
	return src
}

// Log levels. Loki adds detected_level as structured metadata at ingestion
// when discover_log_levels is on; Canopy's ingesters store entries as
// pushed, so the API derives it at query time, for the queries that name
// it (Grafana's log volume `sum by (level, detected_level)`, Drilldown's
// level filters and breakdowns). An entry that already has the label, as
// metadata or in its stream, keeps it.
const (
	detectedLevelLabel = "detected_level"
	levelUnknown       = "unknown"
)

// levelFields are the label and field names a level is read from, in
// order of preference.
var levelFields = []string{"level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl"}

// levelNames normalises level spellings.
var levelNames = map[string]string{
	"trace": "trace", "trc": "trace",
	"debug": "debug", "dbg": "debug",
	"info": "info", "inf": "info", "information": "info", "informational": "info", "notice": "info",
	"warn": "warn", "warning": "warn", "wrn": "warn",
	"error": "error", "err": "error", "eror": "error",
	"critical": "critical", "crit": "critical",
	"fatal": "fatal", "panic": "fatal", "emerg": "fatal", "emergency": "fatal", "alert": "fatal",
}

// keywordLevels are the words a free-text line's level is found by.
var keywordLevels = map[string]string{
	"trace": "trace", "debug": "debug", "info": "info", "warn": "warn", "warning": "warn",
	"error": "error", "critical": "critical", "fatal": "fatal", "panic": "fatal",
}

func normalizeLevel(v string) string {
	if l, ok := levelNames[strings.ToLower(strings.TrimSpace(v))]; ok {
		return l
	}
	return levelUnknown
}

// detectLevel returns an entry's level: from a level field of its
// metadata or stream, from a level field of a JSON or logfmt line, or
// from the first level word of the line; unknown otherwise.
func detectLevel(stream, metadata labels.Labels, line string) string {
	for _, ls := range []labels.Labels{metadata, stream} {
		for _, f := range levelFields {
			if v := ls.Get(f); v != "" {
				return normalizeLevel(v)
			}
		}
	}
	if v, ok := levelField(line); ok {
		return normalizeLevel(v)
	}
	return levelKeyword(line)
}

// levelField finds a top-level level field of a JSON line or a level
// pair of a logfmt line.
func levelField(line string) (string, bool) {
	trimmed := strings.TrimLeft(line, " \t")
	if strings.HasPrefix(trimmed, "{") {
		found := false
		for _, f := range levelFields {
			if strings.Contains(line, `"`+f+`"`) {
				found = true
				break
			}
		}
		if !found {
			return "", false
		}
		var best string
		bestRank := len(levelFields)
		_ = logql.ParseJSONLine(line, func(key, value string) {
			for rank, f := range levelFields[:bestRank] {
				if key == f {
					best, bestRank = value, rank
					return
				}
			}
		})
		return best, bestRank < len(levelFields)
	}
	for _, f := range levelFields {
		for i := 0; ; {
			j := strings.Index(line[i:], f+"=")
			if j < 0 {
				break
			}
			j += i
			if j == 0 || line[j-1] == ' ' || line[j-1] == '\t' {
				v := line[j+len(f)+1:]
				if strings.HasPrefix(v, `"`) {
					if end := strings.IndexByte(v[1:], '"'); end >= 0 {
						return v[1 : end+1], true
					}
					return "", false
				}
				if end := strings.IndexAny(v, " \t"); end >= 0 {
					v = v[:end]
				}
				return v, true
			}
			i = j + 1
		}
	}
	return "", false
}

// levelKeyword returns the level of the first level word in the first
// kilobyte of a line, or unknown.
func levelKeyword(line string) string {
	if len(line) > 1024 {
		line = line[:1024]
	}
	for i := 0; i < len(line); {
		for i < len(line) && !isLetter(line[i]) {
			i++
		}
		j := i
		for j < len(line) && isLetter(line[j]) {
			j++
		}
		if n := j - i; n >= 3 && n <= 8 {
			if l, ok := keywordLevels[strings.ToLower(line[i:j])]; ok {
				return l
			}
		}
		i = j
	}
	return levelUnknown
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// levelSource adds detected_level to the structured metadata of entries
// that have none.
type levelSource struct{ src logql.Source }

func (s levelSource) Select(ctx context.Context, p logql.SelectParams) (logql.StreamIterator, error) {
	it, err := s.src.Select(ctx, p)
	if err != nil {
		return nil, err
	}
	return &levelIterator{StreamIterator: it, only: map[string]labels.Labels{}}, nil
}

type levelIterator struct {
	logql.StreamIterator
	buf  []logql.Entry
	sb   labels.ScratchBuilder
	only map[string]labels.Labels // {detected_level="x"}, shared by entries without metadata
}

func (it *levelIterator) Skipped() (lines, bytes int64) { return logql.Skipped(it.StreamIterator) }

func (it *levelIterator) Entries() []logql.Entry {
	es := it.StreamIterator.Entries()
	stream := it.Labels()
	if stream.Has(detectedLevelLabel) {
		return es
	}
	it.buf = it.buf[:0]
	for _, e := range es {
		if e.Metadata.Has(detectedLevelLabel) {
			it.buf = append(it.buf, e)
			continue
		}
		lvl := detectLevel(stream, e.Metadata, e.Line)
		if e.Metadata.IsEmpty() {
			ls, ok := it.only[lvl]
			if !ok {
				ls = labels.FromStrings(detectedLevelLabel, lvl)
				it.only[lvl] = ls
			}
			e.Metadata = ls
		} else {
			it.sb.Reset()
			e.Metadata.Range(func(l labels.Label) { it.sb.Add(l.Name, l.Value) })
			it.sb.Add(detectedLevelLabel, lvl)
			it.sb.Sort()
			e.Metadata = it.sb.Labels()
		}
		it.buf = append(it.buf, e)
	}
	return it.buf
}
