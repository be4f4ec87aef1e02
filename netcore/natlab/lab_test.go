package natlab

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"p2pd/netcore/netns"
)

// TestPresetsAsCoturnSeesThem builds every preset and checks that coturn's
// own RFC 5780 client classifies it as intended: the lab is only a judge
// if its routers really behave as named. Two presets share a lab, one per
// router.
func TestPresetsAsCoturnSeesThem(t *testing.T) {
	Require(t)
	presets := Matrix()
	for i := 0; i < len(presets); i += 2 {
		pair := presets[i:min(i+2, len(presets))]
		t.Run(pair[0].String(), func(t *testing.T) {
			t.Parallel()
			cfg := Config{A: pair[0], TURN: true}
			if len(pair) > 1 {
				cfg.B = pair[1]
			}
			l := New(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			for i, site := range l.Sites()[:len(pair)] {
				wg.Go(func() { // each run mostly waits out timeouts
					m, f, err := l.NatDiscovery(ctx, site.Host)
					if err != nil {
						t.Error(err)
						return
					}
					wantM, wantF := pair[i].RFC4787()
					if m != wantM || f != wantF {
						t.Errorf("router %s %v: turnutils_natdiscovery says %s+%s, want %s+%s", site.Name, pair[i], m, f, wantM, wantF)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestParseNatDiscovery(t *testing.T) {
	out := []byte("NAT with Address Dependent Mapping!\n...\nNAT with Endpoint Independent Filtering!\n")
	if m, f, err := ParseNatDiscovery(out); m != "ADM" || f != "EIF" || err != nil {
		t.Errorf("got %s %s %v", m, f, err)
	}
	if _, _, err := ParseNatDiscovery([]byte("STUN receive timeout..")); err == nil {
		t.Error("no verdict parsed without error")
	}
}

// TestServicesAnswer checks each server from a host behind a NAT.
func TestServicesAnswer(t *testing.T) {
	l := New(t, Config{A: NAT{}, B: NAT{Mapping: MapNone, Filtering: FilterEIF}, TURN: true, MQTT: true, NTP: true, NTPOffset: 2500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range []string{"203.0.113.1:1883", "[fd00:64::1]:1883", "203.0.113.1:3478", "[fd00:64::2]:3479"} {
		if err := netns.Do(l.A.Host, func() error {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}); err != nil {
			t.Errorf("from host A: %v", err)
		}
	}
	out, err := l.Run(ctx, l.B.Host, "ntp", "203.0.113.1", "203.0.113.2")
	if err != nil {
		t.Fatal(err)
	}
	offsets := strings.Fields(string(out))
	if len(offsets) != 2 {
		t.Fatalf("ntp child printed %q", out)
	}
	real, _ := time.ParseDuration(offsets[0])
	skewed, _ := time.ParseDuration(offsets[1])
	if real.Abs() > 50*time.Millisecond || (skewed-2500*time.Millisecond).Abs() > 50*time.Millisecond {
		t.Errorf("chrony offset %v (want ~0), skewed responder %v (want ~2.5s)", real, skewed)
	}
	// No NAT on B: its host is reachable from the internet.
	if err := netns.Do(l.Inet, func() error {
		c, err := net.ListenPacket("udp", "203.0.113.1:0")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.B.Host4, 9)))
		return err
	}); err != nil {
		t.Errorf("inet cannot route to the un-NATed host: %v", err)
	}
}

func TestMain(m *testing.M) {
	ChildMain(map[string]ChildFunc{
		// ntp queries each server and prints the clock offsets.
		"ntp": func(servers []string) error {
			for _, s := range servers {
				r, err := ntp.QueryWithOptions(s, ntp.QueryOptions{Timeout: 5 * time.Second})
				if err != nil {
					return err
				}
				if err := r.Validate(); err != nil {
					return err
				}
				os.Stdout.WriteString(r.ClockOffset.String() + " ")
			}
			return nil
		},
	})
	os.Exit(m.Run())
}

// udpIn opens a UDP socket in namespace ns.
func udpIn(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := netns.Do(ns, func() error {
		pc, err := net.ListenPacket("udp4", addr)
		if err == nil {
			c = pc.(*net.UDPConn)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLoss sends datagrams through a router that drops 50% of forwarded
// packets and counts what arrives.
func TestLoss(t *testing.T) {
	l := New(t, Config{A: NAT{Loss: 50}})
	server := udpIn(t, l.Inet, "203.0.113.1:0")
	client := udpIn(t, l.A.Host, "0.0.0.0:0")
	const n = 400
	for i := range n {
		client.WriteToUDPAddrPort([]byte{byte(i)}, server.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	got := 0
	buf := make([]byte, 16)
	server.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := server.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
		got++
	}
	// 400 fair coin flips land within 35%..65% but for one run in billions.
	if got < n*35/100 || got > n*65/100 {
		t.Errorf("%d of %d datagrams arrived through a 50%% lossy router", got, n)
	}
}

// TestShortUDPTimeout checks that a mapping lets replies in while fresh
// and forgets them once idle longer than the router's UDP timeout.
func TestShortUDPTimeout(t *testing.T) {
	l := New(t, Config{A: NAT{UDPTimeout: time.Second}})
	server := udpIn(t, l.Inet, "203.0.113.1:0")
	client := udpIn(t, l.A.Host, "0.0.0.0:0")
	to := server.LocalAddr().(*net.UDPAddr).AddrPort()
	client.WriteToUDPAddrPort([]byte("out"), to)
	buf := make([]byte, 16)
	server.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, mapped, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	reply := func() error {
		server.WriteToUDPAddrPort([]byte("in"), mapped)
		client.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _, err := client.ReadFromUDPAddrPort(buf)
		return err
	}
	if err := reply(); err != nil {
		t.Fatalf("a fresh mapping dropped the reply: %v", err)
	}
	time.Sleep(2500 * time.Millisecond)
	if err := reply(); err == nil {
		t.Error("the mapping outlived the router's 1 s UDP timeout")
	}
}

// TestSecondHost: two computers behind one router reach each other on the
// LAN and share the router's external address.
func TestSecondHost(t *testing.T) {
	l := New(t, Config{SecondHosts: true})
	if len(l.A.Hosts) != 2 || l.A.Hosts[1].V4.String() != "10.0.1.3" || l.A.Hosts[1].V6.String() != "fd00:a::3" {
		t.Fatalf("hosts = %+v", l.A.Hosts)
	}
	server := udpIn(t, l.A.Hosts[0].NS, "0.0.0.0:0")
	client := udpIn(t, l.A.Hosts[1].NS, "0.0.0.0:0")
	to := netip.AddrPortFrom(l.A.Host4, server.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	client.WriteToUDPAddrPort([]byte("neighbour"), to)
	server.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	n, from, err := server.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "neighbour" || from.Addr() != l.A.Hosts[1].V4 {
		t.Errorf("got %q from %v (%v), want a LAN datagram from %v", buf[:n], from, err, l.A.Hosts[1].V4)
	}
}
