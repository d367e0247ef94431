// Package logql is Canopy's LogQL: the query language of Loki, whose
// documentation is the reference for its syntax and semantics. This file
// and parse.go turn a query into the syntax tree of ast.go; Loki's code is
// not used.
package logql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/canopy-observability/canopy/pkg/util/strutil"
)

type tokenKind int

const (
	tEOF tokenKind = iota
	tIdent
	tString
	tNumber
	tDuration
	tBytes
	tPunct // { } ( ) [ ] , and operators
)

type token struct {
	kind tokenKind
	text string // for tString the unquoted value
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

// punctuation, longest first.
var punct = []string{
	"|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<=",
	"{", "}", "(", ")", "[", "]", ",", "=", "|", ">", "<", "+", "-", "*", "/", "%", "^",
}

// Error is a query that does not parse: Pos is the byte offset in the
// query where the problem is.
type Error struct {
	Pos int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("parse error at position %d: %s", e.Pos+1, e.Msg) }

// lex splits a query into tokens.
func lex(q string) ([]token, error) {
	if !utf8.ValidString(q) {
		return nil, &Error{Pos: 0, Msg: "the query is not valid UTF-8"}
	}
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '#': // a comment to the end of the line
			for i < len(q) && q[i] != '\n' {
				i++
			}
			continue
		case c == '"' || c == '`':
			s, n, err := lexString(q[i:])
			if err != nil {
				return nil, &Error{Pos: i, Msg: err.Error()}
			}
			out = append(out, token{tString, s, i})
			i += n
			continue
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			tok, n, err := lexNumber(q[i:])
			if err != nil {
				return nil, &Error{Pos: i, Msg: err.Error()}
			}
			tok.pos = i
			out = append(out, tok)
			i += n
			continue
		case isIdentStart(rune(c)):
			j := i
			for j < len(q) && isIdentPart(rune(q[j])) {
				j++
			}
			// logfmt's flags are spelled --strict and --keep-empty.
			out = append(out, token{tIdent, q[i:j], i})
			i = j
			continue
		case c == '-' && strings.HasPrefix(q[i:], "--") && i+2 < len(q) && isIdentStart(rune(q[i+2])):
			j := i + 2
			for j < len(q) && (isIdentPart(rune(q[j])) || q[j] == '-') {
				j++
			}
			out = append(out, token{tIdent, q[i:j], i})
			i = j
			continue
		}
		matched := false
		for _, p := range punct {
			if strings.HasPrefix(q[i:], p) {
				out = append(out, token{tPunct, p, i})
				i += len(p)
				matched = true
				break
			}
		}
		if !matched {
			r, _ := utf8.DecodeRuneInString(q[i:])
			return nil, &Error{Pos: i, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	return append(out, token{tEOF, "", len(q)}), nil
}

func isIdentStart(r rune) bool { return r == '_' || r < utf8.RuneSelf && unicode.IsLetter(r) }
func isIdentPart(r rune) bool {
	return r == '_' || r == ':' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// lexString reads a double-quoted string (Go escapes) or a backquoted raw
// string at the start of s and returns its value and length.
func lexString(s string) (string, int, error) {
	quote := s[0]
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quote == '"' {
				i++
			}
		case quote:
			if quote == '`' {
				return s[1:i], i + 1, nil
			}
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", 0, fmt.Errorf("invalid string %s: %v", truncate(s[:i+1]), err)
			}
			return v, i + 1, nil
		case '\n':
			if quote == '"' {
				return "", 0, fmt.Errorf("unterminated string %s", truncate(s[:i]))
			}
		}
	}
	return "", 0, fmt.Errorf("unterminated string %s", truncate(s))
}

var durationUnits = []string{"ns", "us", "µs", "ms", "s", "m", "h", "d", "w", "y"}

// lexNumber reads a number, a duration (5m, 1h30m, 250ms) or a byte size
// (10KB, 5MiB, 1B).
func lexNumber(s string) (token, int, error) {
	j := 0
	for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '_') {
		j++
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') && j+1 < len(s) && (s[j+1] >= '0' && s[j+1] <= '9' || (s[j+1] == '+' || s[j+1] == '-') && j+2 < len(s) && s[j+2] >= '0' && s[j+2] <= '9') {
		j += 2
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return token{kind: tNumber, text: s[:j]}, j, nil
	}
	k := j
	for k < len(s) && (isIdentPart(rune(s[k])) || strings.HasPrefix(s[k:], "µ")) {
		if strings.HasPrefix(s[k:], "µ") {
			k += len("µ")
		} else {
			k++
		}
	}
	if k == j {
		if _, err := strconv.ParseFloat(strings.ReplaceAll(s[:j], "_", ""), 64); err != nil {
			return token{}, 0, fmt.Errorf("invalid number %q", s[:j])
		}
		return token{kind: tNumber, text: s[:j]}, j, nil
	}
	word := s[:k]
	if _, err := ParseDuration(word); err == nil {
		return token{kind: tDuration, text: word}, k, nil
	}
	if _, err := ParseBytes(word); err == nil {
		return token{kind: tBytes, text: word}, k, nil
	}
	return token{}, 0, fmt.Errorf("%q is neither a number, a duration nor a byte size", word)
}

// truncate bounds what an error message quotes of the query.
func truncate(s string) string { return strutil.Truncate(s, 60) }
