package logql

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLogfmt(t *testing.T) {
	for _, tc := range []struct {
		line              string
		strict, keepEmpty bool
		want              []LogfmtPair
		err               string
	}{
		{line: `level=info msg="hello world" status=200`, want: []LogfmtPair{{"level", "info"}, {"msg", "hello world"}, {"status", "200"}}},
		{line: `a="esc \"q\" \\ \n" b=x`, want: []LogfmtPair{{"a", "esc \"q\" \\ \n"}, {"b", "x"}}},
		{line: "  spaced=1\tb=2  ", want: []LogfmtPair{{"spaced", "1"}, {"b", "2"}}},
		{line: `flag k= v=1`, want: []LogfmtPair{{"v", "1"}}},
		{line: `flag k= v=1`, keepEmpty: true, want: []LogfmtPair{{"flag", ""}, {"k", ""}, {"v", "1"}}},
		{line: `=oops a=1 "x"=y b=2`, want: []LogfmtPair{{"a", "1"}, {"b", "2"}}},
		{line: `=oops a=1`, strict: true, err: "a key is missing at byte 0"},
		{line: `a="unterminated b=1`, want: nil},
		{line: `a="unterminated b=1`, strict: true, err: "unterminated quoted value"},
		{line: `a=b=c`, strict: true, err: `unexpected '=' in the value of "a"`},
		{line: `a=b=c`, want: []LogfmtPair{{"a", "b=c"}}},
		{line: `ünï=✓ x.y=1`, want: []LogfmtPair{{"ünï", "✓"}, {"x.y", "1"}}},
		{line: ``, want: nil},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got, err := ParseLogfmt(tc.line, tc.strict, tc.keepEmpty, nil)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSanitizeLabelName(t *testing.T) {
	for in, want := range map[string]string{
		"level": "level", "x.y": "x_y", "k8s-pod": "k8s_pod", "1st": "_1st", "ünï": "_n_", "": "_", "a b": "a_b",
	} {
		require.Equal(t, want, SanitizeLabelName(in), in)
	}
}

func FuzzParseLogfmt(f *testing.F) {
	f.Add(`level=info msg="hello \"world\"" n=1 flag`)
	f.Add(`a="b`)
	f.Fuzz(func(t *testing.T, line string) {
		pairs, err := ParseLogfmt(line, false, true, nil)
		require.NoError(t, err, "without --strict nothing is an error")
		for _, p := range pairs {
			require.NotEmpty(t, p.Key)
			require.NotContains(t, p.Key, "=")
		}
		_, _ = ParseLogfmt(line, true, false, nil)
		_ = SanitizeLabelName(line)
	})
}

func BenchmarkParseLogfmt(b *testing.B) {
	line := `level=info ts=2026-12-01T10:00:00.123Z caller=server.go:123 msg="request served" method=GET path=/api/v1/things status=200 duration=1.2ms bytes=5123 user="jane doe"`
	b.SetBytes(int64(len(line)))
	var dst []LogfmtPair
	for b.Loop() {
		dst, _ = ParseLogfmt(line, false, false, dst[:0])
	}
}
