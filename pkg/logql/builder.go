package logql

import (
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// The labels a pipeline sets when a stage fails on an entry.
const (
	ErrorLabel        = "__error__"
	ErrorDetailsLabel = "__error_details__"

	errJSON          = "JSONParserErr"
	errLogfmt        = "LogfmtParserErr"
	errLabelFilter   = "LabelFilterErr"
	errTemplate      = "TemplateFormatErr"
	errSample        = "SampleExtractionErr"
	errUnpack        = "UnpackParserErr"
	extractedSuffix  = "_extracted"
	categoryStream   = Category(0)
	categoryMetadata = Category(1)
	categoryParsed   = Category(2)
)

// Category says where a label of a result entry comes from: the stream's
// index labels, the entry's structured metadata, or the pipeline (parsers,
// label_format, errors). Loki's categorize-labels encoding splits them.
type Category uint8

// entryLabel is a label an entry carries on top of its stream's.
type entryLabel struct {
	name, value string
	cat         Category
}

// builder holds the labels of the entry a pipeline is processing: the
// stream's labels (shared by every entry of the stream and never copied),
// what the entry adds or overrides, and what stages removed. It is reset
// for every entry and reused; it is not safe for concurrent use.
type builder struct {
	stream  labels.Labels
	extra   []entryLabel // unique names, in the order set
	deleted []string     // stream label names removed by a stage
	err     string
	details string
	// changed is false while the entry's labels are its stream's alone, so
	// that the common case needs no per-entry label work.
	changed bool
	// need, when not nil, are the only labels the parsers json and logfmt
	// (without extractions) set (Pipeline.OnlyLabels).
	need []string
	// wanted are the keys the parsers set for the current stream
	// (setWanted).
	wanted []string
}

func (b *builder) resetStream(ls labels.Labels) {
	b.stream = ls
	if b.need != nil {
		b.setWanted()
	}
}

// resetEntry starts an entry with its structured metadata.
func (b *builder) resetEntry(metadata labels.Labels) {
	b.extra = b.extra[:0]
	b.deleted = b.deleted[:0]
	b.err, b.details = "", ""
	b.changed = false
	metadata.Range(func(l labels.Label) {
		b.set(categoryMetadata, l.Name, l.Value)
	})
}

func (b *builder) streamHas(name string) bool {
	return b.stream.Has(name) && !slices.Contains(b.deleted, name)
}

// get returns a label's value and whether the entry has it.
func (b *builder) get(name string) (string, bool) {
	switch name {
	case ErrorLabel:
		return b.err, b.err != ""
	case ErrorDetailsLabel:
		return b.details, b.details != ""
	}
	for i := range b.extra {
		if b.extra[i].name == name {
			return b.extra[i].value, true
		}
	}
	if len(b.deleted) > 0 && slices.Contains(b.deleted, name) {
		return "", false
	}
	v := b.stream.Get(name)
	return v, v != "" || b.stream.Has(name)
}

// set gives the entry a label, replacing one of the same name.
func (b *builder) set(cat Category, name, value string) {
	switch name {
	case ErrorLabel:
		b.err, b.changed = value, true
		return
	case ErrorDetailsLabel:
		b.details, b.changed = value, true
		return
	}
	b.changed = true
	for i := range b.extra {
		if b.extra[i].name == name {
			b.extra[i].value, b.extra[i].cat = value, cat
			return
		}
	}
	if i := slices.Index(b.deleted, name); i >= 0 {
		b.deleted = slices.Delete(b.deleted, i, i+1)
	}
	b.extra = append(b.extra, entryLabel{name: name, value: value, cat: cat})
}

// setParsed sets a label a parser extracted: a name the stream already has
// gets the suffix _extracted, as in Loki.
func (b *builder) setParsed(name, value string) {
	if b.streamHas(name) {
		name += extractedSuffix
	}
	b.set(categoryParsed, name, value)
}

// wants says whether a parser should set the label key (a sanitised
// name): always without need, else when its name as set (with the suffix
// _extracted when the stream has it) is needed.
func (b *builder) wants(key []byte) bool {
	if b.need == nil {
		return true
	}
	for _, w := range b.wanted {
		if w == string(key) {
			return true
		}
	}
	return false
}

// wantsName is wants for a key held as a string.
func (b *builder) wantsName(key string) bool {
	if b.need == nil {
		return true
	}
	return slices.Contains(b.wanted, key)
}

// setWanted works out, for a new stream, the keys wants accepts: a needed
// name the stream does not have, and a name the stream has whose
// name_extracted is needed.
func (b *builder) setWanted() {
	b.wanted = b.wanted[:0]
	for _, n := range b.need {
		if !b.stream.Has(n) {
			b.wanted = append(b.wanted, n)
		}
		if base, ok := strings.CutSuffix(n, extractedSuffix); ok && b.stream.Has(base) {
			b.wanted = append(b.wanted, base)
		}
	}
}

// setError marks the entry as failed by a stage; the first error stays.
func (b *builder) setError(kind, details string) {
	if b.err != "" {
		return
	}
	b.err, b.details, b.changed = kind, details, true
}

// del removes a label from the entry.
func (b *builder) del(name string) {
	switch name {
	case ErrorLabel:
		b.err = ""
		b.changed = true
		return
	case ErrorDetailsLabel:
		b.details = ""
		b.changed = true
		return
	}
	b.changed = true
	for i := range b.extra {
		if b.extra[i].name == name {
			b.extra = slices.Delete(b.extra, i, i+1)
			break
		}
	}
	if b.stream.Has(name) && !slices.Contains(b.deleted, name) {
		b.deleted = append(b.deleted, name)
	}
}

// each calls fn for every label of the entry (stream labels not removed or
// overridden, then the entry's own, then the error labels), unsorted.
func (b *builder) each(fn func(name, value string, cat Category)) {
	b.stream.Range(func(l labels.Label) {
		if b.changed && (slices.Contains(b.deleted, l.Name) || b.hasExtra(l.Name)) {
			return
		}
		fn(l.Name, l.Value, categoryStream)
	})
	for _, l := range b.extra {
		fn(l.name, l.value, l.cat)
	}
	if b.err != "" {
		fn(ErrorLabel, b.err, categoryParsed)
	}
	if b.details != "" {
		fn(ErrorDetailsLabel, b.details, categoryParsed)
	}
}

func (b *builder) hasExtra(name string) bool {
	for i := range b.extra {
		if b.extra[i].name == name {
			return true
		}
	}
	return false
}

// labels returns the entry's whole label set, sorted; the stream's own
// labels when no stage changed them.
func (b *builder) labels(sb *labels.ScratchBuilder) labels.Labels {
	if !b.changed {
		return b.stream
	}
	sb.Reset()
	b.each(func(name, value string, _ Category) { sb.Add(name, value) })
	sb.Sort()
	return sb.Labels()
}

// categorized returns the entry's labels split by category, each sorted.
func (b *builder) categorized(sb *labels.ScratchBuilder) (stream, metadata, parsed labels.Labels) {
	if !b.changed {
		return b.stream, labels.EmptyLabels(), labels.EmptyLabels()
	}
	for cat := categoryStream; cat <= categoryParsed; cat++ {
		sb.Reset()
		b.each(func(name, value string, c Category) {
			if c == cat {
				sb.Add(name, value)
			}
		})
		sb.Sort()
		switch cat {
		case categoryStream:
			stream = sb.Labels()
		case categoryMetadata:
			metadata = sb.Labels()
		default:
			parsed = sb.Labels()
		}
	}
	return stream, metadata, parsed
}

// keepOnly removes every label that keep does not name; the error labels
// stay unless keep names other labels only and they are unset.
func (b *builder) keepOnly(keep func(name, value string) bool) {
	var drop []string
	b.each(func(name, value string, _ Category) {
		if !keep(name, value) {
			drop = append(drop, name)
		}
	})
	for _, n := range drop {
		b.del(n)
	}
}
