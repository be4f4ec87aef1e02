package wording

import "testing"

func TestSentence(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"  no answer from the server  ": "No answer from the server.",
		"état inconnu":                  "État inconnu.",
		"is it on?":                     "Is it on?",
		"Done.":                         "Done.",
	} {
		if got := Sentence(in); got != want {
			t.Errorf("Sentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShown(t *testing.T) {
	for _, c := range []struct {
		in        string
		multiline bool
		want      string
	}{
		{"photo\u202egpj.exe", false, "photo\ufffdgpj.exe"},
		{"a\x1b[2Jb", false, "a\ufffd[2Jb"},
		{"line one\r\nline\ttwo", true, "line one\nline\ttwo"},
		{"line one\nline two", false, "line one\ufffdline two"},
		{"bad \xff byte", false, "bad \ufffd byte"},
	} {
		if got := Shown(c.in, c.multiline); got != c.want {
			t.Errorf("Shown(%q, %v) = %q, want %q", c.in, c.multiline, got, c.want)
		}
	}
}
