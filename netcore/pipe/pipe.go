// Package pipe gives TCP and UDP, IPv4 and IPv6, clients and servers one API,
// after the seed library's pipes.
//
// A [Pipe] is opened to a destination ([Open]), listens on a local address
// ([Listen]) or wraps an existing connection ([Wrap], [WrapPacket]). Every
// pipe has the same methods: [Pipe.Send] a message, [Pipe.Recv] the next
// message of a subscription ([Sub]: a message regular expression and a
// sender address pattern, each with its own bounded queue), message and end
// handlers called as messages arrive, [Pipe.Accept] for the next client of
// a TCP server, [Link] to relay between two pipes, and [Pipe.Close], which
// stops every goroutine the pipe started and closes every client of a
// server. A [Daemon] listens on many addresses, ports and protocols at once
// with one handler.
//
// TCP pipes cut their stream into messages by a [Framing] chosen at open:
// raw chunks, length-prefixed frames or lines. UDP pipes deliver datagrams
// and can drop duplicates ([WithDedup]).
//
// Messages reach a pipe's handlers first, in arrival order, on the pipe's
// reader goroutine, then every matching subscription queue. Pipes with a
// destination subscribe to every message by default, as in the seed.
package pipe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Proto is a transport protocol.
type Proto uint8

// The protocols a pipe speaks.
const (
	TCP Proto = iota + 1
	UDP
)

// String returns "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("Proto(%d)", uint8(p))
}

// MarshalText encodes the protocol as "tcp" or "udp".
func (p Proto) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParseProto parses "tcp" or "udp".
func ParseProto(s string) (Proto, error) {
	switch s {
	case "tcp", "TCP":
		return TCP, nil
	case "udp", "UDP":
		return UDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp or udp)", s)
}

// Message is a message received on a pipe.
type Message struct {
	Data []byte
	From netip.AddrPort
	// Pipe is the pipe the message arrived on: for a TCP server, the client's
	// pipe, to reply on.
	Pipe *Pipe

	buf *buffer // Data's pooled storage
}

// Release hands the message's buffer back to the pipe for reuse; Data must
// not be used afterwards. Releasing is optional (an unreleased message is
// garbage-collected) but spares bulk transfers most of their allocations.
func (m *Message) Release() {
	if m.buf != nil {
		m.buf.release()
		m.buf, m.Data = nil, nil
	}
}

// MsgHandler is called with each message, its sender and the pipe it
// arrived on (a TCP server's handlers get the client's pipe). A pipe's
// messages reach its handlers one at a time, in arrival order, on whichever
// goroutine is reading the pipe (its background reader or a Recv caller);
// a server's or a Daemon's handlers run for many clients at once, so state
// they share needs a lock. A handler that blocks holds up its pipe
// (back-pressure), so slow work belongs in a goroutine, and a handler must
// not Recv on its own pipe. msg is valid only until the handler returns
// (copy it to keep it) and must not be modified.
type MsgHandler func(msg []byte, from netip.AddrPort, p *Pipe)

// EndHandler is called once when a pipe ends, with the reason: [ErrClosed]
// after Close, io.EOF when the peer closed, or the error that ended it.
// A TCP server's end handlers are also called for each of its clients.
type EndHandler func(p *Pipe, err error)

// HandlerID identifies a registered handler, for removing it.
type HandlerID uint64

// Errors returned by pipe operations.
var (
	// ErrClosed: the pipe was closed with Close.
	ErrClosed = errors.New("pipe closed")
	// ErrNoDest: Send has no destination (a server or an unaddressed UDP pipe).
	ErrNoDest = errors.New("no destination: this pipe needs one per message")
	// ErrNotSubscribed: Recv for a subscription that was never made.
	ErrNotSubscribed = errors.New("not subscribed")
	// ErrNotServer: Accept on a pipe that is not a TCP server.
	ErrNotServer = errors.New("accept needs a TCP server pipe")
)

