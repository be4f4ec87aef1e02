package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"
	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
	"github.com/pion/turn/v2"

	"p2pd/netcore/config"
)

const (
	// permissionRefresh is how often Allocation refreshes the permissions
	// installed with Permit. A permission lasts 300 s (RFC 8656 §9); every
	// 120 s, as pion does for its own, leaves room for a lost refresh.
	permissionRefresh = 120 * time.Second
	// freeWait bounds how long Close waits for the server to confirm that
	// the allocation is freed; it normally answers within a round trip.
	freeWait = time.Second
	// maxDatagram is the largest datagram a TURN message carries.
	maxDatagram = 1<<16 - 1
	// staleNonceRetries is how often a request refused for a stale nonce
	// is sent again with the fresh one (pion retries its own 3 times too).
	staleNonceRetries = 3
	// inQueue is how many peers' datagrams wait for ReadFrom: a QUIC
	// receiver reads them in batches, and a full queue drops datagrams
	// (as a socket's full buffer does) rather than stall the server's
	// answers behind them. 1024 is pion's own queue.
	inQueue = 1024
)

// Allocation is a relayed transport address held on a TURN server (RFC 8656).
//
// Peers send datagrams to [Allocation.Relayed]; the server forwards those
// from peers with a permission (see [Allocation.Permit]) and relays what
// [Allocation.PacketConn] writes. The pion client underneath allocates
// and keeps the allocation alive: it refreshes it at half its lifetime
// (300 s with coturn's default of 600 s). The datagrams themselves bypass
// pion: the first one to a peer binds a channel to it (ChannelBind, which
// installs its permission too), and from then on datagrams both ways are
// ChannelData (see channel.go). Every 120 s Allocation refreshes the
// channels and the permissions installed with Permit. Each request is
// retransmitted for about 8 s and sent again for a stale nonce; a failed
// refresh shows as a slog warning.
//
// An Allocation is safe for concurrent use. Close it to free it on the
// server; it holds a local socket and a few goroutines until then.
type Allocation struct {
	name    string // the server as configured, for messages
	server  netip.AddrPort
	relayed netip.AddrPort
	tcp     bool

	sock   net.PacketConn // to the server: UDP, or STUN framing over TCP
	udp    *net.UDPConn   // sock, over UDP
	client *turn.Client
	relay  net.PacketConn // pion's relayed conn: Data indications arrive there
	pc     net.PacketConn // *packetConn, or *udpPacketConn over UDP

	// Credentials for the requests Allocation sends itself.
	user      stun.Username
	realm     stun.Realm
	integrity stun.MessageIntegrity
	nonceMu   sync.Mutex
	nonce     stun.Nonce

	chans   channels
	dropped atomic.Uint64 // peers' datagrams dropped for a full queue

	in       chan datagram // peers' datagrams, from the read loop and pump to ReadFrom
	closing  chan struct{} // closed when Close starts
	freed    chan struct{} // closed when the server answers the freeing Refresh
	freeOnce sync.Once
	readDone chan struct{} // the socket's read loop has ended
	pumpDone chan struct{} // pump has ended
	rd, wd   deadline      // PacketConn's read and write deadlines

	closeOnce sync.Once
	closeErr  error

	perms         *permissions  // installed with Permit, refreshed with the channels
	chanRefreshes atomic.Uint32 // successful refreshes of channel bindings, for tests
}

// datagram is a peer's datagram on its way to ReadFrom.
type datagram struct {
	buf  *[]byte // data's pooled buffer, or nil
	data []byte
	from net.Addr
}

// release returns d's buffer to the pool once its data is copied out.
func (d datagram) release() { putBuf(d.buf) }

