package tempoapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzTagsToTraceQL checks that every conversion reads back: the TraceQL
// has one condition per pair, on the pair's key, with its value.
func FuzzTagsToTraceQL(f *testing.F) {
	for _, s := range []string{
		"", "service.name=foo http.status_code=500", `http.url="/a b" x=1.5 y=true`,
		`name="GET /" root.name=/ root.service.name=fe status.code=error`, `a="\"q\"" b=`,
		`http-method=GET 5xx=1 ."x"=1`, "a=1 a=2", `a="x`, "k=v\tk2=v2\n", "city=Zürich n=-007",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tags string) {
		q, err := TagsToTraceQL(tags)
		if err != nil {
			return
		}
		pairs, err := parseLogfmt(tags)
		require.NoError(t, err)
		if len(pairs) == 0 {
			require.Equal(t, "{}", q)
			return
		}
		conds, err := readConditions(q)
		require.NoError(t, err, q)
		require.Len(t, conds, len(pairs), q)
		for i, p := range pairs {
			c := conds[i]
			switch p.key {
			case "name", "root.name", "root.service.name":
				require.Equal(t, map[string]string{"name": "name", "root.name": "trace:rootName", "root.service.name": "trace:rootService"}[p.key], c.ref)
				require.True(t, c.quoted, q)
				require.Equal(t, p.value, c.lit)
				continue
			case "status.code":
				require.Equal(t, "status", c.ref)
				st, ok := statusKeyword(p.value)
				require.True(t, ok)
				require.Equal(t, st, c.lit)
				continue
			}
			require.Equal(t, p.key, c.ref, q)
			if c.quoted {
				require.Equal(t, p.value, c.lit, q)
				continue
			}
			require.False(t, p.quoted, q)
			if c.lit == "true" || c.lit == "false" {
				require.Equal(t, p.value, c.lit)
				continue
			}
			want, err := strconv.ParseFloat(p.value, 64)
			require.NoError(t, err, q)
			got, err := strconv.ParseFloat(c.lit, 64)
			require.NoError(t, err, q)
			require.Equal(t, want, got, q)
		}
	})
}

// condition is `ref = lit` of a converted tags query: ref the attribute
// name (unquoted) or the intrinsic, lit the value (unquoted when quoted).
type condition struct {
	ref, lit string
	quoted   bool
}

// readConditions reads back what TagsToTraceQL writes: "{ c && c … }".
func readConditions(q string) ([]condition, error) {
	s, ok := strings.CutPrefix(q, "{ ")
	if !ok {
		return nil, fmt.Errorf("no opening brace")
	}
	if s, ok = strings.CutSuffix(s, " }"); !ok {
		return nil, fmt.Errorf("no closing brace")
	}
	var out []condition
	for {
		var c condition
		switch {
		case strings.HasPrefix(s, `."`):
			quoted, err := strconv.QuotedPrefix(s[1:])
			if err != nil {
				return nil, err
			}
			if c.ref, err = strconv.Unquote(quoted); err != nil {
				return nil, err
			}
			s = s[1+len(quoted):]
		case strings.HasPrefix(s, "."):
			i := strings.IndexByte(s, ' ')
			if i < 0 {
				return nil, fmt.Errorf("no operator")
			}
			c.ref, s = s[1:i], s[i:]
			if !isPlainName(c.ref) {
				return nil, fmt.Errorf("unquoted name %q needs quotes", c.ref)
			}
		default:
			i := strings.IndexByte(s, ' ')
			if i < 0 {
				return nil, fmt.Errorf("no operator")
			}
			c.ref, s = s[:i], s[i:]
		}
		if s, ok = strings.CutPrefix(s, " = "); !ok {
			return nil, fmt.Errorf("no ' = ' after %q", c.ref)
		}
		if strings.HasPrefix(s, `"`) {
			quoted, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, err
			}
			if c.lit, err = strconv.Unquote(quoted); err != nil {
				return nil, err
			}
			c.quoted, s = true, s[len(quoted):]
		} else {
			i := strings.Index(s, " && ")
			if i < 0 {
				i = len(s)
			}
			c.lit, s = s[:i], s[i:]
			if strings.ContainsAny(c.lit, " \"{}") {
				return nil, fmt.Errorf("bare literal %q", c.lit)
			}
		}
		out = append(out, c)
		if s == "" {
			return out, nil
		}
		if s, ok = strings.CutPrefix(s, " && "); !ok {
			return nil, fmt.Errorf("no ' && ' before %q", s)
		}
	}
}

// FuzzParseTime checks that a time read is one a Backend can use: not
// before 1970, and its nanoseconds fit in 64 bits.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "0", "1700000000", "1700000000000000000", "1700000000.5", "1.7e9", "2023-11-14T22:13:20Z", "-1", "9223372036", "1e19", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s)
		if err != nil {
			return
		}
		if got.IsZero() {
			return
		}
		require.GreaterOrEqual(t, got.Unix(), int64(0), s)
		require.True(t, got.Equal(timeFromNanos(got.UnixNano())), "%s: UnixNano overflows", s)
	})
}

// FuzzRequests sends any query string to the endpoints that parse
// parameters: the answer is 200 (whose JSON decodes as Grafana decodes
// it) or 400, never a failure of the API's own.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		"q=%7B%7D&limit=20&spss=3&start=1700000000&end=1700003600",
		"tags=service.name%3Dfoo&minDuration=1s&maxDuration=2s",
		"q=%7B%7D+%7C+rate%28%29&since=3h&step=1m&exemplars=5",
		"scope=span&limit=5000", "start=1700000000&end=0", "limit=%zz", "step=1e-9",
	} {
		f.Add(uint8(0), s)
	}
	h := newTestAPI(f, testConfig(), newFake())
	paths := []string{"search", "metrics/query_range", "metrics/query", "v2/search/tags", "search/tag/x/values", "v2/traces/1"}
	f.Fuzz(func(t *testing.T, which uint8, query string) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest(http.MethodGet, PathPrefix+path, nil)
		req.URL.RawQuery = query
		req.Header.Set("X-Scope-OrgID", "team-a")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			switch path {
			case "search":
				decodeStrict(t, rec.Body.Bytes(), &pbSearchResponse{})
			case "metrics/query_range":
				decodeStrict(t, rec.Body.Bytes(), &pbQueryRangeResponse{})
			case "metrics/query":
				decodeStrict(t, rec.Body.Bytes(), &pbQueryInstantResponse{})
			}
		case http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("%s?%s: %d %s", path, query, rec.Code, rec.Body)
		}
	})
}

// FuzzAppendJSONString checks that strings read back as encoding/json
// writes them (invalid UTF-8 as U+FFFD), with <, > and & unescaped.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "\n\r\t\x00\x1f", "<a&b>", "Zürich", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		require.NoError(t, json.Unmarshal(b, &got), string(b))
		std, err := json.Marshal(s)
		require.NoError(t, err)
		var want string
		require.NoError(t, json.Unmarshal(std, &want))
		require.Equal(t, want, got)
		require.NotContains(t, string(b), `\u003c`)
	})
}
