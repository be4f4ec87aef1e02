package transfer

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// maxPathLen and maxNameLen bound a name from the peer: most file
	// systems refuse longer ones anyway.
	maxPathLen = 4096
	maxNameLen = 255
	// maxDepth bounds the folders a name may nest.
	maxDepth = 64
)

// ErrUnsafeName: a name from the peer that could escape the download
// folder or that this system cannot store safely.
var ErrUnsafeName = errors.New("unsafe file name")

// reserved are names Windows gives devices, whatever their extension: a
// file called "CON.txt" cannot be created there, and a friend on Windows
// could be sent one.
var reserved = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true}

// CleanName checks a relative path from the peer ("folder/file.txt",
// always with forward slashes) and returns it cleaned, or an error
// wrapping ErrUnsafeName that says why: absolute paths, "..", empty or
// "." parts, backslashes, control characters, invalid UTF-8, reserved
// device names, names ending in a dot or space, and overlong names are
// all refused. Symbolic links on the receiving side are a separate
// matter: the receiver writes through os.Root, which refuses to follow
// them out of the folder.
func CleanName(name string) (string, error) {
	bad := func(why string) (string, error) { return "", fmt.Errorf("%w %q: %s", ErrUnsafeName, name, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > maxPathLen:
		return bad("too long")
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return bad("absolute path")
	case strings.ContainsRune(name, '\\'):
		return bad("backslash (a path separator on Windows)")
	case len(name) >= 2 && name[1] == ':':
		return bad("drive letter")
	}
	parts := strings.Split(name, "/")
	if len(parts) > maxDepth {
		return bad("nested too deep")
	}
	for _, p := range parts {
		switch {
		case p == "" || p == ".":
			return bad("empty or \".\" part")
		case p == "..":
			return bad("\"..\" leads out of the folder")
		case len(p) > maxNameLen:
			return bad("a part longer than 255 bytes")
		case strings.HasSuffix(p, ".") || strings.HasSuffix(p, " "):
			return bad("a part ending in a dot or space")
		case strings.IndexFunc(p, func(r rune) bool { return unicode.IsControl(r) || r == ':' || strings.ContainsRune(`<>"|?*`, r) }) >= 0:
			return bad("a control or reserved character")
		}
		base, _, _ := strings.Cut(p, ".")
		if reserved[strings.ToUpper(strings.TrimSpace(base))] {
			return bad("a reserved device name")
		}
	}
	return path.Clean(name), nil
}
