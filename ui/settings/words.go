package settings

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"p2pd/netcore/config"
)

// turnLine writes a TURN relay as the TURN field's line: the URL, then the
// user and password and the realm when there are any. An empty word or
// one with spaces is quoted, so every relay reads back as it was (the
// built-in relay has a realm but no login: `URL "" "" realm`).
func turnLine(t config.TURN) string {
	w := []string{t.URL}
	switch {
	case t.Realm != "":
		w = append(w, t.User, t.Pass, t.Realm)
	case t.User != "" || t.Pass != "":
		w = append(w, t.User, t.Pass)
	}
	for i, s := range w {
		w[i] = word(s)
	}
	return strings.Join(w, " ")
}

// word quotes s when words would not read it back as one plain word.
func word(s string) string {
	if s == "" || strings.HasPrefix(s, `"`) || strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// words splits a line at spaces; a word that starts with a double quote
// runs to its closing quote, with Go's escapes (\" and \\), so it can be
// empty or hold spaces.
func words(line string) ([]string, error) {
	var out []string
	for {
		line = strings.TrimLeftFunc(line, unicode.IsSpace)
		if line == "" {
			return out, nil
		}
		if line[0] == '"' {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, errors.New(`a quoted word is not closed (inside quotes, write \" for a quote and \\ for a backslash)`)
			}
			w, _ := strconv.Unquote(q) // QuotedPrefix checked it
			line = line[len(q):]
			if r, _ := utf8.DecodeRuneInString(line); line != "" && !unicode.IsSpace(r) {
				return nil, errors.New("put a space after a closing quote")
			}
			out = append(out, w)
			continue
		}
		end := strings.IndexFunc(line, unicode.IsSpace)
		if end < 0 {
			end = len(line)
		}
		out = append(out, line[:end])
		line = line[end:]
	}
}
