package session

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// batchMax bounds what batchConn holds before it writes: a few TLS records.
const batchMax = 256 << 10

// batchConn is the TCP connection under a session's TLS: while a
// [batchedTLS] Write runs it gathers the TLS records that write makes and
// hands them to the kernel together. crypto/tls writes each record (16 KiB
// at most) with a write call of its own. Gathered, a 1 MiB write on a
// stream (eight yamux messages of 128 KiB) takes 8 sends instead of 64,
// and the TCP stack builds larger packets from them.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	buf     []byte
	busy    atomic.Bool // from hold to the end of release
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding {
		return c.Conn.Write(p) // the handshake, and alerts sent while reading
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= batchMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *batchConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

func (c *batchConn) hold() {
	c.busy.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = true
}

// release writes what was gathered and stops gathering.
func (c *batchConn) release() error {
	defer c.busy.Store(false)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	return c.flushLocked()
}

// batchedTLS is a session's TLS connection as yamux writes to it: each
// Write's records go to the kernel together, and before Write returns.
// yamux writes from one goroutine only.
type batchedTLS struct {
	*tls.Conn
	under *batchConn
}

func (b batchedTLS) Write(p []byte) (int, error) {
	b.under.hold()
	n, err := b.Conn.Write(p)
	if ferr := b.under.release(); err == nil && ferr != nil {
		err = ferr
		n = 0
	}
	return n, err
}

// Close closes the connection. crypto/tls sends close_notify first
// unless one of its writes is under way, and waits up to 5 s for that;
// a write that blocks in release, on a full send buffer (as when the
// peer went silent), is not one of its own, so Close then closes the
// connection at once instead of waiting behind it.
func (b batchedTLS) Close() error {
	if b.under.busy.Load() {
		return b.under.Conn.Close()
	}
	return b.Conn.Close()
}
