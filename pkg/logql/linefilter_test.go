package logql

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestLineFilters(t *testing.T) {
	lines := []string{
		`level=error msg="timeout talking to db" ip=10.1.2.3`,
		`level=info msg="GET /api 200" client=192.168.1.20:5432`,
		`level=warn msg="slow" peer=[2001:db8::1]:443`,
		`level=error msg="disk full"`,
		``,
	}
	for _, tc := range []struct {
		query string
		want  []int // indexes of the lines kept
	}{
		{`{a="b"} |= "error"`, []int{0, 3}},
		{`{a="b"} != "error"`, []int{1, 2, 4}},
		{`{a="b"} |= ""`, []int{0, 1, 2, 3, 4}},
		{`{a="b"} |= "timeout" or "disk"`, []int{0, 3}},
		{`{a="b"} != "timeout" or "disk"`, []int{1, 2, 4}},
		{`{a="b"} |~ "GET /\\w+ 2\\d\\d"`, []int{1}},
		{`{a="b"} !~ "level=(error|warn)"`, []int{1, 4}},
		{`{a="b"} |~ "slow"`, []int{2}},
		{`{a="b"} |> "level=<_> msg=<_>"`, []int{0, 1, 2, 3}},
		{`{a="b"} |> "<_> ip=<ip>"`, []int{0}},
		{`{a="b"} |> "level=error <_>"`, []int{0, 3}},
		{`{a="b"} |> "<_>full\""`, []int{3}},
		{`{a="b"} !> "<_> msg=\"slow\"<_>"`, []int{0, 1, 3, 4}},
		{`{a="b"} |> "level=error msg=\"disk full\""`, []int{3}},
		{`{a="b"} |> ""`, []int{4}},
		{`{a="b"} |> "<_>"`, []int{0, 1, 2, 3}},
		{`{a="b"} |> "<_>level=error msg=\"disk full\""`, nil},
		{`{a="b"} |> "level=<_>error<_>"`, nil},
		{`{a="b"} |= ip("10.0.0.0/8")`, []int{0}},
		{`{a="b"} |= ip("192.168.1.1-192.168.1.100")`, []int{1}},
		{`{a="b"} |= ip("2001:db8::/32")`, []int{2}},
		{`{a="b"} |= ip("10.1.2.3") or "disk"`, []int{0, 3}},
		{`{a="b"} != ip("10.0.0.0/8")`, []int{1, 2, 3, 4}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			e, err := Parse(tc.query)
			require.NoError(t, err)
			var keep []LineMatcher
			for _, s := range e.(*LogExpr).Pipeline {
				m, err := s.(*LineFilter).Compile()
				require.NoError(t, err)
				keep = append(keep, m)
			}
			var got []int
			for i, l := range lines {
				ok := true
				for _, m := range keep {
					ok = ok && m(l)
				}
				if ok {
					got = append(got, i)
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestLineFilterErrors(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{`{a="b"} |> "<a><b>"`, "two captures with nothing between them"},
		{`{a="b"} |= ip("not-an-ip")`, `ip("not-an-ip")`},
		{`{a="b"} |= ip("10.0.0.9-10.0.0.1")`, "the lower first"},
		{`{a="b"} |= ip("10.0.0.0/99")`, "10.0.0.0/99"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			e, err := Parse(tc.query)
			require.NoError(t, err)
			_, err = e.(*LogExpr).Pipeline[0].(*LineFilter).Compile()
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func BenchmarkLineFilterContains(b *testing.B) {
	e, _ := Parse(`{a="b"} |= "needle"`)
	m, _ := e.(*LogExpr).Pipeline[0].(*LineFilter).Compile()
	line := `level=info ts=2026-12-01T10:00:00Z caller=server.go:123 msg="request served" method=GET path=/api/v1/things status=200 duration=1.2ms`
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_ = m(line)
	}
}

// FuzzLineFilterValues: no pattern, IP specification or line crashes the
// matchers, and a pattern matches exactly the lines its regular expression
// (literals in order, each capture one byte or more) matches.
func FuzzLineFilterValues(f *testing.F) {
	f.Add("<_> error <_>", "10.0.0.0/8", "level=error ip=10.1.2.3:80")
	f.Add("a<x>b<y>c", "::1-::ff", "[::5]:443 abc")
	f.Fuzz(func(t *testing.T, pat, ip, line string) {
		if p, err := parsePattern(pat); err == nil {
			_ = p.matches(line)
			if !utf8.ValidString(pat) {
				return // no regular expression to compare with
			}
			var re strings.Builder
			re.WriteString("^(?s)")
			if p.leading {
				re.WriteString(".+")
			}
			for i, lit := range p.parts {
				if i > 0 {
					re.WriteString(".+")
				}
				re.WriteString(regexp.QuoteMeta(lit))
			}
			if p.trailing && len(p.parts) > 0 {
				re.WriteString(".+")
			}
			re.WriteString("$")
			require.Equal(t, regexp.MustCompile(re.String()).MatchString(line), p.matches(line), "pattern %q (%s) on %q", pat, re.String(), line)
		}
		if m, err := ipMatcher(ip); err == nil {
			_ = m(line)
		}
	})
}
