package logql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/grafana/regexp"
)

// compileParser builds a json, logfmt, regexp, pattern or unpack stage.
// Parsed labels that collide with the stream's get the _extracted suffix;
// a line a parser cannot read keeps going with __error__ set.
func compileParser(s *Parser) (stageFunc, error) {
	switch s.Kind {
	case "json":
		if len(s.Extractions) == 0 {
			return jsonAll, nil
		}
		return compileJSONPaths(s.Extractions)
	case "logfmt":
		return compileLogfmt(s), nil
	case "regexp":
		return compileRegexpParser(s.Param)
	case "pattern":
		return compilePatternParser(s.Param)
	case "unpack":
		return unpack, nil
	}
	return nil, fmt.Errorf("unknown parser %s", s.Kind)
}

func jsonAll(p *Processor, line string) (string, bool) {
	var want func([]byte) bool
	if p.b.need != nil {
		want = p.b.wants
	}
	if err := parseJSONLine(line, &p.jsonKey, want, p.b.setParsed); err != nil {
		p.b.setError(errJSON, err.Error())
	}
	return line, true
}

// compileJSONPaths builds `json name="path", …`: each label takes the value
// at its path (a.b, a[0], a["key"]); an object or array is kept as its
// JSON text, a missing path gives no label.
func compileJSONPaths(xs []Extraction) (stageFunc, error) {
	type target struct {
		name string
		path []pathStep
	}
	ts := make([]target, len(xs))
	for i, x := range xs {
		expr := x.Path
		if expr == "" {
			expr = x.Name
		}
		path, err := parseJSONPath(expr)
		if err != nil {
			return nil, fmt.Errorf("json %s=%q: %w", x.Name, expr, err)
		}
		ts[i] = target{name: x.Name, path: path}
	}
	return func(p *Processor, line string) (string, bool) {
		i := skipJSONSpace(line, 0)
		if i == len(line) || line[i] != '{' {
			p.b.setError(errJSON, "json: the line is not a JSON object")
			return line, true
		}
		for _, t := range ts {
			v, ok, err := jsonAt(line, i, t.path, 0)
			if err != nil {
				p.b.setError(errJSON, err.Error())
				return line, true
			}
			if ok {
				p.b.setParsed(t.name, v)
			}
		}
		return line, true
	}, nil
}

// pathStep is one step of a JSON path: a key or an array index.
type pathStep struct {
	key   string
	index int // -1 for a key
}

func parseJSONPath(s string) ([]pathStep, error) {
	var steps []pathStep
	for i := 0; i < len(s); {
		switch {
		case s[i] == '.':
			i++
		case s[i] == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, errors.New("a [ without ]")
			}
			inner := s[i+1 : i+end]
			i += end + 1
			if len(inner) >= 2 && (inner[0] == '"' || inner[0] == '\'') && inner[len(inner)-1] == inner[0] {
				steps = append(steps, pathStep{key: inner[1 : len(inner)-1], index: -1})
				continue
			}
			n, err := strconv.Atoi(inner)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("[%s] is neither an index nor a quoted key", inner)
			}
			steps = append(steps, pathStep{index: n})
		default:
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			steps = append(steps, pathStep{key: s[i:j], index: -1})
			i = j
		}
	}
	if len(steps) == 0 {
		return nil, errors.New("an empty path")
	}
	return steps, nil
}

