package pipe

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"p2pd/netcore/netif"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []PortRange
		err  bool
	}{
		{"0", []PortRange{{0, 0}}, false},
		{"8000", []PortRange{{8000, 8000}}, false},
		{"8000-8002, 9000", []PortRange{{8000, 8002}, {9000, 9000}}, false},
		{"65535", []PortRange{{65535, 65535}}, false},
		{"9-8", nil, true},
		{"0-5", nil, true},
		{"65536", nil, true},
		{"http", nil, true},
		{"", nil, true},
		{"1-", nil, true},
	} {
		got, err := ParsePorts(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseAddrPattern(t *testing.T) {
	for _, tc := range []struct {
		in, canonical string
		match, miss   []string
	}{
		{"", "*:*", []string{"1.2.3.4:5", "[::1]:9"}, nil},
		{"10.0.0.1", "10.0.0.1:*", []string{"10.0.0.1:1", "[::ffff:10.0.0.1]:2"}, []string{"10.0.0.2:1"}},
		{"10.0.0.1:0", "10.0.0.1:*", []string{"10.0.0.1:1"}, nil},
		{"10.0.0.1:53", "10.0.0.1:53", []string{"10.0.0.1:53"}, []string{"10.0.0.1:54"}},
		{"*:53", "*:53", []string{"10.9.9.9:53", "[::1]:53"}, []string{"10.0.0.1:54"}},
		{"10.0.0.0/8:53", "10.0.0.0/8:53", []string{"10.200.0.1:53"}, []string{"11.0.0.1:53", "10.0.0.1:1"}},
		{"fd00::/8", "fd00::/8:*", []string{"[fd12::1]:1"}, []string{"[fe80::1]:1"}},
		{"[fe80::1%eth0]:5000", "[fe80::1]:5000", []string{"[fe80::1%eth1]:5000"}, []string{"[fe80::2]:5000"}},
		{"::1", "[::1]:*", []string{"[::1]:7"}, []string{"127.0.0.1:7"}},
	} {
		ap, err := ParseAddrPattern(tc.in)
		if err != nil {
			t.Errorf("ParseAddrPattern(%q): %v", tc.in, err)
			continue
		}
		if ap.String() != tc.canonical {
			t.Errorf("ParseAddrPattern(%q) = %s, want %s", tc.in, ap, tc.canonical)
		}
		for _, m := range tc.match {
			if !ap.Match(netip.MustParseAddrPort(m)) {
				t.Errorf("%q does not match %s", tc.in, m)
			}
		}
		for _, m := range tc.miss {
			if ap.Match(netip.MustParseAddrPort(m)) {
				t.Errorf("%q matches %s", tc.in, m)
			}
		}
	}
}

// freePortRange finds n consecutive ports free for TCP and UDP on 127.0.0.1
// and ::1; another process may still take one, so callers retry on EADDRINUSE.
func freePortRange(n int) PortRange {
	first := uint16(20000 + rand.IntN(40000))
	return PortRange{first, first + uint16(n) - 1}
}

func TestDaemonListensOnEveryCombination(t *testing.T) {
	needIPv6(t)
	spec := Spec{
		Addrs:  []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Routes: []netif.Route{{Family: netif.IPv6, Interface: "lo", NIC: []netip.Addr{netip.MustParseAddr("::1")}}},
		Protos: []Proto{TCP, UDP},
	}
	d := NewDaemon(echo, WithFraming(Lines))
	defer d.Close()
	var ls []Listener
	for attempt := 0; ; attempt++ {
		spec.Ports = []PortRange{freePortRange(3)}
		var err error
		ls, err = d.Listen(testCtx(t), spec)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 20 {
			t.Fatal(err)
		}
	}
	if len(ls) != 2*3*2 || len(d.Listeners()) != len(ls) || len(d.Pipes()) != len(ls) {
		t.Fatalf("listening on %d sockets (%v), want 12", len(ls), ls)
	}
	for _, l := range ls {
		cli := mustOpen(t, l.Proto, l.Addr, WithFraming(Lines))
		want := fmt.Sprintf("hello %v %v", l.Proto, l.Addr)
		if err := cli.Send(testCtx(t), []byte(want), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		if got := recvString(t, cli, SubAll); got != want {
			t.Errorf("%v %v answered %q", l.Proto, l.Addr, got)
		}
	}

	// Only the wanted families.
	d6 := NewDaemon(echo)
	defer d6.Close()
	only6, err := d6.Listen(testCtx(t), Spec{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		Protos: []Proto{UDP}, Families: []netif.Family{netif.IPv6}})
	if err != nil {
		t.Fatal(err)
	}
	if len(only6) != 1 || !only6[0].Addr.Addr().Is6() || only6[0].Addr.Port() == 0 {
		t.Errorf("IPv6-only daemon listens on %v", only6)
	}
}

func TestDaemonFailureClosesWhatItStarted(t *testing.T) {
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := uint16(taken.Addr().(*net.TCPAddr).Port)
	d := NewDaemon(echo)
	defer d.Close()
	// UDP on the port is free and starts first; TCP is taken and fails.
	_, err = d.Listen(testCtx(t), Spec{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Ports: []PortRange{{port, port}}, Protos: []Proto{UDP, TCP}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("tcp 127.0.0.1:%d", port)) {
		t.Fatalf("err = %v, want a failure naming tcp 127.0.0.1:%d", err, port)
	}
	if n := len(d.Listeners()); n != 0 {
		t.Errorf("%d listeners left after a failed Listen", n)
	}
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Errorf("the UDP port of the failed Listen is still taken: %v", err)
	} else {
		u.Close()
	}
	if _, err := d.Listen(testCtx(t), Spec{Protos: []Proto{TCP}}); err == nil {
		t.Error("listening on no addresses succeeded")
	}
}