type kind uint8

const (
	kindStream kind = iota // TCP connection (dialled, accepted or wrapped)
	kindServer             // TCP listener
	kindPacket             // UDP socket
)

// Pipe is a TCP connection, a TCP server or a UDP socket with the common
// API described in the package documentation. Its methods are safe for
// concurrent use.
type Pipe struct {
	proto  Proto
	kind   kind
	o      *options
	conn   net.Conn
	pc     net.PacketConn
	udp    *net.UDPConn // pc when it is a UDP socket: its AddrPort methods do not allocate
	ln     net.Listener
	local  netip.AddrPort
	remote netip.AddrPort
	parent *Pipe // the server of an accepted connection

	ctx    context.Context // canceled when the pipe ends
	cancel context.CancelFunc

	writeMu sync.Mutex
	hdr     [frameHeader]byte // frame header scratch, under writeMu
	wbuf    []byte            // coalesced small writes, under writeMu

	mu       sync.Mutex // guards the copy-on-write lists below and clients
	subs     atomic.Pointer[[]*subQueue]
	handlers atomic.Pointer[[]msgEntry]
	enders   atomic.Pointer[[]endEntry]
	clients  map[netip.AddrPort]*Pipe
	accepted *queue[*Pipe]

	pump *pump   // reads the socket; nil for a TCP server
	dec  decoder // a stream's framing state

	nextID    atomic.Uint64
	dedup     *dedup
	received  atomic.Uint64
	dupes     atomic.Uint64
	inHandler atomic.Int32

	closeOnce sync.Once
	ended     atomic.Bool   // end has begun (re-entrant: end handlers may Close)
	endersRan bool          // under mu: end handlers have been taken to run
	done      chan struct{} // closed when the pipe has ended
	endErr    error         // why; written before done is closed
	wg        sync.WaitGroup
}

type subQueue struct {
	sub Sub
	q   *queue[Message]
}

type msgEntry struct {
	id HandlerID
	fn MsgHandler
}

type endEntry struct {
	id HandlerID
	fn EndHandler
}

// Open connects a client pipe to dest ("host:port": an IP address or a
// host name, looked up within the DNS timeout). TCP dials each address
// the name resolves to until one answers; UDP sends to the first but, like
// the seed, receives from anyone (STUN answers from other addresses).
// WithLocal or WithRoute choose the local address, and the family.
func Open(ctx context.Context, proto Proto, dest string, opts ...Option) (*Pipe, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(dest)
	if err != nil {
		return nil, fmt.Errorf("destination %q: want host:port: %w", dest, err)
	}
	port, err := parsePort(portStr)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("destination %q: port must be a number from 1 to 65535", dest)
	}
	var fam addrFamily
	if o.hasLocal {
		fam = familyOf(o.local.Addr())
	}
	ips, err := resolve(ctx, o, host, fam)
	if err != nil {
		return nil, err
	}
	switch proto {
	case TCP:
		var errs []error
		for _, ip := range ips {
			d := net.Dialer{}
			if o.hasLocal {
				d.LocalAddr = net.TCPAddrFromAddrPort(o.local)
			}
			if o.reuse {
				d.Control = ReuseControl
			}
			c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, port).String())
			if err == nil {
				return newStream(c, o, nil), nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, fmt.Errorf("connecting to %s: %w", dest, errors.Join(errs...))
	case UDP:
		remote := netip.AddrPortFrom(ips[0], port)
		local := o.local
		if !o.hasLocal {
			local = netip.AddrPortFrom(unspecified(familyOf(remote.Addr())), 0)
		}
		pc, err := listenUDP(ctx, local, o.reuse)
		if err != nil {
			return nil, err
		}
		return newPacket(pc, o, local, remote), nil
	}
	return nil, fmt.Errorf("unknown protocol %v", proto)
}

