package punch

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"p2pd/netcore/stun"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConnectLoopback: two punching ports on loopback, started at the same
// instant, end up with the two ends of one connection.
func TestConnectLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	a, err := Listen(ctx, lo, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Listen(ctx, lo, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(20 * time.Millisecond)
	bc := make(chan net.Conn, 1)
	go first(ctx, b, a.External(), at, bc)
	ac := make(chan net.Conn, 1)
	first(ctx, a, b.External(), at, ac)
	ca, cb := <-ac, <-bc
	if ca == nil || cb == nil {
		t.Fatalf("no connection: a %v, b %v", ca, cb)
	}
	defer ca.Close()
	defer cb.Close()
	if ca.LocalAddr().String() != cb.RemoteAddr().String() || ca.RemoteAddr().String() != cb.LocalAddr().String() {
		t.Fatalf("two different connections: %v-%v and %v-%v", ca.LocalAddr(), ca.RemoteAddr(), cb.LocalAddr(), cb.RemoteAddr())
	}
	if _, err := ca.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	cb.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := cb.Read(buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestConnectGivesUp: a peer that never answers fails when ctx ends, and
// every goroutine stops.
func TestConnectGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a, err := Listen(ctx, netip.MustParseAddrPort("127.0.0.1:0"), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	// A port nobody listens on: every attempt is refused.
	err = Run(ctx, a, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}, time.Now(), func(c net.Conn) {
		c.Close()
		t.Error("connected to nobody")
	})
	if err == nil {
		t.Fatal("no error from a punch that reached nobody")
	}
}

// first punches from s to peer and sends the first connection to out
// (nil if none opened).
func first(ctx context.Context, s *Socket, peer netip.AddrPort, at time.Time, out chan<- net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		got net.Conn
	)
	Run(ctx, s, []netip.AddrPort{peer}, at, func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		if got != nil {
			c.Close()
			return
		}
		got = c
		cancel()
	})
	out <- got
}

func TestPredict(t *testing.T) {
	ext := netip.MustParseAddrPort("198.51.100.1:40000")
	if got := Predict(ext, true, 0, 0); len(got) != 1 || got[0] != ext {
		t.Errorf("endpoint-independent: %v", got)
	}
	got := Predict(ext, false, stun.DeltaIndependent, 1)
	if len(got) != 3 || got[0].Port() != 40001 || got[2].Port() != 40003 {
		t.Errorf("sequential +1: %v", got)
	}
}
