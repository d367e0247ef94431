package logql

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/grafana/regexp"
)

// The functions line_format and label_format templates call, with
// Loki's names and argument orders (see template.go for how templates
// are compiled and run).

// cache holds values made from strings, up to maxTemplateCache of them.
type cache[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

func (c *cache[V]) get(key string, make func(string) (V, error)) (V, error) {
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := make(key)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]V{}
	}
	if len(c.m) < maxTemplateCache {
		c.m[key] = v
	}
	c.mu.Unlock()
	return v, nil
}

func (t *Template) regexp(expr string) (*regexp.Regexp, error) {
	return t.regexps.get(expr, regexp.Compile)
}

func (t *Template) location(name string) (*time.Location, error) {
	return t.zones.get(name, time.LoadLocation)
}

// funcs returns the functions of the template, bound to its caches.
func (t *Template) funcs() template.FuncMap {
	return template.FuncMap{
		// The entry, after the rewrite; __line__ only for the parser.
		fnLine:      func() string { return "" },
		fnTimestamp: unixNanos,
		fnEntry:     labelsOf,
		fnRange:     rangeItems,

		// Go's strings functions, the first ones Loki had.
		"ToLower":    strings.ToLower,
		"ToUpper":    strings.ToUpper,
		"Replace":    replaceN,
		"Trim":       strings.Trim,
		"TrimLeft":   strings.TrimLeft,
		"TrimRight":  strings.TrimRight,
		"TrimPrefix": strings.TrimPrefix,
		"TrimSuffix": strings.TrimSuffix,
		"TrimSpace":  strings.TrimSpace,

		// Strings, in sprig's argument order: the string worked on last.
		"lower":            strings.ToLower,
		"upper":            strings.ToUpper,
		"title":            title,
		"trunc":            trunc,
		"substr":           substr,
		"replace":          func(old, new, s string) (string, error) { return replaceN(s, old, new, -1) },
		"trim":             strings.TrimSpace,
		"trimAll":          func(cutset, s string) string { return strings.Trim(s, cutset) },
		"trimPrefix":       func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix":       func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"indent":           indent,
		"nindent":          func(n any, s string) (string, error) { r, err := indent(n, s); return "\n" + r, err },
		"repeat":           repeat,
		"alignLeft":        func(n any, s string) (string, error) { return align(n, s, false) },
		"alignRight":       func(n any, s string) (string, error) { return align(n, s, true) },
		"contains":         func(substr, s string) bool { return strings.Contains(s, substr) },
		"hasPrefix":        func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
		"hasSuffix":        func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
		"default":          dfault,
		"urlencode":        func(s string) (string, error) { return capped(url.QueryEscape(s)) },
		"urldecode":        url.QueryUnescape,
		"b64enc":           func(s string) (string, error) { return capped(base64.StdEncoding.EncodeToString([]byte(s))) },
		"b64dec":           b64dec,
		"fromJson":         fromJSON,
		"bytes":            parseHumanBytes,
		"duration":         durationSeconds,
		"duration_seconds": durationSeconds,

		// Regular expressions.
		"regexReplaceAll": func(expr, s, repl string) (string, error) {
			return t.regexReplace(expr, s, repl, false)
		},
		"regexReplaceAllLiteral": func(expr, s, repl string) (string, error) {
			return t.regexReplace(expr, s, repl, true)
		},
		"count": func(expr, s string) (int, error) {
			re, err := t.regexp(expr)
			if err != nil {
				return 0, err
			}
			return len(re.FindAllStringIndex(s, -1)), nil
		},

		// Time.
		"date":            formatDate,
		"toDate":          func(layout, s string) (time.Time, error) { return time.ParseInLocation(layout, s, time.Local) },
		"toDateInZone":    t.toDateInZone,
		"now":             func() time.Time { return t.now() },
		"unixEpoch":       func(d time.Time) string { return strconv.FormatInt(d.Unix(), 10) },
		"unixEpochMillis": func(d time.Time) string { return strconv.FormatInt(d.UnixMilli(), 10) },
		"unixEpochNanos":  func(d time.Time) string { return strconv.FormatInt(d.UnixNano(), 10) },
		"unixToTime":      unixToTime,

		// Numbers: integers, then floats computed in decimal as sprig does.
		"int":     func(v any) (int, error) { i, err := toInt(v); return int(i), err },
		"float64": toFloat,
		"add": func(vs ...any) (int64, error) {
			return intFold(0, vs, func(a, b int64) (int64, error) { return a + b, nil })
		},
		"sub": func(a, b any) (int64, error) {
			return intOp(a, b, func(a, b int64) (int64, error) { return a - b, nil })
		},
		"mul": func(a any, vs ...any) (int64, error) {
			return intFold(a, vs, func(a, b int64) (int64, error) { return a * b, nil })
		},
		"div":   func(a, b any) (int64, error) { return intOp(a, b, intDiv) },
		"mod":   func(a, b any) (int64, error) { return intOp(a, b, intMod) },
		"max":   func(a any, vs ...any) (int64, error) { return intFold(a, vs, intMax) },
		"min":   func(a any, vs ...any) (int64, error) { return intFold(a, vs, intMin) },
		"addf":  func(vs ...any) (float64, error) { return decimalFold(0, vs, decimalAdd) },
		"subf":  func(a any, vs ...any) (float64, error) { return decimalFold(a, vs, decimalSub) },
		"mulf":  func(a any, vs ...any) (float64, error) { return decimalFold(a, vs, decimalMul) },
		"divf":  func(a any, vs ...any) (float64, error) { return decimalFold(a, vs, decimalDiv) },
		"maxf":  func(a any, vs ...any) (float64, error) { return floatFold(a, vs, math.Max) },
		"minf":  func(a any, vs ...any) (float64, error) { return floatFold(a, vs, math.Min) },
		"ceil":  func(v any) (float64, error) { f, err := toFloat(v); return math.Ceil(f), err },
		"floor": func(v any) (float64, error) { f, err := toFloat(v); return math.Floor(f), err },
		"round": round,

		// text/template's builtins that build strings, bounded.
		"print":    escaper(1, fmt.Sprint),
		"printf":   printf,
		"println":  escaper(1, fmt.Sprintln),
		"html":     escaper(6, template.HTMLEscaper),
		"js":       escaper(6, template.JSEscaper),
		"urlquery": escaper(3, template.URLQueryEscaper),
	}
}

