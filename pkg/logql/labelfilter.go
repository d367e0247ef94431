package logql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// labelPredicate decides on an entry by its labels; it may set __error__.
type labelPredicate func(p *Processor) bool

// compileLabelFilter builds a label filter. A string comparison reads a
// missing label as "". A number, duration or byte-size comparison drops an
// entry without the label, keeps (unjudged) an entry that already failed a
// stage, and marks one whose value does not convert with
// __error__="LabelFilterErr", keeping it.
func compileLabelFilter(f LabelFilter) (labelPredicate, error) {
	switch f := f.(type) {
	case *LabelFilterParen:
		return compileLabelFilter(f.Filter)
	case *LabelFilterBinary:
		l, err := compileLabelFilter(f.L)
		if err != nil {
			return nil, err
		}
		r, err := compileLabelFilter(f.R)
		if err != nil {
			return nil, err
		}
		if f.Op == "or" {
			return func(p *Processor) bool { return l(p) || r(p) }, nil
		}
		return func(p *Processor) bool { return l(p) && r(p) }, nil
	case *LabelCompare:
		return compileCompare(f)
	}
	return nil, fmt.Errorf("unsupported label filter %s", f)
}

func compileCompare(c *LabelCompare) (labelPredicate, error) {
	name := c.Name
	if c.Type == StringValue {
		t := map[string]labels.MatchType{"=": labels.MatchEqual, "!=": labels.MatchNotEqual, "=~": labels.MatchRegexp, "!~": labels.MatchNotRegexp}[c.Op]
		m, err := labels.NewMatcher(t, name, c.Value)
		if err != nil {
			return nil, fmt.Errorf("label filter %s: %w", c, err)
		}
		return func(p *Processor) bool {
			v, _ := p.b.get(name)
			return m.Matches(v)
		}, nil
	}
	if c.Type == IPValue {
		in, err := ipMatcher(c.Value)
		if err != nil {
			return nil, fmt.Errorf("label filter %s: %w", c, err)
		}
		neg := c.Op == "!="
		return func(p *Processor) bool {
			v, _ := p.b.get(name)
			return in(v) != neg
		}, nil
	}
	conv := labelConversion(c.Type)
	want, err := conv(c.Value)
	if err != nil {
		return nil, fmt.Errorf("label filter %s: %w", c, err)
	}
	cmp, err := comparison(c.Op)
	if err != nil {
		return nil, err
	}
	return func(p *Processor) bool {
		v, ok := p.b.get(name)
		if !ok {
			return false
		}
		if p.b.err != "" {
			return true
		}
		got, err := conv(v)
		if err != nil {
			p.b.setError(errLabelFilter, err.Error())
			return true
		}
		return cmp(got, want)
	}, nil
}

// labelConversion returns how a label value of a type is read as a number
// (durations in seconds, sizes in bytes).
func labelConversion(t ValueType) func(string) (float64, error) {
	switch t {
	case DurationValue:
		return func(s string) (float64, error) {
			d, err := ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return 0, err
			}
			return d.Seconds(), nil
		}
	case BytesValue:
		return parseBytesValue
	}
	return func(s string) (float64, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", truncate(s))
		}
		return f, nil
	}
}

// parseBytesValue reads a label's byte size: a plain number of bytes or a
// number and a unit, with or without a space.
func parseBytesValue(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f, nil
	}
	n, err := ParseBytes(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		return 0, err
	}
	return float64(n), nil
}

func comparison(op string) (func(a, b float64) bool, error) {
	switch op {
	case "==", "=":
		return func(a, b float64) bool { return a == b }, nil
	case "!=":
		return func(a, b float64) bool { return a != b }, nil
	case ">":
		return func(a, b float64) bool { return a > b }, nil
	case ">=":
		return func(a, b float64) bool { return a >= b }, nil
	case "<":
		return func(a, b float64) bool { return a < b }, nil
	case "<=":
		return func(a, b float64) bool { return a <= b }, nil
	}
	return nil, fmt.Errorf("unknown comparison %s", op)
}
