package querylimit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	for name, tc := range map[string]struct {
		expr    string
		wantErr string
	}{
		"ordinary":              {expr: `sum by (job) (rate(http_requests_total{job=~"a|b"}[5m]))`},
		"subtraction chain":     {expr: `a - b - c - d - e - f - g - h - i - j - k`},
		"a minus in a string":   {expr: `up{job="` + strings.Repeat("-", 100) + `"}`},
		"brackets in a string":  {expr: `up{job="` + strings.Repeat("(", 100) + `"}`},
		"escaped quote":         {expr: `up{job="a\"((((((((((((((((((((((((((((((((((((("}`},
		"too long":              {expr: "1" + strings.Repeat(" ", 2000), wantErr: "longer than the limit of 1024 bytes"},
		"deep parentheses":      {expr: strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40), wantErr: "nests deeper than the limit of 32"},
		"many unary minus":      {expr: strings.Repeat("-", 40) + "1", wantErr: "nests deeper than the limit of 32"},
		"minus and spaces":      {expr: strings.Repeat("- ", 40) + "1", wantErr: "nests deeper"},
		"deep in a regex":       {expr: `up{job=~"` + strings.Repeat("(", 40) + `x` + strings.Repeat(")", 40) + `"}`},
		"long addition chain":   {expr: strings.Repeat("a + ", 40) + "a", wantErr: "nests deeper than the limit of 32"},
		"long or chain":         {expr: strings.Repeat("a OR ", 40) + "a", wantErr: "nests deeper"},
		"comparison chain":      {expr: strings.Repeat("a >= bool ", 40) + "a", wantErr: "nests deeper"},
		"nested chains":         {expr: "(" + strings.Repeat("a*", 20) + "a / (" + strings.Repeat("a^", 20) + "a))", wantErr: "nests deeper"},
		"chains side by side":   {expr: "(" + strings.Repeat("a*", 20) + "a) + sum(" + strings.Repeat("a-", 20) + "a)"},
		"matchers do not count": {expr: `up{` + strings.Repeat(`a!="-",b=~"x",`, 40) + `}`},
		"words with operators":  {expr: `sum by (handler, android, order, unless_x) (orders_total)`},
	} {
		t.Run(name, func(t *testing.T) {
			err := Check(tc.expr, 1024, 32)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorContains(t, err, "max_query_expression")
		})
	}
	require.NoError(t, Check(strings.Repeat("(", 100)+"1"+strings.Repeat(")", 100), 0, 0), "limits off")
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`sum(rate(x[5m]))`, `"a\"b"`, "`raw`", `((((`, `---1`, `'\'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		err := Check(expr, 1<<20, 64)
		if err != nil {
			require.Contains(t, err.Error(), "max_query_expression")
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	expr := strings.Repeat(`sum by (job) (rate(http_requests_total{job=~"a|b"}[5m])) + `, 1000) + "1"
	b.SetBytes(int64(len(expr)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Check(expr, 1<<20, 256)
	}
}
