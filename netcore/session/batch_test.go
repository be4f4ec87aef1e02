package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net"
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
// in a few large writes (the 64 TLS records it makes, and yamux's frame
// header, gathered), and arrives intact.
func TestWritesGathered(t *testing.T) {
	var counted *countingConn
	cli, srv, errc, errs := pairTCP(t, func(b *identity.Identity) ed25519.PublicKey { return b.Public }, func(c net.Conn) net.Conn {
		counted = &countingConn{Conn: c}
		return counted
	})
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
		t.Errorf("1 MiB took %d writes to the connection; gathered, it takes about %d", writes, len(data)/batchMax+1)
	}
}
