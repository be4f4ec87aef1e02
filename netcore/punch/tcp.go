// Package punch opens direct connections through NATs and firewalls that
// drop unsolicited traffic, by having both peers send to each other at
// the same instant (hole punching).
//
// TCP punching relies on simultaneous open: each side listens on its
// punching port and connects from that same port to the peer's predicted
// external endpoints, repeatedly, from a start instant both sides agreed
// on over signaling. Each outgoing SYN opens the sender's NAT mapping and
// filter for the peer, so the first SYN that crosses an open mapping on
// the other side completes the connection, whichever side it came from.
//
// Routers that answer unsolicited SYNs with a reset need more: the reset
// closes the sender's own mapping, so two sides that both connect keep
// resetting each other unless their SYNs cross in flight. [RunPrimed]
// handles them: one side only primes, sending its first SYN with a TTL
// that dies between the routers (it opens its own router for the peer
// and never reaches the peer's), and waits on that same socket for the
// peer's SYN, which now passes; the other side connects as usual. The
// priming socket must be the connection's socket (a separate one would
// give the SYN-ACK another sequence number than conntrack saw, and it
// would leave untranslated), and the host must ignore the ICMP
// time-exceeded the priming SYN provokes ([IgnoreTimeExceeded]: the
// host firewall, so root), or the kernel aborts the connect.
package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"p2pd/netcore/pipe"
	"p2pd/netcore/stun"
)

const (
	// retryEvery spaces connection attempts to each candidate: SYNs that
	// reach a closed mapping are dropped (or reset), and the next one is
	// sent soon after the peer's SYN has opened it.
	retryEvery = 50 * time.Millisecond
	// attemptTimeout bounds one connect(): a SYN the peer's router dropped
	// is not answered, and a fresh SYN beats the kernel's 1 s retransmit.
	attemptTimeout = 250 * time.Millisecond
	// stagger orders the first attempts to several candidates.
	stagger = 5 * time.Millisecond
	// primeTTL lets a priming SYN cross this side's home router and die
	// at the next hop, before any router of the peer's. (A carrier NAT
	// behind the home router would need one more.)
	primeTTL = 2
)

// Socket is a TCP punching port: a listener on a local port that
// outgoing connections share, and that port's external endpoint.
type Socket struct {
	ln       net.Listener
	local    netip.AddrPort
	external netip.AddrPort
}

// Listen opens a punching port on local (port 0: one the system picks)
// and learns its external endpoint with a STUN Binding over TCP from that
// port to server. An invalid server skips the binding: the external
// endpoint is then the local one (no NAT, as on IPv6).
func Listen(ctx context.Context, local netip.AddrPort, server netip.AddrPort) (*Socket, error) {
	lc := net.ListenConfig{Control: pipe.ReuseControl}
	network := "tcp4"
	if local.Addr().Is6() {
		network = "tcp6"
	}
	ln, err := lc.Listen(ctx, network, local.String())
	if err != nil {
		return nil, fmt.Errorf("punching port on %v: %w", local.Addr(), err)
	}
	s := &Socket{ln: ln, local: ln.Addr().(*net.TCPAddr).AddrPort()}
	s.external = s.local
	if server.IsValid() {
		b, err := stun.BindTCP(ctx, s.local, server)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("learning the punching port's external endpoint: %w", err)
		}
		s.external = b.Mapped
	}
	return s, nil
}

// Local returns the punching port's local address.
func (s *Socket) Local() netip.AddrPort { return s.local }

// External returns the punching port's endpoint as the internet sees it
// (for connections to the STUN server; NATs that map per destination give
// other destinations other ports).
func (s *Socket) External() netip.AddrPort { return s.external }

// Close closes the listener; connections already returned stay open.
func (s *Socket) Close() error { return s.ln.Close() }

// Predict returns the endpoints a NAT is likely to give the next new
// mapping after ext: ext itself when the mapping is endpoint-independent,
// else ext plus one to three steps for a NAT that allocates ports in
// sequence. A random allocator yields ext alone: sending there still
// opens this side's filter for the peer's address.
func Predict(ext netip.AddrPort, independent bool, ports stun.Delta, step int) []netip.AddrPort {
	out := []netip.AddrPort{ext}
	if independent || step == 0 || (ports != stun.DeltaIndependent && ports != stun.DeltaDependent) {
		return out
	}
	out = out[:0]
	for k := 1; k <= 3; k++ {
		p := int(ext.Port()) + k*step
		if p > 0 && p < 65536 {
			out = append(out, netip.AddrPortFrom(ext.Addr(), uint16(p)))
		}
	}
	return out
}

