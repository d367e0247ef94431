package logql

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// templateTS is 2023-11-14T22:13:20.123456789Z.
const templateTS = 1700000000123456789

func templateData() TemplateData {
	return TemplateData{
		Line:      `level=info msg="hello world"`,
		Timestamp: templateTS,
		Labels: labels.FromStrings(
			"level", "info", "msg", "hello world", "n", "42", "f", "3.5",
			"path", "/api/v1/users", "padded", "  10.0.0.1  ", "empty", "",
			"multi", "a\nb", "b64", "aGVsbG8=", "query", "a b&c=d", "arr", `[{"q":"up"},{"q":"rate"}]`,
			"size", "10 MB", "dur", "1m30s", "epoch", "1679577215", "created", "2021-11-02", "re", "o+", "bad_re", "(a",
		),
	}
}

func TestTemplate(t *testing.T) {
	fixedNow := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	local := func(tm time.Time, layout string) string { return tm.In(time.Local).Format(layout) }
	localDate, _ := time.ParseInLocation("2006-01-02", "2021-11-02", time.Local)

	for _, tc := range []struct {
		name, tmpl, want, err string
	}{
		{name: "text only", tmpl: "plain text", want: "plain text"},
		{name: "empty", tmpl: "", want: ""},
		{name: "label", tmpl: "{{.level}}: {{ .msg }}", want: "info: hello world"},
		{name: "missing label is empty", tmpl: "[{{.nope}}]", want: "[]"},
		{name: "missing label through a function", tmpl: "[{{.nope | upper}}]", want: "[]"},
		{name: "$ reads a label inside range", tmpl: `{{range fromJson .arr}}{{.q}}@{{$.level}} {{end}}`, want: "up@info rate@info "},
		{name: "dot inside with is the value", tmpl: `{{with fromJson .arr}}{{len .}}{{end}}`, want: "2"},
		{name: "if else on labels", tmpl: `{{ if contains "ErrTimeout" .msg }}timeout{{else if contains "he" .msg}}yes{{else}}no{{end}}`, want: "yes"},
		{name: "and or", tmpl: `{{ if and (contains "he" "hello") (hasPrefix "he" "hello") (not (hasSuffix "x" "hello")) }}a{{end}}{{ if or false (eq .level "info") }}b{{end}}`, want: "ab"},
		{name: "comparisons", tmpl: `{{ ne .level "warn" }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 3 2 }}`, want: "true true true false true"},
		{name: "len index print println", tmpl: `{{ len .msg }} {{ index (fromJson .arr) 1 }} {{ print "a" 1 }} {{ println "b" }}`, want: "11 map[q:rate] a1 b\n"},
		{name: "printf of a long operand", tmpl: `{{ printf "%.3s|%d" (repeat 3000000 "x") (len (repeat 3000000 "y")) }}`, want: "xxx|3000000"},
		{name: "printf", tmpl: `{{ printf "%-6.6s|%5.1f|%d" .level 3.14159 7 }}`, want: "info  |  3.1|7"},
		{name: "variables", tmpl: `{{ $l := .level }}{{ $l = upper $l }}{{ $l }}`, want: "INFO"},

		{name: "__line__", tmpl: "{{ __line__ }}", want: `level=info msg="hello world"`},
		{name: "__line__ as an argument", tmpl: "{{ upper __line__ }}", want: `LEVEL=INFO MSG="HELLO WORLD"`},
		{name: "__timestamp__", tmpl: "{{ __timestamp__ | unixEpochNanos }}", want: "1700000000123456789"},
		{name: "__timestamp__ printed", tmpl: "{{ __timestamp__ }}", want: time.Unix(0, templateTS).String()},

		{name: "ToLower ToUpper", tmpl: `{{ ToLower "AbC" }}{{ ToUpper .level }}`, want: "abcINFO"},
		{name: "Replace", tmpl: `{{ Replace .path "/" "_" 2 }}`, want: "_api_v1/users"},
		{name: "Trim TrimLeft TrimRight", tmpl: `{{ Trim "xxaxx" "x" }} {{ TrimLeft "xxaxx" "x" }} {{ TrimRight "xxaxx" "x" }}`, want: "a axx xxa"},
		{name: "TrimPrefix TrimSuffix TrimSpace", tmpl: `{{ TrimPrefix .path "/api" }} {{ TrimSuffix .path "/users" }} [{{ TrimSpace .padded }}]`, want: "/v1/users /api/v1 [10.0.0.1]"},

		{name: "lower upper", tmpl: `{{ lower "HELLO" }} {{ .level | upper }}`, want: "hello INFO"},
		{name: "title", tmpl: `{{ title "hello wORLD foo_bar x-y" }}`, want: "Hello WORLD Foo_bar X-Y"},
		{name: "trunc", tmpl: `{{ trunc 5 "hello world" }}|{{ trunc -5 "hello world" }}|{{ trunc 20 "hi" }}|{{ trunc 2 "héllo" }}|{{ .n | trunc 1 }}`, want: "hello|world|hi|hé|4"},
		{name: "trunc with a label count", tmpl: `{{ trunc .n "short" }}`, want: "short"},
		{name: "substr", tmpl: `{{ substr 0 5 "hello world" }}|{{ substr 6 11 "hello world" }}|{{ substr -1 2 "hello" }}|{{ substr 3 -1 "hello" }}|{{ substr 4 2 "hello" }}|{{ substr 1 3 "héllo" }}|{{ .path | substr 1 4 }}`, want: "hello|world|he|lo||él|api"},
		{name: "replace", tmpl: `{{ .path | replace "/" "_" }} {{ replace "hello" "world" "hello world" }}`, want: "_api_v1_users world world"},
		{name: "trim", tmpl: `[{{ .padded | trim }}]`, want: "[10.0.0.1]"},
		{name: "trimAll", tmpl: `{{ trimAll "$" "$5.00$" }} {{ .path | trimAll "/" }}`, want: "5.00 api/v1/users"},
		{name: "trimPrefix trimSuffix", tmpl: `{{ trimPrefix "-" "-hello" }} {{ .path | trimSuffix "/users" }}`, want: "hello /api/v1"},
		{name: "indent", tmpl: `{{ indent 2 .multi }}`, want: "  a\n  b"},
		{name: "nindent", tmpl: `{{ nindent 2 .multi }}`, want: "\n  a\n  b"},
		{name: "repeat", tmpl: `{{ repeat 3 "ab" }}`, want: "ababab"},
		{name: "alignLeft", tmpl: `{{ alignLeft 5 "hello world" }}|{{ alignLeft 5 "hi" }}|`, want: "hello|hi   |"},
		{name: "alignRight", tmpl: `{{ alignRight 5 "hello world" }}|{{ alignRight 5 "hi" }}|`, want: "world|   hi|"},
		{name: "contains hasPrefix hasSuffix", tmpl: `{{ contains "wor" .msg }} {{ hasPrefix "/api" .path }} {{ hasSuffix "x" .path }}`, want: "true true false"},
		{name: "default", tmpl: `{{ .empty | default "-" }} {{ .level | default "-" }} {{ default "-" .nope }} {{ default "d" }}`, want: "- info - d"},
		{name: "urlencode urldecode", tmpl: `{{ .query | urlencode }} {{ urldecode "a+b%26c" }}`, want: "a+b%26c%3Dd a b&c"},
		{name: "b64enc b64dec", tmpl: `{{ b64enc "hello" }} {{ .b64 | b64dec }}`, want: "aGVsbG8= hello"},
		{name: "fromJson", tmpl: `{{ fromJson "{\"foo\": 55}" }}|{{ fromJson "not json" }}|{{ (fromJson "{\"a\":{\"b\":\"c\"}}").a.b }}`, want: "map[foo:55]||c"},
		{name: "bytes", tmpl: `{{ .size | bytes }} {{ bytes "1KiB" }} {{ bytes "1,024 kb" }} {{ bytes "42" }} {{ bytes "1.5 gb" }}`, want: "1e+07 1024 1.024e+06 42 1.5e+09"},
		{name: "duration duration_seconds", tmpl: `{{ .dur | duration }} {{ duration_seconds "1.5s" }} {{ duration "2d" }} {{ duration "250ms" }}`, want: "90 1.5 172800 0.25"},

		{name: "regexReplaceAll", tmpl: `{{ regexReplaceAll "(a*)bc" "xaabcy" "${1}Z" }} {{ regexReplaceAll .re "foo bar" "0" }}`, want: "xaaZy f0 bar"},
		{name: "regexReplaceAllLiteral", tmpl: `{{ regexReplaceAllLiteral "(ts=)" "ts=1 ts=2" "$1" }}`, want: "$11 $12"},
		{name: "count", tmpl: `{{ count "a|b" "abab" }} {{ __line__ | count "o" }}`, want: "4 3"},

		{name: "date", tmpl: `{{ date "2006-01-02 15:04:05.000" __timestamp__ }}`, want: local(time.Unix(0, templateTS), "2006-01-02 15:04:05.000")},
		{name: "date of Unix seconds", tmpl: `{{ date "2006-01-02" 1635811200 }}`, want: local(time.Unix(1635811200, 0), "2006-01-02")},
		{name: "toDate", tmpl: `{{ toDate "2006-01-02" .created | unixEpoch }}`, want: strconv.FormatInt(localDate.Unix(), 10)},
		{name: "toDateInZone", tmpl: `{{ .created | toDateInZone "2006-01-02" "UTC" | unixEpoch }} {{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpochMillis }}`, want: "1635811200 1635811200000"},
		{name: "now", tmpl: `{{ now | unixEpoch }}`, want: "1767323045"},
		{name: "unixToTime", tmpl: `{{ unixToTime .epoch | unixEpoch }} {{ unixToTime "19000" | unixEpoch }} {{ unixToTime "1679577215123" | unixEpochMillis }} {{ unixToTime "1679577215123456" | unixEpochNanos }} {{ unixToTime "1679577215123456789" | unixEpochNanos }}`, want: "1679577215 1641600000 1679577215123 1679577215123456000 1679577215123456789"},
		{name: "Loki's epoch difference example", tmpl: `{{ sub (unixEpoch now) (unixEpoch (toDateInZone "2006-01-02" "UTC" .created)) }}`, want: "131511845"},

		{name: "add sub mul div mod", tmpl: `{{ add 3 2 5 }} {{ sub 5 2 }} {{ mul 5 2 3 }} {{ div 10 3 }} {{ mod 10 3 }} {{ add }}`, want: "10 3 30 3 1 0"},
		{name: "integers from labels", tmpl: `{{ add .n 1 }} {{ .n | sub 50 }} {{ mul .f 2 }} {{ add "0x10" 0 }}`, want: "43 8 6 16"},
		{name: "addf subf mulf divf", tmpl: `{{ addf 3.5 2 5 }} {{ addf 0.1 0.2 }} {{ subf 5.5 2 1.5 }} {{ mulf 5.5 2 2.5 }} {{ mulf 1.1 1.1 }} {{ divf 10 2 4 }} {{ addf .f .n }}`, want: "10.5 0.3 2 27.5 1.21 1.25 45.5"},
		{name: "max min maxf minf", tmpl: `{{ max 1 3 2 }} {{ min 3 1 2 }} {{ maxf 1 2.5 3 }} {{ minf 1.5 2.5 3 }} {{ max .n 7 }}`, want: "3 1 3 1.5 42"},
		{name: "ceil floor round", tmpl: `{{ ceil 123.001 }} {{ floor 123.9999 }} {{ round 123.555555 3 }} {{ round 123.88571428571 5 .2 }} {{ round -2.5 0 }} {{ .f | ceil }}`, want: "124 123 123.556 123.88572 -3 4"},
		{name: "int float64", tmpl: `{{ "3" | int }} {{ int .f }} {{ "3.5" | float64 }} {{ float64 .n }}`, want: "3 3 3.5 42"},

		{name: "not a number", tmpl: `{{ add .level 1 }}`, err: `template line 1:3: at <add .level 1>: error calling add: "info" is not a number`},
		{name: "missing label is not a number", tmpl: `{{ .nope | int }}`, err: `"" is not a number`},
		{name: "division by zero", tmpl: `{{ div 1 0 }}`, err: "error calling div: division by zero"},
		{name: "float division by zero", tmpl: `{{ divf 1 0 }}`, err: "error calling divf: division by zero"},
		{name: "bad regexp from a label", tmpl: `{{ regexReplaceAll .bad_re "x" "y" }}`, err: "error calling regexReplaceAll: error parsing regexp: missing closing )"},
		{name: "bad base64", tmpl: `{{ b64dec "%%" }}`, err: "invalid base64"},
		{name: "bad url escape", tmpl: `{{ urldecode "%zz" }}`, err: `invalid URL escape "%zz"`},
		{name: "bad byte size", tmpl: `{{ bytes "10 parsecs" }}`, err: `invalid byte size "10 parsecs": unknown unit`},
		{name: "bad duration", tmpl: `{{ duration .level }}`, err: `invalid duration "info"`},
		{name: "bad date", tmpl: `{{ toDate "2006-01-02" .level }}`, err: `cannot parse "info"`},
		{name: "bad time zone", tmpl: `{{ toDateInZone "2006" "Mars/Olympus" "2021" }}`, err: "unknown time zone Mars/Olympus"},
		{name: "bad Unix time", tmpl: `{{ unixToTime "123" }}`, err: `invalid Unix time "123": want 5 digits`},
		{name: "date of a string", tmpl: `{{ date "2006" .created }}`, err: "string is not a time"},
		{name: "wrong argument type", tmpl: `{{ lower 5 }}`, err: "at <5>: expected string; found 5"},
		{name: "field of a label", tmpl: `{{ .level.x }}`, err: "can't evaluate field x in type string"},
		{name: "repeat past the limit", tmpl: `{{ repeat 100000000 "ab" }}`, err: "the result would be more than the limit of 4194304 bytes"},
		{name: "doubling past the limit", tmpl: `{{ $x := __line__ }}{{ range 40 }}{{ $x = print $x $x }}{{ end }}`, err: "error calling print: the result would be"},
		{name: "printf past the limit", tmpl: `{{ printf "%[1]s%[1]s" (repeat 3000000 "x") }}`, err: "error calling printf: the result would be more than the limit"},
		{name: "html past the limit", tmpl: `{{ html (repeat 1000000 "<") }}`, err: "error calling html: the result would be more than the limit"},
		{name: "output past the limit", tmpl: `{{ range 5000 }}{{ repeat 1000 "x" }}{{ end }}`, err: "the output is longer than the limit of 4194304 bytes"},
		{name: "range past the limit", tmpl: `{{ range 3000 }}{{ range 4 }}{{ end }}{{ end }}`, err: "at <range>: error calling range: the range loops go over more than 10000 items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := CompileTemplate(tc.tmpl)
			require.NoError(t, err)
			tm.now = func() time.Time { return fixedNow }
			got, err := tm.Execute([]byte("dst:"), templateData())
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Equal(t, "dst:", string(got), "on an error dst is returned as it was")
				return
			}
			require.NoError(t, err)
			require.Equal(t, "dst:"+tc.want, string(got))
		})
	}
}

func TestCompileTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ name, tmpl, err string }{
		{"unknown function", "{{ foo .level }}", `invalid template: line 1: function "foo" not defined`},
		{"unclosed action", "ok\n{{ .level", "invalid template: line 2: unclosed action"},
		{"unexpected end", "{{ if .level }}x", "invalid template: line 1: unexpected EOF"},
		{"bad constant regexp", `{{ regexReplaceAll "(a" .msg "x" }}`, "invalid template: regexReplaceAll: error parsing regexp: missing closing ): `(a`"},
		{"define", `{{ define "x" }}y{{ end }}`, `invalid template: {{define}} and {{block}} are not supported ("x")`},
		{"template", `{{ if true }}{{ template "x" }}{{ end }}`, "invalid template: {{template}} is not supported"},
		{"$ redeclared", `{{ $ := 1 }}{{ .level }}`, "invalid template: $ cannot be declared or assigned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileTemplate(tc.tmpl)
			require.EqualError(t, err, tc.err)
		})
	}
}

// TestTemplateSimple checks which templates are rendered without
// text/template, and that they render as text/template does.
func TestTemplateSimple(t *testing.T) {
	for _, tc := range []struct {
		tmpl   string
		simple bool
	}{
		{"", true},
		{"text", true},
		{"{{.level}} {{ $.msg }} {{__line__}}", true},
		{"{{- .level -}} :: {{.nope}}", true},
		{"{{ .level | upper }} {{ __line__ | replace \"=\" \": \" | trimPrefix \"level\" }}", true},
		{"{{ trimPrefix \"/api\" .path }} {{ lower __line__ | ToUpper }} {{ Trim \"x\" .level }}", true},
		{"{{ regexReplaceAll \"o+\" .msg \"0\" }}", false},
		{"{{ .b64 | b64dec }} {{ .msg | b64dec }}", true},
		{"{{ .path | regexReplaceAll .re \"x\" }}", false},
		{"{{ .path | trunc 3 }}", false},
		{"{{ .path | contains \"a\" }}", false},
		{"{{ upper .level .msg }}", false},
		{"{{ .level.x }}", false},
		{"{{.}}", false},
		{"{{__timestamp__}}", false},
		{"{{$x := .level}}", false},
		{"{{ if .level }}x{{ end }}", false},
	} {
		tm, err := CompileTemplate(tc.tmpl)
		require.NoError(t, err)
		require.Equal(t, tc.simple, tm.simple != nil, tc.tmpl)
		requireSameAsTextTemplate(t, tm, templateData())
	}
}

