package transfer

import (
	"errors"
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	for _, ok := range []string{"a.txt", "folder/b.bin", "Fotos/été 2026/IMG_001.jpg", "日本語/ファイル.txt", ".hidden", "a..b"} {
		if got, err := CleanName(ok); err != nil || got != ok {
			t.Errorf("CleanName(%q) = %q, %v", ok, got, err)
		}
	}
	for _, bad := range []string{
		"", "/etc/passwd", "../x", "a/../../x", "a/..", "..", ".", "./a", "a//b", "a/", `a\b`, `..\x`,
		"C:/x", "c:x", "a/\x00b", "a\nb", "a\x7fb", "CON", "con.txt", "a/NUL", "lpt1.log", "a.", "a ",
		"a:b", "a|b", "a?b", "a*b", "a<b", "\xff\xfe", strings.Repeat("a", 256), strings.Repeat("a/", 65) + "a",
	} {
		if got, err := CleanName(bad); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("CleanName(%q) = %q, %v: want ErrUnsafeName", bad, got, err)
		}
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "C:/x", "日本/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := CleanName(name)
		if err != nil {
			return
		}
		if strings.HasPrefix(got, "/") || got == ".." || strings.HasPrefix(got, "../") || strings.Contains(got, "/../") {
			t.Fatalf("CleanName(%q) = %q escapes", name, got)
		}
	})
}