// Allocate allocates a UDP relay on server with its long-term credentials,
// from a local socket bound to local (the zero Addr: any address of the
// server's family). A "?transport=tcp" URL reaches the server over TCP; the
// relay still speaks UDP to peers. Allocate is bounded by ctx, or by a
// 2-second timeout when ctx has no deadline. Close the allocation to free it.
func Allocate(ctx context.Context, server config.TURN, local netip.Addr) (*Allocation, error) {
	start := time.Now()
	ctx, cancel := bounded(ctx)
	defer cancel()
	name := server.URL
	ep, serverAddr, err := locate(ctx, server, local)
	if err != nil {
		return nil, err
	}
	a := &Allocation{
		name:     name,
		server:   serverAddr,
		tcp:      ep.Proto == "tcp",
		in:       make(chan datagram, inQueue),
		closing:  make(chan struct{}),
		freed:    make(chan struct{}),
		readDone: make(chan struct{}),
		pumpDone: make(chan struct{}),
		rd:       newDeadline(),
		wd:       newDeadline(),
		perms:    newPermissions(name),
		chans:    newChannels(),
		user:     stun.NewUsername(server.User),
	}
	if err := a.open(ctx, local); err != nil {
		return nil, fmt.Errorf("TURN server %s: %w", name, err)
	}
	if err := a.newClient(server); err != nil {
		a.sock.Close()
		return nil, fmt.Errorf("TURN server %s: %w", name, err)
	}
	// Our own read loop rather than client.Listen, whose loop ends for
	// good at the first packet pion cannot handle.
	go a.readLoop()

	type result struct {
		c   net.PacketConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := a.client.Allocate()
		done <- result{c, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		// Closing the client and the socket ends the allocation's
		// transactions at once.
		a.client.Close()
		a.sock.Close()
		if r = <-done; r.c != nil {
			r.c.Close()
		}
		<-a.readDone
		return nil, fmt.Errorf("TURN server %s: no allocation within %v: %w", name, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	if r.err != nil {
		a.client.Close()
		a.sock.Close()
		<-a.readDone
		return nil, refused(server, "allocation", r.err)
	}
	a.relay = r.c
	if ua, ok := r.c.LocalAddr().(*net.UDPAddr); ok {
		a.relayed = netip.AddrPortFrom(addrOf(ua.IP), uint16(ua.Port))
	}
	// pion took the realm from the server's first answer.
	a.realm = a.client.Realm()
	a.integrity = stun.NewLongTermIntegrity(server.User, a.realm.String(), server.Pass)
	pc := packetConn{a: a, local: net.UDPAddrFromAddrPort(a.relayed)}
	if a.udp != nil {
		a.pc = &udpPacketConn{pc}
	} else {
		a.pc = &pc
	}
	go a.pump()
	return a, nil
}

// bounded is ctx, or ctx with allocateTimeout when it has no deadline.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, allocateTimeout)
}

// locate parses server's URL and looks its host up within ctx, in
// local's family if local is set; errors name the server.
func locate(ctx context.Context, server config.TURN, local netip.Addr) (config.Endpoint, netip.AddrPort, error) {
	ep, err := server.Endpoint()
	if err != nil {
		return ep, netip.AddrPort{}, fmt.Errorf("TURN server %q: %w", server.URL, err)
	}
	addr, err := resolve(ctx, ep.Host, ep.Port, local)
	if err != nil {
		return ep, netip.AddrPort{}, fmt.Errorf("TURN server %s: %w", server.URL, err)
	}
	return ep, addr, nil
}

// refused words a server's refusal of what (an allocation).
func refused(server config.TURN, what string, err error) error {
	if strings.Contains(err.Error(), "error 401") {
		return fmt.Errorf("TURN server %s refused the credentials of user %q (wrong user name or password?): %w", server.URL, server.User, err)
	}
	return fmt.Errorf("TURN server %s: %s failed: %w", server.URL, what, err)
}

// newPionClient makes a pion client that speaks to server (at addr) over
// conn.
func newPionClient(conn net.PacketConn, server config.TURN, addr netip.AddrPort, logs pionLogs) (*turn.Client, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: addr.String(),
		Conn:           conn,
		Username:       server.User,
		Password:       server.Pass,
		Realm:          server.Realm,
		Net:            resolvedNet{n, net.UDPAddrFromAddrPort(addr)},
		LoggerFactory:  logs,
	})
}

