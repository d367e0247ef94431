package logchunk

import (
	"strings"
	"testing"
)

// FuzzSearcher: the rare-byte search finds what strings.Index finds, from
// any starting point.
func FuzzSearcher(f *testing.F) {
	f.Add("level=info status=500 msg=ok status=500", "status=500", 3)
	f.Add("aaaaab", "ab", 0)
	f.Add("x", "xy", 0)
	f.Add("\"GET / HTTP/1.1\" 500 12", "\" 500 ", 1)
	f.Fuzz(func(t *testing.T, s, needle string, from int) {
		if needle == "" || from < 0 || from > len(s) {
			return
		}
		sr := newSearcher(needle)
		want := len(s)
		if i := strings.Index(s[from:], needle); i >= 0 {
			want = from + i
		}
		if got := sr.indexFrom(s, from); got != want {
			t.Fatalf("indexFrom(%q, %d) for %q = %d, want %d (rare byte at %d)", s, from, needle, got, want, sr.rare)
		}
	})
}
