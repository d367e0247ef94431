package traceql

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// validQueries: each parses, prints in canonical form (want; "" means the
// input is already canonical) and the canonical form parses back to an
// equal tree. They also seed FuzzParse.
var validQueries = []struct{ in, want string }{
	// Spanset filters.
	{`{}`, ``},
	{`{ }`, `{}`},
	{`{ true }`, ``},
	{`{ false }`, ``},
	{`{ span.http.method = "GET" }`, ``},
	{`{span.http.status_code>=200&&span.http.status_code<300}`, `{ span.http.status_code >= 200 && span.http.status_code < 300 }`},
	{`{ resource.service.name = "frontend" && name = "POST /api/orders" }`, `{ resource.service.name = "frontend" && span:name = "POST /api/orders" }`},
	{"{\n  resource.service.namespace = \"ecommerce\" &&\n  status = error\n}", `{ resource.service.namespace = "ecommerce" && span:status = error }`},
	{`{ span.a = 1 || span.b = 2 && span.c = 3 }`, ``},
	{`{ (span.a = 1 || span.b = 2) && span.c = 3 }`, ``},
	{`{ span.a = 1 && (span.b = 2 && span.c = 3) }`, ``},
	{`{ !(span.a = 1) }`, ``},
	{`{ !span.cache.hit }`, ``},
	{`{ span.cache.hit || span.http.status_code = 500 }`, ``},
	{`{ span.cache.hit }`, ``},
	{`{ span.a != nil }`, ``},
	{`{ span.a = nil }`, ``},
	{`{ nil != span.a }`, ``},
	{`{ span:parentID = nil }`, ``},
	{`{ span.foo =~ "bar.*" }`, ``},
	{"{ span.foo !~ `a\\d+` }", `{ span.foo !~ "a\\d+" }`},
	{`{ .foo = "bar" }`, ``},
	{`{ span."a b" = 1 }`, ``},
	{`{ span.attribute."name with space" = "v" }`, `{ span."attribute.name with space" = "v" }`},
	{`{ span."a \"q\" \\ b" = 1 }`, ``},
	{`{ ."5xx" = 1 }`, ``},
	{`{ span.5xx = 1 }`, ``},
	{`{ span.k8s.io/name = "x" }`, ``},
	{`{ span.x-request-id != "" }`, ``},
	{`{ span.ünïcode = "ok" }`, ``},
	{`{ event.exception.message =~ ".*boom.*" }`, ``},
	{`{ link.opentracing.ref_type = "child_of" }`, ``},
	{`{ instrumentation.language = "java" }`, ``},
	// Intrinsics, scoped and legacy.
	{`{ span:name = "x" && span:status = ok && span:statusMessage = "m" && span:kind = server }`, ``},
	{`{ span:duration > 100ms && span:id = "0000000000000001" && span:parentID = "0000000000000002" }`, ``},
	{`{ span:childCount > 10 }`, ``},
	{`{ name = "x" && status = error && statusMessage = "m" && kind = client && duration > 1s }`,
		`{ span:name = "x" && span:status = error && span:statusMessage = "m" && span:kind = client && span:duration > 1s }`},
	{`{ trace:duration > 5s && trace:rootName = "r" && trace:rootService = "s" && trace:id = "abc" }`, ``},
	{`{ traceDuration > 5s && rootName = "r" && rootServiceName = "s" }`, `{ trace:duration > 5s && trace:rootName = "r" && trace:rootService = "s" }`},
	{`{ event:name = "exception" && event:timeSinceStart > 2ms }`, ``},
	{`{ link:traceID = "1234" && link:spanID = "5678" }`, ``},
	{`{ instrumentation:name = "grpc" && instrumentation:version = "1.0.0" }`, ``},
	{`{ nestedSetParent = -1 && nestedSetLeft > 0 && nestedSetRight > 0 }`, ``},
	{`{ status != unset && kind != unspecified && kind != internal && kind != producer && kind != consumer }`,
		`{ span:status != unset && span:kind != unspecified && span:kind != internal && span:kind != producer && span:kind != consumer }`},
	// Static values.
	{`{ span.a = 1.5 && span.b = 0.5 && span.c = .5 && span.d = 1e3 && span.e = 2.5E-3 }`, `{ span.a = 1.5 && span.b = 0.5 && span.c = 0.5 && span.d = 1000.0 && span.e = 0.0025 }`},
	{`{ span.big = 1e21 }`, `{ span.big = 1e+21 }`},
	{`{ duration > 1ms || duration > 1.5s || duration > 2h || duration > 500ns || duration > 1us || duration > 1µs || duration > 1h30m }`,
		`{ span:duration > 1ms || span:duration > 1.5s || span:duration > 2h0m0s || span:duration > 500ns || span:duration > 1µs || span:duration > 1µs || span:duration > 1h30m0s }`},
	{`{ event:timeSinceStart > -5s }`, ``},
	{`{ span.a = -1 && span.b > -1.5 }`, ``},
	{`{ span.a != minInt && span.a != maxInt }`, ``},
	{`{ span.a = true && span.b = false }`, ``},
	{"{ span.a = `raw \\ string` }", `{ span.a = "raw \\ string" }`},
	{`{ span.a = "tab\tnewline\nquote\"" }`, ``},
	{`{ span.http.status_code >= "400" }`, ``},
	// Arithmetic.
	{`{ span.http.request_content_length > 10 * 1024 * 1024 }`, ``},
	{`{ span.a + 1 > span.b - 2 }`, ``},
	{`{ span.a * (span.b + 1) >= 3 }`, ``},
	{`{ (span.a + span.b) * 2 = span.c % 3 }`, ``},
	{`{ span.a / 2 ^ 3 ^ 2 > 1 }`, ``},
	{`{ (span.a ^ 2) ^ 3 > 1 }`, ``},
	{`{ -span.a < 0 }`, ``},
	{`{ -(span.a + 1) < 0 }`, ``},
	{`{ - -span.a < 0 }`, `{ --span.a < 0 }`},
	{`{ -(2 ^ 2) < span.a }`, `{ -2 ^ 2 < span.a }`},
	{`{ (-2) ^ 2 < span.a }`, ``},
	{`{ 2 ^ -1 < span.a }`, ``},
	{`{ span.a - -1 > 0 }`, ``},
	{`{ duration > 2 * 100ms }`, `{ span:duration > 2 * 100ms }`},
	{`{ -(1) < span.a }`, `{ -1 < span.a }`},
	{`{ -minInt < span.a }`, ``},
	// Spanset operators.
	{`{ span.a = 1 } && { span.b = 2 }`, ``},
	{`{ span.a = 1 } || { span.b = 2 }`, ``},
	{`{ span.a = 1 } && { span.b = 2 } || { span.c = 3 }`, ``},
	{`{ span.a = 1 } && ({ span.b = 2 } || { span.c = 3 })`, ``},
	{`{ span.a = 1 } > { span.b = 2 }`, ``},
	{`{ span.a = 1 } >> { span.b = 2 }`, ``},
	{`{ span.a = 1 } < { span.b = 2 }`, ``},
	{`{ span.a = 1 } << { span.b = 2 }`, ``},
	{`{ span.a = 1 } ~ { span.b = 2 }`, ``},
	{`{ span.a = 1 } &> { span.b = 2 }`, ``},
	{`{ span.a = 1 } &>> { span.b = 2 }`, ``},
	{`{ span.a = 1 } &< { span.b = 2 }`, ``},
	{`{ span.a = 1 } &<< { span.b = 2 }`, ``},
	{`{ span.a = 1 } &~ { span.b = 2 }`, ``},
	{`{ span.a = 1 } !> { span.b = 2 }`, ``},
	{`{ span.a = 1 } !>> { span.b = 2 }`, ``},
	{`{ span.a = 1 } !< { span.b = 2 }`, ``},
	{`{ span.a = 1 } !<< { span.b = 2 }`, ``},
	{`{ span.a = 1 } !~ { span.b = 2 }`, ``},
	{`{}>>{}`, `{} >> {}`},
	{`{ } !< { resource.service.name = "foo" }`, `{} !< { resource.service.name = "foo" }`},
	{`{ span.a = 1 } > { span.b = 2 } > { span.c = 3 }`, ``},
	{`{ span.a = 1 } > ({ span.b = 2 } > { span.c = 3 })`, ``},
	{`({ span.a = 1 } >> { span.b = 2 }) && { span.c = 3 }`, `{ span.a = 1 } >> { span.b = 2 } && { span.c = 3 }`},
	{`{ span.a = 1 } >> ({ span.b = 2 } && { span.c = 3 })`, ``},
	{`(({ span.a = 1 }))`, `{ span.a = 1 }`},
	// Pipelines.
	{`{ span.http.status_code = 200 } | count() > 2`, ``},
	{`{} | avg(duration) > 1s`, `{} | avg(span:duration) > 1s`},
	{`{} | min(duration) < 10ms | max(duration) >= 1s | sum(span.bytes) > 1000000000`, `{} | min(span:duration) < 10ms | max(span:duration) >= 1s | sum(span.bytes) > 1000000000`},
	{`{} | count() + 1 > 2 * 3`, ``},
	{`{} | (count() + 1) * 2 > 3`, ``},
	{`{} | 2 < count()`, ``},
	{`{} | count() > -1`, ``},
	{`{} | count() ^ 2 > (-1) ^ 2`, ``},
	{`{} | count() = minInt`, ``},
	{`{ status = error } | by(resource.service.name) | count() > 1`, `{ span:status = error } | by(resource.service.name) | count() > 1`},
	{`{} | by(resource.service.name, span:name)`, ``},
	{`{ status = error } | select(span.http.status_code, span.http.url, span:kind)`, `{ span:status = error } | select(span.http.status_code, span.http.url, span:kind)`},
	{`{} | coalesce()`, ``},
	{`{} | { span.a = 1 } | { span.b = 2 }`, ``},
	{`{} | { span.a = 1 } >> { span.b = 2 }`, ``},
	{`{} | ({ span.a = 1 } | count() > 1)`, ``},
	{`({ span.a = 1 } | count() > 1) && { span.b = 2 }`, ``},
	{`({ span.a = 1 } | by(span.x)) | coalesce()`, `{ span.a = 1 } | by(span.x) | coalesce()`},
	{`({ span.a = 1 } | count() > 1) >> ({ span.b = 2 } | count() > 1)`, ``},
	// Hints.
	{`{} with (most_recent=true)`, `{} with(most_recent=true)`},
	{`{ span.foo = "bar" } >> { status = error } with (most_recent=true)`, `{ span.foo = "bar" } >> { span:status = error } with(most_recent=true)`},
	{`{} with(a=1, b=-2.5, c="x", d=5s, e=false, f=-1, g=minInt)`, ``},
	// Metrics.
	{`{} | rate()`, ``},
	{`{ status = error } | rate() by (resource.service.name, name)`, `{ span:status = error } | rate() by(resource.service.name, span:name)`},
	{`{} | count_over_time() by(span.http.status_code)`, ``},
	{`{} | min_over_time(duration) by(span.http.target)`, `{} | min_over_time(span:duration) by(span.http.target)`},
	{`{} | max_over_time(span.http.response.size)`, ``},
	{`{} | avg_over_time(duration)`, `{} | avg_over_time(span:duration)`},
	{`{} | sum_over_time(span.bytes)`, ``},
	{`{} | quantile_over_time(duration, .99, .9, .5)`, `{} | quantile_over_time(span:duration, 0.99, 0.9, 0.5)`},
	{`{} | quantile_over_time(span.x, 0, 1) by(span.y)`, `{} | quantile_over_time(span.x, 0.0, 1.0) by(span.y)`},
	{`{} | histogram_over_time(duration) by (span.foo)`, `{} | histogram_over_time(span:duration) by(span.foo)`},
	{`{} | rate() with(exemplars=true)`, ``},
	{`{ span.a = 1 } | by(span.b) | count() > 1 | rate() by(span.b) with(exemplars=true, sample=0.1)`, ``},
	{`{ resource.service.name = "foo" } | rate() by (instrumentation:name)`, `{ resource.service.name = "foo" } | rate() by(instrumentation:name)`},
	{`{} | sum_over_time(span.bytes / 1024)`, ``},
	{`{} | rate() by (resource.service.name) > 10`, `{} | rate() by(resource.service.name) > 10.0`},
	{`{} | rate() | topk(10)`, ``},
	{`{} | count_over_time() by(span.x) <= -1.5 | bottomk(3) with(exemplars=true)`, ``},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validQueries {
		t.Run(tc.in, func(t *testing.T) {
			q, err := Parse(tc.in)
			require.NoError(t, err)
			want := tc.want
			if want == "" {
				want = tc.in
			}
			require.Equal(t, want, q.String())
			again, err := Parse(q.String())
			require.NoError(t, err, "the canonical form parses")
			require.Equal(t, q, again, "the canonical form parses to the same tree")
		})
	}
}