// resolve looks host up within ctx (pion would resolve without a
// deadline), in local's family if local is set.
func resolve(ctx context.Context, host string, port uint16, local netip.Addr) (netip.AddrPort, error) {
	network := "ip"
	switch {
	case local.Is4() || local.Is4In6():
		network = "ip4"
	case local.Is6():
		network = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("looking up %s: %w", host, err)
	}
	for _, ip := range ips {
		ip = ip.Unmap()
		if network == "ip" || (network == "ip4") == ip.Is4() {
			return netip.AddrPortFrom(ip, port), nil
		}
	}
	family := map[string]string{"ip4": "IPv4", "ip6": "IPv6"}[network]
	return netip.AddrPort{}, fmt.Errorf("%s has no %s address to reach from %v", host, family, local)
}

// addrOf converts a pion IP, which may be in 16-byte form, to an Addr.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// open opens the local socket towards the server.
func (a *Allocation) open(ctx context.Context, local netip.Addr) error {
	local = local.Unmap()
	if a.tcp {
		d := net.Dialer{}
		if local.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
		}
		c, err := d.DialContext(ctx, "tcp", a.server.String())
		if err != nil {
			return fmt.Errorf("connecting: %w", err)
		}
		a.sock = turn.NewSTUNConn(c)
		return nil
	}
	network, laddr := "udp4", &net.UDPAddr{}
	if a.server.Addr().Is6() {
		network = "udp6"
	}
	if local.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return fmt.Errorf("opening a local socket: %w", err)
	}
	a.sock, a.udp = c, c
	return nil
}

// newClient makes the pion client on a's socket.
func (a *Allocation) newClient(server config.TURN) (err error) {
	a.client, err = newPionClient(a.sock, server, a.server, pionLogs{a.name, a.isClosing})
	a.perms.client, a.perms.also = a.client, a.refreshChannels
	return err
}

// resolvedNet hands pion the server address resolved already: pion would
// look it up again, without a deadline and as IPv4 only.
type resolvedNet struct {
	transport.Net
	server *net.UDPAddr
}

func (n resolvedNet) ResolveUDPAddr(string, string) (*net.UDPAddr, error) { return n.server, nil }

// readLoop reads what the server sends: peers' datagrams on channels go
// to ReadFrom, the rest (answers, Data indications) to the pion client.
func (a *Allocation) readLoop() {
	defer close(a.readDone)
	buf := make([]byte, maxDatagram)
	serverAddr := net.UDPAddrFromAddrPort(a.server)
	for {
		var (
			n    int
			from net.Addr = serverAddr
			err  error
		)
		if a.udp != nil {
			var ap netip.AddrPort
			n, ap, err = a.udp.ReadFromUDPAddrPort(buf)
			// Only the server may speak: anyone else could forge
			// peers' data.
			if err == nil && netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) != a.server {
				continue
			}
		} else {
			n, _, err = a.sock.ReadFrom(buf)
		}
		if err != nil {
			if !a.isClosing() {
				slog.Debug("relay: connection to the TURN server ended", "server", a.name, "err", err)
			}
			return
		}
		if number, payload, ok := parseChannelData(buf[:n]); ok {
			if ch := a.chans.lookup(number); ch != nil {
				a.deliver(payload, ch.from)
			}
			continue
		}
		a.noteNonce(buf[:n])
		if _, err := a.client.HandleInbound(buf[:n], from); err != nil {
			slog.Debug("relay: ignoring a packet from the TURN server", "server", a.name, "err", err)
			continue
		}
		if a.isClosing() && isRefreshAnswer(buf[:n]) {
			a.freeOnce.Do(func() { close(a.freed) })
		}
	}
}

// isRefreshAnswer reports whether b is the server's answer to a Refresh.
func isRefreshAnswer(b []byte) bool {
	if !stun.IsMessage(b) {
		return false
	}
	m := stun.Message{Raw: b}
	if m.Decode() != nil {
		return false
	}
	return m.Type.Method == stun.MethodRefresh &&
		(m.Type.Class == stun.ClassSuccessResponse || m.Type.Class == stun.ClassErrorResponse)
}

// deliver queues a copy of a peer's datagram for ReadFrom, or drops it if
// the queue is full.
func (a *Allocation) deliver(p []byte, from net.Addr) {
	bp, b := getBuf(len(p))
	copy(b, p)
	select {
	case a.in <- datagram{bp, b, from}:
	default:
		putBuf(bp)
		a.dropped.Add(1)
	}
}

