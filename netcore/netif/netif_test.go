package netif

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"p2pd/netcore/netns/netnstest"
)

func mustAddrs(t *testing.T, s ...string) []Address {
	t.Helper()
	var out []Address
	for _, a := range s {
		ip, bits, _ := strings.Cut(a, "/") // "fe80::1%eth0/64"
		p := netip.MustParsePrefix(strings.Split(ip, "%")[0] + "/" + bits)
		out = append(out, Address{IP: netip.MustParseAddr(ip), Bits: p.Bits()})
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	out := []netip.Addr{}
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestScopeOf(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want Scope
	}{
		{"127.0.0.1", ScopeLoopback},
		{"::1", ScopeLoopback},
		{"169.254.3.4", ScopeLinkLocal},
		{"fe80::1%eth0", ScopeLinkLocal},
		{"10.0.1.2", ScopePrivate},
		{"192.168.1.5", ScopePrivate},
		{"100.64.1.1", ScopePrivate},
		{"fd00:a::2", ScopePrivate},
		{"203.0.113.7", ScopeGlobal},
		{"2001:db8::7", ScopeGlobal},
		{"::ffff:10.0.0.1", ScopePrivate},
	} {
		if got := ScopeOf(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("ScopeOf(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestRoutesGrouping(t *testing.T) {
	// A prober that answers from a table, as STUN would from the internet.
	table := func(m map[string]string) Prober {
		return func(_ context.Context, local netip.Addr) (netip.Addr, error) {
			ext, ok := m[local.String()]
			if !ok {
				return netip.Addr{}, errors.New("no answer")
			}
			return netip.MustParseAddr(ext), nil
		}
	}
	for _, tc := range []struct {
		name  string
		addrs []string
		probe Prober
		want  []Route
	}{{
		name:  "private IPv4 without probe: one route, external unknown",
		addrs: []string{"192.168.0.20/24", "10.0.0.5/8"},
		want:  []Route{{Family: IPv4, NIC: addrs("10.0.0.5", "192.168.0.20"), External: addrs()}},
	}, {
		name:  "seed example: private and misused public share an external address, a real public forms its own route",
		addrs: []string{"192.168.0.20/32", "193.168.0.1/16", "7.7.7.7/32", "8.8.0.1/16"},
		probe: table(map[string]string{"192.168.0.20": "1.3.3.7", "193.168.0.1": "1.3.3.7", "7.7.7.7": "1.3.3.7", "8.8.0.1": "8.8.0.1"}),
		want: []Route{
			{Family: IPv4, NIC: addrs("192.168.0.20", "7.7.7.7", "193.168.0.1"), External: addrs("1.3.3.7")},
			{Family: IPv4, NIC: addrs("8.8.0.1"), External: addrs("8.8.0.1")},
		},
	}, {
		name:  "public IPv4 without probe is its own external address",
		addrs: []string{"203.0.113.9/24"},
		want:  []Route{{Family: IPv4, NIC: addrs("203.0.113.9"), External: addrs("203.0.113.9")}},
	}, {
		name:  "failed probe leaves the external address unknown",
		addrs: []string{"10.0.1.2/24"},
		probe: table(nil),
		want:  []Route{{Family: IPv4, NIC: addrs("10.0.1.2"), External: addrs()}},
	}, {
		name:  "IPv6: each global address is a route, link-locals copied to every route",
		addrs: []string{"2001:db8:beef::1/128", "2001:db8:deed::1/64", "fe80::1%eth0/64"},
		want: []Route{
			{Family: IPv6, NIC: addrs("2001:db8:beef::1"), External: addrs("2001:db8:beef::1"), LinkLocal: addrs("fe80::1%eth0")},
			{Family: IPv6, NIC: addrs("2001:db8:deed::1"), External: addrs("2001:db8:deed::1"), LinkLocal: addrs("fe80::1%eth0")},
		},
	}, {
		name:  "IPv6 only link-local: one route for the LAN",
		addrs: []string{"fe80::1%eth0/64"},
		want:  []Route{{Family: IPv6, External: addrs(), LinkLocal: addrs("fe80::1%eth0")}},
	}, {
		name:  "IPv6 unique local confirmed by probe, and translated (NPTv6) global",
		addrs: []string{"fd00:a::2/64", "2001:db8::5/64"},
		probe: table(map[string]string{"fd00:a::2": "fd00:a::2", "2001:db8::5": "2001:db8:ffff::5"}),
		want: []Route{
			{Family: IPv6, NIC: addrs("2001:db8::5"), External: addrs("2001:db8:ffff::5")},
			{Family: IPv6, NIC: addrs("fd00:a::2"), External: addrs("fd00:a::2")},
		},
	}, {
		name:  "dual stack, IPv4 routes first",
		addrs: []string{"fd00:a::2/64", "10.0.1.2/24"},
		want: []Route{
			{Family: IPv4, NIC: addrs("10.0.1.2"), External: addrs()},
			{Family: IPv6, NIC: addrs("fd00:a::2"), External: addrs()},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ifc := fromAddrs("eth0", mustAddrs(t, tc.addrs...))
			got := Routes(context.Background(), &ifc, tc.probe)
			for i := range tc.want {
				tc.want[i].Interface = "eth0"
			}
			if !routesEqual(got, tc.want) {
				t.Errorf("routes:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// fromAddrs builds an interface from literal addresses, sorted as List sorts them.
func fromAddrs(name string, a []Address) Interface {
	sortAddrs(a)
	return Interface{Name: name, Up: true, Addrs: a}
}

func routesEqual(a, b []Route) bool {
	return slices.EqualFunc(a, b, func(x, y Route) bool {
		return x.Family == y.Family && x.Interface == y.Interface &&
			slices.Equal(x.NIC, y.NIC) && slices.Equal(x.External, y.External) &&
			slices.Equal(x.LinkLocal, y.LinkLocal)
	})
}

func TestRouteBind(t *testing.T) {
	r := Route{Family: IPv6, Interface: "eth0", NIC: addrs("2001:db8::1"), LinkLocal: addrs("fe80::1%eth0")}
	if got, _ := r.Bind(0); got.String() != "[2001:db8::1]:0" {
		t.Errorf("Bind = %v", got)
	}
	if got, _ := r.BindLinkLocal(4000); got.String() != "[fe80::1%eth0]:4000" {
		t.Errorf("BindLinkLocal = %v", got)
	}
	onlyLL := Route{Family: IPv6, Interface: "eth0", LinkLocal: addrs("fe80::1%eth0")}
	if got, _ := onlyLL.Bind(7); got.String() != "[fe80::1%eth0]:7" {
		t.Errorf("Bind of link-local-only route = %v", got)
	}
	if _, err := (Route{Interface: "eth0", Family: IPv4}).Bind(0); err == nil {
		t.Error("binding an empty route succeeded")
	}
	if _, err := (Route{Interface: "eth0", Family: IPv4, NIC: addrs("10.0.0.1")}).BindLinkLocal(0); err == nil {
		t.Error("link-local bind of an IPv4 route succeeded")
	}
}

func TestParseProcRoutes(t *testing.T) {
	v4 := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth1	00000000	0101A8C0	0003	0	0	600	00000000	0	0	0
eth0	00000000	0102A8C0	0003	0	0	100	00000000	0	0	0
eth0	0002A8C0	00000000	0001	0	0	100	00FFFFFF	0	0	0
wg0	00000000	00000000	0201	0	0	50	00000000	0	0	0
`
	got, err := parseRoute4(strings.NewReader(v4))
	if err != nil {
		t.Fatal(err)
	}
	sortDefaults(got)
	want := []defaultRoute{
		{family: IPv4, iface: "eth0", gateway: netip.MustParseAddr("192.168.2.1"), metric: 100},
		{family: IPv4, iface: "eth1", gateway: netip.MustParseAddr("192.168.1.1"), metric: 600},
	}
	if !slices.Equal(got, want) {
		t.Errorf("IPv4 defaults = %+v, want %+v", got, want)
	}

	v6 := `fd00000a000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`
	got, err = parseRoute6(strings.NewReader(v6))
	if err != nil {
		t.Fatal(err)
	}
	want = []defaultRoute{{family: IPv6, iface: "eth0", gateway: netip.MustParseAddr("fe80::1%eth0"), metric: 0x400}}
	if !slices.Equal(got, want) {
		t.Errorf("IPv6 defaults = %+v, want %+v", got, want)
	}

	if _, err := parseRoute4(strings.NewReader("h\neth0 zz 0 0 0 0 0 0\n")); err == nil {
		t.Error("garbage IPv4 route table parsed without error")
	}
	if _, err := parseRoute6(strings.NewReader("00 00 00 00 00 0 0 0 1 eth0\n")); err == nil {
		t.Error("garbage IPv6 route table parsed without error")
	}
}

func TestListLoopback(t *testing.T) {
	all, err := List(Options{})
	if err != nil {
		t.Fatal(err)
	}
	lo := slices.IndexFunc(all, func(i Interface) bool { return i.Loopback })
	if lo < 0 {
		t.Skip("this host has no loopback interface")
	}
	if all[lo].LAN || all[lo].WAN {
		t.Errorf("loopback usable without asking: %+v", all[lo])
	}
	withLo, err := ByName(all[lo].Name, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if !withLo.LAN || withLo.WAN {
		t.Errorf("loopback with Options.Loopback: LAN=%v WAN=%v, want LAN only", withLo.LAN, withLo.WAN)
	}
	if _, err := ByName("no-such-nic0", Options{}); err == nil {
		t.Error("ByName found a made-up interface")
	}
}

// TestNamespace builds a host with a real veth link in a network namespace:
// default routes for both families on one end, only a link-local address on
// the other, and checks what List makes of it.
func TestNamespace(t *testing.T) {
	ns := netnstest.New(t, "netif")
	netnstest.IP(t, "-n", ns, "link", "add", "wan0", "type", "veth", "peer", "name", "lan0")
	netnstest.IP(t, "-n", ns, "addr", "add", "10.9.0.1/24", "dev", "wan0")
	netnstest.IP(t, "-n", ns, "addr", "add", "fd00:9::1/64", "dev", "wan0")
	netnstest.IP(t, "-n", ns, "link", "set", "wan0", "up")
	netnstest.IP(t, "-n", ns, "link", "set", "lan0", "up")
	netnstest.IP(t, "-n", ns, "route", "add", "default", "via", "10.9.0.254")
	netnstest.IP(t, "-n", ns, "-6", "route", "add", "default", "via", "fd00:9::fe")
	netnstest.WaitLinkLocal(t, ns, "wan0")
	netnstest.WaitLinkLocal(t, ns, "lan0")

	netnstest.Do(t, ns, func() error {
		wan, err := Default(IPv4, Options{})
		if err != nil {
			return err
		}
		if wan.Name != "wan0" || !wan.Default6 || wan.Gateway4.String() != "10.9.0.254" || wan.Gateway6.String() != "fd00:9::fe" {
			t.Errorf("default interface = %s (default6=%v gw4=%v gw6=%v), want wan0 with both defaults", wan.Name, wan.Default6, wan.Gateway4, wan.Gateway6)
		}
		if !wan.LAN || !wan.WAN {
			t.Errorf("wan0 usable LAN=%v WAN=%v, want both", wan.LAN, wan.WAN)
		}
		if len(wan.Routes) != 2 || wan.Routes[0].NIC[0].String() != "10.9.0.1" || wan.Routes[1].NIC[0].String() != "fd00:9::1" {
			t.Fatalf("wan0 routes = %+v", wan.Routes)
		}
		ll := wan.Routes[1].LinkLocal
		if len(ll) != 1 || ll[0].Zone() != "wan0" {
			t.Errorf("wan0 link-local addresses = %v, want one with zone wan0", ll)
		}

		lan, err := ByName("lan0", Options{})
		if err != nil {
			return err
		}
		if !lan.LAN || lan.WAN || lan.Default4 || lan.Default6 {
			t.Errorf("lan0 = %+v, want LAN-only without defaults", lan)
		}
		if len(lan.Routes) != 1 || len(lan.Routes[0].LinkLocal) != 1 {
			t.Fatalf("lan0 routes = %+v, want one link-local route", lan.Routes)
		}
		// The link-local bind address must be usable as a socket address as is.
		bind, err := lan.Routes[0].Bind(0)
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(bind))
		if err != nil {
			return err
		}
		defer c.Close()
		if got := c.LocalAddr().(*net.UDPAddr); got.Zone != "lan0" || got.Port == 0 {
			t.Errorf("socket bound to %v, want zone lan0 and a port", got)
		}
		return nil
	})
}

func TestDefaultMissing(t *testing.T) {
	ns := netnstest.New(t, "nodef")
	netnstest.Do(t, ns, func() error {
		if _, err := Default(IPv6, Options{}); !errors.Is(err, ErrNoDefault) {
			t.Errorf("Default in a namespace without routes: err = %v, want ErrNoDefault", err)
		}
		return nil
	})
}