// jsonAt returns the value at path within the JSON value at s[i].
func jsonAt(s string, i int, path []pathStep, depth int) (string, bool, error) {
	i = skipJSONSpace(s, i)
	if len(path) == 0 {
		if i < len(s) && s[i] == '"' {
			v, _, err := jsonString(s, i)
			return v, err == nil, err
		}
		end, err := skipJSONValue(s, i, depth)
		if err != nil {
			return "", false, err
		}
		if v := s[i:end]; v != "null" {
			return v, true, nil
		}
		return "", false, nil
	}
	if i >= len(s) {
		return "", false, jsonErr(s, i, "a value")
	}
	step := path[0]
	switch {
	case s[i] == '{' && step.index < 0:
		i = skipJSONSpace(s, i+1)
		if i < len(s) && s[i] == '}' {
			return "", false, nil
		}
		for {
			if i >= len(s) || s[i] != '"' {
				return "", false, jsonErr(s, i, "a key in quotes")
			}
			key, next, err := jsonString(s, i)
			if err != nil {
				return "", false, err
			}
			if i = skipJSONSpace(s, next); i >= len(s) || s[i] != ':' {
				return "", false, jsonErr(s, i, `":"`)
			}
			if key == step.key {
				return jsonAt(s, i+1, path[1:], depth+1)
			}
			if i, err = skipJSONValue(s, i+1, depth+1); err != nil {
				return "", false, err
			}
			if i = skipJSONSpace(s, i); i < len(s) && s[i] == ',' {
				i = skipJSONSpace(s, i+1)
				continue
			}
			return "", false, nil
		}
	case s[i] == '[' && step.index >= 0:
		i = skipJSONSpace(s, i+1)
		for n := 0; i < len(s) && s[i] != ']'; n++ {
			if n == step.index {
				return jsonAt(s, i, path[1:], depth+1)
			}
			var err error
			if i, err = skipJSONValue(s, i, depth+1); err != nil {
				return "", false, err
			}
			if i = skipJSONSpace(s, i); i < len(s) && s[i] == ',' {
				i = skipJSONSpace(s, i+1)
			}
		}
	}
	return "", false, nil
}

func compileLogfmt(s *Parser) stageFunc {
	var strict, keepEmpty bool
	for _, f := range s.Flags {
		strict = strict || f == "--strict"
		keepEmpty = keepEmpty || f == "--keep-empty"
	}
	want := map[string]string{} // logfmt key → label name
	for _, x := range s.Extractions {
		key := x.Path
		if key == "" {
			key = x.Name
		}
		want[key] = x.Name
	}
	return func(p *Processor, line string) (string, bool) {
		pairs, err := ParseLogfmt(line, strict, keepEmpty, p.logfmt[:0])
		p.logfmt = pairs
		if err != nil {
			p.b.setError(errLogfmt, err.Error())
			if strict {
				return line, true
			}
		}
		for _, kv := range pairs {
			if len(want) > 0 {
				name, ok := want[kv.Key]
				if !ok {
					continue
				}
				p.b.setParsed(name, kv.Value)
				continue
			}
			name := kv.Key
			if p.b.need != nil {
				if !validLabelName(name) {
					p.jsonKey = appendSanitized(p.jsonKey[:0], name)
					if !p.b.wants(p.jsonKey) {
						continue
					}
				} else if !p.b.wantsName(name) {
					continue
				}
			}
			p.b.setParsed(SanitizeLabelName(name), kv.Value)
		}
		return line, true
	}
}

func compileRegexpParser(expr string) (stageFunc, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("regexp %q: %w", expr, err)
	}
	names := re.SubexpNames()
	named := false
	for _, n := range names[1:] {
		named = named || n != ""
	}
	if !named {
		return nil, fmt.Errorf("regexp %q has no named capture group: name one as (?P<name>…)", expr)
	}
	return func(p *Processor, line string) (string, bool) {
		m := re.FindStringSubmatchIndex(line)
		if m == nil {
			return line, true
		}
		for g, name := range names {
			if name == "" || m[2*g] < 0 {
				continue
			}
			p.b.setParsed(name, line[m[2*g]:m[2*g+1]])
		}
		return line, true
	}, nil
}