// Listen starts a server pipe on local (port 0: any free port; see
// [Pipe.LocalAddr]). A TCP server's clients become pipes of their own,
// handed out by Accept and reached by Send with their address.
func Listen(ctx context.Context, proto Proto, local netip.AddrPort, opts ...Option) (*Pipe, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if !local.Addr().IsValid() {
		return nil, errors.New("listen: local address is not set")
	}
	switch proto {
	case TCP:
		var lc net.ListenConfig
		if o.reuse {
			lc.Control = ReuseControl
		}
		ln, err := lc.Listen(ctx, network("tcp", local), local.String())
		if err != nil {
			return nil, fmt.Errorf("listening on tcp %s: %w", local, err)
		}
		return newServer(ln, o, local), nil
	case UDP:
		pc, err := listenUDP(ctx, local, o.reuse)
		if err != nil {
			return nil, err
		}
		return newPacket(pc, o, local, netip.AddrPort{}), nil
	}
	return nil, fmt.Errorf("unknown protocol %v", proto)
}

// keepZone restores the zone asked for when the system reports the bound
// address without one (Go names zones from a per-process interface cache,
// which misses interfaces of other network namespaces).
func keepZone(bound, asked netip.AddrPort) netip.AddrPort {
	if a := bound.Addr(); a.Zone() == "" && asked.Addr().Zone() != "" && a == asked.Addr().WithZone("") {
		return netip.AddrPortFrom(a.WithZone(asked.Addr().Zone()), bound.Port())
	}
	return bound
}

// network names proto ("tcp" or "udp") for local's family alone: a
// socket on "::" then serves IPv6 only, and IPv4 gets its own.
func network(proto string, local netip.AddrPort) string {
	if familyOf(local.Addr()) == family6 {
		return proto + "6"
	}
	return proto + "4"
}

func listenUDP(ctx context.Context, local netip.AddrPort, reuse bool) (*net.UDPConn, error) {
	var lc net.ListenConfig
	if reuse {
		lc.Control = ReuseControl
	}
	c, err := lc.ListenPacket(ctx, network("udp", local), local.String())
	if err != nil {
		return nil, fmt.Errorf("listening on udp %s: %w", local, err)
	}
	return c.(*net.UDPConn), nil
}

// Wrap makes a pipe of an established stream connection (a TCP connection,
// or any net.Conn such as a TLS session). The pipe owns c from now on.
func Wrap(c net.Conn, opts ...Option) (*Pipe, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return newStream(c, o, nil), nil
}

// WrapPacket makes a pipe of a packet socket: a UDP socket, or any
// net.PacketConn with IP addresses, such as a TURN relay allocation. dest,
// if valid, is the default destination of Send. The pipe owns c from now on.
func WrapPacket(c net.PacketConn, dest netip.AddrPort, opts ...Option) (*Pipe, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return newPacket(c, o, netip.AddrPort{}, dest), nil
}

