// Package assets embeds the app's icons and images, so the binary is
// self-contained.
package assets

import _ "embed"

// IconPNG is the app icon, 512x512: two computers joined directly through a
// hole in the wall between them. icon.svg is its source; `go run
// ./packaging/icon` renders it.
//
//go:embed icon.png
var IconPNG []byte
