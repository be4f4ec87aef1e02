package relay

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// packetConn is an Allocation's relayed datagram socket (see
// [Allocation.PacketConn]). Besides net.PacketConn it has SetReadBuffer and
// SetWriteBuffer, which size a UDP socket to the server (quic-go asks for
// them).
type packetConn struct {
	a     *Allocation
	local *net.UDPAddr // the relayed address
}

// ReadFrom returns the next datagram from a peer.
func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	d, err := c.next()
	if err != nil {
		return 0, nil, err
	}
	n := copy(p, d.data)
	d.release()
	return n, d.from, nil
}

// next waits for the next datagram from a peer.
func (c *packetConn) next() (datagram, error) {
	a := c.a
	select {
	case <-a.closing:
		return datagram{}, c.opErr("read", nil, net.ErrClosed)
	case <-a.rd.wait():
		return datagram{}, c.opErr("read", nil, os.ErrDeadlineExceeded)
	default:
	}
	select {
	case d := <-a.in:
		return d, nil
	case <-a.closing:
		return datagram{}, c.opErr("read", nil, net.ErrClosed)
	case <-a.rd.wait():
		return datagram{}, c.opErr("read", nil, os.ErrDeadlineExceeded)
	}
}

// WriteTo sends p to the peer at addr through the relay.
func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ch, err := c.channel(addr)
	if err != nil {
		return 0, err
	}
	if err := c.a.sendChannelData(ch.number, p); err != nil {
		return 0, c.writeErr(addr, err)
	}
	return len(p), nil
}

// channel returns the channel to the peer at addr, once the write
// deadline and Close allow a write.
func (c *packetConn) channel(addr net.Addr) (*channel, error) {
	a := c.a
	select {
	case <-a.closing:
		return nil, c.opErr("write", addr, net.ErrClosed)
	case <-a.wd.wait():
		return nil, c.opErr("write", addr, os.ErrDeadlineExceeded)
	default:
	}
	var peer netip.AddrPort
	if ua, ok := addr.(*net.UDPAddr); ok {
		peer = ua.AddrPort()
	} else {
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return nil, c.opErr("write", addr, fmt.Errorf("not a UDP address: %w", err))
		}
		peer = ap
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	ch, err := a.channelTo(peer)
	if err != nil {
		return nil, c.writeErr(addr, err)
	}
	return ch, nil
}

func (c *packetConn) writeErr(addr net.Addr, err error) error {
	if c.a.isClosing() {
		err = net.ErrClosed
	}
	return c.opErr("write", addr, err)
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
// already waiting for a channel binding is not interrupted: the TURN
// retransmissions or Close end it.
func (c *packetConn) SetWriteDeadline(t time.Time) error {
	c.a.wd.set(t)
	return nil
}

// SetReadBuffer sizes the receive buffer of a UDP socket to the server.
// A TCP connection is left alone: Linux sizes its buffers to the path
// (autotuning), and a fixed size, capped at net.core.rmem_max for users
// other than root, would cap its window and so its throughput.
func (c *packetConn) SetReadBuffer(n int) error {
	if c.a.udp == nil {
		return nil
	}
	return c.a.udp.SetReadBuffer(n)
}

// SetWriteBuffer sizes the send buffer of a UDP socket to the server;
// a TCP connection keeps sizing its own, as for SetReadBuffer.
func (c *packetConn) SetWriteBuffer(n int) error {
	if c.a.udp == nil {
		return nil
	}
	return c.a.udp.SetWriteBuffer(n)
}

// udpPacketConn is the relayed socket of an allocation reached over UDP.
// It has what quic-go looks for in a *net.UDPConn (quic.OOBCapablePacketConn
// and ReadBatch), so quic-go runs on it as on a UDP socket of its own:
// it reads datagrams in batches, finds the path MTU (DPLPMTUD: the socket
// to the server sends with Don't Fragment), and hands over bursts of
// packets for one segmented send (GSO), which WriteMsgUDP frames as a
// burst of ChannelData messages. Without these, each QUIC packet would be
// sent alone, at 1280 bytes at most.
type udpPacketConn struct {
	packetConn
}

// SyscallConn returns the socket to the server: quic-go sets its buffer
// sizes and Don't Fragment, and checks that it can segment (GSO).
func (c *udpPacketConn) SyscallConn() (syscall.RawConn, error) { return c.a.udp.SyscallConn() }

// ReadMsgUDP reads one datagram from a peer; there is no control data.
func (c *udpPacketConn) ReadMsgUDP(b, _ []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	d, err := c.next()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	n = copy(b, d.data)
	d.release()
	return n, 0, 0, d.from.(*net.UDPAddr), nil
}

// ReadBatch reads peers' datagrams into ms: it waits for one, then takes
// what else has arrived, up to len(ms). It reports no control data; a
// datagram longer than its buffer is truncated.
func (c *udpPacketConn) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	d, err := c.next()
	if err != nil {
		return 0, err
	}
	i := 0
	for {
		m := &ms[i]
		m.N, m.NN, m.Flags, m.Addr = copy(m.Buffers[0], d.data), 0, 0, d.from
		d.release()
		if i++; i == len(ms) {
			return i, nil
		}
		select {
		case d = <-c.a.in:
		default:
			return i, nil
		}
	}
}

// WriteMsgUDP sends b to the peer at addr through the relay. Of the
// control data only a segment size (GSO) counts: b then holds packets of
// that size, the last one shorter maybe, and they leave as one segmented
// send of ChannelData messages.
func (c *udpPacketConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	ch, err := c.channel(addr)
	if err != nil {
		return 0, 0, err
	}
	seg := gsoSegment(oob)
	if seg <= 0 || seg >= len(b) {
		err = c.a.sendChannelData(ch.number, b)
	} else {
		err = c.a.sendChannelBurst(ch.number, b, seg)
	}
	if err != nil {
		return 0, 0, c.writeErr(addr, err)
	}
	return len(b), len(oob), nil
}

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
