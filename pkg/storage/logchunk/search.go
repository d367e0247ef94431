package logchunk

import "strings"

// Searching a chunk's lines section for a needle: strings.Index scans for
// the needle's first byte, and in log lines that byte is often one of the
// commonest ("s" of "status=500", a quote, a space), so it stops every few
// bytes to compare. searcher scans for the needle's rarest byte instead, by
// a fixed ranking of how common bytes are in logs, and compares the needle
// around each one it finds.

// byteRank ranks bytes by how often they occur in log lines, higher more
// often: letters by English text, digits and the punctuation of logfmt,
// JSON, access logs and paths above most letters, control bytes and bytes
// above 0x7f (parts of UTF-8 sequences) lowest.
var byteRank = func() (r [256]uint8) {
	for c := range 256 {
		switch {
		case c >= 'A' && c <= 'Z':
			r[c] = 100
		case c >= 0x20 && c < 0x7f:
			r[c] = 80 // other punctuation
		case c == '\t' || c == '\n':
			r[c] = 60
		default:
			r[c] = 10
		}
	}
	for i, c := range []byte("etaoinsrhldcumfpgwybvkxjqz") {
		r[c] = uint8(250 - 4*i) // e 250 … z 150
	}
	for i, c := range []byte("0123456789") {
		r[c] = uint8(235 - 3*i)
	}
	for c, rank := range map[byte]uint8{
		' ': 255, '"': 240, '=': 238, ':': 225, '.': 220, '/': 215, '-': 215, ',': 210, '_': 200,
		'{': 180, '}': 180, '[': 170, ']': 170, '(': 150, ')': 150, ';': 140, '\'': 150, '&': 130, '?': 130,
		'E': 140, 'T': 135, 'S': 135, 'A': 135, 'I': 130, 'O': 130, 'N': 130, 'R': 130, 'G': 130, 'P': 125, 'C': 125,
	} {
		r[c] = rank
	}
	return r
}()

// searcher finds one needle in lines sections.
type searcher struct {
	needle string
	rare   int // the offset in needle of its rarest byte
}

func newSearcher(needle string) searcher {
	s := searcher{needle: needle}
	for i := 1; i < len(needle); i++ {
		if byteRank[needle[i]] < byteRank[needle[s.rare]] {
			s.rare = i
		}
	}
	return s
}

// indexFrom is where the needle first occurs in s at or after i, or len(s).
func (sr *searcher) indexFrom(s string, i int) int {
	n, k := len(sr.needle), sr.rare
	if n <= 1 || sr.rare == 0 {
		if j := strings.Index(s[i:], sr.needle); j >= 0 {
			return i + j
		}
		return len(s)
	}
	c := sr.needle[k]
	for at := i + k; at < len(s); {
		j := strings.IndexByte(s[at:], c)
		if j < 0 {
			break
		}
		start := at + j - k
		if start+n > len(s) {
			break
		}
		if s[start:start+n] == sr.needle {
			return start
		}
		at += j + 1
	}
	return len(s)
}
