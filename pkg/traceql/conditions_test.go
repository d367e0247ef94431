package traceql

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConditionsOf(t *testing.T) {
	for _, tc := range []struct {
		query string
		conds []string
		all   bool
	}{
		{`{}`, nil, true},
		{`{ true }`, nil, true},
		{`{ span.a = 1 }`, []string{`span.a = 1`}, true},
		{`{ span.a = 1 && resource.b =~ "x.*" && 5 < span:duration }`, []string{`span.a = 1`, `resource.b =~ "x.*"`, `span:duration > 5`}, true},
		{`{ .a != nil && span.b = nil }`, []string{`.a != nil`, `span.b = nil`}, true},
		{`{ span.flag && !span.other }`, []string{`span.flag = true`, `span.other = false`}, true},
		{`{ event:name = "exception" && link.x = 1 }`, []string{`event:name = "exception"`, `link.x = 1`}, true},
		{`{ span.a = 1 } | select(span.b, resource.c)`, []string{`span.a = 1`, `span.b`, `resource.c`}, true},
		{`{ span.a = 1 } | by(span.b) | count() > 2 | avg(duration) > 1s`, []string{`span.a = 1`, `span.b`, `span:duration`}, true},
		{`{ span.a = 1 } | { span.b = 2 }`, []string{`span.a = 1`, `span.b`}, true},
		{`{ span.a = 1 } | rate() by (resource.service.name)`, []string{`span.a = 1`, `resource.service.name`}, true},
		{`{ span.a = 1 } | quantile_over_time(duration, 0.5)`, []string{`span.a = 1`, `span:duration`}, true},
		// Whole-trace fields need every span.
		{`{ span.a = 1 && trace:duration > 1s }`, []string{`span.a = 1`, `trace:duration > 1s`}, false},
		{`{ span.a = 1 } | select(span:childCount)`, []string{`span.a = 1`, `span:childCount`}, false},
		{`{ nestedSetParent = -1 }`, []string{`nestedSetParent = -1`}, false},
		// Alternatives: some span must pass one of them.
		{`{ span.a = 1 || span.b = 2 }`, []string{`span.a = 1`, `span.b = 2`}, false},
		{`{ span.a = 1 && (span.b = 2 || span.c = 3) }`, []string{`span.a = 1`, `span.b`, `span.c`}, false},
		{`{ (span.b = 2 || span.c = 3) && span.a = 1 }`, []string{`span.b = 2`, `span.c = 3`, `span.a`}, false},
		{`{ span.a = 1 } && { span.b = 2 }`, []string{`span.a = 1`, `span.b`}, false},
		{`{ span.a = 1 } || { span.b = 2 }`, []string{`span.a = 1`, `span.b = 2`}, false},
		{`{ span.a = 1 } >> { span.b = 2 }`, []string{`span.a = 1`, `span.b`}, false},
		{`{} >> { span.b = 2 }`, []string{`span.b = 2`}, false},
		{`{ span.a = 1 } !< { span.b = 2 }`, []string{`span.b = 2`, `span.a`}, false},
		{`{ span.a = 1 } !< {}`, []string{`span.a`}, false},
		{`{} | { span.a = 1 } >> {}`, []string{`span.a`}, false},
		// Nothing to push down.
		{`{ !(span.a = 1) }`, []string{`span.a`}, false},
		{`{ span.a = 1 || span.b + 1 = 2 }`, []string{`span.a`, `span.b`}, false},
		{`{ span.a = span.b }`, []string{`span.a`, `span.b`}, false},
		{`{ span.a = 1 } || {}`, []string{`span.a`}, false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := Parse(tc.query)
			require.NoError(t, err)
			conds, all := ConditionsOf(q)
			var got []string
			for _, c := range conds {
				got = append(got, c.String())
			}
			require.Equal(t, tc.conds, got)
			require.Equal(t, tc.all, all)
		})
	}
}

