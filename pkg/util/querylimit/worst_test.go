package querylimit

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// chains is a chain of width terms, each a bracketed chains one level down,
// with leaf at the bottom: the most syntax-tree nodes times depth in the
// fewest bytes. Its depth is leaf's plus levels × (width + 1).
func chains(levels, width int, leaf string) string {
	if levels == 0 {
		return leaf
	}
	inner := "(" + chains(levels-1, width, leaf) + ")"
	return strings.Repeat(inner+"+", width-1) + inner
}

// worstShapes are expressions the default limits (256 KiB, depth 256)
// accept, each about as costly to parse as its shape gets within them.
func worstShapes() map[string]string {
	const size = 256 << 10
	return map[string]string{
		"chains of chains":  chains(2, 126, "1"),
		"nested chains":     chains(3, 40, "1"),
		"deep brackets":     chains(2, 25, strings.Repeat("(", 200)+"1"+strings.Repeat(")", 200)),
		"sign runs":         chains(2, 40, strings.Repeat("-", 150)+"1"),
		"selector chains":   chains(3, 25, `x{a=~"b.*c"}`),
		"one long regex":    `x{a=~"` + strings.Repeat("(a|b)*", size/6-10) + `"}`,
		"many alternatives": `x{a=~"` + strings.Repeat("abcdefgh|", size/9-10) + `x"}`,
	}
}

// BenchmarkParseWorstAllowed parses the costliest expressions the default
// limits let through: no context stops a parse, so these limits are what
// bound it.
func BenchmarkParseWorstAllowed(b *testing.B) {
	p := parser.NewParser(parser.Options{})
	for name, expr := range worstShapes() {
		if err := Check(expr, 256<<10, 256); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(expr)))
			for b.Loop() {
				if _, err := p.ParseExpr(expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