// compilePatternParser builds `pattern "<ip> - <_> [<ts>] …"`: literals
// matched in order from the start of the line, each capture taking the
// text up to the next literal (or the rest of the line); <_> captures
// nothing. A line that does not fit gives no labels.
func compilePatternParser(expr string) (stageFunc, error) {
	type part struct {
		lit     string
		capture string // "" for a literal; "_" for an unnamed capture
	}
	var parts []part
	rest := expr
	for rest != "" {
		open := strings.IndexByte(rest, '<')
		if open < 0 {
			parts = append(parts, part{lit: rest})
			break
		}
		end := strings.IndexByte(rest[open:], '>')
		if end < 0 || !isCaptureName(rest[open+1:open+end]) {
			parts = append(parts, part{lit: rest[:open+1]}) // a '<' of the text
			rest = rest[open+1:]
			continue
		}
		if open > 0 {
			parts = append(parts, part{lit: rest[:open]})
		}
		parts = append(parts, part{capture: rest[open+1 : open+end]})
		rest = rest[open+end+1:]
	}
	// Merge adjacent literals and reject adjacent captures.
	var merged []part
	seen := map[string]bool{}
	for _, pt := range parts {
		if n := len(merged); n > 0 && pt.capture == "" && merged[n-1].capture == "" {
			merged[n-1].lit += pt.lit
			continue
		}
		if n := len(merged); n > 0 && pt.capture != "" && merged[n-1].capture != "" {
			return nil, fmt.Errorf("pattern %q: captures <%s> and <%s> need a literal between them", expr, merged[n-1].capture, pt.capture)
		}
		if pt.capture != "" && pt.capture != "_" {
			if seen[pt.capture] {
				return nil, fmt.Errorf("pattern %q: capture <%s> appears twice", expr, pt.capture)
			}
			seen[pt.capture] = true
		}
		merged = append(merged, pt)
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("pattern %q has no named capture such as <name>", expr)
	}
	return func(p *Processor, line string) (string, bool) {
		rest := line
		type capt struct{ name, value string }
		var got [16]capt
		caps := got[:0]
		for i, pt := range merged {
			if pt.capture == "" {
				if !strings.HasPrefix(rest, pt.lit) {
					return line, true
				}
				rest = rest[len(pt.lit):]
				continue
			}
			end := len(rest)
			if i+1 < len(merged) {
				j := strings.Index(rest, merged[i+1].lit)
				if j < 0 {
					return line, true
				}
				end = j
			}
			if pt.capture != "_" {
				caps = append(caps, capt{pt.capture, rest[:end]})
			}
			rest = rest[end:]
		}
		for _, c := range caps {
			p.b.setParsed(c.name, c.value)
		}
		return line, true
	}, nil
}

// unpack reads a JSON object of string fields, as Promtail's pack stage
// writes them: each field becomes a label, and _entry becomes the line.
func unpack(p *Processor, line string) (string, bool) {
	i := skipJSONSpace(line, 0)
	if i == len(line) || line[i] != '{' {
		p.b.setError(errJSON, "unpack: the line is not a JSON object")
		return line, true
	}
	out := line
	i = skipJSONSpace(line, i+1)
	for i < len(line) && line[i] != '}' {
		if line[i] != '"' {
			p.b.setError(errJSON, jsonErr(line, i, "a key in quotes").Error())
			return line, true
		}
		key, next, err := jsonString(line, i)
		if err != nil {
			p.b.setError(errJSON, err.Error())
			return line, true
		}
		if i = skipJSONSpace(line, next); i >= len(line) || line[i] != ':' {
			p.b.setError(errJSON, jsonErr(line, i, `":"`).Error())
			return line, true
		}
		i = skipJSONSpace(line, i+1)
		if i < len(line) && line[i] == '"' {
			v, next, err := jsonString(line, i)
			if err != nil {
				p.b.setError(errJSON, err.Error())
				return line, true
			}
			if key == "_entry" {
				out = v
			} else {
				p.b.setParsed(SanitizeLabelName(key), v)
			}
			i = next
		} else if i, err = skipJSONValue(line, i, 1); err != nil {
			p.b.setError(errJSON, err.Error())
			return line, true
		}
		if i = skipJSONSpace(line, i); i < len(line) && line[i] == ',' {
			i = skipJSONSpace(line, i+1)
		}
	}
	return out, true
}