// unixNanos is the time of the Unix nanoseconds in s.
func unixNanos(s string) (time.Time, error) {
	ns, err := strconv.ParseInt(s, 10, 64)
	return time.Unix(0, ns), err
}

// labelsOf returns the labels of an execution's map, without its hidden keys.
func labelsOf(m map[string]string) map[string]string {
	ls := make(map[string]string, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "\x00") {
			ls[k] = v
		}
	}
	return ls
}

// rangeItems is called with the value a range goes over, and the execution's
// map: it counts the items into the execution's budget.
func rangeItems(m map[string]string, v any) (any, error) {
	n := 0
	if w := reflect.ValueOf(v); w.IsValid() {
		for w.Kind() == reflect.Interface || w.Kind() == reflect.Pointer {
			if w.IsNil() {
				break
			}
			w = w.Elem()
		}
		switch w.Kind() {
		case reflect.Array, reflect.Slice, reflect.Map, reflect.String, reflect.Chan:
			n = w.Len()
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n = int(min(max(w.Int(), 0), maxTemplateRange+1))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			n = int(min(w.Uint(), maxTemplateRange+1))
		}
	}
	ranged, _ := strconv.Atoi(m[keyRanged])
	if ranged += n; ranged > maxTemplateRange {
		return v, fmt.Errorf("the range loops go over more than %d items", maxTemplateRange)
	}
	m[keyRanged] = strconv.Itoa(ranged)
	return v, nil
}

// capped refuses a string longer than maxTemplateOutput.
func capped(s string) (string, error) {
	if len(s) > maxTemplateOutput {
		return "", errTooLong(len(s))
	}
	return s, nil
}

