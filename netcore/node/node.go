// Package node is a P2PD node: it listens on every usable route (IPv4 and
// IPv6), learns its NAT's behaviour, asks the router to map its port where
// that helps, listens for signaling on MQTT brokers, publishes its address,
// and connects to other nodes by racing connection strategies.
//
// A connection between two nodes is one secure session (netcore/session)
// carrying streams that name their protocol; handlers are registered per
// protocol name. Built in: "echo/1", which echoes what it receives, and
// "msg/1", the message pipe behind the seed's node.connect: a
// netcore/pipe where a message "ECHO <data>" is answered with <data> and
// message handlers see the rest.
package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/clock"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/netif"
	"p2pd/netcore/pipe"
	"p2pd/netcore/portmap"
	"p2pd/netcore/session"
	"p2pd/netcore/signal"
	"p2pd/netcore/stun"
)

const (
	// startBudget bounds the network checks at start-up (NAT profiles,
	// clock, port mapping, brokers): the node works with what it learned
	// by then.
	startBudget = 5 * time.Second
	// mappingLease is how long the router is asked to keep the port open;
	// it is renewed halfway and removed on Close.
	mappingLease = 30 * time.Minute
)

// Handler serves one stream of its protocol, from the peer of sess.
type Handler func(ctx context.Context, sess *session.Session, stream net.Conn)

// Options configure a node.
type Options struct {
	// Config lists the servers to use.
	Config config.Config
	// Identity is the node's key pair; if nil it is loaded from (or
	// created in) Home.
	Identity *identity.Identity
	// Home is the data dir (default config.Home()).
	Home string
	// Port is the listen port on every address (0: one the system picks).
	Port uint16
	// Loopback limits the node to the loopback interface (tests, and a
	// node talking only to others on the same computer).
	Loopback bool
	// NoPortMapping keeps the node from asking the router for a mapping.
	NoPortMapping bool
	// Accept says which peers may connect and signal (nil: everyone).
	Accept func(peer ed25519.PublicKey) bool
	// Logger receives the node's log (default slog.Default()).
	Logger *slog.Logger
}

// Node is a running node.
type Node struct {
	id    *identity.Identity
	opt   Options
	log   *slog.Logger
	clock clock.Clock
	sig   *signal.Client

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	listeners   []net.Listener
	endpoints   []endpoint // where this node listens, with what it learned
	keepers     []*portmap.Keeper
	brokers     []netip.AddrPort // n.mu; replaced, never changed in place
	relays      []addr.Server
	stunServers []stun.Server

	mu               sync.Mutex
	closing          bool        // Close has begun: no new goroutines
	birthdayBusy     atomic.Bool // answering a birthday offer (many ports open)
	handlers         map[string]Handler
	sessions         map[*session.Session]bool
	inbound          *inbound                                // sessions and handshakes peers started unasked
	waiting          map[identity.ID][]chan *session.Session // reverse connects awaiting the peer
	punchAnswers     answers[punchAnswer]
	relayAnswers     answers[relayMsg]
	addrAnswers      answers[addrMsg]
	onMsg            []MsgHandler
	watchers         []*watcher // OnSession's
	addrWatchers     []*addrWatcher
	peerAddrWatchers []*peerAddrWatcher // OnPeerAddress's
	addrMu           sync.Mutex         // one address build (and its announcement) at a time
	address          *addr.Address
}

// watcher is one OnSession registration (a pointer, so stop finds it).
type watcher struct{ f func(*session.Session) }

// endpoint is one listening address with its NAT knowledge.
type endpoint struct {
	ifc     string
	family  netif.Family
	local   netip.AddrPort
	profile *stun.Profile
	servers []stun.ServerResult // how each STUN server fared in profiling
	mapped  netip.AddrPort      // router mapping of local, if any
}

