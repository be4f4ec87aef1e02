package connect

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // pictures to scan may be JPEG photos or screenshots
	_ "image/png"
	"io"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/multi/qrcode"
	qrsingle "github.com/makiuchi-d/gozxing/qrcode"

	"p2pd/netcore/addr"
)

// This file reads an address from a picture of its QR code. It has no
// widget imports: the screen calls it off the UI goroutine.

// Errors from ScanAddress, worded for the person who picked the picture.
var (
	ErrNotPicture = errors.New("that file is not a picture P2PD can read (use PNG or JPEG)")
	ErrTooBig     = errors.New("that picture is too big to scan; crop it around the QR code")
	ErrNoQR       = errors.New("no QR code found in that picture")
	ErrNotAddrQR  = errors.New("the QR code in that picture is not a P2PD address")
)

// maxPixels bounds a picture to scan: a 4K screenshot has 8.3 million
// pixels and a phone photo about 12; a few times more is room, and
// refusing beyond keeps a hostile file from costing gigabytes.
const maxPixels = 50_000_000

// maxFileBytes bounds the file read: a screenshot or photo is a few MB.
const maxFileBytes = 64 << 20

// ScanAddress finds the QR codes in a PNG or JPEG picture and returns the
// text of the first that holds a P2PD address. The QR code may be anywhere
// in the picture (a screenshot of a chat), light on dark as well as dark on
// light.
func ScanAddress(r io.Reader) (string, error) {
	// Read once, to check the size before decoding pixels.
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("could not read the picture: %w", err)
	}
	if len(data) > maxFileBytes {
		return "", ErrTooBig
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", ErrNotPicture
	}
	if cfg.Width*cfg.Height > maxPixels {
		return "", ErrTooBig
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", ErrNotPicture
	}
	texts := findQR(img)
	if len(texts) == 0 {
		return "", ErrNoQR
	}
	for _, t := range texts {
		if _, err := addr.Parse(t); err == nil {
			return strings.TrimSpace(t), nil
		}
	}
	return "", ErrNotAddrQR
}

// findQR returns the texts of the QR codes in img.
func findQR(img image.Image) []string {
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	src := gozxing.NewLuminanceSourceFromImage(img)
	// Dark mode chat apps show QR codes light on dark; gozxing's
	// ALSO_INVERTED hint is not implemented, so invert by hand.
	for _, s := range []gozxing.LuminanceSource{src, gozxing.NewInvertedLuminanceSource(src)} {
		bmp, err := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(s))
		if err != nil {
			continue
		}
		// The multi reader finds every code in a screenshot; the single
		// one copes better with a code that fills the picture.
		var texts []string
		if rs, err := qrcode.NewQRCodeMultiReader().DecodeMultiple(bmp, hints); err == nil {
			for _, r := range rs {
				texts = append(texts, r.GetText())
			}
		}
		if r, err := qrsingle.NewQRCodeReader().Decode(bmp, hints); err == nil {
			texts = append(texts, r.GetText())
		}
		if len(texts) > 0 {
			return texts
		}
	}
	return nil
}