// newPipe makes a pipe; parent is the server of an accepted connection,
// whose handlers (from the same options) already see its messages.
func newPipe(proto Proto, k kind, o *options, parent *Pipe) *Pipe {
	p := &Pipe{proto: proto, kind: k, o: o, parent: parent, done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if o.dedupSize > 0 {
		p.dedup = newDedup(o.dedupSize, o.seed)
	}
	if o.onMsg != nil && parent == nil {
		p.AddMsgHandler(o.onMsg)
	}
	if o.onEnd != nil && parent == nil {
		p.AddEndHandler(o.onEnd)
	}
	return p
}

// autoSubscribe subscribes a pipe with a destination to every message, as
// the seed did; a stream always has one, even when its address is not IP.
func (p *Pipe) autoSubscribe() {
	if !p.o.noAutoSub && (p.kind == kindStream || p.remote.IsValid()) {
		p.Subscribe(SubAll)
	}
}

func newStream(c net.Conn, o *options, parent *Pipe) *Pipe {
	p := newPipe(TCP, kindStream, o, parent)
	p.conn = c
	p.local, p.remote = addrPortOf(c.LocalAddr()), addrPortOf(c.RemoteAddr())
	p.dec = o.framing.decoder(o.maxFrame)
	p.start(func() error { return p.dec.read(c, p.deliver) }, c.SetReadDeadline)
	return p
}

// newPacket makes a UDP pipe; asked is the local address the socket was
// bound to, if known, and remote the default destination, if any.
func newPacket(c net.PacketConn, o *options, asked, remote netip.AddrPort) *Pipe {
	p := newPipe(UDP, kindPacket, o, nil)
	p.pc = c
	p.udp, _ = c.(*net.UDPConn)
	p.local, p.remote = keepZone(addrPortOf(c.LocalAddr()), asked), normalize(remote)
	scratch := make([]byte, readBufSize)
	p.start(func() error {
		n, from, err := p.readFrom(scratch)
		if err == nil {
			p.dispatch(copyBuffer(scratch[:n]), from)
		}
		return err
	}, c.SetReadDeadline)
	return p
}

func (p *Pipe) readFrom(b []byte) (int, netip.AddrPort, error) {
	if p.udp != nil {
		n, from, err := p.udp.ReadFromUDPAddrPort(b)
		return n, normalize(from), err
	}
	n, from, err := p.pc.ReadFrom(b)
	return n, addrPortOf(from), err
}

func (p *Pipe) sendTo(msg []byte, dest netip.AddrPort) error {
	if p.udp != nil {
		_, err := p.udp.WriteToUDPAddrPort(msg, dest)
		return err
	}
	_, err := p.pc.WriteTo(msg, net.UDPAddrFromAddrPort(dest))
	return err
}

// start subscribes a pipe with a destination and starts its pump.
func (p *Pipe) start(read func() error, setDeadline func(time.Time) error) {
	p.autoSubscribe()
	p.pump = newPump(read, setDeadline)
	p.wg.Add(1)
	go p.background()
}

// deliver dispatches a message decoded from a stream.
func (p *Pipe) deliver(b *buffer) { p.dispatch(b, p.remote) }

func newServer(ln net.Listener, o *options, asked netip.AddrPort) *Pipe {
	p := newPipe(TCP, kindServer, o, nil)
	p.ln = ln
	p.local = keepZone(addrPortOf(ln.Addr()), asked)
	p.clients = make(map[netip.AddrPort]*Pipe)
	p.accepted = newQueue[*Pipe](o.queueSize)
	p.wg.Add(1)
	go p.acceptLoop()
	return p
}

// Proto returns the pipe's protocol.
func (p *Pipe) Proto() Proto { return p.proto }

// IsServer reports whether the pipe is a TCP server.
func (p *Pipe) IsServer() bool { return p.kind == kindServer }

// LocalAddr returns the address the pipe's socket is bound to.
func (p *Pipe) LocalAddr() netip.AddrPort { return p.local }

// RemoteAddr returns the pipe's default destination (the peer of a TCP
// connection), or the zero AddrPort if it has none.
func (p *Pipe) RemoteAddr() netip.AddrPort { return p.remote }

// Done is closed when the pipe has ended; Err then says why. End handlers
// run right after it closes.
func (p *Pipe) Done() <-chan struct{} { return p.done }

// Err returns why the pipe ended, or nil while it runs.
func (p *Pipe) Err() error {
	select {
	case <-p.done:
		return p.endErr
	default:
		return nil
	}
}

// Context returns a context canceled when the pipe ends.
func (p *Pipe) Context() context.Context { return p.ctx }

func (p *Pipe) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if p.ctx.Err() == nil && isTemporary(err) {
				// Out of file descriptors and the like: wait instead of spinning.
				slog.Warn("pipe: accepting a connection failed, retrying", "addr", p.local, "err", err)
				select {
				case <-time.After(acceptRetryDelay):
					continue
				case <-p.ctx.Done():
				}
			}
			p.end(err)
			return
		}
		cp := newStream(c, p.o, p)
		p.mu.Lock()
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			cp.Close()
			continue
		}
		p.clients[cp.remote] = cp
		p.mu.Unlock()
		p.accepted.push(cp)
	}
}