func errTooLong(n int) error {
	return fmt.Errorf("the result would be %d bytes, more than the limit of %d", n, maxTemplateOutput)
}

// checkLen refuses to build a string of n bytes, n computed as a float so
// that it cannot overflow.
func checkLen(n float64) error {
	if n > maxTemplateOutput {
		return fmt.Errorf("the result would be more than the limit of %d bytes", maxTemplateOutput)
	}
	return nil
}

// printf is fmt.Sprintf, refusing a result past the limit before making it.
func printf(format string, args ...any) (string, error) {
	if err := checkLen(printfBound(format, args)); err != nil {
		return "", err
	}
	return capped(fmt.Sprintf(format, args...))
}

// printfBound is more than the length of fmt.Sprintf(format, args...): a
// verb prints its operand in its length, or 6 bytes a byte with %q and %x,
// padded to at most its width, which fmt refuses past 1e6. Operands can be
// used again ("%[1]s%[1]s"), so the bound follows the format.
func printfBound(format string, args []any) float64 {
	sizes := argSizes(args)
	n, arg := float64(len(format)), 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		width := 0.0
	flags:
		for i++; i < len(format); i++ {
			switch c := format[i]; {
			case c == '[':
				if j := strings.IndexByte(format[i:], ']'); j > 0 {
					if k, err := strconv.Atoi(format[i+1 : i+j]); err == nil {
						arg = k - 1
					}
					i += j
				}
			case c == '*':
				width, arg = width+1e6, arg+1
			case c >= '0' && c <= '9':
				j := i
				for j < len(format) && format[j] >= '0' && format[j] <= '9' {
					j++
				}
				w, _ := strconv.ParseFloat(format[i:j], 64)
				width, i = width+min(w, 1e6), j-1
			case strings.IndexByte("+-# .", c) < 0:
				break flags
			}
		}
		if i < len(format) && format[i] == '%' {
			continue
		}
		size := 32.0 // a missing operand: %!s(MISSING)
		if arg >= 0 && arg < len(sizes) {
			size = sizes[arg]
			if i < len(format) && strings.IndexByte("qxX", format[i]) >= 0 {
				size *= 6
			}
		}
		n += width + 32 + size
		arg++
	}
	return n
}

// argSizes are the lengths of the operands printed alone.
func argSizes(args []any) []float64 {
	sizes := make([]float64, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case string:
			sizes[i] = float64(len(a))
		case []byte:
			sizes[i] = 4 * float64(len(a)) // [1 2 3]
		default:
			sizes[i] = float64(len(fmt.Sprint(a)))
		}
	}
	return sizes
}

// escaper is one of print, println, html, js and urlquery, refusing a result
// past the limit before making it: each byte of the operands becomes at most
// grow bytes.
func escaper(grow float64, f func(args ...any) string) func(args ...any) (string, error) {
	return func(args ...any) (string, error) {
		n := float64(len(args))
		for _, size := range argSizes(args) {
			n += grow * size
		}
		if err := checkLen(n); err != nil {
			return "", err
		}
		return capped(f(args...))
	}
}

// replaceN is strings.Replace, refusing a result past the limit.
func replaceN(s, old, new string, n int) (string, error) {
	m := strings.Count(s, old)
	if n >= 0 && n < m {
		m = n
	}
	if err := checkLen(float64(len(s)) + float64(m)*float64(len(new)-len(old))); err != nil {
		return "", err
	}
	return strings.Replace(s, old, new, n), nil
}