// Start brings a node up: it listens, profiles its NAT, maps its port
// where that helps, syncs its clock, connects to signaling brokers, and
// serves until Close.
func Start(ctx context.Context, opt Options) (*Node, error) {
	n := &Node{opt: opt, log: opt.Logger, handlers: map[string]Handler{}, sessions: map[*session.Session]bool{},
		waiting: map[identity.ID][]chan *session.Session{}, inbound: newInbound()}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.id = opt.Identity
	if n.id == nil {
		home := opt.Home
		if home == "" {
			var err error
			if home, err = config.Home(); err != nil {
				return nil, err
			}
		}
		var err error
		if n.id, err = identity.LoadOrCreate(home); err != nil {
			return nil, err
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.Handle(EchoProto, serveEcho)
	n.Handle(AddrProto, n.serveAddr)
	n.Handle(MsgProto, n.serveMsg)

	if err := n.listen(ctx); err != nil {
		n.Close()
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, startBudget)
	defer cancel()
	n.learn(sctx)
	n.buildAddress()
	for _, l := range n.listeners {
		n.spawn(func() { n.acceptLoop(l) })
	}
	n.log.Info("node up", "id", n.id.ID(), "address", n.address.String())
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() identity.ID { return n.id.ID() }

// Identity returns the node's key pair.
func (n *Node) Identity() *identity.Identity { return n.id }

// Address returns the node's address.
func (n *Node) Address() *addr.Address {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.address
}

// Config returns the servers the node was started with.
func (n *Node) Config() config.Config { return n.opt.Config }

// Clock returns the node's NTP-corrected clock.
func (n *Node) Clock() *clock.Clock { return &n.clock }

// Handle registers h for streams of protocol proto.
func (n *Node) Handle(proto string, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[proto] = h
}

func (n *Node) handler(proto string) Handler {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.handlers[proto]
}

// listen opens a TCP listener on each usable route's address, on one port
// where possible.
func (n *Node) listen(ctx context.Context) error {
	ifs, err := netif.List(netif.Options{Loopback: n.opt.Loopback})
	if err != nil {
		return err
	}
	port := n.opt.Port
	for _, ifc := range ifs {
		if !ifc.LAN || (n.opt.Loopback != ifc.Loopback) {
			continue
		}
		for _, r := range ifc.Routes {
			if len(r.NIC) == 0 {
				continue // link-local only: reached through another route's addresses
			}
			local := netip.AddrPortFrom(r.NIC[0], port)
			l, err := n.listenOn(ctx, local)
			if err != nil && port != 0 {
				// The port is taken on this address: any port will do here.
				l, err = n.listenOn(ctx, netip.AddrPortFrom(r.NIC[0], 0))
			}
			if err != nil {
				n.log.Warn("node: cannot listen", "addr", local, "err", err)
				continue
			}
			bound := l.Addr().(*net.TCPAddr).AddrPort()
			if port == 0 {
				port = bound.Port()
			}
			n.endpoints = append(n.endpoints, endpoint{ifc: ifc.Name, family: r.Family, local: netip.AddrPortFrom(r.NIC[0], bound.Port())})
		}
	}
	if len(n.listeners) == 0 {
		return errors.New("node: no usable network address to listen on")
	}
	return nil
}

func (n *Node) listenOn(ctx context.Context, local netip.AddrPort) (net.Listener, error) {
	// Port sharing lets a punching socket dial out from the listen port.
	lc := net.ListenConfig{Control: pipe.ReuseControl}
	network := "tcp4"
	if local.Addr().Is6() {
		network = "tcp6"
	}
	l, err := lc.Listen(ctx, network, local.String())
	if err == nil {
		n.listeners = append(n.listeners, l)
	}
	return l, err
}

// learn runs the start-up checks at once: NAT profiles, clock, brokers,
// then port mappings (which need the profiles).
func (n *Node) learn(ctx context.Context) {
	cfg := n.opt.Config
	var wg sync.WaitGroup
	if eps, err := cfg.NTPEndpoints(); err == nil && len(eps) > 0 {
		wg.Go(func() {
			if _, err := n.clock.Sync(ctx, eps); err != nil {
				n.log.Warn("node: clock not synced", "err", err)
			}
		})
	}
	if eps, err := cfg.MQTTEndpoints(); err == nil && len(eps) > 0 {
		wg.Go(func() {
			sealer := signal.NewSealer(n.id.Public, n.id.Private, n.clock.Now)
			opts := []signal.Option{signal.WithLogger(n.log), signal.WithSubscribed(n.brokersGrew)}
			if n.opt.Accept != nil {
				opts = append(opts, signal.WithAccept(func(from ed25519.PublicKey, _ byte) bool { return n.opt.Accept(from) }))
			}
			sig, err := signal.Start(sealer, eps, n.onSignal, opts...)
			if err != nil {
				n.log.Warn("node: no signaling", "err", err)
				return
			}
			n.mu.Lock()
			n.sig = sig
			n.mu.Unlock()
			// A broker that answers later joins the address then
			// (brokersGrew): the node does not wait for it here.
			if err := sig.Ready(ctx); err != nil {
				n.log.Warn("node: no signaling yet", "err", err)
			}
		})
	}
	if !n.opt.Loopback {
		stunEPs, _ := cfg.STUNEndpoints()
		servers, _ := stun.Resolve(ctx, stunEPs)
		n.stunServers = servers
		for i := range n.endpoints {
			ep := &n.endpoints[i]
			wg.Go(func() {
				p, res, err := stun.Discover(ctx, ep.local.Addr(), servers)
				if err != nil {
					n.log.Warn("node: NAT profile unknown", "addr", ep.local, "err", err)
					return
				}
				ep.profile, ep.servers = p, res
			})
		}
	}
	for _, t := range cfg.TURN {
		if ep, err := t.Endpoint(); err == nil {
			if ip, err := netip.ParseAddr(ep.Host); err == nil {
				n.relays = append(n.relays, addr.Server{Addr: netip.AddrPortFrom(ip, ep.Port), TCP: ep.Proto == "tcp"})
			}
		}
	}
	wg.Wait()
	n.brokersGrew()
	if !n.opt.NoPortMapping && !n.opt.Loopback {
		n.mapPorts(ctx)
	}
}

// Discoveries returns the NAT profiles the node measured as it started,
// one for each local address it has one for (netcheck.Options.Known).
func (n *Node) Discoveries() []stun.Discovery {
	var ds []stun.Discovery
	for _, ep := range n.endpoints {
		if ep.profile != nil {
			ds = append(ds, stun.Discovery{Local: ep.local.Addr(), Profile: ep.profile, Servers: ep.servers})
		}
	}
	return ds
}

// mapPorts asks the router for a mapping of each IPv4 endpoint behind a
// NAT that filters (a mapping is what lets friends in), and for an IPv6
// pinhole where the firewall filters.
func (n *Node) mapPorts(ctx context.Context) {
	ifs, err := netif.List(netif.Options{})
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for i := range n.endpoints {
		ep := &n.endpoints[i]
		if ep.profile == nil || ep.profile.Filtering == stun.EndpointIndependent || (ep.family == netif.IPv4 && !ep.profile.NAT) {
			continue
		}
		j := slices.IndexFunc(ifs, func(ifc netif.Interface) bool { return ifc.Name == ep.ifc })
		if j < 0 {
			continue
		}
		gw := ifs[j].Gateway4
		if ep.family == netif.IPv6 {
			gw = ifs[j].Gateway6
		}
		if !gw.IsValid() {
			continue
		}
		wg.Go(func() {
			m, err := portmap.Map(ctx, gw, ep.local, "tcp", mappingLease)
			if err != nil {
				n.log.Info("node: no port mapping", "addr", ep.local, "err", err)
				return
			}
			ep.mapped = m.External()
			k := portmap.Keep(m, func(err error) { n.log.Warn("node: port mapping renewal failed", "err", err) })
			n.mu.Lock()
			n.keepers = append(n.keepers, k)
			n.mu.Unlock()
		})
	}
	wg.Wait()
}

// brokerList is where this node listens for signaling: each broker that
// took its subscription since the start.
func (n *Node) brokerList() []netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.brokers
}

// brokersGrew adds the brokers subscribed now to the node's list. Once
// the node is up, a longer list makes a new address, which the
// OnAddress watchers hear of. A broker that drops stays in the list:
// friends saved the address with it, and it is dialed again.
func (n *Node) brokersGrew() {
	// One at a time: watchers hear of each address in the order made.
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	n.mu.Lock()
	if n.sig == nil || n.closing {
		n.mu.Unlock()
		return
	}
	sig, up := n.sig, n.address != nil
	n.mu.Unlock()
	now := sig.Brokers()
	n.mu.Lock()
	merged := slices.Clone(n.brokers)
	for _, b := range now {
		if !slices.Contains(merged, b) {
			merged = append(merged, b)
		}
	}
	grown := len(merged) > len(n.brokers)
	if grown {
		slices.SortFunc(merged, netip.AddrPort.Compare)
		n.brokers = merged
	}
	n.mu.Unlock()
	if grown && up {
		n.makeAddress()
		a := n.Address()
		n.log.Info("node: signaling reached; new address", "brokers", len(a.Brokers), "address", a.String())
		n.mu.Lock()
		fs := slices.Clone(n.addrWatchers)
		n.mu.Unlock()
		for _, w := range fs {
			w.f(a)
		}
	}
}

// OnAddress calls f with the node's address each time it changes while
// the node runs (a signaling broker reached after the start), until stop
// is called or the node closes. Calls come one at a time, in the order
// the addresses were made; f must not block for long, nor call Close.
func (n *Node) OnAddress(f func(*addr.Address)) (stop func()) {
	return watch(n, &n.addrWatchers, &addrWatcher{f: f}, nil)
}

// addrWatcher is one OnAddress registration.
type addrWatcher struct{ f func(*addr.Address) }

// buildAddress makes the node's address from what it learned.
func (n *Node) buildAddress() {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	n.makeAddress()
}

// makeAddress is buildAddress with addrMu held: builds run one at a
// time, so the last one reads the latest brokers.
func (n *Node) makeAddress() {
	a := &addr.Address{Key: n.id.Public}
	byIfc := map[string]*addr.Interface{}
	var order []string
	for _, ep := range n.endpoints {
		ifc := byIfc[ep.ifc]
		if ifc == nil {
			if len(byIfc) == addr.MaxInterfaces {
				continue
			}
			ifc = &addr.Interface{}
			byIfc[ep.ifc] = ifc
			order = append(order, ep.ifc)
		}
		e := &addr.Endpoint{Internal: ep.local.Addr(), Port: ep.local.Port()}
		if p := ep.profile; p != nil {
			if p.External.IsValid() {
				e.External = p.External.Addr()
			} else if p.TCPExternal.IsValid() {
				e.External = p.TCPExternal.Addr()
			}
			e.NAT = natProfile(p)
		} else if s := netif.ScopeOf(ep.local.Addr()); s == netif.ScopeGlobal || s == netif.ScopeLoopback {
			e.External = ep.local.Addr() // its own external address
		}
		if ep.mapped.IsValid() {
			e.External = ep.mapped.Addr()
			if ep.mapped.Port() != ep.local.Port() {
				e.ExternalPort = ep.mapped.Port()
			}
			// With the mapping, anyone reaches this port.
			e.NAT.Filtering = stun.EndpointIndependent
		}
		if ep.family == netif.IPv4 && ifc.V4 == nil {
			ifc.V4 = e
		} else if ep.family == netif.IPv6 && ifc.V6 == nil {
			ifc.V6 = e
		}
	}
	for _, name := range order {
		a.Interfaces = append(a.Interfaces, *byIfc[name])
	}
	for _, b := range n.brokerList() {
		if len(a.Brokers) < addr.MaxServers {
			a.Brokers = append(a.Brokers, addr.Server{Addr: b})
		}
	}
	for _, r := range n.relays {
		if len(a.Relays) < addr.MaxServers {
			a.Relays = append(a.Relays, r)
		}
	}
	n.mu.Lock()
	n.address = a
	n.mu.Unlock()
}

// natProfile is the part of a NAT profile an address carries.
func natProfile(p *stun.Profile) addr.NATProfile {
	return addr.NATProfile{Translated: p.NAT, Mapping: p.Mapping, Filtering: p.Filtering, Ports: p.TCPPorts.Kind, Step: int8(max(-128, min(127, p.TCPPorts.Step)))}
}

// acceptLoop secures each incoming connection and serves its session.
func (n *Node) acceptLoop(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if n.ctx.Err() != nil {
				return
			}
			n.log.Warn("node: accept failed", "addr", l.Addr(), "err", err)
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-n.ctx.Done():
				return
			}
		}
		src := sourceOf(c.RemoteAddr())
		if !n.inbound.startHandshake(src) {
			n.log.Debug("node: too many incoming handshakes at once; closed a connection", "from", c.RemoteAddr())
			c.Close()
			continue
		}
		n.spawnOr(func() { n.inbound.endHandshake(src); c.Close() }, func() {
			ctx, cancel := context.WithTimeout(n.ctx, inboundHandshakeTimeout)
			s, err := session.Server(ctx, c, n.id, nil)
			cancel()
			n.inbound.endHandshake(src)
			if err != nil {
				n.log.Debug("node: incoming handshake failed", "from", c.RemoteAddr(), "err", err)
				return
			}
			if n.opt.Accept != nil && !n.opt.Accept(s.Peer()) && !s.Peer().Equal(n.id.Public) {
				n.log.Info("node: refused a peer", "peer", s.PeerID())
				s.Close()
				return
			}
			n.serve(s, true)
		})
	}
}

