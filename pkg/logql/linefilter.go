package logql

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/grafana/regexp"
)

// LineMatcher says whether a log line passes a line filter.
type LineMatcher func(line string) bool

// Compile builds the matcher of a line filter. Its values are or-ed: a
// keeping filter (|=, |~, |>) keeps a line that any of them matches, a
// dropping one (!=, !~, !>) drops it.
func (f *LineFilter) Compile() (LineMatcher, error) {
	ms := make([]LineMatcher, len(f.Values))
	for i, v := range f.Values {
		m, err := compileValue(f.Op, v)
		if err != nil {
			return nil, err
		}
		ms[i] = m
	}
	any := ms[0]
	if len(ms) > 1 {
		any = func(line string) bool {
			for _, m := range ms {
				if m(line) {
					return true
				}
			}
			return false
		}
	}
	if f.Op[0] == '!' {
		return func(line string) bool { return !any(line) }, nil
	}
	return any, nil
}

// compileValue builds the positive matcher of one value of a filter.
func compileValue(op string, v FilterValue) (LineMatcher, error) {
	if v.IP {
		return ipMatcher(v.Value)
	}
	switch op[1] {
	case '=':
		s := v.Value
		return func(line string) bool { return strings.Contains(line, s) }, nil
	case '~':
		re, err := regexp.Compile(v.Value)
		if err != nil {
			return nil, fmt.Errorf("line filter %s %q: %v", op, v.Value, err)
		}
		if lit, complete := re.LiteralPrefix(); complete {
			return func(line string) bool { return strings.Contains(line, lit) }, nil
		}
		return re.MatchString, nil
	case '>':
		p, err := parsePattern(v.Value)
		if err != nil {
			return nil, fmt.Errorf("line filter %s %q: %v", op, v.Value, err)
		}
		return p.matches, nil
	}
	return nil, fmt.Errorf("unknown line filter %s", op)
}

// pattern is a line-filter pattern: literal parts between <_> (or <name>)
// captures, each capture matching any text. It matches a whole line.
type pattern struct {
	parts []string // literals; a capture stands between two consecutive parts
	// leading and trailing say whether the pattern starts or ends with a
	// capture.
	leading, trailing bool
}

func parsePattern(s string) (*pattern, error) {
	p := &pattern{}
	var lit strings.Builder
	lastWasCapture := false
	for i := 0; i < len(s); {
		if s[i] == '<' {
			if j := strings.IndexByte(s[i:], '>'); j > 1 && isCaptureName(s[i+1:i+j]) {
				if lastWasCapture {
					return nil, fmt.Errorf("two captures with nothing between them")
				}
				if i == 0 {
					p.leading = true
				}
				if lit.Len() > 0 {
					p.parts = append(p.parts, lit.String())
					lit.Reset()
				}
				lastWasCapture = true
				i += j + 1
				continue
			}
		}
		lit.WriteByte(s[i])
		lastWasCapture = false
		i++
	}
	p.trailing = lastWasCapture
	if lit.Len() > 0 {
		p.parts = append(p.parts, lit.String())
	}
	return p, nil
}

func isCaptureName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// matches says whether the whole line fits the pattern: each literal in
// order, the first at the start unless a capture leads, the last at the end
// unless a capture trails, each capture taking at least one byte of what
// lies between (as Loki's <_> matches non-empty text only). A pattern
// without captures matches the line equal to it.
func (p *pattern) matches(line string) bool {
	parts := p.parts
	if len(parts) == 0 {
		return (line != "") == p.leading
	}
	pos := 0 // line[:pos] is matched
	if !p.leading {
		if !strings.HasPrefix(line, parts[0]) {
			return false
		}
		pos, parts = len(parts[0]), parts[1:]
	}
	end := len(line) // line[end:] is matched
	if !p.trailing {
		if len(parts) == 0 {
			return pos == len(line)
		}
		last := parts[len(parts)-1]
		if !strings.HasSuffix(line, last) || len(line)-len(last) < pos {
			return false
		}
		end, parts = len(line)-len(last), parts[:len(parts)-1]
	}
	// Every remaining literal has a capture before it: place each at its
	// leftmost position after at least one byte, which leaves the most room
	// for the rest.
	for _, lit := range parts {
		if pos+1 > end {
			return false
		}
		i := strings.Index(line[pos+1:end], lit)
		if i < 0 {
			return false
		}
		pos += 1 + i + len(lit)
	}
	// The capture before the suffix (or the trailing one) is not empty.
	return end > pos
}

// ipMatcher matches lines holding an IP address within spec: one address,
// a CIDR prefix or a range "a-b".
func ipMatcher(spec string) (LineMatcher, error) {
	var in func(netip.Addr) bool
	switch {
	case strings.Contains(spec, "/"):
		pfx, err := netip.ParsePrefix(strings.TrimSpace(spec))
		if err != nil {
			return nil, fmt.Errorf("ip(%q): %v", spec, err)
		}
		in = pfx.Contains
	case strings.Contains(spec, "-"):
		lo, hi, _ := strings.Cut(spec, "-")
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() || b.Less(a) {
			return nil, fmt.Errorf("ip(%q): a range is two addresses of one family, the lower first", spec)
		}
		in = func(x netip.Addr) bool { return x.Is4() == a.Is4() && !x.Less(a) && !b.Less(x) }
	default:
		a, err := netip.ParseAddr(strings.TrimSpace(spec))
		if err != nil {
			return nil, fmt.Errorf("ip(%q): %v", spec, err)
		}
		in = func(x netip.Addr) bool { return x == a }
	}
	return func(line string) bool {
		for i := 0; i < len(line); {
			if !isIPChar(line[i]) {
				i++
				continue
			}
			j := i
			for j < len(line) && isIPChar(line[j]) {
				j++
			}
			tok := strings.Trim(line[i:j], ".:")
			a, err := netip.ParseAddr(tok)
			if err != nil && strings.Count(tok, ":") == 1 { // an IPv4 address and a port
				a, err = netip.ParseAddr(tok[:strings.IndexByte(tok, ':')])
			}
			if err == nil && in(a.Unmap()) {
				return true
			}
			i = j
		}
		return false
	}, nil
}

func isIPChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}
