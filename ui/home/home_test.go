package home

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"image/png"
	"net/netip"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"p2pd/netcore/addr"
	"p2pd/ui/connect"
)

// myAddress is a typical address: one interface, both families, two
// brokers and a relay.
func myAddress(t *testing.T) string {
	t.Helper()
	key := make(ed25519.PublicKey, ed25519.PublicKeySize)
	for i := range key {
		key[i] = byte(3 * i)
	}
	a := &addr.Address{
		Key: key,
		Interfaces: []addr.Interface{{
			V4: &addr.Endpoint{External: netip.MustParseAddr("198.51.100.2"), Internal: netip.MustParseAddr("192.168.1.20"), Port: 41234},
			V6: &addr.Endpoint{External: netip.MustParseAddr("2001:db8::20"), Internal: netip.MustParseAddr("2001:db8::20"), Port: 41234},
		}},
		Brokers: []addr.Server{{Addr: netip.MustParseAddrPort("203.0.113.1:1883")}, {Addr: netip.MustParseAddrPort("[2001:db8::1883]:1883")}},
		Relays:  []addr.Server{{Addr: netip.MustParseAddrPort("203.0.113.1:3478")}},
	}
	s, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newHome(t *testing.T) (*Home, fyne.Window) {
	t.Helper()
	a := test.NewApp()
	t.Cleanup(a.Quit)
	h := New()
	w := test.NewWindow(h)
	t.Cleanup(w.Close)
	w.Resize(fyne.NewSize(800, 760))
	return h, w
}

func TestBeforeTheStatusIsKnown(t *testing.T) {
	h, _ := newHome(t)
	if !strings.HasPrefix(h.address.Text, "Your address appears once") {
		t.Errorf("address %q", h.address.Text)
	}
	if !h.copy.Disabled() || h.qr.Visible() || !h.hint.Visible() {
		t.Errorf("Copy disabled %v, QR visible %v, hint visible %v", h.copy.Disabled(), h.qr.Visible(), h.hint.Visible())
	}
	for _, l := range []line{h.signaling, h.nat, h.mapping, h.listening} {
		if l.mark.FillColor != theme.Color(theme.ColorNameDisabled) {
			t.Errorf("%q: mark is not grey", l.text.Text)
		}
	}
}

func TestAddressCopyAndQR(t *testing.T) {
	h, w := newHome(t)
	mine := myAddress(t)
	// The app's cached status first, then fresh data.
	h.ShowStatus(Status{Address: mine, Brokers: 2, BrokersUp: 2, Verdict: "Your router lets in only replies.", Level: Fair,
		Listening: "port 41234, TCP and UDP", Refreshing: true})
	if h.address.Text != mine || !h.address.TextStyle.Monospace || !h.address.Selectable {
		t.Errorf("address label %q (monospace %v, selectable %v)", h.address.Text, h.address.TextStyle.Monospace, h.address.Selectable)
	}
	if !h.hint.Visible() || h.hint.Text != "Refreshing…" {
		t.Error("a cached status without the refreshing hint")
	}
	h.ShowStatus(Status{Address: mine, Brokers: 2, BrokersUp: 2, Verdict: "Your router lets in only replies.", Level: Fair,
		Listening: "port 41234, TCP and UDP"})
	if h.hint.Visible() {
		t.Error("the refreshing hint stays after fresh data")
	}

	test.Tap(h.copy)
	if got := fyne.CurrentApp().Clipboard().Content(); got != mine {
		t.Errorf("clipboard %q, want %q", got, mine)
	}
	if !h.copied.Visible() {
		t.Error("no word that the address was copied")
	}

	if !h.qr.Visible() || h.qr.Image == nil {
		t.Fatal("no QR code")
	}
	if h.qr.ScaleMode != canvas.ImageScalePixels {
		t.Error("the QR code is scaled smoothly, blurring its modules")
	}
	px := h.qr.Image.Bounds().Dx()
	size := h.qr.MinSize()
	if size.Width < qrMinSize || size.Width != size.Height || int(size.Width)%px != 0 || size.Width > 2*qrMinSize {
		t.Errorf("QR code drawn at %v for %d modules: want square, at least %d, whole pixels a module", size, px, qrMinSize)
	}
	// What the window shows scans back to the address.
	var b bytes.Buffer
	if err := png.Encode(&b, w.Canvas().Capture()); err != nil {
		t.Fatal(err)
	}
	got, err := connect.ScanAddress(&b)
	if err != nil {
		t.Fatalf("scanning the Home screen: %v", err)
	}
	if got != mine {
		t.Errorf("the screen's QR code reads %q, want %q", got, mine)
	}
}

func TestStatusMarks(t *testing.T) {
	h, _ := newHome(t)
	type marks struct{ signaling, nat, mapping, listening Level }
	for _, tc := range []struct {
		name string
		s    Status
		want marks
		text []string
	}{
		{"all well", Status{Brokers: 2, BrokersUp: 2, Verdict: "Friends can connect to you directly.", Level: Good,
			Mapping: "port 51000 on 198.51.100.2 by UPnP", Listening: "port 41234"},
			marks{Good, Good, Good, Good}, []string{"connected to both brokers", "Port mapping: port 51000 on 198.51.100.2 by UPnP.", "Listening on port 41234."}},
		{"punching needed", Status{Brokers: 2, BrokersUp: 1, Verdict: "Hole punching.", Level: Fair, Listening: "port 41234"},
			marks{Fair, Fair, Fair, Good}, []string{"connected to 1 of 2 brokers", "Port mapping: none (your router opened no port for P2PD)."}},
		{"relay only", Status{Brokers: 3, BrokersUp: 0, Verdict: "A symmetric NAT.", Level: Poor},
			marks{Poor, Poor, Fair, Poor}, []string{"connected to none of 3", "Not listening"}},
		{"open internet, no mapping needed", Status{Brokers: 1, BrokersUp: 1, Verdict: "Open.", Level: Good, Listening: "port 1"},
			marks{Good, Good, Unknown, Good}, []string{"its one broker", "none (not needed)"}},
		{"no brokers", Status{Verdict: "Open.", Level: Good, Listening: "port 1"},
			marks{Poor, Good, Unknown, Good}, []string{"none set up"}},
	} {
		h.ShowStatus(tc.s)
		got := marks{}
		var text []string
		for _, x := range []struct {
			l   line
			lvl *Level
		}{{h.signaling, &got.signaling}, {h.nat, &got.nat}, {h.mapping, &got.mapping}, {h.listening, &got.listening}} {
			*x.lvl = -1
			for _, lv := range []Level{Unknown, Good, Fair, Poor} {
				if x.l.mark.FillColor == theme.Color(levelColor(lv)) {
					*x.lvl = lv
				}
			}
			text = append(text, x.l.text.Text)
		}
		if got != tc.want {
			t.Errorf("%s: marks %+v, want %+v", tc.name, got, tc.want)
		}
		all := strings.Join(text, "\n")
		for _, w := range tc.text {
			if !strings.Contains(all, w) {
				t.Errorf("%s: status lacks %q:\n%s", tc.name, w, all)
			}
		}
		if h.nat.text.Text != tc.s.Verdict {
			t.Errorf("%s: verdict %q", tc.name, h.nat.text.Text)
		}
	}
	// The four levels have four different colours.
	seen := map[any]bool{}
	for _, lv := range []Level{Unknown, Good, Fair, Poor} {
		seen[theme.Color(levelColor(lv))] = true
	}
	if len(seen) != 4 {
		t.Error("two levels share a colour")
	}
}

func TestNodeError(t *testing.T) {
	h, _ := newHome(t)
	h.ShowStatus(Status{Err: errors.New("no usable network address to listen on")})
	if !h.err.Visible() || h.err.Text != "P2PD is not running: no usable network address to listen on" {
		t.Errorf("error %q (visible %v)", h.err.Text, h.err.Visible())
	}
	h.ShowStatus(Status{Address: myAddress(t)})
	if h.err.Visible() {
		t.Error("the error stays after the node runs")
	}
}
