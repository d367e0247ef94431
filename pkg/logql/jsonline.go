package logql

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseJSONLine extracts the fields of a JSON object line as the json
// stage does without parameters: nested objects are flattened with '_'
// between the sanitised keys, arrays are skipped, strings unescaped,
// numbers and booleans kept as written, nulls dropped. emit is called for
// each field in order. The error names what is malformed and where.
func ParseJSONLine(line string, emit func(key, value string)) error {
	var prefix []byte
	return parseJSONLine(line, &prefix, nil, emit)
}

// parseJSONLine is ParseJSONLine with the key buffer given, calling emit
// only for the keys want accepts (all when want is nil): the others are
// read and checked, not turned into strings.
func parseJSONLine(line string, prefix *[]byte, want func(key []byte) bool, emit func(key, value string)) error {
	i := skipJSONSpace(line, 0)
	if i == len(line) || line[i] != '{' {
		return errors.New("json: the line is not a JSON object")
	}
	*prefix = (*prefix)[:0]
	end, err := jsonObject(line, i, prefix, want, emit, 0)
	if err != nil {
		return err
	}
	if end = skipJSONSpace(line, end); end != len(line) {
		return fmt.Errorf("json: unexpected %q after the object at byte %d", line[end], end)
	}
	return nil
}

const maxJSONDepth = 128

// jsonObject reads the object at s[i] and returns the index after it.
func jsonObject(s string, i int, prefix *[]byte, want func([]byte) bool, emit func(key, value string), depth int) (int, error) {
	if depth > maxJSONDepth {
		return 0, fmt.Errorf("json: objects nest deeper than %d", maxJSONDepth)
	}
	i = skipJSONSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, nil
	}
	base := len(*prefix)
	for {
		if i >= len(s) || s[i] != '"' {
			return 0, jsonErr(s, i, "a key in quotes")
		}
		key, next, err := jsonString(s, i)
		if err != nil {
			return 0, err
		}
		i = skipJSONSpace(s, next)
		if i >= len(s) || s[i] != ':' {
			return 0, jsonErr(s, i, `":"`)
		}
		i = skipJSONSpace(s, i+1)
		*prefix = (*prefix)[:base]
		if base > 0 {
			*prefix = append(*prefix, '_')
		}
		*prefix = appendSanitized(*prefix, key)
		if i >= len(s) {
			return 0, jsonErr(s, i, "a value")
		}
		switch c := s[i]; {
		case c == '{':
			if i, err = jsonObject(s, i, prefix, want, emit, depth+1); err != nil {
				return 0, err
			}
		case c == '[':
			if i, err = skipJSONValue(s, i, depth+1); err != nil {
				return 0, err
			}
		case c == '"':
			v, next, err := jsonString(s, i)
			if err != nil {
				return 0, err
			}
			if want == nil || want(*prefix) {
				emit(string(*prefix), v)
			}
			i = next
		default:
			start := i
			for i < len(s) && !strings.ContainsRune(",}] \t\r\n", rune(s[i])) {
				i++
			}
			lit := s[start:i]
			switch {
			case lit == "null":
			case lit == "true" || lit == "false" || isJSONNumber(lit):
				if want == nil || want(*prefix) {
					emit(string(*prefix), lit)
				}
			default:
				return 0, fmt.Errorf("json: invalid value %q at byte %d", truncate(lit), start)
			}
		}
		*prefix = (*prefix)[:base]
		i = skipJSONSpace(s, i)
		if i < len(s) && s[i] == ',' {
			i = skipJSONSpace(s, i+1)
			continue
		}
		if i < len(s) && s[i] == '}' {
			return i + 1, nil
		}
		return 0, jsonErr(s, i, `"," or "}"`)
	}
}

// skipJSONValue skips the array or object at s[i], checking its syntax.
func skipJSONValue(s string, i, depth int) (int, error) {
	if depth > maxJSONDepth {
		return 0, fmt.Errorf("json: values nest deeper than %d", maxJSONDepth)
	}
	i = skipJSONSpace(s, i)
	if i >= len(s) {
		return 0, jsonErr(s, i, "a value")
	}
	switch s[i] {
	case '"':
		_, next, err := jsonString(s, i)
		return next, err
	case '{', '[':
		closing := byte('}')
		if s[i] == '[' {
			closing = ']'
		}
		obj := s[i] == '{'
		i = skipJSONSpace(s, i+1)
		if i < len(s) && s[i] == closing {
			return i + 1, nil
		}
		for {
			var err error
			if obj {
				if i >= len(s) || s[i] != '"' {
					return 0, jsonErr(s, i, "a key in quotes")
				}
				if _, i, err = jsonString(s, i); err != nil {
					return 0, err
				}
				if i = skipJSONSpace(s, i); i >= len(s) || s[i] != ':' {
					return 0, jsonErr(s, i, `":"`)
				}
				i++
			}
			if i, err = skipJSONValue(s, i, depth+1); err != nil {
				return 0, err
			}
			i = skipJSONSpace(s, i)
			if i < len(s) && s[i] == ',' {
				i = skipJSONSpace(s, i+1)
				continue
			}
			if i < len(s) && s[i] == closing {
				return i + 1, nil
			}
			return 0, jsonErr(s, i, fmt.Sprintf(`"," or %q`, closing))
		}
	}
	start := i
	for i < len(s) && !strings.ContainsRune(",}] \t\r\n", rune(s[i])) {
		i++
	}
	if lit := s[start:i]; lit != "null" && lit != "true" && lit != "false" && !isJSONNumber(lit) {
		return 0, fmt.Errorf("json: invalid value %q at byte %d", truncate(lit), start)
	}
	return i, nil
}

func jsonErr(s string, i int, want string) error {
	if i >= len(s) {
		return fmt.Errorf("json: the line ends where %s should be", want)
	}
	return fmt.Errorf("json: expected %s at byte %d, found %q", want, i, s[i])
}

func skipJSONSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// jsonString reads the string at s[i] (a quote) and returns its value, which
// shares s's memory when it has no escapes, and the index after it.
func jsonString(s string, i int) (string, int, error) {
	escaped := false
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		if !jsonStringSpecial[c] {
			continue
		}
		switch {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			if !escaped {
				return s[i+1 : j], j + 1, nil
			}
			v, err := unescapeJSON(s[i+1 : j])
			if err != nil {
				return "", 0, fmt.Errorf("json: string at byte %d: %v", i, err)
			}
			return v, j + 1, nil
		default: // below 0x20
			return "", 0, fmt.Errorf("json: control character in the string at byte %d", j)
		}
	}
	return "", 0, fmt.Errorf("json: unterminated string at byte %d", i)
}

// jsonStringSpecial are the bytes that end the plain run of a JSON
// string: the quote, the backslash and control characters.
var jsonStringSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func unescapeJSON(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return "", errors.New("a lone backslash")
		}
		switch s[i] {
		case '"', '\\', '/':
			b.WriteByte(s[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", errors.New(`\u needs four hex digits`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s, i+3); ok && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
		default:
			return "", fmt.Errorf(`unknown escape \%c`, s[i])
		}
	}
	return b.String(), nil
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