// spawn runs f in a goroutine that Close waits for, unless Close has
// begun (signaling callbacks and strategies run outside the node's
// goroutines, and must not start work Close would not wait for).
func (n *Node) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return false
	}
	n.wg.Go(f)
	return true
}

// spawnOr is spawn, running undo instead when the node is closing.
func (n *Node) spawnOr(undo, f func()) {
	if !n.spawn(f) {
		undo()
	}
}

// serve runs a session's streams until it ends. An inbound session (a
// peer connected to this node's port) also completes a reverse connect
// waiting for its peer, or else falls within the bounds on inbound
// sessions (see inbound).
func (n *Node) serve(s *session.Session, inbound bool) {
	n.mu.Lock()
	if n.ctx.Err() != nil {
		n.mu.Unlock()
		s.Close()
		return
	}
	// A peer answering this node's reverse connect was asked to come.
	counted := inbound && len(n.waiting[s.PeerID()]) == 0
	var evict *session.Session
	if counted {
		var refused string
		if evict, refused = n.inbound.admit(s); refused != "" {
			n.mu.Unlock()
			n.log.Info("node: refused a session: "+refused, "peer", s.PeerID(), "from", s.RemoteAddr())
			s.Close()
			return
		}
	}
	n.sessions[s] = true
	watchers := slices.Clone(n.watchers)
	if inbound {
		id := s.PeerID()
		for _, ch := range n.waiting[id] {
			select {
			case ch <- s:
			default:
			}
		}
		delete(n.waiting, id)
	}
	n.mu.Unlock()
	if evict != nil {
		n.log.Info("node: ended a peer's oldest session for its new one", "peer", s.PeerID(), "sessions", maxPeerSessions)
		// Closing a dead session may wait for its write deadline.
		closeIt := func() { evict.Close() }
		n.spawnOr(closeIt, closeIt)
	}
	for _, w := range watchers {
		w.f(s)
	}
	defer func() {
		n.mu.Lock()
		delete(n.sessions, s)
		n.mu.Unlock()
		if counted {
			n.inbound.end(s)
		}
		s.Close()
	}()
	for {
		proto, st, err := s.Accept(n.ctx, func(p string) bool { return n.handler(p) != nil })
		if err != nil {
			return
		}
		h := n.handler(proto)
		n.spawnOr(func() { st.Close() }, func() {
			defer st.Close()
			h(n.ctx, s, patient{st})
		})
	}
}