// regexReplace replaces the matches of expr in s, expanding $1 in repl
// unless literal.
func (t *Template) regexReplace(expr, s, repl string, literal bool) (string, error) {
	re, err := t.regexp(expr)
	if err != nil {
		return "", err
	}
	// The matches are at most len(s)+1 and do not overlap, so a submatch
	// copied by a $ reference adds at most len(s) over all of them.
	refs := 0
	if !literal {
		refs = strings.Count(repl, "$")
	}
	bound := func(matches float64) float64 {
		return float64(len(s)) + matches*float64(len(repl)) + float64(refs)*float64(len(s))
	}
	if checkLen(bound(float64(len(s)+1))) != nil {
		if err := checkLen(bound(float64(len(re.FindAllStringIndex(s, -1))))); err != nil {
			return "", err
		}
	}
	if literal {
		return re.ReplaceAllLiteralString(s, repl), nil
	}
	return re.ReplaceAllString(s, repl), nil
}

// title upper-cases the first letter of every word, as strings.Title did.
func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		sep := unicode.IsSpace(prev)
		if prev < utf8.RuneSelf {
			sep = !(prev == '_' || prev >= '0' && prev <= '9' || prev >= 'a' && prev <= 'z' || prev >= 'A' && prev <= 'Z')
		} else if unicode.IsLetter(prev) || unicode.IsDigit(prev) {
			sep = false
		}
		prev = r
		if sep {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

// runeOffset returns the byte offset of the i-th rune of s, or len(s).
func runeOffset(s string, i int) int {
	for off := range s {
		if i == 0 {
			return off
		}
		i--
	}
	return len(s)
}

// trunc keeps the first n runes of s, or the last -n.
func trunc(n any, s string) (string, error) {
	c, err := toInt(n)
	if err != nil {
		return "", err
	}
	l := int64(utf8.RuneCountInString(s))
	switch {
	case c < 0 && l+c > 0:
		return s[runeOffset(s, int(l+c)):], nil
	case c >= 0 && l > c:
		return s[:runeOffset(s, int(c))], nil
	}
	return s, nil
}

// substr returns the runes start to end of s: from the beginning when start
// is negative, to the end when end is negative or past it.
func substr(start, end any, s string) (string, error) {
	a, err := toInt(start)
	if err != nil {
		return "", err
	}
	b, err := toInt(end)
	if err != nil {
		return "", err
	}
	l := int64(utf8.RuneCountInString(s))
	a, b = min(a, l), min(b, l)
	switch {
	case a < 0 && b < 0:
		return "", nil
	case a < 0:
		return s[:runeOffset(s, int(b))], nil
	case b < 0:
		return s[runeOffset(s, int(a)):], nil
	case a > b:
		return "", nil
	}
	return s[runeOffset(s, int(a)):runeOffset(s, int(b))], nil
}

func indent(n any, s string) (string, error) {
	c, err := toInt(n)
	if err != nil {
		return "", err
	}
	c = max(c, 0)
	if err := checkLen(float64(len(s)) + float64(c)*float64(strings.Count(s, "\n")+1)); err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", int(c))
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad), nil
}

func repeat(n any, s string) (string, error) {
	c, err := toInt(n)
	if err != nil {
		return "", err
	}
	if c < 0 {
		return "", fmt.Errorf("negative count %d", c)
	}
	if err := checkLen(float64(c) * float64(len(s))); err != nil {
		return "", err
	}
	return strings.Repeat(s, int(c)), nil
}

// align pads s with spaces to n runes, or cuts it to them: keeping its
// beginning, or its end when right.
func align(n any, s string, right bool) (string, error) {
	c, err := toInt(n)
	if err != nil {
		return "", err
	}
	l := int64(utf8.RuneCountInString(s))
	if c < 0 || c == l {
		return s, nil
	}
	if c > l {
		if err := checkLen(float64(len(s)) + float64(c-l)); err != nil {
			return "", err
		}
		pad := strings.Repeat(" ", int(c-l))
		if right {
			return pad + s, nil
		}
		return s + pad, nil
	}
	if right {
		return s[runeOffset(s, int(l-c)):], nil
	}
	return s[:runeOffset(s, int(c))], nil
}

// dfault returns given when it is not empty, else d.
func dfault(d any, given ...any) any {
	if len(given) == 0 || isEmpty(given[0]) {
		return d
	}
	return given[0]
}

