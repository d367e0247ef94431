// Package querylimit bounds a query before any parser sees it: the size of
// the expression and how deeply it nests. Parsers recurse on nesting (and
// Prometheus's is quadratic on some of it), so a few megabytes of
// parentheses or unary minus signs can take a core and gigabytes for
// minutes; these checks are linear and allocate nothing.
package querylimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/canopy-observability/canopy/pkg/util/tenant"
	"github.com/canopy-observability/canopy/pkg/validation"
)

// formSlack is what a query request's form may hold besides the expression
// (times, step, stats, …).
const formSlack = 64 << 10

// Error is a query refused by a bound, naming the limit.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// ParseForm parses r's form reading its body only up to maxBytes of
// expression plus room for the other parameters, so a huge POST is refused
// after reading that much, not after reading it all (Go's own form limit is
// 10 MB). maxBytes <= 0 leaves the body unbounded.
func ParseForm(w http.ResponseWriter, r *http.Request, maxBytes int) error {
	if maxBytes > 0 && r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, int64(maxBytes)+formSlack)
	}
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &Error{Msg: fmt.Sprintf("query request body is larger than %d bytes: its expression is longer than the limit of %d bytes (-query-frontend.max-query-expression-size-bytes, max_query_expression_size_bytes)", tooLarge.Limit, maxBytes)}
		}
		return &Error{Msg: fmt.Sprintf("invalid form: %v", err)}
	}
	return nil
}

// Check returns an *Error when expr is longer than maxBytes or nests deeper
// than maxDepth. A limit <= 0 is off.
//
// The depth at a point of the expression bounds the depth of the syntax tree
// there: it counts the open brackets of every kind plus the operators before
// the point inside each of them (a chain of n binary operators is a tree n
// deep) and each unary sign, outside string literals and label matchers.
// Prometheus's parser takes time in the product of the tree's size and
// depth (it works out a binary expression's type by walking both sides), so
// the two limits together bound its work: 131,000 additions in 256 KiB took
// 88 s to parse, and no context ends a parse.
func Check(expr string, maxBytes, maxDepth int) error {
	if maxBytes > 0 && len(expr) > maxBytes {
		return &Error{Msg: fmt.Sprintf("query expression of %d bytes is longer than the limit of %d bytes (-query-frontend.max-query-expression-size-bytes, max_query_expression_size_bytes)", len(expr), maxBytes)}
	}
	if maxDepth <= 0 {
		return nil
	}
	// open holds, for each open bracket, its kind and the depth before it.
	type bracket struct {
		kind  byte
		depth int
	}
	var open []bracket
	depth := 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if quote != 0 {
			switch {
			case c == '\\' && quote != '`':
				i++ // the escaped character
			case c == quote:
				quote = 0
			}
			continue
		}
		inMatchers := len(open) > 0 && open[len(open)-1].kind == '{'
		switch {
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[' || c == '{':
			open = append(open, bracket{c, depth})
			depth++
		case c == ')' || c == ']' || c == '}':
			if len(open) > 0 {
				depth = open[len(open)-1].depth
				open = open[:len(open)-1]
			}
		case inMatchers:
		case c == '+' || c == '-':
			depth++
		case strings.IndexByte("*/%^=!<>", c) >= 0:
			for i+1 < len(expr) && strings.IndexByte("*/%^=!<>", expr[i+1]) >= 0 {
				i++
			}
			depth++
		case isWordByte(c):
			j := i
			for j < len(expr) && isWordByte(expr[j]) {
				j++
			}
			switch strings.ToLower(expr[i:j]) {
			case "and", "or", "unless", "atan2":
				depth++
			}
			i = j - 1
		}
		if depth > maxDepth {
			return &Error{Msg: fmt.Sprintf("query expression nests deeper than the limit of %d (brackets, binary operators and unary signs on one path; -query-frontend.max-query-expression-depth, max_query_expression_depth)", maxDepth)}
		}
	}
	return nil
}

func isWordByte(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// CheckRequest bounds a PromQL query request (form and its "query"
// expression) by the tenant's limits, before anything parses either. Beyond
// them it answers 400 in the Prometheus API's error shape, naming the
// limit, and reports false; the request may go on when it reports true.
// The tenant must be in the request's context.
func CheckRequest(w http.ResponseWriter, r *http.Request, limits validation.TenantLimits) bool {
	id, _ := tenant.ID(r.Context())
	l := limits.ByTenant(id)
	err := ParseForm(w, r, l.MaxQueryExpressionBytes)
	if err == nil {
		err = Check(r.Form.Get("query"), l.MaxQueryExpressionBytes, l.MaxQueryExpressionDepth)
	}
	if err == nil {
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": err.Error()})
	return false
}