// OnSession calls f with each session the node serves from now on
// (incoming ones, those Connect made, reverse connects answered) and, at
// once, with those it serves already: each session once. f runs on the
// node's goroutines before the session's streams are served, so it must
// not block; s.Done tells when the session ends. Calling the returned stop
// ends the calls, though one already under way may still finish.
func (n *Node) OnSession(f func(s *session.Session)) (stop func()) {
	var existing []*session.Session
	stop = watch(n, &n.watchers, &watcher{f: f}, func() {
		for s := range n.sessions {
			existing = append(existing, s)
		}
	})
	for _, s := range existing {
		f(s)
	}
	return stop
}

// watch adds w to the registrations in *list, running also (if not nil)
// under the same lock, and returns what removes w.
func watch[T any](n *Node, list *[]*T, w *T, also func()) (stop func()) {
	n.mu.Lock()
	*list = append(*list, w)
	if also != nil {
		also()
	}
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		*list = slices.DeleteFunc(*list, func(x *T) bool { return x == w })
	}
}

// Close shuts the node down: sessions end, port mappings are removed,
// brokers disconnected, and every goroutine stops.
func (n *Node) Close() error {
	// An address announcement under way ends first; none starts after.
	n.addrMu.Lock()
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	n.addrMu.Unlock()
	n.cancel()
	for _, l := range n.listeners {
		l.Close()
	}
	n.mu.Lock()
	sessions := make([]*session.Session, 0, len(n.sessions))
	for s := range n.sessions {
		sessions = append(sessions, s)
	}
	keepers := n.keepers
	n.keepers = nil
	n.mu.Unlock()
	for _, s := range sessions {
		s.Close()
	}
	var errs []error
	for _, k := range keepers {
		if err := k.Close(); err != nil {
			errs = append(errs, fmt.Errorf("removing a port mapping: %w", err))
		}
	}
	if n.sig != nil {
		n.sig.Close()
	}
	n.wg.Wait()
	return errors.Join(errs...)
}
