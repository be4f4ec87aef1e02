package relay

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/config"
)

func TestAllocateMalformedURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"stun:203.0.113.1:3478", `want "turn:host:port"`},
		{"203.0.113.1:3478", `want "turn:host:port"`},
		{"turn:203.0.113.1:3478?transport=sctp", "want transport=udp or transport=tcp"},
		{"turn:203.0.113.1:notaport", "notaport"},
	} {
		start := time.Now()
		a, err := Allocate(t.Context(), config.TURN{URL: tc.url, User: "u", Pass: "p"}, netip.Addr{})
		if err == nil {
			a.Close()
			t.Errorf("%s: allocated %v", tc.url, a.Relayed())
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `TURN server "`+tc.url+`"`) || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q, want it to name the URL and say %q", tc.url, msg, tc.want)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("%s: failing took %v", tc.url, took)
		}
	}
}

func TestAllocateWrongFamily(t *testing.T) {
	_, err := Allocate(t.Context(), config.TURN{URL: "turn:127.0.0.1:3478"}, netip.MustParseAddr("::1"))
	if err == nil || !strings.Contains(err.Error(), "has no IPv6 address") {
		t.Fatalf("IPv4 server from an IPv6 address: %v", err)
	}
}

func TestAllocateTCPRefused(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "turn:" + ln.Addr().String() + "?transport=tcp"
	ln.Close()
	_, err = Allocate(t.Context(), config.TURN{URL: url}, netip.Addr{})
	if err == nil || !strings.Contains(err.Error(), "TURN server "+url+": connecting:") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("TCP to a closed port: %v", err)
	}
}

// TestAllocateSilentServer: a server that reads requests and never answers
// fails the allocation at ctx's deadline, or at the default timeout when
// ctx has none.
func TestAllocateSilentServer(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := silent.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	server := config.TURN{URL: "turn:" + silent.LocalAddr().String(), User: "u", Pass: "p"}
	for _, tc := range []struct {
		timeout time.Duration // 0: ctx without deadline
		want    time.Duration
	}{{300 * time.Millisecond, 300 * time.Millisecond}, {0, allocateTimeout}} {
		ctx := t.Context()
		if tc.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.timeout)
			defer cancel()
		}
		start := time.Now()
		_, err := Allocate(ctx, server, netip.Addr{})
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), server.URL) || !strings.Contains(err.Error(), "no allocation within") {
			t.Errorf("ctx timeout %v: error %v", tc.timeout, err)
		}
		if took < tc.want || took > tc.want+300*time.Millisecond {
			t.Errorf("ctx timeout %v: failed after %v, want %v", tc.timeout, took, tc.want)
		}
	}
}

func TestDeadline(t *testing.T) {
	d := newDeadline()
	expired := func() bool { return isClosed(d.expired) }
	if expired() {
		t.Fatal("a new deadline has expired")
	}
	d.set(time.Now().Add(-time.Second))
	if !expired() {
		t.Fatal("a past deadline has not expired")
	}
	d.set(time.Time{})
	if expired() {
		t.Fatal("clearing the deadline did not reset it")
	}
	start := time.Now()
	d.set(start.Add(50 * time.Millisecond))
	select {
	case <-d.wait():
		if took := time.Since(start); took < 50*time.Millisecond {
			t.Fatalf("deadline passed after %v", took)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("deadline did not pass")
	}
	// Moving a deadline that has passed into the future makes it pending again.
	d.set(time.Now().Add(time.Hour))
	if expired() {
		t.Fatal("deadline in an hour has expired")
	}
	d.set(time.Now())
	if !expired() {
		t.Fatal("deadline now has not expired")
	}
	d.stop()
}

// TestPacketConnDeadlinesAndClose checks packetConn's rules without a
// server: an Allocation whose pion parts are never reached.
func TestPacketConnDeadlinesAndClose(t *testing.T) {
	a := &Allocation{in: make(chan datagram, 1), closing: make(chan struct{}), rd: newDeadline(), wd: newDeadline()}
	c := &packetConn{a: a, local: &net.UDPAddr{IP: net.IPv4(203, 0, 113, 1), Port: 50000}}
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	for range 2 { // every read after the deadline fails, not just the first
		if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) || !err.(net.Error).Timeout() {
			t.Fatalf("read after the deadline: %v", err)
		}
	}
	c.SetReadDeadline(time.Time{})
	from := &net.UDPAddr{IP: net.IPv4(203, 0, 113, 1), Port: 50001}
	a.in <- datagram{data: []byte("hello"), from: from}
	if n, addr, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != "hell" || addr != from {
		t.Fatalf("read %q from %v, %v; want a truncated datagram", buf[:n], addr, err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("read with a deadline: %v after %v", err, time.Since(start))
	}
	<-a.wd.wait() // SetDeadline set the write deadline too; its timer is separate
	if _, err := c.WriteTo([]byte("x"), from); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after the deadline: %v", err)
	}
	c.SetDeadline(time.Time{})
	done := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(buf)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	close(a.closing)
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read blocked at close: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), from); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if c.LocalAddr().String() != "203.0.113.1:50000" {
		t.Fatalf("local address %v", c.LocalAddr())
	}
}
