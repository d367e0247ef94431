package lokiapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/canopy-observability/canopy/pkg/logql"
)

// Patterns: Loki's pattern ingester clusters lines with the Drain
// algorithm as they arrive. Canopy has no pattern ingester; it groups a
// sample of the query's most recent lines (patternLines) when asked, by a
// simpler rule: a line's pattern is the line with every token that holds
// a digit replaced by <_>, a token being a run of letters, digits and
// . _ - that starts with a letter or digit (so 2024-03-30T23, 10.0.0.1,
// 15ms and 250 are tokens, grpc_logging.go and /cortex.Ingester/Push stay
// as they are; quotes, =, :, /, spaces and JSON punctuation separate
// tokens). The answer has Loki's shape:
//
//	{"status":"success","data":[{"pattern":"…","samples":[[<s>,<count>],…]},…]}
//
// patterns by count, most first, at most maxPatterns, each with its lines
// counted per step (default as query_range's).
const (
	patternLines = 5000
	maxPatterns  = 500
)

// patternOf returns a line's pattern.
func patternOf(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if !isAlnum(line[i]) {
			b.WriteByte(line[i])
			i++
			continue
		}
		j, digit := i, false
		for j < len(line) && (isAlnum(line[j]) || line[j] == '.' || line[j] == '_' || line[j] == '-') {
			digit = digit || line[j] >= '0' && line[j] <= '9'
			j++
		}
		if digit {
			b.WriteString("<_>")
		} else {
			b.WriteString(line[i:j])
		}
		i = j
	}
	return b.String()
}

func isAlnum(c byte) bool { return isLetter(c) || c >= '0' && c <= '9' || c >= 0x80 }

type pattern struct {
	text  string
	total int64
	// counts per step
	counts map[int64]int64
}

// servePatterns is /patterns.
func (a *API) servePatterns(w http.ResponseWriter, r *http.Request) error {
	start, end, step, err := a.rangeStep(r)
	if err != nil {
		return err
	}
	q, expr, err := parseQuery(r)
	if err != nil {
		return err
	}
	if _, ok := expr.(*logql.LogExpr); !ok {
		return badf("invalid parameter \"query\": patterns are found in a log query such as {app=\"x\"}, not in a metric query")
	}
	res, err := a.exec(r.Context(), q, expr, logql.Params{Start: start, End: end, Limit: min(patternLines, a.cfg.MaxEntriesLimitPerQuery), Direction: logql.Backward})
	if err != nil {
		return err
	}
	byText := map[string]*pattern{}
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			text := patternOf(e.Line)
			p := byText[text]
			if p == nil {
				p = &pattern{text: text, counts: map[int64]int64{}}
				byText[text] = p
			}
			p.total++
			// the start of the step the entry falls in
			p.counts[start+(e.Timestamp-start)/int64(step)*int64(step)]++
		}
	}
	ps := make([]*pattern, 0, len(byText))
	for _, p := range byText {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(x, y *pattern) int {
		if x.total != y.total {
			if x.total > y.total {
				return -1
			}
			return 1
		}
		return strings.Compare(x.text, y.text)
	})
	if len(ps) > maxPatterns {
		ps = ps[:maxPatterns]
	}
	out := &jw{}
	out.raw(`{"status":"success","data":[`)
	for i, p := range ps {
		if i > 0 {
			out.byte(',')
		}
		out.raw(`{"pattern":`)
		out.str(p.text)
		out.raw(`,"samples":[`)
		ts := make([]int64, 0, len(p.counts))
		for t := range p.counts {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		for j, t := range ts {
			if j > 0 {
				out.byte(',')
			}
			out.byte('[')
			out.raw(model.Time(t / 1e6).String())
			out.byte(',')
			out.int(p.counts[t])
			out.byte(']')
		}
		out.raw("]}")
	}
	out.raw("]}")
	writeJSON(w, out.b)
	return nil
}
