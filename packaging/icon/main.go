// Command icon draws the app icon: it renders assets/icon.svg, the icon's
// source, to assets/icon.png, which the app embeds and the packages carry.
// Run it from the repository's root after changing the SVG:
//
//	go run ./packaging/icon
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"

	"github.com/fyne-io/oksvg"
	"github.com/srwiley/rasterx"
)

func main() {
	src := flag.String("svg", "assets/icon.svg", "the icon's `source`")
	dst := flag.String("png", "assets/icon.png", "the PNG to write")
	size := flag.Int("size", 512, "width and height in `pixels`")
	flag.Parse()
	if err := run(*src, *dst, *size); err != nil {
		fmt.Fprintln(os.Stderr, "icon:", err)
		os.Exit(1)
	}
}

func run(src, dst string, size int) error {
	svg, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	img, err := render(svg, size)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// render draws an SVG document on a size×size canvas with the rasterizer
// Fyne uses for SVG resources. Strict mode refuses elements it cannot draw,
// so the PNG never silently lacks part of the picture.
func render(svg []byte, size int) (*image.NRGBA, error) {
	icon, err := oksvg.ReadIconStream(bytes.NewReader(svg), oksvg.StrictErrorMode)
	if err != nil {
		return nil, err
	}
	icon.SetTarget(0, 0, float64(size), float64(size))
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	scanner := rasterx.NewScannerGV(size, size, img, img.Bounds())
	icon.Draw(rasterx.NewDasher(size, size, scanner), 1)
	return img, nil
}
