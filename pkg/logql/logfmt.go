package logql

import (
	"fmt"
	"strconv"
	"strings"
)

// LogfmtPair is one key and value a logfmt line holds.
type LogfmtPair struct {
	Key, Value string
}

// ParseLogfmt splits a logfmt line into its pairs, in order: key=value,
// key="quoted value" (Go escapes), and a bare key, whose value is empty and
// which is kept only with keepEmpty (logfmt --keep-empty), as are keys
// with an empty value. Strict (logfmt --strict) makes malformed input an
// error, naming where; otherwise what cannot be read is skipped to the next
// space. Values that need no unquoting share the line's memory.
func ParseLogfmt(line string, strict, keepEmpty bool, dst []LogfmtPair) ([]LogfmtPair, error) {
	i := 0
	for i < len(line) {
		for i < len(line) && logfmtBytes[line[i]]&lfSpace != 0 {
			i++
		}
		if i == len(line) {
			break
		}
		start := i
		for i < len(line) && logfmtBytes[line[i]]&lfKeyEnd == 0 {
			i++
		}
		key := line[start:i]
		if key == "" {
			if strict {
				return dst, fmt.Errorf("logfmt: a key is missing at byte %d", start)
			}
			i = skipToSpace(line, i+1)
			continue
		}
		if i == len(line) || line[i] != '=' {
			if i < len(line) && line[i] == '"' {
				if strict {
					return dst, fmt.Errorf("logfmt: unexpected quote in key %q at byte %d", key, i)
				}
				i = skipToSpace(line, i)
				continue
			}
			if keepEmpty {
				dst = append(dst, LogfmtPair{Key: key})
			}
			continue
		}
		i++ // =
		var value string
		if i < len(line) && line[i] == '"' {
			end := closingQuote(line, i)
			if end < 0 {
				if strict {
					return dst, fmt.Errorf("logfmt: unterminated quoted value of %q", key)
				}
				break
			}
			raw := line[i : end+1]
			if strings.IndexByte(raw, '\\') < 0 {
				value = raw[1 : len(raw)-1]
			} else {
				v, err := strconv.Unquote(raw)
				if err != nil {
					if strict {
						return dst, fmt.Errorf("logfmt: invalid quoted value of %q: %v", key, err)
					}
					i = skipToSpace(line, end+1)
					continue
				}
				value = v
			}
			i = end + 1
		} else {
			vs := i
			for i < len(line) && logfmtBytes[line[i]]&lfValueStop == 0 {
				i++
			}
			for i < len(line) && logfmtBytes[line[i]]&lfSpace == 0 { // a quote or '=' inside the value
				if strict && logfmtBytes[line[i]]&lfValueStop != 0 {
					return dst, fmt.Errorf("logfmt: unexpected %q in the value of %q at byte %d", line[i], key, i)
				}
				i++
			}
			value = line[vs:i]
		}
		if value != "" || keepEmpty {
			dst = append(dst, LogfmtPair{Key: key, Value: value})
		}
	}
	return dst, nil
}

// The classes of the bytes the logfmt scanner stops at, looked up in
// logfmtBytes: one table load a byte instead of a chain of comparisons.
const (
	lfSpace     = 1 << iota // ' ', '\t', '\n', '\r': ends a pair
	lfKeyEnd                // a control byte or space, '=' or '"': ends a key
	lfValueStop             // a space, '"' or '=': ends an unquoted value's fast scan
	lfLabel                 // '_', a letter or a digit: may stay in a label name
)

var logfmtBytes = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			t[c] |= lfSpace | lfValueStop
		case c == '"' || c == '=':
			t[c] |= lfValueStop
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			t[c] |= lfLabel
		}
		if c <= ' ' || c == '=' || c == '"' {
			t[c] |= lfKeyEnd
		}
	}
	return t
}()

func isLogfmtSpace(c byte) bool { return logfmtBytes[c]&lfSpace != 0 }

func skipToSpace(s string, i int) int {
	for i < len(s) && !isLogfmtSpace(s[i]) {
		i++
	}
	return i
}

// closingQuote is the index of the quote closing the one at s[open], or -1.
func closingQuote(s string, open int) int {
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// SanitizeLabelName makes an extracted key a label name as Loki does: every
// character that is not a letter, a digit or '_' becomes '_', and a name
// starting with a digit gets a leading '_'.
func SanitizeLabelName(key string) string {
	if validLabelName(key) {
		return key
	}
	return string(appendSanitized(nil, key))
}

// validLabelName says key is a label name as it is: letters, digits and
// underscores, not starting with a digit.
func validLabelName(key string) bool {
	if key == "" || key[0] >= '0' && key[0] <= '9' {
		return false
	}
	all := uint8(lfLabel)
	for i := 0; i < len(key); i++ {
		all &= logfmtBytes[key[i]]
	}
	return all != 0
}

// appendSanitized appends SanitizeLabelName(key) to dst.
func appendSanitized(dst []byte, key string) []byte {
	if validLabelName(key) {
		return append(dst, key...)
	}
	if key == "" || key[0] >= '0' && key[0] <= '9' {
		dst = append(dst, '_')
	}
	for _, r := range key { // one '_' a character, not a byte
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			dst = append(dst, byte(r))
		} else {
			dst = append(dst, '_')
		}
	}
	return dst
}
