package logql

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseCanonical: each query parses, prints in its canonical form, and
// that form parses to the same print (format_query's round trip).
func TestParseCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{app="api"}`, `{app="api"}`},
		{`{app="api",env=~"prod|stage", pod!="x", ns!~"kube-.*"}`, `{app="api", env=~"prod|stage", pod!="x", ns!~"kube-.*"}`},
		{"{app=`raw\\str`}", `{app="raw\\str"}`},
		{`{app="api"} |= "error" != "timeout" |~ "5\\d\\d" !~ "ok" |> "<_> failed" !> "x"`, `{app="api"} |= "error" != "timeout" |~ "5\\d\\d" !~ "ok" |> "<_> failed" !> "x"`},
		{`{app="api"} |= "a" or "b" or ip("10.0.0.0/8")`, `{app="api"} |= "a" or "b" or ip("10.0.0.0/8")`},
		{`{app="api"} | json`, `{app="api"} | json`},
		{`{app="api"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]"`, `{app="api"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]"`},
		{`{app="api"} | logfmt --strict --keep-empty level, msg="message"`, `{app="api"} | logfmt --strict --keep-empty level, msg="message"`},
		{`{app="api"} | regexp "(?P<method>\\w+) (?P<path>\\S+)"`, `{app="api"} | regexp "(?P<method>\\w+) (?P<path>\\S+)"`},
		{`{app="api"} | pattern "<ip> - <_> \"<method> <uri>\""`, `{app="api"} | pattern "<ip> - <_> \"<method> <uri>\""`},
		{`{app="api"} | unpack | decolorize`, `{app="api"} | unpack | decolorize`},
		{`{app="api"} | logfmt | status >= 400 and duration > 1.5s or size < 10KB`, `{app="api"} | logfmt | status>=400 and duration>1.5s or size<10KB`},
		{`{app="api"} | logfmt | (status=500 or status=503), level="error" user!~"bot.*"`, `{app="api"} | logfmt | (status==500 or status==503) and level="error" and user!~"bot.*"`},
		{`{app="api"} | json | latency_ms > -1 | __error__=""`, `{app="api"} | json | latency_ms>-1 | __error__=""`},
		{`{app="api"} | line_format "{{.level}}: {{.msg}}" | label_format lvl=level, who="{{.user}}"`, `{app="api"} | line_format "{{.level}}: {{.msg}}" | label_format lvl=level, who="{{.user}}"`},
		{`{app="api"} | logfmt | drop level, method="GET" | keep status, path`, `{app="api"} | logfmt | drop level, method="GET" | keep status, path`},
		{`rate({app="api"} |= "error" [5m])`, `rate({app="api"} |= "error" [5m])`},
		{`count_over_time({app="api"}[1h] | json)`, `count_over_time({app="api"} | json [1h])`},
		{`bytes_rate({app="api"}[30s] offset 1h)`, `bytes_rate({app="api"} [30s] offset 1h)`},
		{`sum by (path) (rate({app="api"} | json [1m]))`, `sum by (path) (rate({app="api"} | json [1m]))`},
		{`sum(count_over_time({app="api"}[5m])) without (pod)`, `sum without (pod) (count_over_time({app="api"} [5m]))`},
		{`quantile_over_time(0.99, {app="api"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (path)`, `quantile_over_time(0.99, {app="api"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (path)`},
		{`sum_over_time({app="api"} | json | unwrap bytes(size) [1m])`, `sum_over_time({app="api"} | json | unwrap bytes(size) [1m])`},
		{`avg_over_time({app="api"} | logfmt | unwrap latency [1m]) without (pod)`, `avg_over_time({app="api"} | logfmt | unwrap latency [1m]) without (pod)`},
		{`topk(5, sum by (path) (rate({app="api"}[5m])))`, `topk(5, sum by (path) (rate({app="api"} [5m])))`},
		{`sort_desc(sum(rate({app="api"}[5m])))`, `sort_desc(sum(rate({app="api"} [5m])))`},
		{`sum(rate({app="a"}[1m])) / sum(rate({app="b"}[1m])) * 100`, `sum(rate({app="a"} [1m])) / sum(rate({app="b"} [1m])) * 100`},
		{`sum(rate({app="a"}[1m])) > bool 10`, `sum(rate({app="a"} [1m])) > bool 10`},
		{`sum by (pod) (rate({app="a"}[1m])) / on (pod) group_left (node) sum by (pod, node) (rate({app="b"}[1m]))`, `sum by (pod) (rate({app="a"} [1m])) / on (pod) group_left (node) sum by (pod, node) (rate({app="b"} [1m]))`},
		{`rate({app="a"}[1m]) or vector(0)`, `rate({app="a"} [1m]) or vector(0)`},
		{`2 ^ 3 ^ 2`, `2 ^ 3 ^ 2`},
		{`-(1 + 2)`, `-(1 + 2)`},
		{`1 - -1`, `1 - -1`},
		{`label_replace(rate({app="a"}[1m]), "dst", "$1", "src", "(.*)")`, `label_replace(rate({app="a"} [1m]), "dst", "$1", "src", "(.*)")`},
		{`absent_over_time({app="gone"}[10m])`, `absent_over_time({app="gone"} [10m])`},
		{"{app=\"api\"} # a comment\n |= \"x\"", `{app="api"} |= "x"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			e, err := Parse(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, e.String())
			again, err := Parse(e.String())
			require.NoError(t, err, "the canonical form parses")
			require.Equal(t, tc.want, again.String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "unexpected end of query"},
		{`{}`, "at least one matcher"},
		{`{app=~".*"}`, "at least one matcher"},
		{`{app="a"`, `expected "}" or ","`},
		{`{app=="a"}`, "expected =, !=, =~ or !~"},
		{`{app=~"("}`, "invalid regular expression"},
		{`{app="a"} |= 5`, "a quoted string after |="},
		{`{app="a"} | nosuchstage`, "unknown stage"},
		{`{app="a"} | status > "x"`, "compares numbers"},
		{`{app="a"} | unwrap x`, "only for range aggregations"},
		{`rate({app="a"})`, "needs a range"},
		{`rate({app="a"}[0s])`, "the range must be positive"},
		{`sum_over_time({app="a"}[5m])`, "needs an unwrapped label"},
		{`count_over_time({app="a"} | unwrap x [5m])`, "takes no unwrap"},
		{`rate({app="a"}[5m]) by (x)`, "takes no by/without"},
		{`sum({app="a"})`, "aggregates a metric query"},
		{`topk({app="a"})`, `"," after topk`},
		{`1 + bool 2`, "bool is only for comparison operators"},
		{`{app="a"} |= "x" extra`, "after the end of the expression"},
		{"{app=\"a\xff\"}", "not valid UTF-8"},
		{`{app="unterminated}`, "unterminated string"},
		{`rate({app="a"}[5parsecs])`, "neither a number, a duration nor a byte size"},
		{`{app="a"} | regexp "("`, "invalid regular expression"},
		{`label_replace(vector(1), "d", "r", "s", "(")`, "invalid regular expression"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			require.Error(t, err)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := Parse(`{app="a"} |= 5`)
	var pe *Error
	require.True(t, errors.As(err, &pe))
	require.Equal(t, 13, pe.Pos, "the position of the offending token")
}

func TestParseDepthIsBounded(t *testing.T) {
	q := ""
	for range 10_000 {
		q += "("
	}
	_, err := Parse(q + "1")
	require.ErrorContains(t, err, "nests deeper than")
}

// FuzzParse: no query crashes the parser, and what parses prints to a form
// that parses and prints the same (format_query's round trip).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{app="api"} |= "error" | json | status >= 400 | line_format "{{.msg}}"`,
		`sum by (path) (rate({app="api"} | logfmt | unwrap duration(latency) [5m]))`,
		`topk(3, sum(count_over_time({a="b"}[1m]))) / on (x) group_left sum(rate({c="d"}[1m]))`,
		`quantile_over_time(0.5, {a="b"} | json | unwrap bytes(size) | __error__="" [1m]) by (x)`,
		`{a="b"} | logfmt --strict | (x="1" or y!~"z") , w > 1.5s | drop q, r="s" | label_format a=b, c="{{.d}}"`,
		`label_replace(vector(1), "a", "b", "c", "(.*)") or -2 ^ 3`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		e, err := Parse(q)
		if err != nil {
			return
		}
		s := e.String()
		again, err := Parse(s)
		require.NoError(t, err, "canonical form %q of %q", s, q)
		require.Equal(t, s, again.String(), "of %q", q)
	})
}
