package logql

import (
	"fmt"
	"slices"
	"strings"

	"github.com/grafana/regexp"
	"github.com/prometheus/prometheus/model/labels"
)

// Pipeline is a compiled log pipeline: the stages after a stream selector.
// Compile once per query; each goroutine processes entries through its own
// Processor.
type Pipeline struct {
	stages []stageFunc
	// lineOnly is true when every stage is a line filter: the entry's labels
	// are its stream's and its line is unchanged.
	lineOnly bool
	// keepsLine is true when no stage changes the line.
	keepsLine bool
	filters   []LineMatcher
	// hintable is true when no stage reads or renames labels it does not
	// name (no line_format, label_format, drop or keep).
	hintable bool
	// named are the labels the label filters read.
	named []string
	need  []string
}

// stageFunc processes one entry: it may change the line and the builder's
// labels, and returns false to drop the entry.
type stageFunc func(p *Processor, line string) (string, bool)

// CompilePipeline compiles the stages of a log query.
func CompilePipeline(stages []Stage) (*Pipeline, error) {
	pl := &Pipeline{lineOnly: true, keepsLine: true, hintable: true}
	for _, s := range stages {
		switch st := s.(type) {
		case *LineFormat, *Decolorize:
			pl.keepsLine = false
		case *Parser:
			if st.Kind == "unpack" {
				pl.keepsLine = false
			}
		case *LabelFilterStage:
			pl.named = filterLabels(st.Filter, pl.named)
		}
		switch s.(type) {
		case *LineFormat, *LabelFormat, *DropKeep:
			pl.hintable = false
		}
		if lf, ok := s.(*LineFilter); ok {
			m, err := lf.Compile()
			if err != nil {
				return nil, err
			}
			pl.filters = append(pl.filters, m)
			pl.stages = append(pl.stages, func(_ *Processor, line string) (string, bool) { return line, m(line) })
			continue
		}
		pl.lineOnly = false
		f, err := compileStage(s)
		if err != nil {
			return nil, err
		}
		pl.stages = append(pl.stages, f)
	}
	return pl, nil
}

// OnlyLabels tells the pipeline that its caller reads no label of the
// entries it keeps but these (a range aggregation by these labels): the
// parsers json and logfmt without named extractions then set only these
// and those its own label filters read, and skip turning every other field
// into a label. Lines are parsed and checked all the same, so __error__ is
// what it would be. It does nothing for a pipeline with line_format,
// label_format, drop or keep, which may read or rename any label. Call it
// before NewProcessor.
func (pl *Pipeline) OnlyLabels(names []string) {
	if !pl.hintable {
		return
	}
	pl.need = append(slices.Clone(names), pl.named...)
	slices.Sort(pl.need)
	pl.need = slices.Compact(pl.need)
}

// filterLabels appends the label names a label filter reads to dst.
func filterLabels(f LabelFilter, dst []string) []string {
	switch f := f.(type) {
	case *LabelCompare:
		return append(dst, f.Name)
	case *LabelFilterBinary:
		return filterLabels(f.R, filterLabels(f.L, dst))
	case *LabelFilterParen:
		return filterLabels(f.Filter, dst)
	}
	return dst
}

// LineOnly says the pipeline only filters lines: every entry it keeps has
// its stream's labels and its own line.
func (pl *Pipeline) LineOnly() bool { return pl.lineOnly }

// KeepsLine says no stage changes an entry's line.
func (pl *Pipeline) KeepsLine() bool { return pl.keepsLine }

// Processor runs a pipeline over entries; it reuses its memory between
// entries and is not safe for concurrent use.
type Processor struct {
	pl      *Pipeline
	b       builder
	sb      labels.ScratchBuilder
	logfmt  []LogfmtPair
	jsonKey []byte // a parser's key being built
	buf     []byte
	curTime int64
}

// NewProcessor returns a processor of the pipeline.
func (pl *Pipeline) NewProcessor() *Processor { return &Processor{pl: pl, b: builder{need: pl.need}} }

// SetStream starts the entries of a stream with its labels.
func (p *Processor) SetStream(ls labels.Labels) { p.b.resetStream(ls) }

