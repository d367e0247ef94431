package traceql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ParseError is a query that does not parse or does not type-check. It
// names where: Line and Col (in characters) count from 1, Offset (in
// bytes) from 0.
type ParseError struct {
	Line, Col int
	Offset    int
	Msg       string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

func newParseError(src string, offset int, format string, args ...any) *ParseError {
	offset = min(max(offset, 0), len(src))
	before := src[:offset]
	line := strings.Count(before, "\n") + 1
	col := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
	return &ParseError{Line: line, Col: col, Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

type tokenKind uint8

const (
	tEOF tokenKind = iota
	tLBrace
	tRBrace
	tLParen
	tRParen
	tComma
	tPipe
	tAnd
	tOr
	tNot
	tEq
	tNeq
	tGt
	tGte
	tLt
	tLte
	tRe
	tNre
	tDesc
	tAnc
	tTilde
	tUChild
	tUDesc
	tUParent
	tUAnc
	tUSibling
	tNChild
	tNDesc
	tNParent
	tNAnc
	tAdd
	tSub
	tMul
	tDiv
	tMod
	tPow
	tString
	tInt
	tFloat
	tDuration
	tIdent
	tAttribute
	tIntrinsic
)

// punctuation, longest first within each leading character.
var punctuation = []struct {
	text string
	kind tokenKind
}{
	{"{", tLBrace}, {"}", tRBrace}, {"(", tLParen}, {")", tRParen}, {",", tComma},
	{"||", tOr}, {"|", tPipe},
	{"&&", tAnd}, {"&>>", tUDesc}, {"&>", tUChild}, {"&<<", tUAnc}, {"&<", tUParent}, {"&~", tUSibling},
	{"!=", tNeq}, {"!~", tNre}, {"!>>", tNDesc}, {"!>", tNChild}, {"!<<", tNAnc}, {"!<", tNParent}, {"!", tNot},
	{"=~", tRe}, {"=", tEq},
	{">>", tDesc}, {">=", tGte}, {">", tGt},
	{"<<", tAnc}, {"<=", tLte}, {"<", tLt},
	{"~", tTilde}, {"+", tAdd}, {"-", tSub}, {"*", tMul}, {"/", tDiv}, {"%", tMod}, {"^", tPow},
}

var tokenText = func() map[tokenKind]string {
	m := map[tokenKind]string{
		tEOF: "end of query", tString: "string", tInt: "integer", tFloat: "float", tDuration: "duration",
		tIdent: "identifier", tAttribute: "attribute", tIntrinsic: "intrinsic",
	}
	for _, p := range punctuation {
		m[p.kind] = strconv.Quote(p.text)
	}
	return m
}()

type token struct {
	kind tokenKind
	pos  int    // byte offset of the first character
	text string // the source text
	val  Value  // literals
	// attributes and intrinsics
	scope     Scope
	name      string
	intrinsic Intrinsic
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tString, tInt, tFloat, tDuration, tIdent, tAttribute, tIntrinsic:
		return strconv.Quote(t.text)
	}
	return tokenText[t.kind]
}

type lexer struct {
	src  string
	pos  int
	toks []token
}

// lex splits a query into tokens; the last is tEOF.
func lex(src string) ([]token, error) {
	l := &lexer{src: src}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		l.toks = append(l.toks, t)
		if t.kind == tEOF {
			return l.toks, nil
		}
	}
}

func (l *lexer) errorf(at int, format string, args ...any) error {
	return newParseError(l.src, at, format, args...)
}

func (l *lexer) next() (token, error) {
	s := l.src
	for l.pos < len(s) {
		r, n := utf8.DecodeRuneInString(s[l.pos:])
		if !unicode.IsSpace(r) {
			break
		}
		l.pos += n
	}
	start := l.pos
	if start >= len(s) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := s[start]
	switch {
	case c == '"' || c == '`':
		str, end, err := l.readString(start)
		if err != nil {
			return token{}, err
		}
		l.pos = end
		return token{kind: tString, pos: start, text: s[start:end], val: StringValue(str)}, nil
	case isDigit(c) || (c == '.' && start+1 < len(s) && isDigit(s[start+1])):
		return l.readNumber(start)
	case c == '.':
		name, end, err := l.readName(start + 1)
		if err != nil {
			return token{}, err
		}
		l.pos = end
		return token{kind: tAttribute, pos: start, text: s[start:end], scope: ScopeNone, name: name}, nil
	case c == '_' || isLetter(c):
		return l.readWord(start)
	}
	for _, p := range punctuation {
		if strings.HasPrefix(s[start:], p.text) {
			l.pos += len(p.text)
			return token{kind: p.kind, pos: start, text: p.text}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(s[start:])
	return token{}, l.errorf(start, "unexpected character %q", r)
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'A' <= c&^0x20 && c&^0x20 <= 'Z' }
func isWordChar(c byte) bool {
	return c == '_' || isLetter(c) || isDigit(c)
}

// isNameRune reports whether r may stand in an unquoted attribute name.
func isNameRune(r rune) bool {
	return r == '_' || r == '.' || r == '-' || r == '/' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// readString reads a string literal starting at a quote: "…" with Go's
// escapes, or `…` taken as is.
func (l *lexer) readString(start int) (string, int, error) {
	s := l.src
	q := s[start]
	for i := start + 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q == '"':
			i++
		case s[i] == q:
			if q == '`' {
				return s[start+1 : i], i + 1, nil
			}
			str, err := strconv.Unquote(s[start : i+1])
			if err != nil {
				return "", 0, l.errorf(start, "invalid string %s: %v", s[start:i+1], err)
			}
			return str, i + 1, nil
		}
	}
	return "", 0, l.errorf(start, "string not terminated")
}

// readName reads an attribute name starting at i: unquoted runs of name
// characters and "quoted" parts (in which only \" and \\ are escapes),
// joined by dots.
func (l *lexer) readName(i int) (string, int, error) {
	s := l.src
	var b strings.Builder
	for {
		if i < len(s) && s[i] == '"' {
			part, end, err := l.readQuotedName(i)
			if err != nil {
				return "", 0, err
			}
			b.WriteString(part)
			i = end
			if i+1 < len(s) && s[i] == '.' {
				r, _ := utf8.DecodeRuneInString(s[i+1:])
				if r == '"' || isNameRune(r) {
					b.WriteByte('.')
					i++
					continue
				}
			}
			break
		}
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !isNameRune(r) {
				break
			}
			j += n
		}
		if j == i {
			break
		}
		b.WriteString(s[i:j])
		i = j
		if s[j-1] == '.' && i < len(s) && s[i] == '"' {
			continue
		}
		break
	}
	if b.Len() == 0 {
		return "", 0, l.errorf(i, "attribute name expected")
	}
	return b.String(), i, nil
}

func (l *lexer) readQuotedName(start int) (string, int, error) {
	s := l.src
	var b strings.Builder
	for i := start + 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			return "", 0, l.errorf(i, `only \" and \\ are escapes in a quoted attribute name`)
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, l.errorf(start, "quoted attribute name not terminated")
}

// readNumber reads an integer, a float or a duration.
func (l *lexer) readNumber(start int) (token, error) {
	s := l.src
	i := start
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	isFloat := false
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		isFloat = true
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			isFloat = true
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	if r, _ := utf8.DecodeRuneInString(s[i:]); i < len(s) && (isLetter(s[i]) || r == 'µ' || r == 'μ') {
		// A duration: Go's notation, units ns, us (µs), ms, s, m, h.
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if !(r == '.' || r == 'µ' || r == 'μ' || (r < utf8.RuneSelf && (isDigit(byte(r)) || isLetter(byte(r))))) {
				break
			}
			i += n
		}
		text := s[start:i]
		d, err := time.ParseDuration(text)
		if err != nil {
			return token{}, l.errorf(start, "invalid duration %q (units are ns, us, ms, s, m and h)", text)
		}
		l.pos = i
		return token{kind: tDuration, pos: start, text: text, val: DurationValue(d)}, nil
	}
	text := s[start:i]
	l.pos = i
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return token{}, l.errorf(start, "invalid number %s", text)
		}
		return token{kind: tFloat, pos: start, text: text, val: FloatValue(f)}, nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return token{}, l.errorf(start, "integer %s out of range (use minInt or maxInt for the bounds)", text)
	}
	return token{kind: tInt, pos: start, text: text, val: IntValue(n)}, nil
}

