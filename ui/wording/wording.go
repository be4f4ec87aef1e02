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

// Shown returns text from a peer fit to show: control characters and the
// marks that reorder text (which can make "gpj.exe" read "exe.jpg")
// become U+FFFD, and so does invalid UTF-8. multiline keeps newlines
// (CRLF read as LF) and tabs.
func Shown(text string, multiline bool) string {
	if multiline {
		text = strings.ReplaceAll(text, "\r\n", "\n")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case multiline && (r == '\n' || r == '\t'):
			return r
		case unicode.IsControl(r),
			r == '\u061c', r == '\u200e', r == '\u200f', // the letter marks
			r >= '\u202a' && r <= '\u202e', // embeddings and overrides
			r >= '\u2066' && r <= '\u2069': // isolates
			return unicode.ReplacementChar
		}
		return r
	}, text)
}