// Process runs one entry through the pipeline and returns its resulting
// line and whether the entry is kept. The returned line may alias the
// processor's memory until the next call.
func (p *Processor) Process(ts int64, line string, metadata labels.Labels) (string, bool) {
	if p.pl.lineOnly {
		for _, m := range p.pl.filters {
			if !m(line) {
				return "", false
			}
		}
		p.b.resetEntry(metadata)
		return line, true
	}
	p.b.resetEntry(metadata)
	p.curTime = ts
	var ok bool
	for _, s := range p.pl.stages {
		if line, ok = s(p, line); !ok {
			return "", false
		}
	}
	return line, true
}

// Labels returns the labels of the entry just processed, sorted.
func (p *Processor) Labels() labels.Labels { return p.b.labels(&p.sb) }

// Categorized returns the labels of the entry just processed split into
// stream labels, structured metadata and parsed labels.
func (p *Processor) Categorized() (stream, metadata, parsed labels.Labels) {
	return p.b.categorized(&p.sb)
}

// Get returns one label of the entry just processed.
func (p *Processor) Get(name string) (string, bool) { return p.b.get(name) }

func compileStage(s Stage) (stageFunc, error) {
	switch s := s.(type) {
	case *Parser:
		return compileParser(s)
	case *LabelFilterStage:
		f, err := compileLabelFilter(s.Filter)
		if err != nil {
			return nil, err
		}
		return func(p *Processor, line string) (string, bool) { return line, f(p) }, nil
	case *LineFormat:
		t, err := CompileTemplate(s.Template)
		if err != nil {
			return nil, fmt.Errorf("line_format: %w", err)
		}
		return func(p *Processor, line string) (string, bool) {
			out, err := t.Execute(p.buf[:0], p.templateData(line))
			if err != nil {
				p.b.setError(errTemplate, err.Error())
				return line, true
			}
			p.buf = out
			return string(out), true
		}, nil
	case *LabelFormat:
		return compileLabelFormat(s)
	case *DropKeep:
		return compileDropKeep(s), nil
	case *Decolorize:
		return func(_ *Processor, line string) (string, bool) { return decolorize(line), true }, nil
	}
	return nil, fmt.Errorf("unsupported stage %s", s)
}

func (p *Processor) templateData(line string) TemplateData {
	return TemplateData{Line: line, Timestamp: p.curTime, Labels: p.b.labels(&p.sb)}
}

func compileLabelFormat(s *LabelFormat) (stageFunc, error) {
	type item struct {
		dst, src string
		t        *Template
	}
	items := make([]item, len(s.Items))
	for i, it := range s.Items {
		items[i] = item{dst: it.Dst, src: it.Src}
		if it.IsTemplate {
			t, err := CompileTemplate(it.Src)
			if err != nil {
				return nil, fmt.Errorf("label_format %s: %w", it.Dst, err)
			}
			items[i].t = t
		}
	}
	type result struct{ name, value string }
	return func(p *Processor, line string) (string, bool) {
		// Every item reads the labels as they were before the stage.
		var data TemplateData
		var have bool
		out := make([]result, 0, len(items))
		var renamed []string
		for _, it := range items {
			if it.t == nil {
				v, ok := p.b.get(it.src)
				if !ok {
					continue
				}
				out = append(out, result{it.dst, v})
				if it.src != it.dst {
					renamed = append(renamed, it.src)
				}
				continue
			}
			if !have {
				data, have = p.templateData(line), true
			}
			b, err := it.t.Execute(nil, data)
			if err != nil {
				p.b.setError(errTemplate, err.Error())
				continue
			}
			out = append(out, result{it.dst, string(b)})
		}
		for _, n := range renamed {
			p.b.del(n)
		}
		for _, r := range out {
			p.b.set(categoryParsed, r.name, r.value)
		}
		return line, true
	}, nil
}

func compileDropKeep(s *DropKeep) stageFunc {
	match := func(name, value string) bool {
		for _, it := range s.Items {
			if it.Matcher == nil {
				if it.Name == name {
					return true
				}
			} else if it.Matcher.Name == name && it.Matcher.Matches(value) {
				return true
			}
		}
		return false
	}
	if s.Keep {
		return func(p *Processor, line string) (string, bool) {
			p.b.keepOnly(match)
			return line, true
		}
	}
	return func(p *Processor, line string) (string, bool) {
		var drop []string
		p.b.each(func(name, value string, _ Category) {
			if match(name, value) {
				drop = append(drop, name)
			}
		})
		for _, n := range drop {
			p.b.del(n)
		}
		return line, true
	}
}

var ansiColour = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func decolorize(line string) string {
	if !strings.Contains(line, "\x1b[") {
		return line
	}
	return ansiColour.ReplaceAllString(line, "")
}
