package portmap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/netcore/netns"
)

func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{"map": childMap})
	os.Exit(m.Run())
}

// childMap runs in a lab host: args are gateway, local address, protocol
// and method ("natpmp", "upnp" or "any"). It prints the probe and the
// mapping as JSON lines, then keeps the mapping until a line arrives on
// stdin, releases it and prints "released".
func childMap(args []string) error {
	gw, local, proto, method := netip.MustParseAddr(args[0]), netip.MustParseAddrPort(args[1]), args[2], args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(Probe(ctx, gw)); err != nil {
		return err
	}
	var m Mapping
	var err error
	switch method {
	case "natpmp":
		m, err = pmpMap(ctx, gw, local, proto, time.Minute)
	case "upnp":
		var d *igd
		if d, err = discoverIGD(ctx, gw); err == nil {
			m, err = d.portMapping(ctx, local, proto, time.Minute)
		}
	default:
		m, err = Map(ctx, gw, local, proto, time.Minute)
	}
	if err != nil {
		return enc.Encode(map[string]string{"error": err.Error()})
	}
	// Renewing must push the lease's end out.
	before := m.GoodUntil()
	time.Sleep(10 * time.Millisecond)
	if err := m.Renew(ctx); err != nil {
		return enc.Encode(map[string]string{"error": "renew: " + err.Error()})
	}
	if !m.GoodUntil().After(before) {
		return enc.Encode(map[string]string{"error": "renewal did not extend the lease"})
	}
	k := Keep(m, nil)
	if err := enc.Encode(map[string]any{"method": m.Method(), "external": m.External(), "until": m.GoodUntil()}); err != nil {
		return err
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	if err := k.Close(); err != nil {
		return err
	}
	fmt.Println("released")
	return nil
}

// mapper drives childMap from the test.
type mapper struct {
	in  io.WriteCloser
	out *bufio.Reader
	cmd interface{ Wait() error }
}

func startMapper(t *testing.T, l *natlab.Lab, site *natlab.Site, local netip.AddrPort, proto, method string) (*mapper, Gateway, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := l.Command(ctx, site.Host, os.Args[0], "--", site.LAN4.String(), local.String(), proto, method)
	cmd.Env = append(cmd.Env, "NATLAB_CHILD=map")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &mapper{in: in, out: bufio.NewReader(out), cmd: cmd}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	var g Gateway
	var res map[string]any
	if err := json.NewDecoder(strings.NewReader(m.line(t))).Decode(&g); err != nil {
		t.Fatalf("probe: %v (%s)", err, stderr.String())
	}
	if err := json.Unmarshal([]byte(m.line(t)), &res); err != nil {
		t.Fatalf("mapping: %v (%s)", err, stderr.String())
	}
	return m, g, res
}

func (m *mapper) line(t *testing.T) string {
	t.Helper()
	s, err := m.out.ReadString('\n')
	if err != nil {
		t.Fatalf("mapping child: %v", err)
	}
	return s
}

func (m *mapper) release(t *testing.T) {
	t.Helper()
	m.in.Write([]byte("release\n"))
	if s := m.line(t); strings.TrimSpace(s) != "released" {
		t.Fatalf("release: %q", s)
	}
}

// serveHello answers every TCP connection and UDP datagram on host with a
// greeting, from a socket made in the host's namespace.
func serveHello(t *testing.T, ns string) (tcp, udp netip.AddrPort) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	if err := netns.Do(ns, func() error {
		var err error
		// Dual-stack sockets: reached over IPv4 and IPv6.
		if ln, err = net.Listen("tcp", "[::]:0"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", "[::]:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte("hello"), from)
		}
	}()
	t.Cleanup(func() { ln.Close(); pc.Close(); <-done; <-done })
	return ln.Addr().(*net.TCPAddr).AddrPort(), pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// helloFromInet reaches ext from the internet and reports whether the
// greeting came back.
func helloFromInet(t *testing.T, l *natlab.Lab, proto string, ext netip.AddrPort) error {
	t.Helper()
	return netns.Do(l.Inet, func() error {
		var c net.Conn
		var err error
		if proto == "tcp" {
			c, err = net.DialTimeout("tcp", ext.String(), time.Second)
		} else {
			c, err = net.Dial("udp", ext.String())
		}
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		c.Write([]byte("hi"))
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != "hello" {
			return fmt.Errorf("got %q", buf[:n])
		}
		return nil
	})
}

// TestMappingLetsTheInternetIn maps a TCP and a UDP port on a router
// running miniupnpd, with each protocol, reaches the host from the
// internet through it, and checks that releasing closes it again.
func TestMappingLetsTheInternetIn(t *testing.T) {
	// miniupnpd forwards only when its STUN self-check finds the router
	// reachable (NATLAB.md), hence Accept.
	l := natlab.New(t, natlab.Config{A: natlab.NAT{Unsolicited: natlab.Accept}, UPnPA: true})
	tcpAddr, udpAddr := serveHello(t, l.A.Host)
	for _, method := range []string{"natpmp", "upnp"} {
		for _, proto := range []string{"tcp", "udp"} {
			t.Run(method+"/"+proto, func(t *testing.T) {
				port := tcpAddr.Port()
				if proto == "udp" {
					port = udpAddr.Port()
				}
				m, g, res := startMapper(t, l, l.A, netip.AddrPortFrom(l.A.Host4, port), proto, method)
				if !g.NATPMP || !g.UPnP || g.NATPMPExternal != l.A.WAN4 || g.UPnPExternal != l.A.WAN4 {
					t.Errorf("probe = %+v, want both protocols reporting %v", g, l.A.WAN4)
				}
				if res["error"] != nil {
					t.Fatalf("mapping failed: %v", res["error"])
				}
				ext := netip.MustParseAddrPort(res["external"].(string))
				if ext.Addr() != l.A.WAN4 {
					t.Errorf("external %v, want the router's %v", ext, l.A.WAN4)
				}
				if err := helloFromInet(t, l, proto, ext); err != nil {
					t.Fatalf("the internet cannot reach host A through %v: %v", ext, err)
				}
				m.release(t)
				if err := helloFromInet(t, l, proto, ext); err == nil {
					t.Errorf("%v still reaches host A after release", ext)
				}
			})
		}
	}
}

// TestUPnPThatDoesNotMap: miniupnpd behind a router that drops unsolicited
// traffic disables forwarding; it answers, but every mapping fails, and
// the failure says so.
func TestUPnPThatDoesNotMap(t *testing.T) {
	l := natlab.New(t, natlab.Config{UPnPA: true})
	tcpAddr, _ := serveHello(t, l.A.Host)
	_, g, res := startMapper(t, l, l.A, netip.AddrPortFrom(l.A.Host4, tcpAddr.Port()), "tcp", "any")
	if !g.UPnP {
		t.Errorf("probe = %+v: the IGD should still answer", g)
	}
	if res["error"] == nil || !strings.Contains(res["error"].(string), "UPnP") {
		t.Errorf("mapping result %v, want an error from both protocols", res)
	}
}

// TestIPv6Pinhole opens the router's IPv6 firewall for a host port with
// UPnP's WANIPv6FirewallControl and closes it again.
func TestIPv6Pinhole(t *testing.T) {
	l := natlab.New(t, natlab.Config{A: natlab.NAT{Unsolicited: natlab.Accept}, UPnPA: true})
	tcpAddr, udpAddr := serveHello(t, l.A.Host)
	for _, tc := range []struct {
		proto string
		port  uint16
	}{{"tcp", tcpAddr.Port()}, {"udp", udpAddr.Port()}} {
		t.Run(tc.proto, func(t *testing.T) {
			local := netip.AddrPortFrom(l.A.Host6, tc.port)
			if err := helloFromInet(t, l, tc.proto, local); err == nil {
				t.Fatalf("host A's %v is reachable before any pinhole: the firewall is off", local)
			}
			// The request goes to the router's IPv6 address.
			site := *l.A
			site.LAN4 = l.A.LAN6
			m, g, res := startMapper(t, l, &site, local, tc.proto, "any")
			if !g.UPnPPinholes {
				t.Fatalf("probe = %+v: miniupnpd offers no IPv6 firewall control", g)
			}
			if res["error"] != nil {
				t.Fatalf("pinhole failed: %v", res["error"])
			}
			if ext := netip.MustParseAddrPort(res["external"].(string)); ext != local {
				t.Errorf("pinhole reached at %v, want %v", ext, local)
			}
			if err := helloFromInet(t, l, tc.proto, local); err != nil {
				t.Fatalf("the internet cannot reach %v through the pinhole: %v", local, err)
			}
			m.release(t)
			if err := helloFromInet(t, l, tc.proto, local); err == nil {
				t.Errorf("%v still reachable after the pinhole was released", local)
			}
		})
	}
}

func TestNoGateway(t *testing.T) {
	l := natlab.New(t, natlab.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	cmd := l.Command(ctx, l.A.Host, os.Args[0], "--", l.A.LAN4.String(), netip.AddrPortFrom(l.A.Host4, 4000).String(), "udp", "any")
	cmd.Env = append(cmd.Env, "NATLAB_CHILD=map")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"natpmp":false`) || !strings.Contains(lines[1], "error") {
		t.Errorf("child printed %q", out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a router without NAT-PMP or UPnP took %v to give up", d)
	}
}

// failing is a mapping whose renewals are refused at once and whose lease
// has run out.
type failing struct {
	renewals atomic.Int32
}

func (f *failing) Method() Method                    { return NATPMP }
func (f *failing) Proto() string                     { return "udp" }
func (f *failing) Local() netip.AddrPort             { return netip.AddrPort{} }
func (f *failing) External() netip.AddrPort          { return netip.AddrPort{} }
func (f *failing) GoodUntil() time.Time              { return time.Now().Add(-time.Minute) }
func (f *failing) Renew(ctx context.Context) error   { f.renewals.Add(1); return errors.New("refused") }
func (f *failing) Release(ctx context.Context) error { return nil }

// TestKeeperDoesNotSpin: a lapsed lease whose renewals fail at once is
// retried at a measured pace, not in a tight loop.
func TestKeeperDoesNotSpin(t *testing.T) {
	f := &failing{}
	var lost atomic.Int32
	k := Keep(f, func(error) { lost.Add(1) })
	time.Sleep(200 * time.Millisecond)
	k.Close()
	if n := f.renewals.Load(); n > 1 {
		t.Errorf("%d renewals in 200 ms", n)
	}
}
