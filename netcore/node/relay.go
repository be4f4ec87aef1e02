package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"p2pd/netcore/addr"
	"p2pd/netcore/relay"
	"p2pd/netcore/session"
	"p2pd/netcore/signal"
)

const (
	// relayHeadStart is how long the relay waits before it starts, when a
	// direct strategy has a chance: punching needs two signaling hops and
	// a round trip through both NATs, which is well under a second on
	// real paths. Starting the relay later keeps it from winning a race a
	// direct path would win a moment after (relayed paths are slower and
	// cost the relay's operator); starting it sooner gains nothing where
	// a direct path exists.
	relayHeadStart = 700 * time.Millisecond
	// relayAnswerTimeout bounds waiting for the peer's relay answer: two
	// signaling hops and an allocation on its side.
	relayAnswerTimeout = 5 * time.Second
	// allocateTimeout bounds one TURN server's allocation: a few round
	// trips; a silent server must leave time for the next.
	allocateTimeout = 2 * time.Second
	// relayPairDelay is the head start of the one-sided path (the
	// responder's own socket to the initiator's relayed address) over
	// the relay-to-relay path. Its handshake takes a round trip through
	// one relay, so it is done well within a second where it works at
	// all; it fails where the responder cannot send UDP to the relay's
	// port, or reaches it from an address the initiator did not permit,
	// and then waiting longer only delays the fallback.
	relayPairDelay = time.Second
	// relayTCPHeadStart is the head start of the TCP path (the
	// responder's TCP connection to the initiator's relayed TCP address)
	// over the one-sided QUIC path: both go through one relay, and TCP
	// carries bulk data several times faster through it (the TURN server
	// splices two TCP streams instead of relaying datagram by datagram),
	// so it is given the time its extra round trips take (a TCP and a
	// TLS handshake, and the server's ConnectionBind) before QUIC starts.
	relayTCPHeadStart = 500 * time.Millisecond
	// tcpRetry spaces the responder's TCP attempts while the initiator
	// may not have permitted its address yet (dialTCPRelay).
	tcpRetry = 100 * time.Millisecond
	// tcpAllocateGrace is how long the offer waits for the TCP allocation
	// once the UDP one is made: a server that does not relay TCP, or a
	// network that blocks TCP to it, only loses the TCP path.
	tcpAllocateGrace = 300 * time.Millisecond
	// udpAllocateGrace is how long a TCP allocation waits for the UDP one:
	// that one is usually the quicker (no TCP handshake), so one still
	// missing this long after is most likely dropped on the way; on a
	// lossy path (10% in the lab) a retransmitted request or two fit in.
	udpAllocateGrace = time.Second
	// relayTCPPairHeadStart is the head start of TCP relay to relay over
	// QUIC relay to relay, for the same reason as relayTCPHeadStart; only
	// where the responder reaches nothing but its TURN server does either
	// run.
	relayTCPPairHeadStart = 500 * time.Millisecond
	// relayDialWindow is how long the responder's paths may take, the
	// last (QUIC relay to relay) starting after every head start.
	relayDialWindow = relayTCPHeadStart + relayPairDelay + relayTCPPairHeadStart + dialTimeout
)

// relayMsg is the body of kindRelayOffer and kindRelayAnswer: a relayed
// address to send to.
type relayMsg struct {
	ID      string         `json:"id"`
	Relayed netip.AddrPort `json:"relayed,omitzero"`
	// RelayedTCP, in the offer, is the initiator's relayed TCP address
	// (RFC 6062), where the responder may connect by TCP.
	RelayedTCP netip.AddrPort   `json:"relayedTCP,omitzero"`
	Brokers    []netip.AddrPort `json:"brokers,omitempty"` // offer: where the initiator listens, for the answer
	// Pair, in the offer, says the initiator joins a pair of TCP
	// connections to its relayed TCP address into one (relay.Pairs), each
	// carrying bytes one way, which a TURN server cannot stall.
	Pair bool `json:"pair,omitempty"`
	// Direct, in the answer, lists the responder's external addresses:
	// it also sends from its own socket to the initiator's relay, which
	// must permit them.
	Direct []netip.Addr `json:"direct,omitempty"`
	Error  string       `json:"error,omitempty"` // answer: why the peer cannot relay
}

