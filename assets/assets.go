// Package assets embeds the app's icons and images, so the binary is
// self-contained.
package assets

import _ "embed"

// IconPNG is the app icon: two peers joined by a direct link, 512x512.
//
//go:embed icon.png
var IconPNG []byte
