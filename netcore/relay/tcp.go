package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/transport/v2"
	"github.com/pion/turn/v2"

	"p2pd/netcore/config"
)

// TCPAllocation is a relayed TCP address on a TURN server (RFC 6062).
//
// A peer connects to [TCPAllocation.Relayed] with plain TCP, from wherever
// its network lets TCP out; once its IP is permitted ([TCPAllocation.Permit]),
// the server hands the connection to [TCPAllocation.Accept] as a TCP
// connection of its own between this host and the server, which it joins
// to the peer's. The bytes then go through the server's TCP stacks, with
// each leg's own congestion control: a server relays several times more
// bytes per CPU second that way than datagram by datagram (coturn: about
// 190 MB/s against 60 in the lab).
//
// The allocation lives on a TCP control connection to the server; pion
// refreshes it until Close, which frees it on the server and so ends every
// connection accepted through it.
type TCPAllocation struct {
	name    string // the server as configured, for messages
	server  netip.AddrPort
	relayed netip.AddrPort

	ctrl   net.Conn // the control connection
	client *turn.Client

	// pion's allocation, whose type pion keeps internal: its methods.
	acceptWith  func(net.Conn) (net.Conn, error)
	dialWith    func(net.Conn, *net.TCPAddr) (net.Conn, error)
	setDeadline func(time.Time) error
	free        func() error

	acceptMu  sync.Mutex // pion's allocation has one accept deadline
	binding   net.Conn   // the connection Accept is binding, under mu
	refusing  bool       // refuseLater runs, under mu
	closing   chan struct{}
	readDone  chan struct{}
	closeOnce sync.Once

	perms *permissions // installed with Permit

	mu    sync.Mutex
	tasks sync.WaitGroup // Dial's requests, and refuseLater
}

// AllocateTCP allocates a TCP relay on server with its long-term
// credentials, over a TCP connection to the server whatever the URL's
// transport. It is bounded by ctx, or by a 2-second timeout when ctx has
// no deadline. A server that does not relay TCP (coturn's no-tcp-relay)
// refuses it. Close the allocation to free it.
func AllocateTCP(ctx context.Context, server config.TURN) (*TCPAllocation, error) {
	start := time.Now()
	ctx, cancel := bounded(ctx)
	defer cancel()
	name := server.URL
	_, serverAddr, err := locate(ctx, server, netip.Addr{})
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", serverAddr.String())
	if err != nil {
		return nil, fmt.Errorf("TURN server %s: connecting over TCP: %w", name, err)
	}
	a := &TCPAllocation{
		name: name, server: serverAddr, ctrl: c,
		closing: make(chan struct{}), readDone: make(chan struct{}),
		perms: newPermissions(name),
	}
	a.client, err = newPionClient(turn.NewSTUNConn(c), server, serverAddr, pionLogs{name, a.isClosing})
	a.perms.client = a.client
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("TURN server %s: %w", name, err)
	}
	go a.readLoop()

	type result struct {
		relayed net.Addr
		err     error
	}
	done := make(chan result, 1)
	go func() {
		alloc, err := a.client.AllocateTCP()
		if err != nil {
			done <- result{nil, err}
			return
		}
		a.acceptWith = func(conn net.Conn) (net.Conn, error) {
			tc, err := alloc.AcceptTCPWithConn(conn)
			if err != nil {
				return nil, err
			}
			return tc, nil
		}
		a.dialWith = func(conn net.Conn, peer *net.TCPAddr) (net.Conn, error) {
			tc, err := alloc.DialTCPWithConn(conn, "tcp", peer)
			if err != nil {
				return nil, err
			}
			return tc, nil
		}
		a.setDeadline, a.free = alloc.SetDeadline, alloc.Close
		done <- result{alloc.Addr(), nil}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		// Closing the client and the connection ends the request at once.
		a.client.Close()
		c.Close()
		if r = <-done; r.err == nil {
			a.free()
		}
		<-a.readDone
		return nil, fmt.Errorf("TURN server %s: no TCP allocation within %v: %w", name, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	if r.err != nil {
		a.client.Close()
		c.Close()
		<-a.readDone
		return nil, refused(server, "TCP allocation", r.err)
	}
	if ta, ok := r.relayed.(*net.TCPAddr); ok {
		a.relayed = netip.AddrPortFrom(addrOf(ta.IP), uint16(ta.Port))
	}
	return a, nil
}

// readLoop passes what the server sends on the control connection to the
// pion client (answers, and ConnectionAttempt indications), until the
// connection closes. Our own loop rather than client.Listen, so Close can
// wait for it.
func (a *TCPAllocation) readLoop() {
	defer close(a.readDone)
	sc := turn.NewSTUNConn(a.ctrl)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := sc.ReadFrom(buf)
		if err != nil {
			return
		}
		a.client.HandleInbound(buf[:n], from)
	}
}

func (a *TCPAllocation) isClosing() bool {
	select {
	case <-a.closing:
		return true
	default:
		return false
	}
}

// Relayed returns the relayed address peers connect to.
func (a *TCPAllocation) Relayed() netip.AddrPort { return a.relayed }

// Server returns the TURN server's address.
func (a *TCPAllocation) Server() netip.AddrPort { return a.server }

// Permit lets peers connect from ips (CreatePermission); bounded by ctx.
// The permissions are refreshed until Close, as a permission lasts only
// 5 minutes.
func (a *TCPAllocation) Permit(ctx context.Context, ips ...netip.Addr) error {
	return a.perms.permit(ctx, ips)
}

