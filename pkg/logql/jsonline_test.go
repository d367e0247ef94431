package logql

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func parseJSONMap(t testing.TB, line string) (map[string]string, error) {
	out := map[string]string{}
	err := ParseJSONLine(line, func(k, v string) { out[k] = v })
	return out, err
}

func TestParseJSONLine(t *testing.T) {
	got, err := parseJSONMap(t, `{"level":"info","status":200,"ok":true,"gone":null,"req":{"method":"GET","headers":{"User-Agent":"curl\/8 \u00e9\ud83d\ude00"}},"tags":["a","b"],"1x":-1.5e3,"empty":"","nested":{}}`)
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"level": "info", "status": "200", "ok": "true",
		"req_method": "GET", "req_headers_User_Agent": "curl/8 é😀",
		"_1x": "-1.5e3", "empty": "",
	}, got)

	for line, want := range map[string]string{
		``:                   "not a JSON object",
		`[1]`:                "not a JSON object",
		`{"a":1`:             `the line ends where "," or "}" should be`,
		`{"a":tru}`:          `invalid value "tru"`,
		`{"a":"x\q"}`:        `unknown escape \q`,
		`{"a":"unterminated`: "unterminated string",
		`{"a":1} trailing`:   "after the object",
		`{a:1}`:              "a key in quotes",
		`{"a":[1,}`:          "invalid value",
		`{"a":01}`:           "invalid value",
	} {
		_, err := parseJSONMap(t, line)
		require.ErrorContains(t, err, want, line)
	}
}

// flattenLikeLoki flattens what encoding/json decoded, as ParseJSONLine
// does, for the differential fuzz test.
func flattenLikeLoki(prefix string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := SanitizeLabelName(k)
			if prefix != "" {
				p = prefix + "_" + p
			}
			flattenLikeLoki(p, x, out)
		}
	case string:
		out[prefix] = v
	case json.Number:
		out[prefix] = string(v)
	case bool:
		if v {
			out[prefix] = "true"
		} else {
			out[prefix] = "false"
		}
	}
}

// FuzzParseJSONLine checks the line parser against encoding/json: it
// accepts no line encoding/json refuses, and extracts the same fields from
// every object line of valid UTF-8 with distinct keys.
func FuzzParseJSONLine(f *testing.F) {
	f.Add(`{"a":{"b":[1,{"c":2}],"d":"e\u00e9"},"f":null,"g":-0.5e-3}`)
	f.Add(`{"k":"v"}`)
	f.Fuzz(func(t *testing.T, line string) {
		got, err := parseJSONMap(t, line)
		dec := json.NewDecoder(bytes.NewReader([]byte(line)))
		dec.UseNumber()
		var v any
		jerr := dec.Decode(&v)
		if jerr == nil && skipJSONSpace(line, int(dec.InputOffset())) != len(line) {
			jerr = errNotOne
		}
		if err == nil {
			require.NoError(t, jerr, "encoding/json refuses what the line parser took: %q", line)
		}
		obj, isObj := v.(map[string]any)
		if jerr != nil || !isObj || !utf8.ValidString(line) {
			return
		}
		require.NoError(t, err, "the line parser refuses an object encoding/json takes: %q", line)
		want := map[string]string{}
		flattenLikeLoki("", obj, want)
		// Keys that sanitise or flatten alike collide in both; compare only
		// when no two paths did.
		n := 0
		_ = ParseJSONLine(line, func(string, string) { n++ })
		if n == len(want) {
			require.Equal(t, want, got, "%q", line)
		}
	})
}

var errNotOne = jsonErrNotOne{}

type jsonErrNotOne struct{}

func (jsonErrNotOne) Error() string { return "more than one value" }

func BenchmarkParseJSONLine(b *testing.B) {
	line := `{"level":"info","ts":"2026-12-01T10:00:00.123Z","caller":"server.go:123","msg":"request served","method":"GET","path":"/api/v1/things","status":200,"duration_ms":1.2,"bytes":5123,"user":{"name":"jane","id":42}}`
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_ = ParseJSONLine(line, func(string, string) {})
	}
}
