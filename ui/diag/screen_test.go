package diag

import (
	"encoding/json"
	"image/color"
	"image/png"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
	"p2pd/netcore/node"
	"p2pd/netcore/portmap"
	"p2pd/netcore/stun"
)

// texts lists the text of every label and drawn text under o.
func texts(o fyne.CanvasObject) []string {
	var out []string
	for _, obj := range test.LaidOutObjects(o) {
		switch t := obj.(type) {
		case *widget.Label:
			if t.Visible() {
				out = append(out, t.Text)
			}
		case *canvas.Text:
			out = append(out, t.Text)
		}
	}
	return out
}

func hasText(all []string, want string) bool {
	return slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, want) })
}

func TestShowTypicalHomeNAT(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	s := New()
	w := test.NewWindow(s.Content())
	defer w.Close()
	w.Resize(fyne.NewSize(900, 700))
	if !hasText(texts(s.Content()), "Press Run again") {
		t.Errorf("before a report: %q", texts(s.Content()))
	}

	s.Show(typicalReport())
	all := texts(s.Content())
	for _, want := range []string{
		"port-restricted cone", // the verdict
		"Your router keeps the same public port for every destination: friends can usually reach you directly.",
		"Your router lets in replies only from the exact address and port you wrote to: connecting needs hole punching, which P2PD does for you.",
		"UPnP mapped port 41000: friends can reach you directly.",
		"Your clock is 2.3 s off: P2PD corrects for it when timing hole punches.",
		"1 of 6 servers did not answer (mqtt.example.com:1883), so the results below may be incomplete.", // the banner
		"port-restricted NAT", // the router in the picture
		"public 203.0.113.7",
		"UPnP port 41000 open",
		"TURN · 260 ms, slow",
		"MQTT · no answer",
		"192.168.1.20  →  203.0.113.7", // routes
		"2001:db8:1::20  (its own public address)  ·  link-local fe80::20%wlan0",
		"Checked at 14:02 in 2.3s.",
	} {
		if !hasText(all, want) {
			t.Errorf("the screen does not say %q", want)
		}
	}
	if s.banner.Hidden {
		t.Error("a server failed, but the banner is hidden")
	}
}

func TestShowNilReport(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	s := New()
	w := test.NewWindow(s.Content())
	defer w.Close()
	s.Show(nil)
	all := texts(s.Content())
	if !hasText(all, "The check did not finish, so there is nothing to show.") || s.banner.Hidden {
		t.Errorf("a nil report is not explained: %q", all)
	}
	if !s.copy.Disabled() {
		t.Error("Copy report is enabled with no report")
	}
	if !s.chart.Hidden || s.noChart.Hidden {
		t.Error("the chart shows without a report")
	}
}

// TestChartAgreesWithReach checks every cell against node.Reach, for a
// NAT of each kind on this side.
func TestChartAgreesWithReach(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	for _, mine := range []*stun.Profile{
		homeProfile(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual),
		homeProfile(stun.EndpointIndependent, stun.EndpointIndependent, stun.DeltaEqual),
		homeProfile(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaIndependent),
		homeProfile(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaRandom),
		{Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent, UDP: true, TCP: true},
	} {
		s := New()
		w := test.NewWindow(s.Content())
		s.Show(reportWith(mine))
		r := test.WidgetRenderer(s.chart).(*chartRenderer)
		me := node.NATProfileOf(mine, false)
		if len(r.labels) != len(friendKinds) || len(r.headers) != 1 {
			t.Fatalf("chart has %d rows and %d columns", len(r.labels), len(r.headers))
		}
		for i, k := range friendKinds {
			path := node.Reach(me, k.profile)
			if got, want := r.texts[i][0].Text, pathText(path); r.labels[i].Text != k.name || got != want {
				t.Errorf("me %v, friend %s: cell %q, want %q", mine.Type(), r.labels[i].Text, got, want)
			}
			if got, want := r.cells[i][0].StrokeColor, color.Color(levelColor(pathLevel(path))); got != want {
				t.Errorf("me %v, friend %s: colour %v, want %v", mine.Type(), k.name, got, want)
			}
		}
		w.Close()
	}
}

func TestChartRowsForTypicalNAT(t *testing.T) {
	// A port-restricted NAT that keeps ports, as most home routers.
	cols := chartColumns(reportWith(homeProfile(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual)))
	want := []string{"direct", "direct", "punch", "punch", "punch", "punch (guessing)"}
	for i, k := range friendKinds {
		if got := pathText(node.Reach(cols[0].me, k.profile)); got != want[i] {
			t.Errorf("%s: %s, want %s", k.name, got, want[i])
		}
	}
	// With UPnP every friend connects directly.
	cols = chartColumns(typicalReport())
	if len(cols) != 2 || !strings.Contains(cols[0].title, "port mapped") {
		t.Fatalf("columns %+v", cols)
	}
	for _, k := range friendKinds {
		if p := node.Reach(cols[0].me, k.profile); p != node.PathDirect {
			t.Errorf("with a mapped port, %s: %v", k.name, p)
		}
	}
}

func TestCopyReport(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	s := New()
	w := test.NewWindow(s.Content())
	defer w.Close()
	s.Show(typicalReport())
	test.Tap(s.copy)
	got := a.Clipboard().Content()
	if !json.Valid([]byte(got)) {
		t.Fatalf("clipboard holds no JSON: %q", got)
	}
	var back netcheck.Report
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if back.Verdict != typicalReport().Verdict || len(back.Servers) != 6 || back.PortMapping == nil || back.PortMapping.External.Port() != 41000 {
		t.Errorf("copied report differs: %+v", back)
	}
	if !strings.HasPrefix(s.status.Text, "Report copied") {
		t.Errorf("status after copying: %q", s.status.Text)
	}
}

