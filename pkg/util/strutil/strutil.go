// Package strutil holds string helpers shared by packages that quote
// client input in their errors.
package strutil

import "unicode/utf8"

// Truncate bounds what an error message quotes of a client's input: s
// itself when it has at most max bytes, else its first bytes up to a
// character boundary and "…".
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
