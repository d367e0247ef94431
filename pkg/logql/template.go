package logql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/prometheus/model/labels"
)

// The templates of line_format and label_format: Go's text/template with the
// functions Loki documents (https://grafana.com/docs/loki/latest/query/template_functions/).
//
// The data of an execution is a map of the labels, as in Loki, but it holds
// only the labels the template names (all of them only when the template
// uses the whole entry, {{.}} or $), and it is pooled per template rather
// than built per entry. The tree is rewritten after parsing so that it needs
// nothing else: __line__ reads a hidden key of the map, __timestamp__ parses
// another, and {{.}} and $ alone are a copy of the map without the hidden
// keys. A template keeps no per-entry state and is safe for concurrent use.
//
// Most templates are text and labels, or the line, passed through string
// functions ({{.level}}: {{.msg | upper}}): those are rendered without
// text/template, about 15 times faster (BenchmarkTemplateExecute), and a
// differential test checks that they render as text/template does.
//
// A template is an expression a tenant writes and runs once per log line, so
// what it can cost is bounded: no string it builds, nor its output, is longer
// than maxTemplateOutput, and its range loops go round at most
// maxTemplateRange times in all per execution. {{define}}, {{block}} and
// {{template}} are refused: they are of no use in one line, and a template
// could call itself.

const (
	// maxTemplateOutput bounds the rendered output and every string a
	// function builds.
	maxTemplateOutput = 4 << 20
	// maxTemplateRange bounds the items all the range loops of one
	// execution go over.
	maxTemplateRange = 10000
	// maxTemplateCache bounds the regexps and time zones cached per
	// template for arguments that are not constants.
	maxTemplateCache = 64

	// templateName is the name text/template gives in its messages.
	templateName = "template"

	fnLine      = "__line__"
	fnTimestamp = "__timestamp__"
	// The internal functions the rewritten tree calls.
	fnEntry = "__entry__"
	fnRange = "__range__"

	// The hidden keys of the map, which no label name can be.
	keyLine   = "\x00line"
	keyTS     = "\x00ts"
	keyRanged = "\x00ranged"
)

// TemplateData is what a template sees of one log entry.
type TemplateData struct {
	Line      string        // the entry's current line (function __line__)
	Timestamp int64         // Unix nanoseconds (function __timestamp__, a time.Time)
	Labels    labels.Labels // every label of the entry at this point of the pipeline; {{.name}} reads one, a missing one is ""
}

// Template is a compiled line_format or label_format template; safe for concurrent use.
type Template struct {
	tmpl *template.Template
	// simple is set when the template is only text, labels and __line__,
	// each passed through string functions with constant arguments: it is
	// then rendered without text/template.
	simple []segment

	// What goes in the map: the labels named (every label when all), and
	// the hidden keys that the template uses.
	names             []string
	all               bool
	line, ts, ranging bool

	regexps cache[*regexp.Regexp]
	zones   cache[*time.Location]
	now     func() time.Time // the function now; time.Now outside tests
	entries sync.Pool        // of *entry
}

// segment is a piece of a simple template: text, or a label or the line
// passed through functions.
type segment struct {
	kind byte   // segText, segLabel or segLine
	text string // the text, or the label's name
	fns  []stringFunc
}

// stringFunc is a function of a simple template, its constant arguments
// bound, and what its error says.
type stringFunc struct {
	call     func(string) (string, error)
	name, at string
}

const (
	segText byte = iota
	segLabel
	segLine
)

// entry is the data and the writer of one execution.
type entry struct {
	m map[string]string
	w appendWriter
}

// appendWriter appends to buf, refusing to grow it past maxTemplateOutput
// from start.
type appendWriter struct {
	buf   []byte
	start int
}

