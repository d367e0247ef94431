package tracepush

import (
	"fmt"
	"strconv"

	"github.com/canopy-observability/canopy/pkg/util/strutil"
)

// Error is a push body that cannot be decoded; its message names what is
// wrong and where (resource, scope and span numbers count from 0, as do
// Zipkin's span numbers).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// truncate bounds what a message quotes of the client's input.
func truncate(s string) string { return strutil.Truncate(s, 120) }

// spanAt names a span of an OTLP request for messages: i, j and k are the
// resource, scope and span numbers (j or k < 0 when not inside one).
func spanAt(i, j, k int) string {
	s := "resource " + strconv.Itoa(i)
	if j >= 0 {
		s += " scope " + strconv.Itoa(j)
	}
	if k >= 0 {
		s += " span " + strconv.Itoa(k)
	}
	return s
}
