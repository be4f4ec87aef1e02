package ui

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"p2pd/netcore/netif"
)

func TestHomeDescribesNetwork(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	ifs := []netif.Interface{
		{Name: "lo", Up: true, Loopback: true, Addrs: []netif.Address{{IP: netip.MustParseAddr("127.0.0.1"), Bits: 8}}},
		{Name: "eth0", Up: true, LAN: true, WAN: true, Default4: true, Addrs: []netif.Address{
			{IP: netip.MustParseAddr("192.168.1.20"), Bits: 24},
			{IP: netip.MustParseAddr("fe80::1").WithZone("eth0"), Bits: 64},
		}},
		{Name: "usb0", Up: true, LAN: true, Addrs: []netif.Address{{IP: netip.MustParseAddr("fe80::2").WithZone("usb0"), Bits: 64}}},
	}
	w := NewMainWindow(a, Info{Version: "1.2.3"}, func() ([]netif.Interface, error) { return ifs, nil })
	defer w.Close()
	home := w.Content().(*Home)
	got := waitText(t, home)
	for _, want := range []string{"eth0: 192.168.1.20 — your way to the internet", "usb0: local link only — local network only"} {
		if !strings.Contains(got, want) {
			t.Errorf("network summary %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "lo:") {
		t.Errorf("loopback shown: %q", got)
	}
	if w.Title() != "P2PD" {
		t.Errorf("window title %q", w.Title())
	}
}

func TestHomeExplainsFailures(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	for _, tc := range []struct {
		nets NetSource
		want string
	}{
		{func() ([]netif.Interface, error) { return nil, errors.New("netlink: permission denied") }, "Could not read your network settings: netlink: permission denied"},
		{func() ([]netif.Interface, error) { return nil, nil }, "No network connection found"},
	} {
		home := NewHome(Info{Version: "x"}, tc.nets)
		w := test.NewWindow(home)
		if got := waitText(t, home); !strings.HasPrefix(got, tc.want) {
			t.Errorf("summary = %q, want %q", got, tc.want)
		}
		w.Close()
	}
}

// waitText waits for the network summary to replace the placeholder.
func waitText(t *testing.T, h *Home) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		text := h.NetworkText()
		if !strings.HasPrefix(text, "Looking") {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatal("network summary never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