func isEmpty(v any) bool {
	r := reflect.ValueOf(v)
	if !r.IsValid() {
		return true
	}
	switch r.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return r.Len() == 0
	case reflect.Bool:
		return !r.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return r.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return r.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return r.Float() == 0
	case reflect.Complex64, reflect.Complex128:
		return r.Complex() == 0
	case reflect.Interface, reflect.Pointer:
		return r.IsNil()
	}
	return false
}

func b64dec(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("invalid base64: %w", err)
	}
	return string(b), nil
}

// fromJSON decodes a JSON document, or returns "" when s is not one.
func fromJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return ""
	}
	return v
}

// humanBytes are the units parseHumanBytes reads, lower-cased.
var humanBytes = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
	"p": 1e15, "pb": 1e15, "pi": 1 << 50, "pib": 1 << 50,
	"e": 1e18, "eb": 1e18, "ei": 1 << 60, "eib": 1 << 60,
}

// parseHumanBytes reads a size as humans write it ("42", "1.5 GB",
// "10MiB", "1,024 kB") and returns it in bytes.
func parseHumanBytes(s string) (float64, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
		i++
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s[:i], ",", ""), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid byte size %q", s)
	}
	unit, ok := humanBytes[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: unknown unit", s)
	}
	if f*unit >= math.MaxUint64 {
		return 0, fmt.Errorf("byte size %q is too large", s)
	}
	return float64(uint64(f * unit)), nil
}

// durationSeconds reads a duration (1h30m, 2d, 1.5s) and returns it in seconds.
func durationSeconds(s string) (float64, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return d.Seconds(), nil
}

// formatDate formats a time, or Unix seconds, in the server's time zone.
func formatDate(layout string, v any) (string, error) {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case *time.Time:
		if v == nil {
			return "", errors.New("nil time")
		}
		t = *v
	case int, int32, int64:
		i, _ := toInt(v)
		t = time.Unix(i, 0)
	default:
		return "", fmt.Errorf("%T is not a time: convert a string with toDate, toDateInZone or unixToTime", v)
	}
	return capped(t.In(time.Local).Format(layout))
}

func (t *Template) toDateInZone(layout, zone, s string) (time.Time, error) {
	loc, err := t.location(zone)
	if err != nil {
		return time.Time{}, err
	}
	return time.ParseInLocation(layout, s, loc)
}

// unixToTime reads a Unix time whose unit is told by its digits: 5 days,
// 10 seconds, 13 milliseconds, 16 microseconds, 19 nanoseconds.
func unixToTime(epoch string) (time.Time, error) {
	i, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid Unix time %q", epoch)
	}
	switch len(epoch) {
	case 5:
		return time.Unix(i*86400, 0), nil
	case 10:
		return time.Unix(i, 0), nil
	case 13:
		return time.UnixMilli(i), nil
	case 16:
		return time.UnixMicro(i), nil
	case 19:
		return time.Unix(0, i), nil
	}
	return time.Time{}, fmt.Errorf("invalid Unix time %q: want 5 digits (days), 10 (seconds), 13 (milliseconds), 16 (microseconds) or 19 (nanoseconds)", epoch)
}

// toInt reads an integer: a number of any type (a float is truncated), a
// boolean, or a string holding a number (labels are strings).
func toInt(v any) (int64, error) {
	switch v := v.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case string:
		if i, err := strconv.ParseInt(v, 0, 64); err == nil {
			return i, nil
		}
	}
	f, err := toFloat(v)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("%v is out of the range of integers", v)
	}
	return int64(f), nil
}