func TestRunAgain(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	s := New()
	w := test.NewWindow(s.Content())
	defer w.Close()
	runs := 0
	s.OnRun = func() { runs++ }
	test.Tap(s.run)
	if runs != 1 || s.status.Text != "Checking…" || !s.run.Disabled() || s.spinner.Hidden {
		t.Errorf("after Run again: %d runs, status %q, button disabled %v", runs, s.status.Text, s.run.Disabled())
	}
	test.Tap(s.run) // disabled while checking
	if runs != 1 {
		t.Errorf("ran %d times while checking", runs)
	}
	s.Show(typicalReport())
	if s.run.Disabled() || !s.spinner.Hidden || strings.HasPrefix(s.status.Text, "Checking") {
		t.Errorf("after Show: button disabled %v, status %q", s.run.Disabled(), s.status.Text)
	}
	test.Tap(s.run)
	if runs != 2 {
		t.Errorf("ran %d times, want 2", runs)
	}
}

// forcedTheme is Fyne's theme in one variant, whatever the settings say.
type forcedTheme struct {
	fyne.Theme
	variant fyne.ThemeVariant
}

func (f forcedTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return f.Theme.Color(n, f.variant)
}

// hardReport is a symmetric NAT with random ports, no port mapping, no
// IPv6, and a relay that did not answer.
func hardReport() *netcheck.Report {
	r := reportWith(homeProfile(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaRandom))
	r.Started, r.Took = time.Date(2025, 5, 4, 9, 41, 0, 0, time.Local), 2900*time.Millisecond
	r.Interfaces[0].Name = "enp3s0"
	r.Interfaces[0].Routes = []netif.Route{{Family: netif.IPv4, Interface: "enp3s0", NIC: []netip.Addr{netip.MustParseAddr("192.168.1.20")}, External: []netip.Addr{netip.MustParseAddr("203.0.113.7")}}}
	r.PortMapping = &netcheck.PortMapping{Gateway: portmap.Gateway{Addr: netip.MustParseAddr("192.168.1.1")}}
	r.Clock = &netcheck.Clock{Offset: 40 * time.Millisecond}
	r.Servers = []netcheck.ServerOutcome{
		{Kind: "stun", Server: "udp://stun.example.net:3478", OK: true, RTT: 35 * time.Millisecond},
		{Kind: "turn", Server: "turn:relay.example.net:3478", Error: "allocate: i/o timeout"},
		{Kind: "mqtt", Server: "tcp://broker.example.org:1883", OK: true, RTT: 48 * time.Millisecond},
		{Kind: "ntp", Server: "time.example.org:123", OK: true, RTT: 15 * time.Millisecond},
	}
	r.Verdict = "Your router gives every connection a new random port (a \"symmetric\" NAT), the hardest kind: you connect directly to friends on easier networks, otherwise P2PD relays through a TURN server."
	return r
}

// offlineReport is a computer whose interface has an address but reached
// no server.
func offlineReport() *netcheck.Report {
	r := reportWith(nil)
	r.Started, r.Took = time.Date(2025, 5, 4, 9, 41, 0, 0, time.Local), 3*time.Second
	r.Interfaces[0].Families[0].Error = "no STUN server answered"
	r.Clock = &netcheck.Clock{Error: "no NTP server answered"}
	r.Servers = []netcheck.ServerOutcome{
		{Kind: "stun", Server: "udp://stun.example.net:3478", Error: "i/o timeout"},
		{Kind: "mqtt", Server: "tcp://broker.example.org:1883", Error: "dial tcp: connect: network is unreachable"},
		{Kind: "ntp", Server: "time.example.org:123", Error: "i/o timeout"},
	}
	r.Verdict = "No STUN server answered: either you are offline or your network blocks traffic to the outside, so P2PD cannot connect you to friends from here."
	return r
}

// TestScreenshot saves the screen as PNGs in $P2PD_SCREENSHOTS: a typical
// home NAT in the light and dark themes, and a hard NAT and an offline
// computer in the app's window width. Without the variable it paints the
// first into a temporary folder, so rendering is still tested.
func TestScreenshot(t *testing.T) {
	cases := []struct {
		name    string
		variant fyne.ThemeVariant
		report  *netcheck.Report
		width   float32
	}{
		{"typical-light", theme.VariantLight, typicalReport(), 940},
		{"typical-dark", theme.VariantDark, typicalReport(), 940},
		{"hard-light", theme.VariantLight, hardReport(), 720},
		{"offline-light", theme.VariantLight, offlineReport(), 720},
	}
	dir := os.Getenv("P2PD_SCREENSHOTS")
	if dir == "" {
		dir, cases = t.TempDir(), cases[:1]
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		a := test.NewApp()
		a.Settings().SetTheme(forcedTheme{theme.DefaultTheme(), tc.variant})
		s := New()
		w := test.NewWindow(s.Content())
		s.Show(tc.report)
		w.Resize(fyne.NewSize(tc.width, 800))
		// Wrapped labels know their height only once they know their
		// width: lay out again at the final size, tall enough for the
		// whole screen unscrolled.
		w.Resize(fyne.NewSize(tc.width, s.body.MinSize().Height+120))
		s.root.Refresh()
		path := filepath.Join(dir, "diagnostics-"+tc.name+".png")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, w.Canvas().Capture()); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("saved %s", path)
		w.Close()
		a.Quit()
	}
}
