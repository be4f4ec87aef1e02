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
