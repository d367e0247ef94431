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
// than maxDepth, counting brackets of every kind and runs of unary signs
// (outside string literals). A limit <= 0 is off.
func Check(expr string, maxBytes, maxDepth int) error {
	if maxBytes > 0 && len(expr) > maxBytes {
		return &Error{Msg: fmt.Sprintf("query expression of %d bytes is longer than the limit of %d bytes (-query-frontend.max-query-expression-size-bytes, max_query_expression_size_bytes)", len(expr), maxBytes)}
	}
	if maxDepth <= 0 {
		return nil
	}
	depth, signs := 0, 0
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
		switch c {
		case '"', '\'', '`':
			quote, signs = c, 0
		case '(', '[', '{':
			depth++
			signs = 0
		case ')', ']', '}':
			depth--
			signs = 0
		case '-', '+':
			signs++
		case ' ', '\t', '\n', '\r':
		default:
			signs = 0
		}
		if depth+signs > maxDepth {
			return &Error{Msg: fmt.Sprintf("query expression nests deeper than the limit of %d brackets or signs (-query-frontend.max-query-expression-depth, max_query_expression_depth)", maxDepth)}
		}
	}
	return nil
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