// acceptRetryDelay paces Accept after a resource error such as EMFILE, long
// enough for other connections to close, short enough to stay responsive.
const acceptRetryDelay = 50 * time.Millisecond

func isTemporary(err error) bool {
	return !errors.Is(err, net.ErrClosed)
}

// dispatch hands a received message to handlers and subscription queues.
// Queues share the buffer; it returns to its pool once every queue's copy
// is released (at once if no queue wanted it).
func (p *Pipe) dispatch(b *buffer, from netip.AddrPort) {
	msg := b.b
	if p.ended.Load() {
		b.release() // the rest of a read that closed its pipe
		return
	}
	if p.dedup != nil {
		if id := p.o.msgID(msg); id != nil && p.dedup.duplicate(from, id) {
			p.dupes.Add(1)
			b.release()
			return
		}
	}
	p.received.Add(1)
	p.inHandler.Add(1)
	for _, h := range *p.handlerList() {
		h.fn(msg, from, p)
	}
	if p.parent != nil {
		for _, h := range *p.parent.handlerList() {
			h.fn(msg, from, p)
		}
	}
	p.inHandler.Add(-1)

	var hitArr [8]*queue[Message]
	hits := p.matching(hitArr[:0], msg, from)
	if p.parent != nil {
		hits = p.parent.matching(hits, msg, from)
	}
	if len(hits) == 0 {
		b.release()
		return
	}
	// The dispatcher's reference becomes one per queue, before any
	// consumer can release.
	b.refs.Store(int32(len(hits)))
	m := Message{Data: msg, From: from, Pipe: p, buf: b}
	for _, q := range hits {
		q.push(m)
	}
}

// matching appends the queues of p's subscriptions that select msg.
func (p *Pipe) matching(hits []*queue[Message], msg []byte, from netip.AddrPort) []*queue[Message] {
	if subs := p.subs.Load(); subs != nil {
		for _, sq := range *subs {
			if sq.sub.Match(msg, from) {
				hits = append(hits, sq.q)
			}
		}
	}
	return hits
}

var noHandlers = &[]msgEntry{}

func (p *Pipe) handlerList() *[]msgEntry {
	if l := p.handlers.Load(); l != nil {
		return l
	}
	return noHandlers
}

// end records why the pipe ended, wakes waiting Recv and Accept calls and
// runs end handlers, once. It may be re-entered (an end handler closing its
// pipe): the later calls return at once.
func (p *Pipe) end(err error) {
	if !p.ended.CompareAndSwap(false, true) {
		return
	}
	if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		err = ErrClosed // we closed it; the socket error says nothing more
	}
	p.endErr = err
	p.cancel()
	if p.pump != nil {
		p.pump.timer.Stop()
	}
	p.closeSocket()
	close(p.done)
	if p.parent != nil {
		p.parent.mu.Lock()
		if p.parent.clients[p.remote] == p {
			delete(p.parent.clients, p.remote)
		}
		p.parent.mu.Unlock()
	}
	p.inHandler.Add(1)
	defer p.inHandler.Add(-1)
	p.mu.Lock()
	p.endersRan = true
	own := p.enderList()
	p.mu.Unlock()
	for _, h := range own {
		h.fn(p, err)
	}
	if p.parent != nil {
		p.parent.mu.Lock()
		theirs := p.parent.enderList()
		p.parent.mu.Unlock()
		for _, h := range theirs {
			h.fn(p, err)
		}
	}
}

// enderList returns the end handlers; the caller holds p.mu.
func (p *Pipe) enderList() []endEntry {
	if l := p.enders.Load(); l != nil {
		return *l
	}
	return nil
}

