// Package wording shapes the engine's and the system's words for the
// app's screens.
package wording

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentence makes a message (an error's, say) read as a sentence: capital
// first, full stop last (unless it ends with ? or !).
func Sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}