// Write appends p, or fails with errOutputTooLong.
func (w *appendWriter) Write(p []byte) (int, error) {
	if len(w.buf)-w.start+len(p) > maxTemplateOutput {
		return 0, errOutputTooLong
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

var errOutputTooLong = fmt.Errorf("template: the output is longer than the limit of %d bytes", maxTemplateOutput)

// CompileTemplate compiles text (Go text/template syntax with Loki's functions). Its error names the problem.
func CompileTemplate(text string) (*Template, error) {
	t := &Template{now: time.Now}
	t.entries.New = func() any { return &entry{m: map[string]string{}} }
	funcs := t.funcs()
	tmpl, err := template.New(templateName).Option("missingkey=zero").Funcs(funcs).Parse(text)
	if err != nil {
		// text/template says `template: template:1: function "x" not defined`.
		msg, ok := strings.CutPrefix(err.Error(), "template: "+templateName+":")
		if !ok {
			return nil, fmt.Errorf("invalid template: %w", err)
		}
		return nil, fmt.Errorf("invalid template: line %s", msg)
	}
	for _, other := range tmpl.Templates() {
		if other.Name() != templateName {
			return nil, fmt.Errorf("invalid template: {{define}} and {{block}} are not supported (%q)", other.Name())
		}
	}
	t.tmpl = tmpl
	if tmpl.Tree == nil || tmpl.Root == nil {
		t.simple = []segment{}
		return t, nil
	}
	t.simple = simpleSegments(tmpl, funcs)
	r := rewriter{t: t, names: map[string]bool{}}
	if err := r.list(tmpl.Root, true); err != nil {
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	for name := range r.names {
		t.names = append(t.names, name)
	}
	return t, nil
}

// Execute appends the rendered template to dst and returns it.
func (t *Template) Execute(dst []byte, d TemplateData) (out []byte, err error) {
	if t.simple != nil {
		return t.executeSimple(dst, d)
	}
	start := len(dst)
	e := t.entries.Get().(*entry)
	if t.all {
		clear(e.m)
		d.Labels.Range(func(l labels.Label) { e.m[l.Name] = l.Value })
	} else {
		// The keys are the same at every execution: no need to clear.
		for _, name := range t.names {
			e.m[name] = d.Labels.Get(name)
		}
	}
	if t.line {
		e.m[keyLine] = d.Line
	}
	if t.ts {
		e.m[keyTS] = strconv.FormatInt(d.Timestamp, 10)
	}
	if t.ranging {
		e.m[keyRanged] = "0"
	}
	e.w = appendWriter{buf: dst, start: start}
	defer func() {
		if r := recover(); r != nil {
			out, err = dst[:start], fmt.Errorf("template: internal error: %v", r)
		}
	}()
	err = t.tmpl.Execute(&e.w, e.m)
	out = e.w.buf
	e.w = appendWriter{}
	if t.line {
		e.m[keyLine] = "" // not to keep a long line alive in the pool
	}
	t.entries.Put(e)
	if err != nil {
		return out[:start], execError(err)
	}
	return out, nil
}

func (t *Template) executeSimple(dst []byte, d TemplateData) ([]byte, error) {
	start := len(dst)
	for _, seg := range t.simple {
		v := seg.text
		switch seg.kind {
		case segLabel:
			v = d.Labels.Get(seg.text)
		case segLine:
			v = d.Line
		}
		for _, f := range seg.fns {
			var err error
			if v, err = f.call(v); err != nil {
				// As text/template says it, through execError.
				return dst[:start], &templateError{msg: "template line " + f.at + ": error calling " + f.name + ": " + err.Error(), err: err}
			}
		}
		// Checked at every piece, as text/template's writes are.
		if len(dst)-start+len(v) > maxTemplateOutput {
			return dst[:start], errOutputTooLong
		}
		dst = append(dst, v...)
	}
	return dst, nil
}

// templateError is an execution error with text/template's repetitions
// taken out of its message.
type templateError struct {
	msg string
	err error
}

func (e *templateError) Error() string { return e.msg }
func (e *templateError) Unwrap() error { return e.err }

// execError shortens `template: template:1:3: executing "template" at <x>: …`
// to `template line 1:3: at <x>: …`, and puts back in it what the rewrite
// of the tree replaced.
func execError(err error) error {
	msg, ok := strings.CutPrefix(err.Error(), "template: "+templateName+":")
	if !ok {
		return err
	}
	pos, rest, _ := strings.Cut(msg, ": ")
	rest = strings.TrimPrefix(rest, `executing "`+templateName+`" `)
	rest = rewritten.Replace(rest)
	return &templateError{msg: "template line " + pos + ": " + rest, err: err}
}

var rewritten = strings.NewReplacer(
	"($."+keyTS+" | "+fnTimestamp+")", fnTimestamp,
	"$."+keyTS+" | "+fnTimestamp, fnTimestamp,
	"$."+keyLine, fnLine,
	keyLine, fnLine,
	keyTS, fnTimestamp,
	"("+fnEntry+" $)", ".",
	fnEntry+" $", ".",
	fnRange+" $", "range",
	fnRange, "range",
)

// simpleSegments returns the pieces of a template that is only text and
// actions such as {{.label}}, {{$.label}}, {{__line__}},
// {{.label | replace "a" "b" | upper}} or {{trimPrefix "/" .label}}, with
// functions of strings that return a string; or nil.
func simpleSegments(tmpl *template.Template, funcs template.FuncMap) []segment {
	segs := []segment{}
	for _, n := range tmpl.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			segs = append(segs, segment{kind: segText, text: string(n.Text)})
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				return nil
			}
			// The first command is the source alone, or a function with
			// the source as its last argument.
			first := n.Pipe.Cmds[0]
			seg, ok := simpleSource(first.Args[len(first.Args)-1])
			if !ok {
				return nil
			}
			cmds := n.Pipe.Cmds[1:]
			if len(first.Args) > 1 {
				cmds = n.Pipe.Cmds
			}
			for i, cmd := range cmds {
				args := cmd.Args
				if i == 0 && len(first.Args) > 1 {
					args = args[:len(args)-1] // the source
				}
				f, ok := simpleFunc(tmpl, funcs, cmd, args)
				if !ok {
					return nil
				}
				seg.fns = append(seg.fns, f)
			}
			segs = append(segs, seg)
		default:
			return nil
		}
	}
	return segs
}

