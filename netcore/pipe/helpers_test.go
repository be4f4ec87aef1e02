package pipe

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/dns/dnsmessage"
)

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in these tests; on loopback everything
// answers in microseconds, so hitting it means a bug, not a slow machine.
const testTimeout = 10 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

var (
	lo4 = netip.MustParseAddrPort("127.0.0.1:0")
	lo6 = netip.MustParseAddrPort("[::1]:0")
)

// needIPv6 skips (or under CI fails) when the loopback has no ::1.
func needIPv6(t testing.TB) {
	t.Helper()
	c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(lo6))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("IPv6 loopback unavailable under CI: %v", err)
		}
		t.Skipf("IPv6 loopback unavailable: %v", err)
	}
	c.Close()
}

func mustListen(t testing.TB, proto Proto, local netip.AddrPort, opts ...Option) *Pipe {
	t.Helper()
	p, err := Listen(testCtx(t), proto, local, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func mustOpen(t testing.TB, proto Proto, dest netip.AddrPort, opts ...Option) *Pipe {
	t.Helper()
	p, err := Open(testCtx(t), proto, dest.String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// echo answers every message with itself, to its sender; a failed answer
// shows up as a missing reply in the test that sent it.
func echo(msg []byte, from netip.AddrPort, p *Pipe) {
	_ = p.Send(p.Context(), msg, from)
}

func recvString(t testing.TB, p *Pipe, sub Sub) string {
	t.Helper()
	m, err := p.Recv(testCtx(t), sub)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return string(m.Data)
}

// dnsServer is a real DNS responder on loopback for resolver tests: it
// answers A queries from its table, NXDOMAIN for other names, and nothing
// at all when silent.
type dnsServer struct {
	pc     net.PacketConn
	silent bool
	hosts  map[string]netip.Addr
}

func startDNS(t testing.TB, silent bool, hosts map[string]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, silent: silent, hosts: hosts}
	done := make(chan struct{})
	go func() { defer close(done); s.serve() }()
	t.Cleanup(func() { pc.Close(); <-done })
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", addr)
		if err == nil {
			// Go's resolver reads until its own deadline even after the lookup
			// is abandoned; closing on cancel lets its goroutines end now.
			context.AfterFunc(ctx, func() { c.Close() })
		}
		return c, err
	}}
}

func (s *dnsServer) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if s.silent {
			continue
		}
		var req dnsmessage.Message
		if req.Unpack(buf[:n]) != nil || len(req.Questions) != 1 {
			continue
		}
		q := req.Questions[0]
		resp := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: req.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError},
			Questions: req.Questions,
		}
		if ip, ok := s.hosts[strings.TrimSuffix(q.Name.String(), ".")]; ok {
			resp.RCode = dnsmessage.RCodeSuccess
			if q.Type == dnsmessage.TypeA && ip.Is4() {
				resp.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body:   &dnsmessage.AResource{A: ip.As4()},
				}}
			}
		}
		out, err := resp.Pack()
		if err == nil {
			s.pc.WriteTo(out, from)
		}
	}
}