func (p *Pipe) closeSocket() {
	switch {
	case p.conn != nil:
		p.conn.Close()
	case p.pc != nil:
		p.pc.Close()
	case p.ln != nil:
		p.ln.Close()
	}
}

// Close ends the pipe: it closes the socket and every client of a server,
// runs the end handlers, and waits for the pipe's reader to stop. While one
// of the pipe's handlers is running (on any goroutine; typically a handler
// closing its own pipe) Close does not wait for it: the reader stops as
// soon as the handler returns. Close is idempotent and always returns nil.
func (p *Pipe) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.closeSocket()
		if p.kind == kindServer {
			p.mu.Lock()
			clients := make([]*Pipe, 0, len(p.clients))
			for _, c := range p.clients {
				clients = append(clients, c)
			}
			p.mu.Unlock()
			for _, c := range clients {
				c.Close()
			}
		}
	})
	// The reader may be idle (the socket was with Recv callers), so the end
	// is recorded here rather than left to a failing read.
	p.end(ErrClosed)
	if p.inHandler.Load() == 0 {
		p.wg.Wait()
	}
	return nil
}

// Subscribe starts queueing messages that match sub (see [Sub]); the queue
// holds the pipe's queue size, dropping the oldest when full. Subscribing
// twice to an equal Sub is harmless. On a TCP server, subscriptions see
// the messages of every client.
func (p *Pipe) Subscribe(sub Sub) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.subList()
	for _, sq := range old {
		if sq.sub.id() == sub.id() {
			return
		}
	}
	q := newQueue[Message](p.o.queueSize)
	q.drop = (*Message).Release
	next := append(append(make([]*subQueue, 0, len(old)+1), old...), &subQueue{sub: sub, q: q})
	p.subs.Store(&next)
}

// Unsubscribe removes a subscription and its queue.
func (p *Pipe) Unsubscribe(sub Sub) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.subList()
	next := make([]*subQueue, 0, len(old))
	for _, sq := range old {
		if sq.sub.id() != sub.id() {
			next = append(next, sq)
		}
	}
	p.subs.Store(&next)
}

func (p *Pipe) subList() []*subQueue {
	if l := p.subs.Load(); l != nil {
		return *l
	}
	return nil
}

func (p *Pipe) queueOf(sub Sub) *queue[Message] {
	for _, sq := range p.subList() {
		if sq.sub.id() == sub.id() {
			return sq.q
		}
	}
	return nil
}

// Recv returns the next message queued for sub, waiting until one arrives,
// ctx is done or the pipe ends. Messages queued before the end are still
// returned; after them Recv returns why the pipe ended (io.EOF when the
// peer closed, ErrClosed after Close). While it waits, Recv reads the
// socket itself (see pump.go), so handlers may run on its goroutine.
func (p *Pipe) Recv(ctx context.Context, sub Sub) (Message, error) {
	q := p.queueOf(sub)
	if q == nil {
		return Message{}, fmt.Errorf("recv %v: %w", sub, ErrNotSubscribed)
	}
	if m, ok := q.tryPop(); ok {
		return m, nil
	}
	if p.pump == nil || !p.pump.direct {
		m, ok, err := q.pop(ctx, p.done)
		if err != nil {
			return Message{}, fmt.Errorf("recv: %w", err)
		}
		if !ok {
			return Message{}, p.endErr
		}
		return m, nil
	}
	pm := p.pump
	pm.enter()
	defer pm.leave()
	for {
		if m, ok := q.tryPop(); ok {
			return m, nil
		}
		select {
		case <-p.done:
			if m, ok := q.tryPop(); ok {
				return m, nil
			}
			return Message{}, p.endErr
		default:
		}
		select {
		case <-q.ready:
		case <-pm.token:
			err := p.pumpOnce(ctx)
			if err != nil && !isTimeout(err) && ctx.Err() == nil {
				// Ended while holding the token: the decoder has its last word once.
				p.end(p.finalErr(err))
			}
			pm.token <- struct{}{}
			if ctx.Err() != nil {
				return Message{}, fmt.Errorf("recv: %w", ctx.Err())
			}
			if dl, ok := ctx.Deadline(); ok && isTimeout(err) && !time.Now().Before(dl) {
				return Message{}, fmt.Errorf("recv: %w", context.DeadlineExceeded)
			}
		case <-p.done:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("recv: %w", ctx.Err())
		}
	}
}

