package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// TestPairCarriesEachWayOnOne: DialPair's two connections, joined by
// Pairs at the other end, make one connection whose bytes go each way on
// a connection of their own: what the dialer writes arrives on the
// first, what the acceptor writes on the second, each whole.
func TestPairCarriesEachWayOnOne(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pairs Pairs
	defer pairs.Close()
	// Bytes read by the acceptor's halves, and by the dialer's.
	var acceptorRead [2]atomic.Int64
	joined := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				j, err := pairs.Add(ctx, c)
				if err != nil {
					t.Error(err)
				}
				if j != nil {
					joined <- j
				}
			}()
		}
	}()
	var dialerRead [2]atomic.Int64
	var dialed atomic.Int32
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", l.Addr().String())
		if err != nil {
			return nil, err
		}
		return countingConn{c, &dialerRead[dialed.Add(1)-1]}, nil
	}
	d, err := DialPair(ctx, dial, dial)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var a net.Conn
	select {
	case a = <-joined:
	case <-ctx.Done():
		t.Fatal("the two halves were not joined")
	}
	defer a.Close()
	// Count what each of the acceptor's halves reads.
	pc := a.(*pairConn)
	pc.r = countingConn{pc.r, &acceptorRead[0]}
	pc.w = countingConn{pc.w, &acceptorRead[1]}

	up, down := bytes.Repeat([]byte("up"), 1<<19), bytes.Repeat([]byte("dn"), 1<<19)
	var wg sync.WaitGroup
	for _, dir := range []struct {
		from, to net.Conn
		data     []byte
	}{{d, a, up}, {a, d, down}} {
		wg.Go(func() {
			go dir.from.Write(dir.data)
			got := make([]byte, len(dir.data))
			if _, err := io.ReadFull(dir.to, got); err != nil || !bytes.Equal(got, dir.data) {
				t.Errorf("%d bytes did not arrive whole: %v", len(dir.data), err)
			}
		})
	}
	wg.Wait()
	// The dialer's halves: its first only writes, its second only reads
	// (which one dialed first does not matter: one read nothing).
	r0, r1 := dialerRead[0].Load(), dialerRead[1].Load()
	if min(r0, r1) != 0 || max(r0, r1) != int64(len(down)) {
		t.Errorf("the dialer read %d and %d bytes on its halves, want %d on one alone", r0, r1, len(down))
	}
	if got := acceptorRead[1].Load(); got != 0 {
		t.Errorf("the acceptor read %d bytes on the half it writes on", got)
	}
	if got := acceptorRead[0].Load(); got != int64(len(up)) {
		t.Errorf("the acceptor read %d bytes on the half it reads, want %d", got, len(up))
	}
}

// TestPairsPassesPlainConnections: a connection that is not half of a
// pair comes out of Add whole, its first bytes included; a pair's header
// naming no half is refused; a half alone is closed by Close.
func TestPairsPassesPlainConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pairs Pairs
	here, there := net.Pipe()
	go there.Write([]byte("a TLS client hello, say"))
	c, err := pairs.Add(ctx, here)
	if err != nil || c == nil {
		t.Fatalf("a plain connection: %v, %v", c, err)
	}
	got := make([]byte, len("a TLS client hello, say"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "a TLS client hello, say" {
		t.Errorf("read %q, %v", got, err)
	}
	c.Close()

	here, there = net.Pipe()
	go there.Write(append([]byte(pairMagic), make([]byte, pairIDLen+1)...)) // half 0
	c, err = pairs.Add(ctx, here)
	if err != nil || c != nil {
		t.Fatalf("one half: %v, %v; want nothing yet", c, err)
	}
	pairs.Close()
	if _, err := there.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("the half left alone is still open after Close: %v", err)
	}

	here, there = net.Pipe()
	go there.Write(append(append([]byte(pairMagic), make([]byte, pairIDLen)...), 7))
	if _, err := new(Pairs).Add(ctx, here); !errors.Is(err, errBadHalf) {
		t.Errorf("a header naming half 7: %v, want errBadHalf", err)
	}
}