// pump moves peers' datagrams that came as Data indications (before a
// channel to them was bound) from pion's relayed conn, whose deadlines do
// not follow net.PacketConn's rules, to a.in.
func (a *Allocation) pump() {
	defer close(a.pumpDone)
	buf := make([]byte, maxDatagram)
	for {
		// pion's ReadFrom fails only once its conn is closed: we never set
		// its deadline.
		n, from, err := a.relay.ReadFrom(buf)
		if err != nil {
			return
		}
		a.deliver(buf[:n], from)
	}
}

func (a *Allocation) isClosing() bool {
	select {
	case <-a.closing:
		return true
	default:
		return false
	}
}

// Relayed returns the relayed address peers send to.
func (a *Allocation) Relayed() netip.AddrPort { return a.relayed }

// Server returns the TURN server's address.
func (a *Allocation) Server() netip.AddrPort { return a.server }

// Permit installs permissions for peers' IPs now (CreatePermission), so
// their packets are relayed before we first send to them; bounded by ctx.
// Permissions are per IP address (the ports are ignored) and are refreshed
// until Close.
func (a *Allocation) Permit(ctx context.Context, peers ...netip.AddrPort) error {
	ips := make([]netip.Addr, len(peers))
	for i, p := range peers {
		ips[i] = p.Addr()
	}
	return a.perms.permit(ctx, ips)
}

// refreshChannels binds the channels again, with the permissions: a
// channel binding lasts 10 minutes and refreshes its peer's permission
// (RFC 8656 §12), so refreshing both as often as permissions need it
// keeps both.
func (a *Allocation) refreshChannels() {
	for _, ch := range a.chans.bound() {
		if err := a.bindChannel(ch); err != nil {
			if a.isClosing() {
				return
			}
			slog.Warn("relay: refreshing a TURN channel binding failed", "server", a.name, "peer", ch.peer, "err", err)
			continue
		}
		a.chanRefreshes.Add(1)
	}
}

// PacketConn returns the relayed datagram socket: WriteTo sends to a peer
// through the relay, ReadFrom returns peers' datagrams. It suits a
// quic-go Transport: ReadFrom blocks until a datagram, its deadline or
// Close, deadlines follow net.PacketConn's rules, LocalAddr is the relayed
// address. A datagram larger than ReadFrom's buffer is truncated, as on a
// UDP socket. The first WriteTo to a peer's address waits for the server
// to bind a channel to it (one round trip). Over UDP it also has the
// methods of a *net.UDPConn that quic-go uses for batched reads, path MTU
// discovery and segmented sends. Closing it closes the Allocation.
func (a *Allocation) PacketConn() net.PacketConn { return a.pc }

// Close frees the allocation (a Refresh with lifetime 0, waiting up to a
// second for the server's answer), then closes the pion client and the
// local socket and waits for the goroutines it started. Close is
// idempotent and safe to call concurrently; every call returns the first
// call's result.
func (a *Allocation) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *Allocation) close() error {
	a.perms.close()
	close(a.closing)

	// pion's Close stops its refresh timers and sends the Refresh with
	// lifetime 0 without waiting; the read loop sees the answer.
	freeErr := a.relay.Close()
	if freeErr == nil {
		t := time.NewTimer(freeWait)
		select {
		case <-a.freed:
		case <-a.readDone:
		case <-t.C:
			slog.Debug("relay: the TURN server did not confirm freeing the allocation", "server", a.name, "relayed", a.relayed)
		}
		t.Stop()
	}
	// Closing the client ends the transactions still waiting (Permit,
	// pion's refreshes and channel bindings); closing the socket fails
	// any new one at once.
	a.client.Close()
	sockErr := a.sock.Close()
	a.perms.wait()
	<-a.readDone
	<-a.pumpDone
	a.rd.stop()
	a.wd.stop()
	if err := errors.Join(freeErr, sockErr); err != nil {
		return fmt.Errorf("TURN server %s: freeing the allocation %v: %w", a.name, a.relayed, err)
	}
	return nil
}