// Run punches from s to the peer at its candidate endpoints, starting at
// the instant at (local time), until ctx ends: every connection that
// opens, dialed or accepted from a candidate's address, is handed to
// opened once (a 4-tuple met both ways is one connection), from
// several goroutines at once. Several may
// open when several predictions hit; the caller secures them and keeps
// one. s is closed when Run returns, which is after every goroutine it
// started has stopped; the connections handed out stay open.
func Run(ctx context.Context, s *Socket, peer []netip.AddrPort, at time.Time, opened func(net.Conn)) error {
	return run(ctx, s, peer, at, opened, dialLoop)
}

// RunPrimed is Run for the side that primes instead of connecting (see
// the package doc): for routers that reset unsolicited SYNs. The other
// side runs Run. Priming starts at once, not at the instant at: a
// priming SYN never reaches the peer, and this side's router must be
// open before the peer's first SYN arrives. IgnoreTimeExceeded must be
// in force for the socket's port (else each priming SYN's ICMP error
// aborts its connect).
func RunPrimed(ctx context.Context, s *Socket, peer []netip.AddrPort, opened func(net.Conn)) error {
	return run(ctx, s, peer, time.Now(), opened, primeLoop)
}

func run(ctx context.Context, s *Socket, peer []netip.AddrPort, at time.Time, opened func(net.Conn), loop func(ctx context.Context, local, remote netip.AddrPort, hand func(net.Conn), fail func(error))) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		s.Close()
		wg.Wait()
	}()
	if len(peer) == 0 {
		return errors.New("punch: no peer endpoint")
	}
	var (
		mu      sync.Mutex
		lastErr error
		got     int
		seen    = map[string]bool{}
	)
	fail := func(err error) {
		mu.Lock()
		lastErr = err
		mu.Unlock()
	}
	hand := func(c net.Conn) {
		key := c.LocalAddr().String() + ">" + c.RemoteAddr().String()
		mu.Lock()
		dup := seen[key]
		seen[key] = true
		got++
		mu.Unlock()
		if dup {
			c.Close()
			return
		}
		opened(c)
	}

	wanted := map[netip.Addr]bool{}
	for _, p := range peer {
		wanted[p.Addr().Unmap()] = true
	}
	wg.Go(func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			if from := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); !wanted[from] {
				c.Close() // not the peer: a scanner, or a stray
				continue
			}
			hand(c)
		}
	})

	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
		return ctx.Err()
	}
	for i, p := range peer {
		wg.Go(func() {
			// Sequential NATs hand out ports in the order flows start:
			// the k-th prediction is dialed k-th on both sides.
			select {
			case <-time.After(time.Duration(i) * stagger):
			case <-ctx.Done():
				return
			}
			loop(ctx, s.local, p, hand, fail)
		})
	}
	<-ctx.Done()
	mu.Lock()
	defer mu.Unlock()
	if got > 0 || lastErr == nil {
		return nil
	}
	return fmt.Errorf("punch to %v: %w", peer, lastErr)
}

// dialLoop connects from local to remote every retryEvery until one
// opens, and hands it on.
func dialLoop(ctx context.Context, local, remote netip.AddrPort, hand func(net.Conn), fail func(error)) {
	d := net.Dialer{Control: pipe.ReuseControl, LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: attemptTimeout}
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for {
		c, err := d.DialContext(ctx, "tcp", remote.String())
		if err == nil {
			hand(c)
			return // the 4-tuple is taken now: further dials would fail
		}
		if ctx.Err() == nil {
			fail(err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// primeLoop primes remote from local until the peer's SYN completes a
// primed connection, and hands it on. A primed socket is kept: the
// kernel retransmits its SYN (at 1 s, then 3 s) with the full TTL, which
// makes it an ordinary simultaneous open where routers merely drop; one
// that a router resets is primed again.
func primeLoop(ctx context.Context, local, remote netip.AddrPort, hand func(net.Conn), fail func(error)) {
	for ctx.Err() == nil {
		c, err := primeDial(ctx, local, remote)
		if err == nil {
			hand(c)
			return
		}
		if ctx.Err() != nil {
			return
		}
		fail(err)
		select {
		case <-time.After(retryEvery):
		case <-ctx.Done():
		}
	}
}
