package stun

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun"
)

// rfc5780 is a small RFC 5780 server on loopback, on two addresses ×
// two ports, that can misbehave: ignore CHANGE-REQUEST, or advertise an
// OTHER-ADDRESS where nothing answers.
type rfc5780 struct {
	socks        map[netip.AddrPort]*net.UDPConn
	primary      netip.AddrPort
	other        netip.AddrPort // advertised
	ignoreChange bool
}

func startRFC5780(t *testing.T, ignoreChange bool, advertise netip.AddrPort) *rfc5780 {
	t.Helper()
	s := &rfc5780{socks: map[netip.AddrPort]*net.UDPConn{}, ignoreChange: ignoreChange}
	ip1, ip2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	p1, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip1.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	port1 := uint16(p1.LocalAddr().(*net.UDPAddr).Port)
	p2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip1.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	port2 := uint16(p2.LocalAddr().(*net.UDPAddr).Port)
	s.socks[netip.AddrPortFrom(ip1, port1)] = p1
	s.socks[netip.AddrPortFrom(ip1, port2)] = p2
	for _, port := range []uint16{port1, port2} {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip2, port)))
		if err != nil {
			t.Skipf("127.0.0.2 unusable here: %v", err)
		}
		s.socks[netip.AddrPortFrom(ip2, port)] = c
	}
	s.primary = netip.AddrPortFrom(ip1, port1)
	s.other = netip.AddrPortFrom(ip2, port2)
	if advertise.IsValid() {
		s.other = advertise
	}
	done := make(chan struct{}, len(s.socks))
	for addr, c := range s.socks {
		go func() {
			defer func() { done <- struct{}{} }()
			s.serve(addr, c, ip1, ip2, port1, port2)
		}()
	}
	t.Cleanup(func() {
		for _, c := range s.socks {
			c.Close()
		}
		for range s.socks {
			<-done
		}
	})
	return s
}

func (s *rfc5780) serve(me netip.AddrPort, c *net.UDPConn, ip1, ip2 netip.Addr, port1, port2 uint16) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		via := me
		if v, err := req.Get(stun.AttrChangeRequest); err == nil && len(v) == 4 && !s.ignoreChange {
			if v[3]&byte(ChangeIP) != 0 {
				via = netip.AddrPortFrom(map[netip.Addr]netip.Addr{ip1: ip2, ip2: ip1}[via.Addr()], via.Port())
			}
			if v[3]&byte(ChangePort) != 0 {
				via = netip.AddrPortFrom(via.Addr(), map[uint16]uint16{port1: port2, port2: port1}[via.Port()])
			}
		}
		resp, _ := stun.Build(req, stun.BindingSuccess,
			&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
			&stun.OtherAddress{IP: s.other.Addr().AsSlice(), Port: int(s.other.Port())},
			stun.Fingerprint)
		s.socks[via].WriteToUDPAddrPort(resp.Raw, from)
	}
}

func discoverLoopback(t *testing.T, s *rfc5780) (*Profile, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	p, _, err := Discover(ctx, netip.MustParseAddr("127.0.0.1"), []Server{{Proto: "udp", Addr: s.primary, Name: "fake"}})
	if err != nil {
		t.Fatal(err)
	}
	return p, time.Since(start)
}

func TestDiscoverHonestServer(t *testing.T) {
	p, took := discoverLoopback(t, startRFC5780(t, false, netip.AddrPort{}))
	if p.NAT || p.Mapping != EndpointIndependent || p.Filtering != EndpointIndependent || p.Type() != TypeOpen {
		t.Errorf("loopback: NAT %v, %v+%v, %v; want no NAT, open", p.NAT, p.Mapping, p.Filtering, p.Type())
	}
	if took > 2*time.Second {
		t.Errorf("took %v", took)
	}
}

// A server that answers change requests from the address they were sent
// to must not make an open host look filtered.
func TestDiscoverServerIgnoringChangeRequest(t *testing.T) {
	p, _ := discoverLoopback(t, startRFC5780(t, true, netip.AddrPort{}))
	if p.Filtering != Unknown {
		t.Errorf("filtering %v, want unknown", p.Filtering)
	}
	if p.Type() == TypeFirewall {
		t.Error("an unmeasured filter was called a firewall")
	}
}

// An OTHER-ADDRESS where nothing answers must cost the tests' own waits,
// not the whole budget, and must not be read as filtering.
func TestDiscoverDeadAlternate(t *testing.T) {
	p, took := discoverLoopback(t, startRFC5780(t, false, netip.MustParseAddrPort("127.0.0.3:9")))
	if p.Mapping != Unknown || p.Filtering != Unknown {
		t.Errorf("dead alternate: %v+%v, want unknown+unknown", p.Mapping, p.Filtering)
	}
	if took > 3*time.Second {
		t.Errorf("a dead alternate address stalled discovery for %v", took)
	}
}