// requireSameAsTextTemplate checks that a simple template renders as
// text/template renders it.
func requireSameAsTextTemplate(t *testing.T, tm *Template, d TemplateData) {
	if tm.simple == nil {
		return
	}
	want, wantErr := tm.Execute([]byte("dst"), d)
	tm.simple = nil
	got, err := tm.Execute([]byte("dst"), d)
	if wantErr != nil || err != nil {
		require.Error(t, err, "text/template's error")
		require.EqualError(t, wantErr, err.Error())
	}
	require.Equal(t, string(got), string(want))
}

func TestTemplateDot(t *testing.T) {
	tm, err := CompileTemplate("{{ . }}")
	require.NoError(t, err)
	got, err := tm.Execute(nil, TemplateData{Labels: labels.FromStrings("b", "2", "a", "x y")})
	require.NoError(t, err)
	require.Equal(t, "map[a:x y b:2]", string(got), "as Loki prints its map of labels")
}

func TestTemplateConcurrent(t *testing.T) {
	tm, err := CompileTemplate(`{{ .n }} {{ regexReplaceAll .re __line__ "_" }} {{ __timestamp__ | unixEpoch }}`)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := strconv.Itoa(g*1000 + i)
				d := TemplateData{Line: "foo boo", Timestamp: int64(i) * 1e9, Labels: labels.FromStrings("n", n, "re", "o+")}
				got, err := tm.Execute(nil, d)
				if err != nil || string(got) != n+" f_ b_ "+strconv.Itoa(i) {
					t.Errorf("got %q, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzCompileTemplate(f *testing.F) {
	f.Add(`{{.level}} {{.msg | ToUpper}} {{__line__}}`, `level=info`)
	f.Add(`{{ range $i, $e := fromJson __line__ }}{{$i}}={{$e}}{{else}}-{{end}}`, `[1,"a",{"b":2}]`)
	f.Add(`{{ regexReplaceAll "a+" __line__ "$0$0" | trunc 10 }}`, `aabaa`)
	f.Add(`{{ with $x := .nope }}{{ $x }}{{ else }}{{ printf "%v" . }}{{ end }}`, ``)
	f.Add(`{{ add .n 1 | mulf 1.5 | round 1 }}{{ substr 1 3 .msg }}`, `x`)
	f.Add(`{{ .msg | replace "a" "b" | b64dec }}{{ trimAll "x" __line__ }}`, `xax`)
	f.Fuzz(func(t *testing.T, text, line string) {
		tm, err := CompileTemplate(text)
		if err != nil {
			return
		}
		d := TemplateData{Line: line, Timestamp: templateTS, Labels: labels.FromStrings("level", "info", "msg", line, "n", "7")}
		got, err := tm.Execute([]byte("dst"), d)
		if err != nil {
			require.NotContains(t, err.Error(), "internal error")
			require.Equal(t, "dst", string(got))
			requireSameAsTextTemplate(t, tm, d)
			return
		}
		require.LessOrEqual(t, len(got), 3+maxTemplateOutput)
		requireSameAsTextTemplate(t, tm, d)
	})
}

// benchmarkLabels are the labels of an entry after a json or logfmt stage.
func benchmarkLabels() labels.Labels {
	return labels.FromStrings(
		"app", "api", "cluster", "eu-west-1", "namespace", "prod", "pod", "api-7d9f8b6c5-x2k4q",
		"level", "info", "msg", "request served", "method", "GET", "path", "/api/v1/things",
		"status", "200", "duration", "1.2ms", "bytes", "5123", "user", "jane",
	)
}

// BenchmarkTemplateExecute renders templates: "typical" and "simple" are
// rendered without text/template, the others with it.
func BenchmarkTemplateExecute(b *testing.B) {
	const typical = `{{.level}} {{.msg | ToUpper}} {{__line__}}`
	d := TemplateData{Line: `level=info msg="request served" method=GET`, Timestamp: templateTS, Labels: benchmarkLabels()}
	for _, bc := range []struct{ name, tmpl string }{
		{"typical", typical},
		{"simple", `{{.level}}: {{.msg}} {{__line__}}`},
		{"text_template", `{{ if eq .level "info" }}{{ .msg | ToUpper }}{{ end }} {{ __line__ | trunc 20 }}`},
		{"regexp", `{{ regexReplaceAll "(\\w+)=" __line__ "${1}:" }}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tm, err := CompileTemplate(bc.tmpl)
			require.NoError(b, err)
			b.ReportAllocs()
			var dst []byte
			for b.Loop() {
				if dst, err = tm.Execute(dst[:0], d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The alternative: text/template executed on a map of the labels built
	// for every entry, as Loki does (the map reused, not reallocated).
	b.Run("map_per_entry", func(b *testing.B) {
		var line string
		tm := template.Must(template.New("").Option("missingkey=zero").Funcs(template.FuncMap{
			"ToUpper": strings.ToUpper, "__line__": func() string { return line },
		}).Parse(typical))
		b.ReportAllocs()
		var buf bytes.Buffer
		m := map[string]string{}
		for b.Loop() {
			buf.Reset()
			clear(m)
			d.Labels.Range(func(l labels.Label) { m[l.Name] = l.Value })
			line = d.Line
			if err := tm.Execute(&buf, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