// Accept returns the next client of a TCP server as a pipe of its own.
// Clients nobody accepts are still served by the server's handlers; the
// server keeps the newest queue-size of them for Accept.
func (p *Pipe) Accept(ctx context.Context) (*Pipe, error) {
	if p.kind != kindServer {
		return nil, ErrNotServer
	}
	c, ok, err := p.accepted.pop(ctx, p.done)
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	if !ok {
		return nil, p.endErr
	}
	return c, nil
}

// Clients returns a TCP server's connected clients.
func (p *Pipe) Clients() []*Pipe {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Pipe, 0, len(p.clients))
	for _, c := range p.clients {
		out = append(out, c)
	}
	return out
}

// AddMsgHandler registers h for every message the pipe receives.
func (p *Pipe) AddMsgHandler(h MsgHandler) HandlerID {
	id := HandlerID(p.nextID.Add(1))
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.handlerList()
	next := append(append(make([]msgEntry, 0, len(old)+1), old...), msgEntry{id, h})
	p.handlers.Store(&next)
	return id
}

// RemoveMsgHandler unregisters a message handler.
func (p *Pipe) RemoveMsgHandler(id HandlerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.handlerList()
	next := make([]msgEntry, 0, len(old))
	for _, e := range old {
		if e.id != id {
			next = append(next, e)
		}
	}
	p.handlers.Store(&next)
}

// AddEndHandler registers h to run once when the pipe ends; if it already
// has, h runs at once.
func (p *Pipe) AddEndHandler(h EndHandler) HandlerID {
	id := HandlerID(p.nextID.Add(1))
	p.mu.Lock()
	if p.endersRan {
		p.mu.Unlock()
		h(p, p.endErr)
		return id
	}
	old := p.enderList()
	next := append(append(make([]endEntry, 0, len(old)+1), old...), endEntry{id, h})
	p.enders.Store(&next)
	p.mu.Unlock()
	return id
}

// RemoveEndHandler unregisters an end handler.
func (p *Pipe) RemoveEndHandler(id HandlerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.enders.Load()
	if l == nil {
		return
	}
	next := make([]endEntry, 0, len(*l))
	for _, e := range *l {
		if e.id != id {
			next = append(next, e)
		}
	}
	p.enders.Store(&next)
}

// Stats counts a pipe's traffic.
type Stats struct {
	Received   uint64 // messages delivered to handlers and queues
	Duplicates uint64 // messages dropped as duplicates
	Dropped    uint64 // messages dropped from full subscription queues
	Queued     int    // messages waiting in subscription queues
}

// Stats returns the pipe's counters.
func (p *Pipe) Stats() Stats {
	s := Stats{Received: p.received.Load(), Duplicates: p.dupes.Load()}
	for _, sq := range p.subList() {
		n, d := sq.q.stats()
		s.Queued += n
		s.Dropped += d
	}
	return s
}

