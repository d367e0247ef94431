package tempoapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTagsToTraceQL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "empty", in: "", want: "{}"},
		{name: "blank", in: " \t ", want: "{}"},
		{name: "the documented example", in: "service.name=foo http.status_code=500", want: `{ .service.name = "foo" && .http.status_code = 500 }`},
		{name: "quoted value with a space", in: `http.url="/api/my api" service.name=cart`, want: `{ .http.url = "/api/my api" && .service.name = "cart" }`},
		{name: "a quoted number stays a string", in: `http.status_code="500"`, want: `{ .http.status_code = "500" }`},
		{name: "negative integer", in: "retries=-3", want: `{ .retries = -3 }`},
		{name: "float", in: "ratio=0.50", want: `{ .ratio = 0.5 }`},
		{name: "a whole float stays a float", in: "ratio=2.0", want: `{ .ratio = 2.0 }`},
		{name: "booleans", in: "error=true cached=false", want: `{ .error = true && .cached = false }`},
		{name: "not booleans", in: "flag=True", want: `{ .flag = "True" }`},
		{name: "leading zeros", in: "code=007", want: `{ .code = 7 }`},
		{name: "too large for an integer", in: "n=99999999999999999999", want: `{ .n = "99999999999999999999" }`},
		{name: "not quite numbers", in: "a=1e3 b=.5 c=1. d=0x10 e=+1 f=NaN", want: `{ .a = "1e3" && .b = ".5" && .c = "1." && .d = "0x10" && .e = "+1" && .f = "NaN" }`},
		{name: "empty value", in: "user=", want: `{ .user = "" }`},
		{name: "escapes in quoted values", in: `msg="say \"hi\"\n"`, want: `{ .msg = "say \"hi\"\n" }`},
		{name: "a quote inside an unquoted value", in: `q=a"b`, want: `{ .q = "a\"b" }`},
		{name: "non-ASCII", in: `city=Zürich`, want: `{ .city = "Zürich" }`},
		{name: "names quoted", in: `http-method=GET 5xx=1 a..b=c .lead=x trail.=y k8s.pod=p _x=1`, want: `{ ."http-method" = "GET" && ."5xx" = 1 && ."a..b" = "c" && .".lead" = "x" && ."trail." = "y" && .k8s.pod = "p" && ._x = 1 }`},
		{name: "a quote in a key", in: `a=1 "x"=1`, wantErr: `expected a key at offset 4 of "a=1 \"x\"=1"`},
		{name: "legacy intrinsics", in: `name="GET /cart" root.name=/ root.service.name=frontend status.code=error`, want: `{ name = "GET /cart" && trace:rootName = "/" && trace:rootService = "frontend" && status = error }`},
		{name: "status codes as numbers and any case", in: "status.code=2", want: `{ status = error }`},
		{name: "status ok", in: "status.code=OK", want: `{ status = ok }`},
		{name: "status unset", in: "status.code=0", want: `{ status = unset }`},
		{name: "not a status", in: "status.code=500", wantErr: `tag "status.code": "500" is not a span status (ok, error or unset)`},
		{name: "a key twice", in: "a=1 b=2 a=3", wantErr: `tag "a" is given twice`},
		{name: "no value", in: "service.name", wantErr: `tag "service.name" has no value (write service.name=<value>)`},
		{name: "no key", in: "=foo", wantErr: `expected a key at offset 0 of "=foo"`},
		{name: "unterminated quote", in: `a="foo`, wantErr: `the value of tag "a" has no closing quote`},
		{name: "bad escape", in: `a="\q"`, wantErr: `the value of tag "a" is not a valid quoted string: invalid syntax`},
		{name: "text after a quote", in: `a="x"y`, wantErr: `the quoted value of tag "a" must be followed by a space`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TagsToTraceQL(tc.in)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestAttributeRef(t *testing.T) {
	for in, want := range map[string]string{
		"service.name":     ".service.name",
		"k8s.pod.name":     ".k8s.pod.name",
		"_private":         "._private",
		"http-method":      `."http-method"`,
		"5xx":              `."5xx"`,
		"a b":              `."a b"`,
		"a..b":             `."a..b"`,
		"trail.":           `."trail."`,
		`say"hi"`:          `."say\"hi\""`,
		"resource.service": ".resource.service", // a literal attribute name, as v1 reads it
	} {
		require.Equal(t, want, attributeRef(in), in)
	}
}
