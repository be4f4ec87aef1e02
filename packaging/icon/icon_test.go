package main

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

const (
	svgPath = "../../assets/icon.svg"
	pngPath = "../../assets/icon.png"
)

// The committed PNG is what the SVG draws: a changed SVG needs
// `go run ./packaging/icon`.
func TestPNGIsRenderedSVG(t *testing.T) {
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := render(svg, 512)
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, pngPath)
	if got.Bounds() != want.Bounds() {
		t.Fatalf("%s is %v, want %v", pngPath, got.Bounds(), want.Bounds())
	}
	// A rasterizer update may move edges by a shade; a changed picture
	// differs in far more pixels than that.
	differ := 0
	for y := range 512 {
		for x := range 512 {
			if far(got.At(x, y), want.At(x, y)) {
				differ++
			}
		}
	}
	if differ > 512*512/200 {
		t.Errorf("%s differs from %s in %d pixels: run `go run ./packaging/icon`", pngPath, svgPath, differ)
	}
}

// An app icon has transparent corners around an opaque body, as desktops
// draw it on any background.
func TestIconShape(t *testing.T) {
	img := decode(t, pngPath)
	for _, p := range []image.Point{{0, 0}, {511, 0}, {0, 511}, {511, 511}, {20, 20}} {
		if _, _, _, a := img.At(p.X, p.Y).RGBA(); a != 0 {
			t.Errorf("pixel %v has alpha %d, want transparent", p, a>>8)
		}
	}
	for _, p := range []image.Point{{256, 256}, {256, 30}, {30, 256}, {100, 100}} {
		if _, _, _, a := img.At(p.X, p.Y).RGBA(); a != 0xffff {
			t.Errorf("pixel %v has alpha %d, want opaque", p, a>>8)
		}
	}
}

func TestRunWritesPNG(t *testing.T) {
	out := filepath.Join(t.TempDir(), "icon.png")
	if err := run(svgPath, out, 48); err != nil {
		t.Fatal(err)
	}
	if b := decode(t, out).Bounds(); b.Dx() != 48 || b.Dy() != 48 {
		t.Errorf("size %v, want 48x48", b)
	}
	if err := run(filepath.Join(t.TempDir(), "missing.svg"), out, 48); err == nil {
		t.Error("a missing SVG is not an error")
	}
	bad := filepath.Join(t.TempDir(), "bad.svg")
	if err := os.WriteFile(bad, []byte(`<svg viewBox="0 0 10 10"><nope/></svg>`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(bad, out, 48); err == nil {
		t.Error("an element the rasterizer cannot draw is not an error")
	}
}

func far(a, b interface{ RGBA() (r, g, b, a uint32) }) bool {
	ar, ag, ab, aa := a.RGBA()
	br, bg, bb, ba := b.RGBA()
	const tol = 8 << 8
	return diff(ar, br) > tol || diff(ag, bg) > tol || diff(ab, bb) > tol || diff(aa, ba) > tol
}

func diff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}