func TestParseTree(t *testing.T) {
	q, err := Parse(`{ .a = 1 && span:duration > 1s } >> { resource.b =~ "x" } | by(span.c) | rate() by (name) with (exemplars=true)`)
	require.NoError(t, err)
	require.Equal(t, &Query{
		Expr: &Pipeline{
			Source: &SpansetOperation{
				Op: SpansetDescendant,
				LHS: &SpansetFilter{Expr: &BinaryExpr{Op: OpAnd,
					LHS: &BinaryExpr{Op: OpEqual, LHS: &Field{Name: "a"}, RHS: &Static{Value: IntValue(1)}},
					RHS: &BinaryExpr{Op: OpGreater, LHS: &Field{Intrinsic: IntrinsicDuration}, RHS: &Static{Value: DurationValue(1e9)}},
				}},
				RHS: &SpansetFilter{Expr: &BinaryExpr{Op: OpRegex, LHS: &Field{Scope: ScopeResource, Name: "b"}, RHS: &Static{Value: StringValue("x")}}},
			},
			Stages: []Stage{&GroupBy{By: []FieldExpr{&Field{Scope: ScopeSpan, Name: "c"}}}},
		},
		Metrics: &MetricsAggregate{Op: MetricsRate, By: []FieldExpr{&Field{Intrinsic: IntrinsicName}}},
		Hints:   []Hint{{Name: "exemplars", Value: BoolValue(true)}},
	}, q)
	require.True(t, q.IsMetrics())
	v, ok := q.Hint("exemplars")
	require.True(t, ok)
	require.True(t, v.Bool())
	require.False(t, q.MostRecent())
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		in        string
		line, col int
		msg       string
	}{
		{``, 1, 1, "expected a spanset filter"},
		{`{`, 1, 2, "unexpected end of query"},
		{`{ span.a = 1`, 1, 13, `expected "}"`},
		{`{ span.a = }`, 1, 12, `expected a value, attribute or intrinsic, found "}"`},
		{`{ span.a = 1 } extra`, 1, 16, "after the end of the query"},
		{"{ span.a = 1 &&\n  foo = 2 }", 2, 3, `unknown identifier "foo"`},
		{`{ span.a =~ 1 }`, 1, 13, "needs a string regular expression"},
		{`{ duration =~ "1s" }`, 1, 3, "matches strings, not a duration"},
		{`{ span.a =~ "(" }`, 1, 13, "invalid regular expression"},
		{`{ span.a =~ span.b }`, 1, 13, "needs a string regular expression"},
		{`{ span:foo = 1 }`, 1, 3, `unknown intrinsic "span:foo"`},
		{`{ trace:name = 1 }`, 1, 3, `unknown intrinsic "trace:name"`},
		{`{ resource:name = 1 }`, 1, 11, `unexpected character ':'`},
		{`{ parent.x = 1 }`, 1, 3, `unknown attribute scope "parent"`},
		{`{ span. = 1 }`, 1, 8, "attribute name expected"},
		{`{ span."" = 1 }`, 1, 10, "attribute name expected"},
		{`{ span."a = 1 }`, 1, 8, "not terminated"},
		{`{ span."a\n" = 1 }`, 1, 10, `only \" and \\`},
		{`{ span.a = "x }`, 1, 12, "string not terminated"},
		{`{ span.a = "\q" }`, 1, 12, "invalid string"},
		{`{ span.a = 99999999999999999999 }`, 1, 12, "out of range"},
		{`{ span.a = 1e999 }`, 1, 12, "invalid number"},
		{`{ duration > 5x }`, 1, 14, "invalid duration"},
		{`{ duration > 1d }`, 1, 14, "invalid duration"},
		{`{ status = 2 }`, 1, 10, "cannot compare a status value with a int value (a status compares with ok, error or unset)"},
		{`{ status = "error" }`, 1, 10, "cannot compare a status value with a string value"},
		{`{ kind = ok }`, 1, 8, "cannot compare a kind value with a status value"},
		{`{ name = 1 }`, 1, 8, "cannot compare a string value with a int value"},
		{`{ status > ok }`, 1, 10, "does not order status"},
		{`{ span.a > true }`, 1, 10, "does not order bool"},
		{`{ span.a > nil }`, 1, 10, "nil compares only with = and !="},
		{`{ 1 = nil }`, 1, 3, "nil compares only with an attribute"},
		{`{ span.a + 1 = nil }`, 1, 3, "nil compares only with an attribute"},
		{`{ span.a = 1 = 2 }`, 1, 14, "comparisons do not chain"},
		{`{ 1 }`, 1, 3, "must be a condition, not a int value"},
		{`{ "a" + 1 > 0 }`, 1, 3, "+ needs numbers on both sides, not a string value"},
		{`{ 1 && span.a }`, 1, 3, "&& needs conditions on both sides"},
		{`{ !1 }`, 1, 4, "! negates conditions"},
		{`{ -"a" = span.b }`, 1, 4, "- negates numbers"},
		{`{ duration && span.a }`, 1, 3, "&& needs conditions on both sides, not a duration value"},
		{`{ span.a = 1 } >`, 1, 17, "expected a spanset filter"},
		{`{ span.a = 1 } & { span.b = 2 }`, 1, 16, "unexpected character '&'"},
		{`({ span.a = 1 }`, 1, 16, `expected ")"`},
		{`{ span.a = 1 } |`, 1, 17, "expected a pipeline stage"},
		{`{} | foo()`, 1, 6, `unknown pipeline stage "foo"`},
		{`{} | count()`, 1, 13, "expected a comparison"},
		{`{} | count() =~ 1`, 1, 14, "expected a comparison"},
		{`{} | 1 > 2`, 1, 6, "a scalar filter compares an aggregate"},
		{`{} | avg(name) > 1`, 1, 10, "avg() needs a numeric field, not a string value"},
		{`{} | count(duration) > 1`, 1, 12, "count() takes no arguments"},
		{`{} | by()`, 1, 9, "expected a value"},
		{`{} | select(span.a + 1)`, 1, 13, "select() takes attributes and intrinsics"},
		{`{} | coalesce(1)`, 1, 15, "takes no arguments"},
		{`{} | rate() | count() > 1`, 1, 13, "the metrics function must be the last stage"},
		{`({} | rate())`, 1, 7, "may only end the whole query"},
		{`{} | rate(duration)`, 1, 11, "takes no arguments"},
		{`{} | min_over_time()`, 1, 20, "expected a value"},
		{`{} | avg_over_time(name)`, 1, 20, "needs a numeric field, not a string value"},
		{`{} | quantile_over_time(duration)`, 1, 33, "needs at least one quantile"},
		{`{} | quantile_over_time(duration, 1.5)`, 1, 35, "between 0 and 1"},
		{`{} | quantile_over_time(duration, "x")`, 1, 35, "between 0 and 1"},
		{`{} | rate() by ()`, 1, 17, "expected a value"},
		{`{} | rate() | topk(0)`, 1, 20, "topk() takes a positive integer"},
		{`{} | rate() | bottomk(x)`, 1, 23, "bottomk() takes a positive integer"},
		{`{} | rate() > "a"`, 1, 15, "expected a number"},
		{`{} | rate() =~ 1`, 1, 13, "after the end of the query"},
		{`{} with ()`, 1, 10, "a hint name"},
		{`{} with (a)`, 1, 11, `expected "=" after the hint name`},
		{`{} with (a=ok)`, 1, 12, "a hint's value is"},
		{`{} with (a=1`, 1, 13, `expected "," or ")"`},
		{`{ span.a = 1 } @`, 1, 16, "unexpected character '@'"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			require.Error(t, err)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "a *ParseError: %v", err)
			require.Contains(t, pe.Msg, tc.msg)
			require.Equal(t, [2]int{tc.line, tc.col}, [2]int{pe.Line, pe.Col}, "position of %v", err)
		})
	}
}

func TestParseDepth(t *testing.T) {
	deep := ""
	for range 300 {
		deep += "("
	}
	_, err := Parse(deep + "{}")
	require.ErrorContains(t, err, "nested too deeply")
	_, err = Parse("{ " + deep + "span.a = 1 }")
	require.ErrorContains(t, err, "nested too deeply")
	neg := "{ "
	for range 300 {
		neg += "!"
	}
	_, err = Parse(neg + "span.a }")
	require.ErrorContains(t, err, "nested too deeply")
}

func FuzzParse(f *testing.F) {
	for _, tc := range validQueries {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q, err := Parse(src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: error is not a *ParseError: %v", src, err)
			}
			return
		}
		text := q.String()
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("%q prints as %q, which does not parse: %v", src, text, err)
		}
		require.Equal(t, q, again, "%q prints as %q", src, text)
		require.Equal(t, text, again.String())
	})
}
