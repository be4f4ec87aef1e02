package connect

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"net/netip"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"p2pd/netcore/addr"
	"p2pd/netcore/stun"
)

// friend is a dual-stack laptop behind a home router, with two brokers and
// a relay: the usual size of an address.
func friend() *addr.Address {
	key := make(ed25519.PublicKey, ed25519.PublicKeySize)
	for i := range key {
		key[i] = byte(7 + i)
	}
	return &addr.Address{
		Key: key,
		Interfaces: []addr.Interface{{
			V4: &addr.Endpoint{
				External: netip.MustParseAddr("198.51.100.2"), Internal: netip.MustParseAddr("192.168.1.20"), Port: 41234,
				NAT: addr.NATProfile{Translated: true, Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent, Ports: stun.DeltaEqual},
			},
			V6: &addr.Endpoint{
				External: netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"), Internal: netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678"), Port: 41234,
			},
		}},
		Brokers: []addr.Server{{Addr: netip.MustParseAddrPort("203.0.113.1:1883")}, {Addr: netip.MustParseAddrPort("[2001:db8::1883]:1883")}},
		Relays:  []addr.Server{{Addr: netip.MustParseAddrPort("203.0.113.1:3478")}},
	}
}

func friendText(t testing.TB) string {
	t.Helper()
	s, err := friend().Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// qrImage draws text's QR code as the Home screen does: medium error
// correction, a quiet zone, px pixels a module.
func qrImage(t testing.TB, text string, px int) image.Image {
	t.Helper()
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	return q.Image(-px)
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// screenshot puts qr among other things on a window-sized canvas: a title
// bar, blocks of "text", and the code off-centre, like a chat app's window.
func screenshot(qr image.Image, dark bool) image.Image {
	bg, fg := color.RGBA{0xf4, 0xf4, 0xf8, 0xff}, color.RGBA{0x30, 0x30, 0x40, 0xff}
	if dark {
		bg, fg = color.RGBA{0x1e, 0x1e, 0x24, 0xff}, color.RGBA{0xd0, 0xd0, 0xd8, 0xff}
	}
	img := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	draw.Draw(img, img.Bounds(), &image.Uniform{bg}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, 0, 1280, 40), &image.Uniform{color.RGBA{0x20, 0x60, 0xc0, 0xff}}, image.Point{}, draw.Src)
	rng := rand.New(rand.NewPCG(1, 2))
	for y := 80; y < 760; y += 24 {
		for x := 40; x < 1240; {
			w := 20 + rng.IntN(80)
			draw.Draw(img, image.Rect(x, y, min(x+w, 1240), y+12), &image.Uniform{fg}, image.Point{}, draw.Src)
			x += w + 10
		}
	}
	at := image.Pt(700, 220)
	r := qr.Bounds()
	if dark {
		// Light modules on a dark background, as dark-mode apps show it.
		inv := image.NewRGBA(r)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				c := color.GrayModel.Convert(qr.At(x, y)).(color.Gray)
				inv.Set(x, y, color.Gray{255 - c.Y})
			}
		}
		qr = inv
	}
	draw.Draw(img, r.Add(at), qr, r.Min, draw.Src)
	return img
}

func TestScanAddress(t *testing.T) {
	want := friendText(t)
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, screenshot(qrImage(t, want, 4), false), &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	lower, _ := friend().URI()
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"generated PNG", encodePNG(t, qrImage(t, want, 8))},
		{"one pixel a module", encodePNG(t, qrImage(t, want, 1))},
		{"screenshot", encodePNG(t, screenshot(qrImage(t, want, 3), false))},
		{"dark mode screenshot", encodePNG(t, screenshot(qrImage(t, want, 3), true))},
		{"JPEG photo of a screen", jpg.Bytes()},
		{"URI form", encodePNG(t, qrImage(t, lower, 4))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ScanAddress(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			a, err := addr.Parse(got)
			if err != nil {
				t.Fatalf("scanned %q: %v", got, err)
			}
			if s, _ := a.Encode(); s != want {
				t.Errorf("scanned %s, want %s", s, want)
			}
		})
	}
}

func TestScanAddressErrors(t *testing.T) {
	blank := image.NewRGBA(image.Rect(0, 0, 1280, 800))
	draw.Draw(blank, blank.Bounds(), &image.Uniform{color.White}, image.Point{}, draw.Src)
	for _, tc := range []struct {
		name string
		file []byte
		want error
	}{
		{"no QR code", encodePNG(t, screenshot(image.NewRGBA(image.Rect(0, 0, 1, 1)), false)), ErrNoQR},
		{"white", encodePNG(t, blank), ErrNoQR},
		{"another QR code", encodePNG(t, qrImage(t, "https://example.com/", 4)), ErrNotAddrQR},
		{"a text file", []byte("P2PD1-AAAA"), ErrNotPicture},
		{"huge", hugePNG(t), ErrTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ScanAddress(bytes.NewReader(tc.file))
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
	if ErrNoQR.Error() != "no QR code found in that picture" {
		t.Errorf("ErrNoQR reads %q", ErrNoQR)
	}
}

// hugePNG is a PNG whose header claims more pixels than a scan accepts;
// ScanAddress must refuse it from the header, before decoding.
func hugePNG(t *testing.T) []byte {
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	// IHDR's width and height sit at bytes 16–23, its CRC at 29–32.
	huge := bytes.Clone(b)
	if string(huge[12:16]) != "IHDR" {
		t.Fatal("unexpected PNG layout")
	}
	copy(huge[16:24], []byte{0, 0, 0x40, 0, 0, 0, 0x40, 0}) // 16384 × 16384
	binary.BigEndian.PutUint32(huge[29:33], crc32.ChecksumIEEE(huge[12:29]))
	return huge
}