// readWord reads an identifier, a scoped attribute (`span.x`) or a scoped
// intrinsic (`span:name`).
func (l *lexer) readWord(start int) (token, error) {
	s := l.src
	i := start
	for i < len(s) && isWordChar(s[i]) {
		i++
	}
	word := s[start:i]
	if i < len(s) && s[i] == '.' {
		scope, ok := attributeScopes[word]
		if !ok {
			return token{}, l.errorf(start, "unknown attribute scope %q: attributes are span., resource., event., link., instrumentation. or . (span or resource)", word)
		}
		name, end, err := l.readName(i + 1)
		if err != nil {
			return token{}, err
		}
		l.pos = end
		return token{kind: tAttribute, pos: start, text: s[start:end], scope: scope, name: name}, nil
	}
	if i < len(s) && s[i] == ':' && intrinsicScopes[word] {
		j := i + 1
		for j < len(s) && isWordChar(s[j]) {
			j++
		}
		text := s[start:j]
		in, ok := scopedIntrinsics[text]
		if !ok {
			return token{}, l.errorf(start, "unknown intrinsic %q", text)
		}
		l.pos = j
		return token{kind: tIntrinsic, pos: start, text: text, intrinsic: in}, nil
	}
	l.pos = i
	return token{kind: tIdent, pos: start, text: word}, nil
}