// TestConditionsAllPushdown checks the promise of allConditions on the
// case files' traces: dropping the spans that fail a test before
// evaluation changes no result.
func TestConditionsAllPushdown(t *testing.T) {
	traces := sampleTraces(t)
	for _, src := range []string{
		`{ resource.service.name = "checkout" }`,
		`{ .service.name = "checkout" && span:kind = client }`,
		`{ span.http.status_code >= 200 && span:name =~ "GET.*" } | count() > 0`,
		`{ event:name = "exception" } | select(span.http.method)`,
		`{ span.http.method != nil } | by(resource.service.name)`,
		`{ span.cache.hit }`,
	} {
		q, err := Parse(src)
		require.NoError(t, err)
		conds, all := ConditionsOf(q)
		require.True(t, all, src)
		var tests []Condition
		for _, c := range conds {
			if c.Op != OpNone {
				tests = append(tests, c)
			}
		}
		ev, err := NewEvaluator(q)
		require.NoError(t, err)
		for i := range traces {
			full := ev.Eval(&traces[i])
			pruned := pruneSpans(t, &traces[i], tests)
			got := ev.Eval(&pruned)
			require.Equal(t, len(full), len(got), src)
			for k := range full {
				require.Equal(t, spanIDs(full[k]), spanIDs(got[k]), src)
				require.Equal(t, full[k].Attributes, got[k].Attributes, src)
			}
		}
	}
}

// pruneSpans keeps the spans that pass every test, each evaluated by the
// engine as a one-condition filter.
func pruneSpans(t *testing.T, tr *Trace, tests []Condition) Trace {
	out := Trace{ID: tr.ID}
	for i := range tr.Spans {
		keep := true
		for _, c := range tests {
			q, err := Parse("{ " + c.String() + " }")
			require.NoError(t, err)
			ev, err := NewEvaluator(q)
			require.NoError(t, err)
			one := Trace{ID: tr.ID, Spans: []Span{tr.Spans[i]}}
			if len(ev.Eval(&one)) == 0 {
				keep = false
			}
		}
		if keep {
			out.Spans = append(out.Spans, tr.Spans[i])
		}
	}
	return out
}

func spanIDs(ss Spanset) [][]byte {
	var ids [][]byte
	for _, s := range ss.Spans {
		ids = append(ids, s.SpanID)
	}
	return ids
}

// TestConditionTest checks Condition.Test against the engine: for every
// test and value, Test holds exactly when `{ test }` selects a span whose
// attribute has that value.
func TestConditionTest(t *testing.T) {
	values := []Value{
		StringValue("GET"), StringValue("POST"), StringValue(""), IntValue(500), IntValue(200),
		FloatValue(500), FloatValue(0.5), BoolValue(true), BoolValue(false),
		ArrayValue(IntValue(1), IntValue(500)), ArrayValue(StringValue("GET"), StringValue("PUT")),
	}
	for _, src := range []string{
		`span.x = "GET"`, `span.x != "GET"`, `span.x =~ "G.*"`, `span.x !~ "G.*"`, `span.x > "A"`,
		`span.x = 500`, `span.x != 500`, `span.x >= 200`, `span.x < 1`, `span.x = 500.0`,
		`span.x = true`, `span.x != false`, `span.x`, `!span.x`,
	} {
		q, err := Parse("{ " + src + " }")
		require.NoError(t, err)
		conds, _ := ConditionsOf(q)
		require.Len(t, conds, 1, src)
		test, err := conds[0].Test()
		require.NoError(t, err)
		require.NotNil(t, test, src)
		ev, err := NewEvaluator(q)
		require.NoError(t, err)
		for _, v := range values {
			tr := Trace{ID: []byte{1}, Spans: []Span{{ID: []byte{1}, Attrs: []Attr{{Key: "x", Value: v}}}}}
			require.Equal(t, len(ev.Eval(&tr)) > 0, test(v), "%s on %s", src, v)
		}
	}
	q, err := Parse(`{ span.x = nil }`)
	require.NoError(t, err)
	conds, _ := ConditionsOf(q)
	test, err := conds[0].Test()
	require.NoError(t, err)
	require.Nil(t, test, "a presence test has no value test")
}
