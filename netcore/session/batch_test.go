package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/netcore/identity"
)

// countingConn counts the writes that reach the connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestWritesGathered: a 1 MiB write on a stream reaches the TCP connection
// in a few large writes (the 64 TLS records it makes, gathered), and
// arrives intact.
func TestWritesGathered(t *testing.T) {
	var counted *countingConn
	cli, srv, errc, errs := pairTCP(t, serverKey, func(c net.Conn) net.Conn {
		counted = &countingConn{Conn: c}
		return counted
	}, same)
	if errc != nil || errs != nil {
		t.Fatal(errc, errs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	got := make(chan []byte, 1)
	go func() {
		_, st, err := srv.Accept(ctx, func(string) bool { return true })
		if err != nil {
			got <- nil
			return
		}
		defer st.Close()
		b, _ := io.ReadAll(io.LimitReader(st, int64(len(data))))
		got <- b
	}()
	st, err := cli.Open(ctx, "bulk/1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := counted.writes.Load()
	if _, err := st.Write(data); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("received %d bytes, not what was sent", len(b))
	}
	writes := counted.writes.Load() - before
	t.Logf("1 MiB took %d writes to the connection", writes)
	if writes > 16 {
		t.Errorf("1 MiB took %d writes to the connection; gathered, it takes about %d", writes, len(data)/maxMessage)
	}
}

func serverKey(b *identity.Identity) ed25519.PublicKey { return b.Public }

func same(c net.Conn) net.Conn { return c }

// freezableConn stops reading once frozen, as a peer that went silent,
// until it is closed.
type freezableConn struct {
	net.Conn
	frozen    chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *freezableConn) Read(p []byte) (int, error) {
	select {
	case <-c.frozen:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Read(p)
	}
}

func (c *freezableConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestCloseBehindFullSendBuffer: a session whose peer stopped reading,
// with its sender blocked on a full send buffer, closes at once (crypto/tls
// would wait 5 s to send close_notify behind the blocked write).
func TestCloseBehindFullSendBuffer(t *testing.T) {
	frozen := make(chan struct{})
	var peer *freezableConn
	cli, srv, errc, errs := pairTCP(t, serverKey, same, func(c net.Conn) net.Conn {
		peer = &freezableConn{Conn: c, frozen: frozen, closed: make(chan struct{})}
		return peer
	})
	if errc != nil || errs != nil {
		t.Fatal(errc, errs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	accepted := make(chan net.Conn, 1)
	go func() {
		_, st, err := srv.Accept(ctx, func(string) bool { return true })
		if err == nil {
			accepted <- st
		}
	}()
	st, err := cli.Open(ctx, "bulk/1")
	if err != nil {
		t.Fatal(err)
	}
	<-accepted
	close(frozen)
	// Writes smaller than batchMax: each is flushed by release, after
	// crypto/tls's own write returned. They fill the socket buffers.
	go func() {
		buf := make([]byte, 64<<10)
		for range 1024 {
			if _, err := st.Write(buf); err != nil {
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	cli.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v behind a blocked write", took)
	}
	peer.Close()
}
