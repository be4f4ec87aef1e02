package relay

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// packetConn is an Allocation's relayed datagram socket (see
// [Allocation.PacketConn]). Besides net.PacketConn it has SetReadBuffer and
// SetWriteBuffer, which size the socket to the server (quic-go asks for
// them).
type packetConn struct {
	a     *Allocation
	local *net.UDPAddr // the relayed address
}

// ReadFrom returns the next datagram from a peer.
func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	a := c.a
	select {
	case <-a.closing:
		return 0, nil, c.opErr("read", nil, net.ErrClosed)
	case <-a.rd.wait():
		return 0, nil, c.opErr("read", nil, os.ErrDeadlineExceeded)
	default:
	}
	select {
	case d := <-a.in:
		return copy(p, d.data), d.from, nil
	case <-a.closing:
		return 0, nil, c.opErr("read", nil, net.ErrClosed)
	case <-a.rd.wait():
		return 0, nil, c.opErr("read", nil, os.ErrDeadlineExceeded)
	}
}

// WriteTo sends p to the peer at addr through the relay.
func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	a := c.a
	select {
	case <-a.closing:
		return 0, c.opErr("write", addr, net.ErrClosed)
	case <-a.wd.wait():
		return 0, c.opErr("write", addr, os.ErrDeadlineExceeded)
	default:
	}
	to, ok := addr.(*net.UDPAddr)
	if !ok {
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return 0, c.opErr("write", addr, fmt.Errorf("not a UDP address: %w", err))
		}
		to = net.UDPAddrFromAddrPort(ap)
	}
	if _, err := a.relay.WriteTo(p, to); err != nil {
		if a.isClosing() {
			err = net.ErrClosed
		}
		return 0, c.opErr("write", addr, err)
	}
	// pion counts the bytes of the TURN message it sent, not of p.
	return len(p), nil
}

// opErr wraps err as a *net.OpError, as a UDP socket reports errors.
func (c *packetConn) opErr(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.local, Addr: addr, Err: err}
}

// Close closes the Allocation.
func (c *packetConn) Close() error { return c.a.Close() }

// LocalAddr returns the relayed address.
func (c *packetConn) LocalAddr() net.Addr { return c.local }

// SetDeadline sets both deadlines.
func (c *packetConn) SetDeadline(t time.Time) error {
	c.a.rd.set(t)
	c.a.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline for pending and future ReadFrom calls.
func (c *packetConn) SetReadDeadline(t time.Time) error {
	c.a.rd.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for future WriteTo calls. A WriteTo
// already waiting for a permission is not interrupted: the TURN
// retransmissions or Close end it.
func (c *packetConn) SetWriteDeadline(t time.Time) error {
	c.a.wd.set(t)
	return nil
}

// SetReadBuffer sizes the receive buffer of the socket to the server.
func (c *packetConn) SetReadBuffer(n int) error { return c.a.buffers.SetReadBuffer(n) }

// SetWriteBuffer sizes the send buffer of the socket to the server.
func (c *packetConn) SetWriteBuffer(n int) error { return c.a.buffers.SetWriteBuffer(n) }

// deadline is a net.Conn deadline: a channel closed once it passes, as in
// the standard library's net.Pipe.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{}
}

func newDeadline() deadline { return deadline{expired: make(chan struct{})} }

// set moves the deadline to t; the zero t means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired: wait until it has closed the channel
	}
	d.timer = nil
	closed := isClosed(d.expired)
	if t.IsZero() {
		if closed {
			d.expired = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.expired = make(chan struct{})
		}
		expired := d.expired
		d.timer = time.AfterFunc(dur, func() { close(expired) })
		return
	}
	if !closed {
		close(d.expired)
	}
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// stop cancels a pending deadline's timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