// planRelay says whether the relay can start towards to, or why not.
func (n *Node) planRelay(to *addr.Address) string {
	if len(n.opt.Config.TURN) == 0 && !to.Key.Equal(n.id.Public) {
		return "no TURN server is configured"
	}
	return n.signalable(to)
}

// allocate allocates a relay on the first configured TURN server that
// grants one.
func (n *Node) allocate(ctx context.Context) (*relay.Allocation, error) {
	var errs []string
	for _, t := range n.opt.Config.TURN {
		actx, cancel := context.WithTimeout(ctx, allocateTimeout)
		a, err := relay.Allocate(actx, t, netip.Addr{})
		cancel()
		if err == nil {
			return a, nil
		}
		errs = append(errs, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

// allocateTCP allocates a TCP relay on the first configured TURN server
// that grants one, or returns nil.
func (n *Node) allocateTCP(ctx context.Context) *relay.TCPAllocation {
	for _, t := range n.opt.Config.TURN {
		actx, cancel := context.WithTimeout(ctx, allocateTimeout)
		a, err := relay.AllocateTCP(actx, t)
		cancel()
		if err == nil {
			return a
		}
		n.log.Debug("node: no TCP relay", "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil
}

// tcpRelayConn is a connection accepted on a TCP allocation, which it
// holds: closing it frees the allocation.
type tcpRelayConn struct {
	net.Conn
	a *relay.TCPAllocation
}

func (c tcpRelayConn) Close() error {
	err := c.Conn.Close()
	c.a.Close()
	return err
}

// acceptTCPRelay waits for the peer's pair of connections to a (or one
// connection, from a peer that does not pair, or relay to relay) and
// secures it as the TLS server; the session then holds a. A connection
// that cannot be bound (the peer gave it up and tries again, say: on a
// lossy path its first one may die before the server hands it over) is
// passed over for the next, until ctx ends.
func (n *Node) acceptTCPRelay(ctx context.Context, a *relay.TCPAllocation, want ed25519.PublicKey) (s *session.Session, paired bool, err error) {
	actx, cancel := context.WithCancel(ctx)
	var pairs relay.Pairs
	var adding sync.WaitGroup
	whole := make(chan net.Conn, 1)
	failed := make(chan error, 1)
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := a.Accept(actx)
			if err == nil {
				adding.Go(func() {
					j, err := pairs.Add(actx, c)
					switch {
					case err != nil:
						n.log.Debug("node: a relayed TCP connection did not start as a pair's", "err", err)
					case j != nil:
						select {
						case whole <- j:
						default:
							j.Close() // one came first
						}
					}
				})
				continue
			}
			if actx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				n.log.Debug("node: a relayed TCP connection was not bound; waiting for another", "err", err)
				select {
				case <-time.After(tcpRetry):
					continue
				case <-actx.Done():
				}
			}
			failed <- err
			return
		}
	}()
	var c net.Conn
	select {
	case c = <-whole:
	case err = <-failed:
	}
	cancel()
	<-accepting
	adding.Wait()
	pairs.Close()
	// One may have been joined as ctx ended, or after the first.
	select {
	case j := <-whole:
		if c == nil {
			c = j
		} else {
			j.Close()
		}
	default:
	}
	if c == nil {
		a.Close()
		return nil, false, err
	}
	a.Refuse()
	s, err = session.Server(ctx, tcpRelayConn{c, a}, n.id, want)
	return s, relay.Paired(c), err
}

// unmapped is ap with an IPv4-mapped IPv6 address as plain IPv4.
func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// externalIPs lists the external addresses in an address: where its
// node's packets come from, as the internet sees them.
func externalIPs(a *addr.Address) []netip.Addr {
	if a == nil {
		return nil
	}
	var out []netip.Addr
	for _, ap := range externals(a) {
		if ip := ap.Addr().Unmap(); !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

// ofFamily returns those of ips in the family of a relayed address (a
// server may refuse some addresses, which only costs the path from them).
func ofFamily(ips []netip.Addr, relayed netip.AddrPort) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, ip := range ips {
		if ip.Is4() == relayed.Addr().Is4() {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the peer has no external address of the relay's family")
	}
	return out, nil
}

// permitOwn permits on a those of ips that are of its relayed address's
// family, for the one-sided path.
func permitOwn(ctx context.Context, a *relay.Allocation, ips []netip.Addr) error {
	peers, err := ofFamily(ips, a.Relayed())
	if err != nil {
		return err
	}
	ports := make([]netip.AddrPort, len(peers))
	for i, ip := range peers {
		ports[i] = netip.AddrPortFrom(ip, 0)
	}
	return a.Permit(ctx, ports...)
}

// permitOwnTCP is permitOwn for a TCP allocation.
func permitOwnTCP(ctx context.Context, a *relay.TCPAllocation, ips []netip.Addr) error {
	peers, err := ofFamily(ips, a.Relayed())
	if err != nil {
		return err
	}
	return a.Permit(ctx, peers...)
}

// relayTo runs the initiator's side of the relay: allocate, offer the
// relayed addresses, and wait for the peer's session to one of them. The
// peer races four paths, as ICE pairs this node's relayed candidates
// with the peer's reflexive and relayed ones (dialRelayed): a TCP
// connection from its own address to this node's relayed TCP address
// (RFC 6062; the TURN server splices two TCP streams, which it does
// several times faster than it relays datagrams), its own UDP socket to
// this node's relayed UDP address (one relay, QUIC), and relay to relay,
// by TCP (its TURN server connects to this node's relayed TCP address)
// and then by QUIC: the paths that work wherever the peer reaches its
// TURN server at all. wait is the head start to give the other
// strategies first.
//
// This node's relay lets the one-sided paths in because it permitted the
// peer's external IPs; the peer's NAT lets the replies in because they
// come from the very address it sent to. The initiator is usually the
// side that sends (a file), and it is better placed at the relay: its
// packets reach the TURN server as ChannelData on the server's main
// socket, while a relayed address's own socket, where the peer's packets
// arrive, often has a small receive buffer (coturn's: 128 KiB).
func (n *Node) relayTo(ctx context.Context, to *addr.Address, wait time.Duration, note noter) (*session.Session, string, error) {
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	a, ta, err := n.allocateBoth(ctx, true, true)
	if err != nil {
		return nil, "", err
	}
	// A TCP allocation not used is freed.
	tcpOwned := false
	defer func() {
		if ta != nil && !tcpOwned {
			ta.Close()
		}
	}()
	// The peer's first packets (and TCP connection) from its own address
	// pass once its addresses are permitted; those its answer brings are
	// permitted then.
	early := externalIPs(to)
	permits := 0
	permitted := make(chan error, 2)
	var offer relayMsg
	var l *session.QUICListener
	if a != nil {
		permits++
		offer.Relayed = a.Relayed()
		go func() { permitted <- permitOwn(ctx, a, early) }()
		if l, err = session.ListenQUIC(&quic.Transport{Conn: a.PacketConn()}, n.id, to.Key); err != nil {
			<-permitted
			a.Close()
			return nil, "", err
		}
		// The session accepted keeps the transport and the allocation;
		// without one, closing the listener frees them.
		defer l.Close()
	}
	if ta != nil {
		permits++
		offer.RelayedTCP, offer.Pair = ta.Relayed(), true
		go func() { permitted <- permitOwnTCP(ctx, ta, early) }()
	}
	switch {
	case a == nil:
		note.say("allocated %v for TCP on %v (no UDP relay); offering it over signaling", ta.Relayed(), ta.Server())
	case ta != nil:
		note.say("allocated %v (and %v for TCP) on %v; offering them over signaling", a.Relayed(), ta.Relayed(), a.Server())
	default:
		note.say("allocated %v on %v; offering it over signaling", a.Relayed(), a.Server())
	}
	ans, err := exchange(ctx, n, &n.relayAnswers, to, kindRelayOffer, "relay", relayAnswerTimeout, func(id string) any {
		offer.ID, offer.Brokers = id, n.brokerList()
		return offer
	})
	for range permits {
		if perr := <-permitted; perr != nil {
			n.log.Debug("node: the relay does not permit the peer's addresses yet", "err", perr)
		}
	}
	if err != nil {
		return nil, "", err
	}
	if ans.Error != "" {
		return nil, "", fmt.Errorf("the peer cannot relay: %s", ans.Error)
	}
	if !ans.Relayed.IsValid() && !ans.RelayedTCP.IsValid() {
		return nil, "", errors.New("the peer answered the relay offer without a relayed address")
	}
	var fresh []netip.Addr
	for _, ip := range ans.Direct {
		if !slices.Contains(early, ip.Unmap()) {
			fresh = append(fresh, ip.Unmap())
		}
	}
	if len(fresh) > 0 && a != nil {
		go func() {
			if err := permitOwn(ctx, a, fresh); err != nil {
				n.log.Debug("node: the relay does not permit the peer's addresses", "err", err)
			}
		}()
	}
	// The TCP relay lets in the peer's own addresses and, relay to
	// relay, its TCP relay's.
	if tcpFresh := fresh; ta != nil {
		if ans.RelayedTCP.IsValid() {
			tcpFresh = append(slices.Clone(fresh), ans.RelayedTCP.Addr().Unmap())
		}
		if len(tcpFresh) > 0 {
			go func() {
				if err := permitOwnTCP(ctx, ta, tcpFresh); err != nil {
					n.log.Debug("node: the TCP relay does not permit the peer's addresses", "err", err)
				}
			}()
		}
	}
	quicPaths := l != nil && ans.Relayed.IsValid()
	if quicPaths {
		if err := a.Permit(ctx, ans.Relayed); err != nil {
			if ta == nil {
				return nil, "", err
			}
			n.log.Debug("node: relaying over TCP only", "err", err)
			quicPaths = false // the deferred Close of l frees a
		}
	}
	note.say("the peer relays from %v (and %v for TCP); waiting for its session: by TCP, from its own socket, or relay to relay after %v", ans.Relayed, ans.RelayedTCP, relayPairDelay)
	actx, cancel := context.WithTimeout(ctx, relayDialWindow)
	defer cancel()
	type accepted struct {
		s           *session.Session
		tcp, paired bool
		err         error
	}
	results := make(chan accepted, 2)
	waiting := 0
	if quicPaths {
		waiting++
		go func() {
			s, err := l.Accept(actx)
			results <- accepted{s: s, err: err}
		}()
	}
	if ta != nil {
		waiting++
		tcpOwned = true // acceptTCPRelay frees it, or its session holds it
		go func() {
			s, paired, err := n.acceptTCPRelay(actx, ta, to.Key)
			results <- accepted{s, true, paired, err}
		}()
	}
	var won accepted
	var errs []string
	for range waiting {
		r := <-results
		switch {
		case r.err != nil:
			if won.s == nil {
				errs = append(errs, r.err.Error())
			}
		case won.s == nil:
			won = r
			cancel() // the other path stops waiting
		default:
			r.s.Close() // both got through: the first is kept
		}
	}
	switch {
	case won.s == nil && ctx.Err() != nil:
		return nil, "", ctx.Err()
	case won.s == nil:
		return nil, "", fmt.Errorf("the peer did not open a session, by TCP, from its socket or its relay %v: %s", ans.Relayed, strings.Join(errs, "; "))
	case won.tcp:
		each := ""
		if won.paired {
			each = ", a connection each way"
		}
		// Relayed to relay, the peer's connections come from its relayed
		// addresses (a pair's from two), on its TURN server's IP.
		if from, ok := won.s.RemoteAddr().(*net.TCPAddr); ok && ans.RelayedTCP.IsValid() && from.AddrPort().Addr().Unmap() == ans.RelayedTCP.Addr().Unmap() {
			return won.s, fmt.Sprintf("relayed by %v: %v to %v%s (TLS over TCP, relay to relay)", ta.Server(), ta.Relayed(), ans.RelayedTCP, each), nil
		}
		return won.s, fmt.Sprintf("relayed by %v: the peer's TCP connection to %v%s (TLS over TCP, one relay)", ta.Server(), ta.Relayed(), each), nil
	}
	s := won.s
	if from, ok := s.RemoteAddr().(*net.UDPAddr); ok && unmapped(from.AddrPort()) != ans.Relayed {
		return s, fmt.Sprintf("relayed by %v: the peer's own socket %v to %v (QUIC, one relay)", a.Server(), from, a.Relayed()), nil
	}
	return s, fmt.Sprintf("relayed by %v: %v to %v (QUIC, relay to relay)", a.Server(), a.Relayed(), ans.Relayed), nil
}

// answerRelay runs the responder's side of a relay offer: allocate (UDP,
// and TCP when the initiator offers a relayed TCP address; a network
// that lets nothing out but TCP to the TURN server still gets the TCP
// one), permit the initiator's relayed address, answer with this side's
// relayed and external addresses, and open a session to the initiator's
// relayed addresses (dialRelayed). The initiator keeps the first session
// that reaches it and closes any other.
func (n *Node) answerRelay(m signal.Message) {
	var offer relayMsg
	if err := json.Unmarshal(m.Body, &offer); err != nil || offer.ID == "" || !offer.Relayed.IsValid() && !offer.RelayedTCP.IsValid() {
		n.log.Debug("node: malformed relay offer", "err", err)
		return
	}
	n.spawn(func() {
		ctx, cancel := context.WithTimeout(n.ctx, relayAnswerTimeout+relayDialWindow)
		defer cancel()
		answer := func(msg relayMsg) error {
			msg.ID = offer.ID
			body, _ := json.Marshal(msg)
			return n.sig.Send(ctx, m.From, offer.Brokers, kindRelayAnswer, body)
		}
		if len(n.opt.Config.TURN) == 0 {
			answer(relayMsg{Error: "no TURN server is configured"})
			return
		}
		// The QUIC paths go to the initiator's relayed UDP address, the
		// TCP ones to its relayed TCP address: each as it has them.
		a, ta, err := n.allocateBoth(ctx, offer.Relayed.IsValid(), offer.RelayedTCP.IsValid())
		if a != nil {
			if perr := a.Permit(ctx, offer.Relayed); perr != nil {
				a.Close()
				a, err = nil, perr
			}
		}
		if a == nil && ta == nil {
			answer(relayMsg{Error: err.Error()})
			n.log.Info("node: could not relay", "peer", m.From, "err", err)
			return
		}
		msg := relayMsg{Direct: externalIPs(n.Address())}
		if a != nil {
			msg.Relayed = a.Relayed()
		}
		if ta != nil {
			msg.RelayedTCP = ta.Relayed()
		}
		if err := answer(msg); err != nil {
			if a != nil {
				a.Close()
			}
			if ta != nil {
				ta.Close()
			}
			n.log.Info("node: could not answer a relay offer", "peer", m.From, "err", err)
			return
		}
		if err := n.dialRelayed(ctx, a, ta, offer.Relayed, offer.RelayedTCP, offer.Pair, m.From); err != nil {
			n.log.Info("node: relayed session failed", "peer", m.From, "err", err)
		}
	})
}

// allocateBoth allocates a UDP and a TCP relay (those asked for) at
// once, and returns what it gets without waiting long: the UDP one with
// the TCP one or, if that is slower, tcpAllocateGrace after it; the TCP
// one alone once the UDP one failed, or udpAllocateGrace after it (a
// network that drops UDP to the TURN server leaves the UDP allocation
// waiting for allocateTimeout). One that comes later is freed. It fails
// only when it gets neither.
func (n *Node) allocateBoth(ctx context.Context, udp, tcp bool) (*relay.Allocation, *relay.TCPAllocation, error) {
	type udpResult struct {
		a   *relay.Allocation
		err error
	}
	udpc := make(chan udpResult, 1)
	tcpc := make(chan *relay.TCPAllocation, 1)
	if udp {
		go func() {
			a, err := n.allocate(ctx)
			udpc <- udpResult{a, err}
		}()
	} else {
		udpc <- udpResult{}
	}
	if tcp {
		go func() { tcpc <- n.allocateTCP(ctx) }()
	} else {
		tcpc <- nil
	}
	var a *relay.Allocation
	var ta *relay.TCPAllocation
	var udpErr error
	udpDone, tcpDone := false, false
	var grace <-chan time.Time
	for !udpDone || !tcpDone {
		select {
		case r := <-udpc:
			udpDone, a, udpErr = true, r.a, r.err
			if a != nil && !tcpDone {
				grace = time.After(tcpAllocateGrace)
			}
		case ta = <-tcpc:
			tcpDone = true
			if ta != nil && !udpDone {
				grace = time.After(udpAllocateGrace)
			}
		case <-grace:
			if !udpDone {
				go func() {
					if r := <-udpc; r.a != nil {
						r.a.Close()
					}
				}()
			}
			if !tcpDone {
				go func() {
					if t := <-tcpc; t != nil {
						t.Close()
					}
				}()
			}
			udpDone, tcpDone = true, true
		}
	}
	switch {
	case a != nil || ta != nil:
		return a, ta, nil
	case udp:
		return nil, nil, udpErr
	}
	return nil, nil, errors.New("no TURN server granted a TCP relay")
}

// dialRelayed opens sessions to the initiator's relayed addresses, four
// ways, each given a head start over the next as it carries bulk data
// better or goes through one relay fewer:
//
//  1. by TCP to tcpTo (if offered) at once: two connections, one each
//     way (relay.DialPair), when the initiator pairs;
//  2. by QUIC to to from a new socket of this node's own, after
//     relayTCPHeadStart or when TCP fails;
//  3. by TCP from ta's relayed address to tcpTo (relay to relay: the
//     TURN server connects), after relayPairDelay or when 1 and 2 fail;
//     a pair's second connection from a second allocation, as the
//     server connects from the relayed address, to one address once;
//  4. by QUIC from a's relayed address to to, after a further
//     relayTCPPairHeadStart if 3 runs, or when 2 (and 3) fail.
//
// a or ta may be nil (no such allocation); a is made only when to is
// valid, ta only when tcpTo is. It stops the others once one
// is secured, serves each session made, and frees a and ta unless a
// session holds them.
func (n *Node) dialRelayed(ctx context.Context, a *relay.Allocation, ta *relay.TCPAllocation, to, tcpTo netip.AddrPort, pair bool, want ed25519.PublicKey) error {
	network := "udp4"
	if !to.Addr().Is4() {
		network = "udp6"
	}
	raddr := net.UDPAddrFromAddrPort(to)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type path struct {
		what string
		s    *session.Session
		err  error
	}
	results := make(chan path, 4)
	// after waits for d, for all of failed to close, or for dctx to end.
	after := func(d time.Duration, failed ...<-chan struct{}) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		for _, f := range failed {
			select {
			case <-t.C:
				return true
			case <-f:
			case <-dctx.Done():
				return false
			}
		}
		return true
	}
	// failedOn makes a channel closed when a path fails (or at once for
	// a path that does not run).
	failedOn := func(runs bool) chan struct{} {
		c := make(chan struct{})
		if !runs {
			close(c)
		}
		return c
	}
	paths := 2
	tcpFailed := failedOn(tcpTo.IsValid())
	if tcpTo.IsValid() {
		paths++
		go func() {
			var d net.Dialer
			dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", tcpTo.String()) }
			var second relay.Dialer
			if pair {
				second = dial
			}
			s, err := n.secureRelayedTCP(dctx, want, dial, second)
			if err != nil {
				close(tcpFailed)
			}
			results <- path{"by TCP", s, err}
		}()
	}
	directFailed := failedOn(true)
	go func() {
		if !to.IsValid() {
			close(directFailed)
			results <- path{"from this node's socket", nil, errors.New("no relayed UDP address to send to")}
			return
		}
		if !after(relayTCPHeadStart, tcpFailed) {
			results <- path{"from this node's socket", nil, dctx.Err()}
			return
		}
		s, err := func() (*session.Session, error) {
			direct, err := net.ListenUDP(network, nil)
			if err != nil {
				return nil, fmt.Errorf("opening a socket: %w", err)
			}
			hctx, hcancel := context.WithTimeout(dctx, dialTimeout)
			defer hcancel()
			tr := &quic.Transport{Conn: direct}
			s, err := session.ClientQUIC(hctx, tr, raddr, n.id, want)
			if err != nil {
				tr.Close()
				direct.Close()
			}
			return s, err
		}()
		if err != nil {
			close(directFailed)
		}
		results <- path{"from this node's socket", s, err}
	}()
	tcpPair := ta != nil
	tcpPairFailed := failedOn(tcpPair)
	if tcpPair {
		paths++
		go func() {
			// The server connects from the relayed address, and to one
			// address only once: a pair's second connection comes from a
			// second allocation, made while the other paths go first (from
			// halfway through their head start: most often they are
			// through by then, and it is not needed). The initiator
			// permits ta's relayed IP only: one elsewhere (a server with
			// several relay IPs) is of no use.
			seconds := make(chan *relay.TCPAllocation, 1)
			if pair {
				go func() {
					t := time.NewTimer(relayPairDelay / 2)
					defer t.Stop()
					select {
					case <-t.C:
					case <-tcpFailed:
					case <-dctx.Done():
						seconds <- nil
						return
					}
					seconds <- n.allocateTCP(dctx)
				}()
			} else {
				seconds <- nil
			}
			waited := after(relayPairDelay, tcpFailed, directFailed)
			second := <-seconds
			if second != nil && second.Relayed().Addr() != ta.Relayed().Addr() {
				second.Close()
				second = nil
			}
			free := func() {
				ta.Close()
				if second != nil {
					second.Close()
				}
			}
			if !waited {
				free()
				results <- path{"TCP relay to relay", nil, dctx.Err()}
				return
			}
			var fromSecond relay.Dialer
			if second != nil {
				fromSecond = func(ctx context.Context) (net.Conn, error) { return second.Dial(ctx, tcpTo) }
			}
			s, err := n.secureRelayedTCP(dctx, want, func(ctx context.Context) (net.Conn, error) { return ta.Dial(ctx, tcpTo) }, fromSecond)
			if err != nil {
				free()
				close(tcpPairFailed)
			} else {
				// The session holds the allocations (a failed attempt
				// did not free them: secureTCP tries again on them).
				n.spawnOr(func() { s.Close(); free() }, func() {
					<-s.Done()
					free()
				})
			}
			results <- path{"TCP relay to relay", s, err}
		}()
	}
	go func() {
		wait := relayPairDelay
		if tcpPair {
			wait += relayTCPPairHeadStart
		}
		if a == nil || !after(wait, directFailed, tcpPairFailed) {
			if a != nil {
				a.Close()
			}
			err := dctx.Err()
			if a == nil {
				err = errors.New("no UDP allocation")
			}
			results <- path{"relay to relay", nil, err}
			return
		}
		hctx, hcancel := context.WithTimeout(dctx, dialTimeout)
		defer hcancel()
		s, err := session.ClientQUIC(hctx, &quic.Transport{Conn: a.PacketConn()}, raddr, n.id, want)
		if err != nil {
			a.Close()
		}
		results <- path{"relay to relay", s, err}
	}()
	var errs []string
	served := false
	for range paths {
		p := <-results
		if p.err != nil {
			if !served {
				errs = append(errs, fmt.Sprintf("%s: %v", p.what, p.err))
			}
			continue
		}
		// The initiator keeps the first to reach it and closes the
		// other, if both got through.
		served = true
		cancel()
		n.spawnOr(func() { p.s.Close() }, func() { n.serve(p.s, false) })
	}
	if !served {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// pairPatience bounds securing a pair of relayed connections before one
// connection is tried instead: a few round trips through the relay.
const pairPatience = 3 * time.Second

// secureRelayedTCP secures a connection made with dial (secureTCP) or,
// given second, a pair of them (relay.DialPair), dial's writing and
// second's reading; a pair that makes no session within pairPatience
// gives way to one connection made with dial, which carries both ways
// (and can stall when both are busy, but connects): the initiator must
// bind both halves of a pair, and on a lossy path it may lose one.
func (n *Node) secureRelayedTCP(ctx context.Context, want ed25519.PublicKey, dial, second relay.Dialer) (*session.Session, error) {
	if second == nil {
		return n.secureTCP(ctx, want, dial)
	}
	pctx, cancel := context.WithTimeout(ctx, pairPatience)
	s, err := n.secureTCP(pctx, want, func(ctx context.Context) (net.Conn, error) { return relay.DialPair(ctx, dial, second) })
	cancel()
	if err == nil || ctx.Err() != nil {
		return s, err
	}
	n.log.Debug("node: no session over a pair of relayed connections; trying one", "err", err)
	if s, err = n.secureTCP(ctx, want, dial); err != nil {
		return nil, fmt.Errorf("over a pair of connections, then one: %w", err)
	}
	return s, nil
}

// secureTCP connects with dial (to the initiator's relayed TCP address)
// and secures the connection as the TLS client. The initiator permits the
// addresses it learns from this node's answer only once the answer
// arrives, and until then the TURN server refuses connections from them
// (QUIC, on the other paths, sends its first packet again by itself): a
// quick failure is tried again every tcpRetry within relayTCPHeadStart.
func (n *Node) secureTCP(ctx context.Context, want ed25519.PublicKey, dial relay.Dialer) (*session.Session, error) {
	start := time.Now()
	for {
		s, err := func() (*session.Session, error) {
			hctx, hcancel := context.WithTimeout(ctx, dialTimeout)
			defer hcancel()
			c, err := dial(hctx)
			if err != nil {
				return nil, err
			}
			return session.Client(hctx, c, n.id, want)
		}()
		if err == nil || time.Since(start)+tcpRetry >= relayTCPHeadStart {
			return s, err
		}
		select {
		case <-time.After(tcpRetry):
		case <-ctx.Done():
			return nil, err
		}
	}
}