// Send sends msg. dest may be the zero AddrPort where the pipe has a
// destination (a TCP connection's peer, or the UDP destination given to
// Open); a TCP server sends to the client connected from dest; a UDP pipe
// sends to any dest. On a TCP connection the message is framed per the
// pipe's framing; a send that fails midway ends the pipe, since the peer
// can no longer find message boundaries.
func (p *Pipe) Send(ctx context.Context, msg []byte, dest netip.AddrPort) error {
	dest = normalize(dest)
	switch p.kind {
	case kindServer:
		if !dest.IsValid() {
			return fmt.Errorf("send: %w", ErrNoDest)
		}
		p.mu.Lock()
		c := p.clients[dest]
		p.mu.Unlock()
		if c == nil {
			return fmt.Errorf("send: no client connected from %s", dest)
		}
		return c.Send(ctx, msg, netip.AddrPort{})
	case kindStream:
		if dest.IsValid() && dest != p.remote {
			return fmt.Errorf("send: a TCP connection only reaches its peer %s, not %s", p.remote, dest)
		}
		if n, err := p.write(ctx, msg); err != nil {
			err = ctxErr(ctx, err)
			if n > 0 {
				p.end(fmt.Errorf("send failed midway: %w", err))
			}
			return fmt.Errorf("send: %w", err)
		}
		return nil
	default:
		if !dest.IsValid() {
			dest = p.remote
		}
		if !dest.IsValid() {
			return fmt.Errorf("send: %w", ErrNoDest)
		}
		if len(msg) > maxDatagram {
			return fmt.Errorf("send: %d-byte datagram exceeds the UDP limit of %d", len(msg), maxDatagram)
		}
		if err := p.writeTo(ctx, msg, dest); err != nil {
			return fmt.Errorf("send to %s: %w", dest, err)
		}
		return nil
	}
}

// write writes msg in the pipe's framing, whole, obeying ctx's deadline and
// cancellation, and returns how many bytes went out.
func (p *Pipe) write(ctx context.Context, msg []byte) (int64, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	pre, post, err := p.o.framing.envelope(msg, p.o.maxFrame, &p.hdr)
	if err != nil {
		return 0, err
	}
	if err := p.Err(); err != nil {
		return 0, err
	}
	// Closing the pipe aborts its writes anyway, so its own context needs
	// no watcher (handlers replying with p.Context() are a hot path).
	if ctx != p.ctx {
		defer watchDeadline(ctx, p.conn)()
	}
	if len(pre)+len(post) == 0 {
		n, err := p.conn.Write(msg)
		return int64(n), err
	}
	if len(msg) <= coalesceLimit {
		// One write system call beats writev for small messages.
		p.wbuf = append(append(append(p.wbuf[:0], pre...), msg...), post...)
		n, err := p.conn.Write(p.wbuf)
		return int64(n), err
	}
	bufs := net.Buffers{pre, msg, post}
	return bufs.WriteTo(p.conn)
}

// coalesceLimit is the largest message copied next to its envelope for a
// single write; past it the copy costs more than writev's extra work.
const coalesceLimit = 16 << 10

// writeTo sends a datagram. Every send takes writeMu: another send's
// context may set the socket's write deadline meanwhile.
func (p *Pipe) writeTo(ctx context.Context, msg []byte, dest netip.AddrPort) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if ctx.Done() != nil && ctx != p.ctx {
		defer watchDeadline(ctx, p.pc)()
	}
	return ctxErr(ctx, p.sendTo(msg, dest))
}

// ctxErr reports a write that failed because ctx ended as ctx's error: a
// deadline can expire on the socket a moment before ctx notices.
func ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return err
}

// watchDeadline makes writes on c obey ctx: its deadline, and an immediate
// timeout when it is canceled. The returned func undoes both.
func watchDeadline(ctx context.Context, c interface{ SetWriteDeadline(time.Time) error }) func() {
	if ctx.Done() == nil {
		return func() {}
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired
		}
		c.SetWriteDeadline(time.Time{})
	}
}

// addrPortOf converts a socket address to a normalized AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return normalize(a.AddrPort())
	case *net.UDPAddr:
		return normalize(a.AddrPort())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return normalize(ap)
}

// normalize unmaps IPv4-mapped IPv6 addresses so one host has one spelling.
func normalize(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}