// toFloat reads a number: of any type, a boolean, or a string holding one.
func toFloat(v any) (float64, error) {
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			if i, err := strconv.ParseInt(s, 0, 64); err == nil {
				return float64(i), nil
			}
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(r.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(r.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return r.Float(), nil
	case reflect.Bool:
		if r.Bool() {
			return 1, nil
		}
		return 0, nil
	case reflect.String:
		return toFloat(r.String())
	case reflect.Invalid:
		return 0, errors.New("no value is not a number")
	}
	return 0, fmt.Errorf("%T is not a number", v)
}

func intOp(a, b any, op func(a, b int64) (int64, error)) (int64, error) {
	x, err := toInt(a)
	if err != nil {
		return 0, err
	}
	y, err := toInt(b)
	if err != nil {
		return 0, err
	}
	return op(x, y)
}

func intFold(first any, rest []any, op func(a, b int64) (int64, error)) (int64, error) {
	acc, err := toInt(first)
	if err != nil {
		return 0, err
	}
	for _, v := range rest {
		if acc, err = intOp(acc, v, op); err != nil {
			return 0, err
		}
	}
	return acc, nil
}

func intDiv(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	if b == -1 {
		return -a, nil // MinInt64 / -1 wraps, as it does in Go
	}
	return a / b, nil
}

func intMod(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	if b == -1 {
		return 0, nil
	}
	return a % b, nil
}

func intMax(a, b int64) (int64, error) { return max(a, b), nil }
func intMin(a, b int64) (int64, error) { return min(a, b), nil }

func floatFold(first any, rest []any, op func(a, b float64) float64) (float64, error) {
	acc, err := toFloat(first)
	if err != nil {
		return 0, err
	}
	for _, v := range rest {
		f, err := toFloat(v)
		if err != nil {
			return 0, err
		}
		acc = op(acc, f)
	}
	return acc, nil
}

// decimalOp is an operation of the float functions: exact on decimals, and
// on floats for infinities and NaN.
type decimalOp struct {
	dec func(z, a, b *big.Rat) *big.Rat // nil when it cannot be done
	flt func(a, b float64) float64
}

var (
	decimalAdd = decimalOp{(*big.Rat).Add, func(a, b float64) float64 { return a + b }}
	decimalSub = decimalOp{(*big.Rat).Sub, func(a, b float64) float64 { return a - b }}
	decimalMul = decimalOp{(*big.Rat).Mul, func(a, b float64) float64 { return a * b }}
	decimalDiv = decimalOp{
		func(z, a, b *big.Rat) *big.Rat {
			if b.Sign() == 0 {
				return nil
			}
			return z.Quo(a, b)
		},
		func(a, b float64) float64 { return a / b },
	}
)

// decimalFold computes in decimal, as sprig's float functions do, so that
// addf 0.1 0.2 is 0.3: every operand is taken as the shortest decimal that
// reads back as it, the arithmetic is exact, and the result is the float
// nearest to it.
func decimalFold(first any, rest []any, op decimalOp) (float64, error) {
	fs := make([]float64, 0, len(rest)+1)
	finite := true
	for _, v := range append([]any{first}, rest...) {
		f, err := toFloat(v)
		if err != nil {
			return 0, err
		}
		finite = finite && !math.IsInf(f, 0) && !math.IsNaN(f)
		fs = append(fs, f)
	}
	if !finite {
		acc := fs[0]
		for _, f := range fs[1:] {
			acc = op.flt(acc, f)
		}
		return acc, nil
	}
	acc := decimal(fs[0])
	for _, f := range fs[1:] {
		if op.dec(acc, acc, decimal(f)) == nil {
			return 0, errors.New("division by zero")
		}
	}
	f, _ := acc.Float64()
	return f, nil
}

// decimal is the shortest decimal that reads back as the finite f.
func decimal(f float64) *big.Rat {
	r, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	return r
}

// round rounds v to places digits after the point, away from zero when the
// dropped fraction is at least roundOn (0.5 unless given).
func round(v any, places any, roundOn ...any) (float64, error) {
	f, err := toFloat(v)
	if err != nil {
		return 0, err
	}
	p, err := toInt(places)
	if err != nil {
		return 0, err
	}
	on := 0.5
	if len(roundOn) > 0 {
		if on, err = toFloat(roundOn[0]); err != nil {
			return 0, err
		}
	}
	pow := math.Pow(10, float64(p))
	digits := math.Abs(f) * pow
	whole, frac := math.Modf(digits)
	if frac >= on {
		whole++
	}
	return math.Copysign(whole/pow, f), nil
}