// simpleSource returns the segment of a label or the line.
func simpleSource(n parse.Node) (segment, bool) {
	switch n := n.(type) {
	case *parse.FieldNode:
		if len(n.Ident) == 1 {
			return segment{kind: segLabel, text: n.Ident[0]}, true
		}
	case *parse.VariableNode:
		if len(n.Ident) == 2 && n.Ident[0] == "$" {
			return segment{kind: segLabel, text: n.Ident[1]}, true
		}
	case *parse.IdentifierNode:
		if n.Ident == fnLine {
			return segment{kind: segLine}, true
		}
	}
	return segment{}, false
}

// simpleFunc returns the call of a command that is a function of strings
// returning a string, given constant strings (args, after the function)
// and the value piped to it last.
func simpleFunc(tmpl *template.Template, funcs template.FuncMap, cmd *parse.CommandNode, args []parse.Node) (stringFunc, bool) {
	id, ok := args[0].(*parse.IdentifierNode)
	if !ok {
		return stringFunc{}, false
	}
	var c []string
	for _, a := range args[1:] {
		s, ok := a.(*parse.StringNode)
		if !ok {
			return stringFunc{}, false
		}
		c = append(c, s.Text)
	}
	var call func(string) (string, error)
	switch f := funcs[id.Ident].(type) {
	case func(string) string:
		if len(c) == 0 {
			call = func(s string) (string, error) { return f(s), nil }
		}
	case func(string) (string, error):
		if len(c) == 0 {
			call = f
		}
	case func(string, string) string:
		if len(c) == 1 {
			call = func(s string) (string, error) { return f(c[0], s), nil }
		}
	case func(string, string) (string, error):
		if len(c) == 1 {
			call = func(s string) (string, error) { return f(c[0], s) }
		}
	case func(string, string, string) string:
		if len(c) == 2 {
			call = func(s string) (string, error) { return f(c[0], c[1], s), nil }
		}
	case func(string, string, string) (string, error):
		if len(c) == 2 {
			call = func(s string) (string, error) { return f(c[0], c[1], s) }
		}
	}
	if call == nil {
		return stringFunc{}, false
	}
	// text/template's error names the command where it is.
	loc, context := tmpl.ErrorContext(cmd)
	at := strings.TrimPrefix(loc, templateName+":") + ": at <" + rewritten.Replace(context) + ">"
	return stringFunc{call: call, name: id.Ident, at: at}, true
}

// rewriter rewrites a parsed template for the map it is executed on, and
// notes what goes in the map.
type rewriter struct {
	t     *Template
	names map[string]bool
}