// Accept waits for a permitted peer's connection to the relayed address
// and returns it: bytes written to it reach the peer, and the peer's
// arrive. Ending ctx, or Close, ends the wait.
func (a *TCPAllocation) Accept(ctx context.Context) (net.Conn, error) {
	a.acceptMu.Lock()
	defer a.acceptMu.Unlock()
	a.mu.Lock()
	refusing := a.refusing
	a.mu.Unlock()
	if a.isClosing() || refusing {
		return nil, net.ErrClosed
	}
	// The connection for the peer's bytes is ready before the peer comes.
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", a.server.String())
	if err != nil {
		return nil, fmt.Errorf("TURN server %s: connecting for a peer: %w", a.name, err)
	}
	a.setDeadline(time.Time{})
	if a.isClosing() { // Close's deadline may have come just before ours
		c.Close()
		return nil, net.ErrClosed
	}
	// Ending ctx ends the wait for a peer, and the binding after it
	// (pion waits for the server's answer without a deadline).
	a.mu.Lock()
	a.binding = c
	a.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		a.setDeadline(time.Unix(1, 0))
		c.SetDeadline(time.Unix(1, 0))
	})
	conn, err := a.acceptWith(c)
	a.mu.Lock()
	a.binding = nil
	a.mu.Unlock()
	if !stop() && err == nil {
		conn.Close() // accepted as ctx ended
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("TURN server %s: no peer connected to %v: %w", a.name, a.relayed, ctx.Err())
		}
		return nil, fmt.Errorf("TURN server %s: accepting a peer: %w", a.name, err)
	}
	return conn, nil
}

// Dial connects through the server to peer (a TCP address; another
// relayed one, say, when this host may reach nothing but its TURN
// server): the server connects from the relayed address (Connect, RFC
// 6062) and joins that connection to a new one between this host and the
// server, which Dial returns. The peer's IP is permitted on the way.
// Ending ctx, or Close, ends it.
func (a *TCPAllocation) Dial(ctx context.Context, peer netip.AddrPort) (net.Conn, error) {
	fail := func(err error) error {
		return fmt.Errorf("TURN server %s: connecting from %v to %v: %w", a.name, a.relayed, peer, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", a.server.String())
	if err != nil {
		return nil, fail(err)
	}
	a.mu.Lock()
	if a.isClosing() {
		a.mu.Unlock()
		c.Close()
		return nil, fail(net.ErrClosed)
	}
	a.tasks.Add(1)
	a.mu.Unlock()
	type result struct {
		conn net.Conn
		err  error
	}
	done, gaveUp := make(chan result), make(chan struct{})
	go func() {
		defer a.tasks.Done()
		conn, err := a.dialWith(c, net.TCPAddrFromAddrPort(netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())))
		select {
		case done <- result{conn, err}:
		case <-gaveUp:
			if err == nil {
				conn.Close()
			}
			c.Close()
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			c.Close()
			return nil, fail(r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-a.closing:
		err = net.ErrClosed
	}
	// pion's requests (permission, Connect) run on until answered or the
	// client closes; the binding, on c, ends now.
	close(gaveUp)
	c.SetDeadline(time.Unix(1, 0))
	return nil, fail(err)
}

// Refuse turns away every connection attempt the server announces from
// now until Close; call it once Accept has brought the connections
// wanted, and no Accept runs (a later one fails). pion queues the
// attempts for an Accept (10 at most), and a full queue would stop the
// control connection's reader.
func (a *TCPAllocation) Refuse() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.refusing && !a.isClosing() {
		a.refusing = true
		a.tasks.Go(a.refuseLater)
	}
}

// refuseLater takes the connection attempts the server announces until
// Close; each is left unbound, and the server drops that connection.
func (a *TCPAllocation) refuseLater() {
	for !a.isClosing() {
		a.setDeadline(time.Time{})
		if a.isClosing() { // Close's deadline may have come just before ours
			return
		}
		a.acceptWith(refusedConn{})
	}
}

// refusedConn is the data connection refuseLater binds an attempt on:
// the bind fails at its first write, without a connection to the server.
type refusedConn struct{ transport.TCPConn }

func (refusedConn) Write([]byte) (int, error) { return 0, net.ErrClosed }
func (refusedConn) Close() error              { return nil }

// Close frees the allocation on the server, which ends the connections
// accepted through it, and closes the control connection.
func (a *TCPAllocation) Close() error {
	var err error
	a.closeOnce.Do(func() {
		a.perms.close()
		a.mu.Lock()
		close(a.closing)
		if a.binding != nil {
			a.binding.SetDeadline(time.Unix(1, 0))
		}
		a.mu.Unlock()
		a.setDeadline(time.Unix(1, 0)) // a waiting Accept (or refuseLater) returns
		a.acceptMu.Lock()
		defer a.acceptMu.Unlock()
		// Refresh with lifetime 0, not waiting for the answer.
		if ferr := a.free(); ferr != nil && !errors.Is(ferr, net.ErrClosed) {
			err = fmt.Errorf("TURN server %s: freeing the TCP allocation: %w", a.name, ferr)
		}
		a.client.Close()
		a.ctrl.Close()
		<-a.readDone
		a.tasks.Wait() // closing was closed under mu: no Dial adds a task now
		a.perms.wait()
	})
	return err
}
