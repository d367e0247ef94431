package tempoapi

import (
	"fmt"
	"strconv"
	"strings"
)

// TagsToTraceQL converts the legacy tags parameter of /api/search — logfmt
// pairs such as `service.name=foo http.status_code=500 http.url="/a b"` —
// into the equivalent TraceQL spanset filter, all pairs on one span:
//
//	{ .service.name = "foo" && .http.status_code = 500 && .http.url = "/a b" }
//
// A key is an unscoped attribute (span or resource), quoted when it is not
// made of dot-separated words (`."a b"`), except for the legacy names of
// intrinsics: name (the span's name), root.name (trace:rootName),
// root.service.name (trace:rootService) and status.code (status, with
// the value ok, error or unset, or OTLP's 1, 2 or 0). A value is an
// integer, a float or true/false when it reads as one unquoted, and a
// string otherwise; a quoted value is always a string. Matching is
// TraceQL's: exact, where Tempo's legacy tag search matched substrings.
//
// An empty tags gives "{}". Errors (a pair without '=', a key given
// twice, an unterminated quote, a status that is not one) are the
// messages the API answers with 400.
func TagsToTraceQL(tags string) (string, error) {
	pairs, err := parseLogfmt(tags)
	if err != nil {
		return "", err
	}
	if len(pairs) == 0 {
		return "{}", nil
	}
	conds := make([]string, 0, len(pairs))
	seen := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		if seen[p.key] {
			return "", fmt.Errorf("tag %q is given twice", p.key)
		}
		seen[p.key] = true
		c, err := tagCondition(p)
		if err != nil {
			return "", err
		}
		conds = append(conds, c)
	}
	return "{ " + strings.Join(conds, " && ") + " }", nil
}

// logfmtPair is a key and value of a logfmt line; quoted says whether
// the value was written in quotes.
type logfmtPair struct {
	key, value string
	quoted     bool
}

// parseLogfmt reads space-separated key=value pairs; values may be
// double-quoted with Go escapes. A key is any run of characters other than
// space, '=' and '"'.
func parseLogfmt(s string) ([]logfmtPair, error) {
	var out []logfmtPair
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return out, nil
		}
		k := i
		for i < len(s) && !isSpace(s[i]) && s[i] != '=' && s[i] != '"' {
			i++
		}
		key := s[k:i]
		if key == "" {
			return nil, fmt.Errorf("expected a key at offset %d of %q", k, s)
		}
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("tag %q has no value (write %s=<value>)", key, key)
		}
		i++ // '='
		p := logfmtPair{key: key}
		if i < len(s) && s[i] == '"' {
			end := closingQuote(s, i)
			if end < 0 {
				return nil, fmt.Errorf("the value of tag %q has no closing quote", key)
			}
			v, err := strconv.Unquote(s[i : end+1])
			if err != nil {
				return nil, fmt.Errorf("the value of tag %q is not a valid quoted string: %v", key, err)
			}
			p.value, p.quoted = v, true
			i = end + 1
			if i < len(s) && !isSpace(s[i]) {
				return nil, fmt.Errorf("the quoted value of tag %q must be followed by a space", key)
			}
		} else {
			v := i
			for i < len(s) && !isSpace(s[i]) {
				i++
			}
			p.value = s[v:i]
		}
		out = append(out, p)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// closingQuote returns the index of the quote closing the one at open,
// or -1.
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

// tagCondition writes one pair as a TraceQL condition.
func tagCondition(p logfmtPair) (string, error) {
	switch p.key {
	case "name":
		return "name = " + strconv.Quote(p.value), nil
	case "root.name":
		return "trace:rootName = " + strconv.Quote(p.value), nil
	case "root.service.name":
		return "trace:rootService = " + strconv.Quote(p.value), nil
	case "status.code":
		st, ok := statusKeyword(p.value)
		if !ok {
			return "", fmt.Errorf("tag \"status.code\": %q is not a span status (ok, error or unset)", p.value)
		}
		return "status = " + st, nil
	}
	return attributeRef(p.key) + " = " + literal(p), nil
}

// statusKeyword reads a span status: its TraceQL name, or OTLP's code.
func statusKeyword(v string) (string, bool) {
	switch strings.ToLower(v) {
	case "unset", "0":
		return "unset", true
	case "ok", "1":
		return "ok", true
	case "error", "2":
		return "error", true
	}
	return "", false
}

// literal writes a value as a TraceQL static: unquoted integers, floats and
// booleans as such, anything else as a string.
func literal(p logfmtPair) string {
	if !p.quoted {
		switch p.value {
		case "true", "false":
			return p.value
		}
		if isDecimal(p.value) {
			if !strings.Contains(p.value, ".") {
				if n, err := strconv.ParseInt(p.value, 10, 64); err == nil {
					return strconv.FormatInt(n, 10)
				}
			} else if f, err := strconv.ParseFloat(p.value, 64); err == nil {
				s := strconv.FormatFloat(f, 'f', -1, 64)
				if !strings.Contains(s, ".") {
					s += ".0" // stays a float: 1.0 and 1 are different types
				}
				return s
			}
		}
	}
	return strconv.Quote(p.value)
}

// isDecimal reports whether s is an optional minus, digits and an optional
// fraction: what TraceQL reads as a number.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	return allDigits(whole) && (!dot || allDigits(frac))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// attributeRef writes an unscoped attribute reference: .name when the name
// is dot-separated words (letters, digits and '_', not starting with a
// digit), else ."name" quoted.
func attributeRef(name string) string {
	if isPlainName(name) {
		return "." + name
	}
	return "." + strconv.Quote(name)
}

func isPlainName(name string) bool {
	for part := range strings.SplitSeq(name, ".") {
		if part == "" || (part[0] >= '0' && part[0] <= '9') {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// v1TagName converts a tag name of the v1 tag values endpoint (a bare
// attribute name, as v1 lists them) into the TraceQL identifier the
// Backend reads: status.code, which Grafana asks v1 for, is the status
// intrinsic.
func v1TagName(name string) string {
	if name == "status.code" {
		return "status"
	}
	return attributeRef(name)
}