// list rewrites a list of nodes; root says whether dot is the entry there.
func (r *rewriter) list(l *parse.ListNode, root bool) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		var err error
		switch n := n.(type) {
		case *parse.ActionNode:
			err = r.pipe(n.Pipe, root)
		case *parse.IfNode:
			err = r.branch(&n.BranchNode, root, root)
		case *parse.WithNode:
			err = r.branch(&n.BranchNode, root, false)
		case *parse.RangeNode:
			err = r.branch(&n.BranchNode, root, false)
			// The range goes over the pipeline's value through __range__,
			// which counts its items.
			pos := n.Pipe.Position()
			n.Pipe.Cmds = append(n.Pipe.Cmds, command(pos, identifier(fnRange, pos), dollar(pos)))
			r.t.ranging = true
		case *parse.TemplateNode:
			err = errors.New("{{template}} is not supported")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// branch rewrites an if, with or range: its pipeline and else branch see the
// same dot as the node, its body sees bodyRoot.
func (r *rewriter) branch(b *parse.BranchNode, root, bodyRoot bool) error {
	if err := r.pipe(b.Pipe, root); err != nil {
		return err
	}
	if err := r.list(b.List, bodyRoot); err != nil {
		return err
	}
	return r.list(b.ElseList, root)
}

func (r *rewriter) pipe(p *parse.PipeNode, root bool) error {
	if p == nil {
		return nil
	}
	for _, v := range p.Decl {
		if v.Ident[0] == "$" {
			return errors.New("$ cannot be declared or assigned")
		}
	}
	for _, cmd := range p.Cmds {
		for i, arg := range cmd.Args {
			a, err := r.arg(arg, root)
			if err != nil {
				return err
			}
			cmd.Args[i] = a
		}
		if err := r.t.precompile(cmd); err != nil {
			return err
		}
	}
	return nil
}

// arg returns what replaces one argument of a command.
func (r *rewriter) arg(n parse.Node, root bool) (parse.Node, error) {
	switch n := n.(type) {
	case *parse.FieldNode:
		if root {
			r.names[n.Ident[0]] = true
		}
	case *parse.VariableNode:
		if n.Ident[0] != "$" {
			break
		}
		if len(n.Ident) > 1 {
			r.names[n.Ident[1]] = true
			break
		}
		r.t.all = true
		return pipe(n.Pos, command(n.Pos, identifier(fnEntry, n.Pos), dollar(n.Pos))), nil
	case *parse.DotNode:
		if root {
			r.t.all = true
			return pipe(n.Pos, command(n.Pos, identifier(fnEntry, n.Pos), dollar(n.Pos))), nil
		}
	case *parse.IdentifierNode:
		switch n.Ident {
		case fnLine:
			r.t.line = true
			return hidden(n.Pos, keyLine), nil
		case fnTimestamp:
			r.t.ts = true
			p := pipe(n.Pos, command(n.Pos, hidden(n.Pos, keyTS)))
			p.Cmds = append(p.Cmds, command(n.Pos, identifier(fnTimestamp, n.Pos)))
			return p, nil
		}
	case *parse.PipeNode:
		return n, r.pipe(n, root)
	case *parse.ChainNode:
		a, err := r.arg(n.Node, root)
		n.Node = a
		return n, err
	}
	return n, nil
}

// precompile compiles the regexp of a regexReplaceAll, regexReplaceAllLiteral
// or count when it is a constant, into the template's cache: an invalid one
// is an error of the template rather than of every line.
func (t *Template) precompile(cmd *parse.CommandNode) error {
	if len(cmd.Args) < 2 {
		return nil
	}
	fn, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok || fn.Ident != "regexReplaceAll" && fn.Ident != "regexReplaceAllLiteral" && fn.Ident != "count" {
		return nil
	}
	if s, ok := cmd.Args[1].(*parse.StringNode); ok {
		if _, err := t.regexp(s.Text); err != nil {
			return fmt.Errorf("%s: %w", fn.Ident, err)
		}
	}
	return nil
}

func pipe(pos parse.Pos, cmd *parse.CommandNode) *parse.PipeNode {
	return &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{cmd}}
}

func command(pos parse.Pos, args ...parse.Node) *parse.CommandNode {
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: args}
}

func identifier(name string, pos parse.Pos) *parse.IdentifierNode {
	return parse.NewIdentifier(name).SetPos(pos)
}

func dollar(pos parse.Pos) *parse.VariableNode {
	return &parse.VariableNode{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{"$"}}
}

// hidden is $.key, which the lexer would not read when key is hidden.
func hidden(pos parse.Pos, key string) *parse.VariableNode {
	return &parse.VariableNode{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{"$", key}}
}
