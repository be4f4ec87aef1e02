package ui

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"p2pd/netcore/netif"
)

func TestHomeDescribesNetwork(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	home := NewHome(Info{Version: "1.2.3"})
	w := test.NewWindow(home)
	defer w.Close()
	if got := home.NetworkText(); !strings.HasPrefix(got, "Looking") {
		t.Errorf("before the network is known: %q", got)
	}
	home.ShowNetwork([]netif.Interface{
		{Name: "lo", Up: true, Loopback: true, Addrs: []netif.Address{{IP: netip.MustParseAddr("127.0.0.1"), Bits: 8}}},
		{Name: "eth0", Up: true, LAN: true, WAN: true, Default4: true, Addrs: []netif.Address{
			{IP: netip.MustParseAddr("192.168.1.20"), Bits: 24},
			{IP: netip.MustParseAddr("fe80::1").WithZone("eth0"), Bits: 64},
		}},
		{Name: "usb0", Up: true, LAN: true, Addrs: []netif.Address{{IP: netip.MustParseAddr("fe80::2").WithZone("usb0"), Bits: 64}}},
	}, nil)
	got := home.NetworkText()
	for _, want := range []string{"eth0: 192.168.1.20 — your way to the internet", "usb0: local link only — local network only"} {
		if !strings.Contains(got, want) {
			t.Errorf("network summary %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "lo:") {
		t.Errorf("loopback shown: %q", got)
	}
}

func TestHomeExplainsFailures(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	for _, tc := range []struct {
		ifs  []netif.Interface
		err  error
		want string
	}{
		{nil, errors.New("netlink: permission denied"), "Could not read your network settings: netlink: permission denied"},
		{nil, nil, "No network connection found"},
	} {
		home := NewHome(Info{Version: "x"})
		w := test.NewWindow(home)
		home.ShowNetwork(tc.ifs, tc.err)
		if got := home.NetworkText(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("summary = %q, want %q", got, tc.want)
		}
		w.Close()
	}
}
