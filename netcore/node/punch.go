package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/netif"
	"p2pd/netcore/punch"
	"p2pd/netcore/session"
	"p2pd/netcore/signal"
	"p2pd/netcore/stun"
)

const (
	// punchAnswerTimeout bounds waiting for the peer's punch answer: two
	// signaling hops and a STUN binding on its side.
	punchAnswerTimeout = 5 * time.Second
	// punchWindow is how long both sides keep punching after the meet
	// instant: SYNs retry every 50 ms, so a path that opens at all opens
	// within the first round trips.
	punchWindow = 4 * time.Second
	// meetMargin is added to the signaling delay when picking the meet
	// instant: the answer must reach the initiator before it.
	meetMargin = 30 * time.Millisecond
	// maxSignalDelay caps the offer's measured delay: a larger one means
	// the clocks disagree (one NTP server is off), and waiting longer
	// would not help.
	maxSignalDelay = 500 * time.Millisecond
	// sequentialSettle delays opening punching ports behind a NAT that
	// hands out ports in sequence: the flows the other strategies open at
	// the same instant would take the ports predicted for the punch.
	sequentialSettle = 20 * time.Millisecond
)

// punchOffer is the body of a kindPunchOffer message: the initiator's
// predicted endpoints, per family.
type punchOffer struct {
	ID        string           `json:"id"`
	Proto     string           `json:"proto,omitempty"`  // "tcp" (the default), "udp" or "birthday"
	Primer    string           `json:"primer,omitempty"` // TCP: who primes ("initiator", "responder"; "": nobody)
	Endpoints []netip.AddrPort `json:"endpoints"`
	Brokers   []netip.AddrPort `json:"brokers"` // where the initiator listens, for the answer
	SentAt    int64            `json:"sent_at"` // unix ns on the sender's NTP-corrected clock
}

// punchAnswer is the body of a kindPunchAnswer message.
type punchAnswer struct {
	ID        string           `json:"id"`
	Error     string           `json:"error,omitempty"` // why the peer cannot punch
	Endpoints []netip.AddrPort `json:"endpoints"`
	At        int64            `json:"at"` // the meet instant, unix ns, NTP-corrected
}

// punchNAT is what matters of a side's NAT for punching.
type punchNAT struct {
	Predictable bool // its endpoints are known in advance
	Independent bool // one endpoint for every destination
	Lenient     bool // it admits any port of an address it sent to
}

// sequential: each destination gets the next port, so every new flow
// moves the predictions.
func (t punchNAT) sequential() bool { return t.Predictable && !t.Independent }

func traitsOf(p addr.NATProfile) punchNAT {
	return punchNAT{
		Predictable: !p.Translated || p.Mapping == stun.EndpointIndependent || p.Ports == stun.DeltaIndependent || p.Ports == stun.DeltaDependent,
		Independent: !p.Translated || p.Mapping == stun.EndpointIndependent,
		Lenient:     p.Filtering == stun.EndpointIndependent || p.Filtering == stun.AddressDependent,
	}
}

// reaches reports whether one side's SYNs can reach the other's punching
// port: the target's endpoint is known, and once the target's own SYN has
// opened its router towards the sender, that router admits the sender
// (leniently, or because the sender's endpoint is known too).
func reaches(from, to punchNAT) bool {
	return to.Predictable && (to.Lenient || from.Predictable)
}

// planPunch says whether TCP punching can work towards to, or why not.
func (n *Node) planPunch(to *addr.Address) string {
	if why := n.signalable(to); why != "" {
		return why
	}
	for _, p := range n.natPairs(to) {
		if reaches(p.mine, p.peer) || reaches(p.peer, p.mine) {
			return ""
		}
	}
	return "the peer's router maps ports at random and this node's filters per address and port (or the reverse): cannot predict"
}

// signalable says why the peer cannot be reached over signaling, or "".
func (n *Node) signalable(to *addr.Address) string {
	switch {
	case to.Key.Equal(n.id.Public):
		return "connecting to itself"
	case n.sig == nil:
		return "no signaling broker is configured"
	case len(n.brokerList()) == 0:
		return "this node has reached no signaling broker yet"
	case len(to.Brokers) == 0:
		return "the peer's address lists no signaling broker"
	}
	return ""
}

// natPair is this node's NAT and the peer's on one address family.
type natPair struct {
	ep         endpoint
	mine, peer punchNAT
	external   netip.Addr // the peer's external address
}

// natPairs lists, per endpoint of this node, the peer's NAT of the same
// family.
func (n *Node) natPairs(to *addr.Address) []natPair {
	var out []natPair
	for _, ep := range n.endpoints {
		for _, ifc := range to.Interfaces {
			theirs := ifc.V4
			if ep.family == netif.IPv6 {
				theirs = ifc.V6
			}
			if theirs == nil || !theirs.External.IsValid() {
				continue
			}
			out = append(out, natPair{ep: ep, mine: n.natOf(ep), peer: traitsOf(theirs.NAT), external: theirs.External})
		}
	}
	return out
}

// natOf describes an endpoint's NAT for punching; without a profile the
// address is its own endpoint, behind a filter that is assumed strict.
func (n *Node) natOf(ep endpoint) punchNAT {
	if ep.profile == nil {
		return punchNAT{Predictable: true, Independent: true}
	}
	return traitsOf(natProfile(ep.profile))
}

// punchPort is a punching socket: TCP (punch.Socket) or UDP
// (punch.UDPSocket).
type punchPort interface {
	Local() netip.AddrPort
	External() netip.AddrPort
	Close() error
}

// punchPorts opens a punching port on each of this node's addresses of a
// family the peer has (in theirs), and predicts its external endpoints
// from the NAT's profile.
func punchPorts[S punchPort](ctx context.Context, n *Node, theirs []netip.AddrPort, open func(ctx context.Context, local, server netip.AddrPort) (S, error), predict func(p *stun.Profile, ext netip.AddrPort) []netip.AddrPort) ([]S, []netip.AddrPort, error) {
	var socks []S
	var predicted []netip.AddrPort
	why := errors.New("this node has no address of the peer's families")
	for _, ep := range n.endpoints {
		if !slices.ContainsFunc(theirs, func(t netip.AddrPort) bool { return netif.FamilyOf(t.Addr()) == ep.family }) {
			continue
		}
		var server netip.AddrPort
		if ep.profile != nil && ep.profile.NAT {
			if server = n.stunServer(ep.family); !server.IsValid() {
				why = fmt.Errorf("no STUN server for %v to learn the punching port's mapping", ep.family)
				continue
			}
		}
		s, err := open(ctx, netip.AddrPortFrom(ep.local.Addr(), 0), server)
		if err != nil {
			n.log.Info("node: no punching port", "addr", ep.local.Addr(), "err", err)
			why = err
			continue
		}
		socks = append(socks, s)
		if p := ep.profile; p != nil && p.NAT {
			predicted = append(predicted, predict(p, s.External())...)
		} else {
			predicted = append(predicted, s.External())
		}
	}
	if len(socks) == 0 {
		return nil, nil, fmt.Errorf("no punching port could be opened: %w", why)
	}
	return socks, predicted, nil
}

func (n *Node) tcpPunchPorts(ctx context.Context, theirs []netip.AddrPort) ([]*punch.Socket, []netip.AddrPort, error) {
	return punchPorts(ctx, n, theirs, punch.Listen, func(p *stun.Profile, ext netip.AddrPort) []netip.AddrPort {
		independent := p.TCPMapping == stun.EndpointIndependent || (p.TCPMapping == stun.Unknown && p.Mapping == stun.EndpointIndependent)
		return punch.Predict(ext, independent, p.TCPPorts.Kind, p.TCPPorts.Step)
	})
}

func (n *Node) udpPunchPorts(ctx context.Context, theirs []netip.AddrPort) ([]*punch.UDPSocket, []netip.AddrPort, error) {
	return punchPorts(ctx, n, theirs, punch.ListenUDP, func(p *stun.Profile, ext netip.AddrPort) []netip.AddrPort {
		return punch.Predict(ext, p.Mapping == stun.EndpointIndependent, p.UDPPorts.Kind, p.UDPPorts.Step)
	})
}

// stunServer picks a STUN server of family f for a TCP binding.
func (n *Node) stunServer(f netif.Family) netip.AddrPort {
	for _, s := range n.stunServers {
		if netif.FamilyOf(s.Addr.Addr()) == f {
			return s.Addr
		}
	}
	return netip.AddrPort{}
}

// settle waits sequentialSettle behind a NAT that hands out ports in
// sequence, for the flows other strategies open at the start to take
// their ports before the punch predicts its own.
func (n *Node) settle(ctx context.Context) error {
	if !slices.ContainsFunc(n.endpoints, func(ep endpoint) bool { return n.natOf(ep).sequential() }) {
		return nil
	}
	select {
	case <-time.After(sequentialSettle):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sequentialPair reports whether this node's NAT or the peer's hands out
// ports in sequence.
func (n *Node) sequentialPair(to *addr.Address) bool {
	return slices.ContainsFunc(n.natPairs(to), func(p natPair) bool { return p.mine.sequential() || p.peer.sequential() })
}

// primer picks the side that primes in TCP punching (its first SYNs die
// between the routers, so routers that reset unsolicited SYNs let the
// other side's SYNs through): a side whose endpoint the other can
// predict, as the other's SYNs must arrive where it primed; of two, the
// one with the higher key. "" when neither is predictable.
func (n *Node) primer(to *addr.Address) string {
	pairs := n.natPairs(to)
	if len(pairs) == 0 {
		return ""
	}
	mine, peer := pairs[0].mine, pairs[0].peer
	higher := bytes.Compare(n.id.Public, to.Key) > 0
	switch {
	case mine.Predictable && (!peer.Predictable || higher):
		return "initiator"
	case peer.Predictable:
		return "responder"
	}
	return ""
}

// guard has the host ignore the ICMP errors priming SYNs provoke, for
// every socket's port; it reports false (and undoes what it did) where it
// cannot, as without root. Call the returned func to remove the rules.
func (n *Node) guard(ctx context.Context, socks []*punch.Socket) (func(), bool) {
	var undos []func()
	undo := func() {
		for _, u := range undos {
			u()
		}
	}
	for _, s := range socks {
		u, err := punch.IgnoreTimeExceeded(ctx, s.Local().Port())
		if err != nil {
			n.log.Info("node: cannot prime TCP punches", "err", err)
			undo()
			return func() {}, false
		}
		undos = append(undos, u)
	}
	return undo, true
}

// externals lists the peer's external endpoints.
func externals(to *addr.Address) []netip.AddrPort {
	var theirs []netip.AddrPort
	for _, ifc := range to.Interfaces {
		for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if ep != nil && ep.External.IsValid() {
				theirs = append(theirs, netip.AddrPortFrom(ep.External, ep.PublicPort()))
			}
		}
	}
	return theirs
}

// punchTCP runs the initiator's side of TCP punching: open punching
// ports, offer their endpoints, wait for the answer, then punch at the
// agreed instant.
func (n *Node) punchTCP(ctx context.Context, to *addr.Address, note noter) (*session.Session, string, error) {
	if err := n.settle(ctx); err != nil {
		return nil, "", err
	}
	socks, mine, err := n.tcpPunchPorts(ctx, externals(to))
	if err != nil {
		return nil, "", err
	}
	primer := n.primer(to)
	if primer == "initiator" {
		undo, ok := n.guard(ctx, socks)
		defer undo()
		if !ok {
			primer = ""
		}
	}
	ans, err := n.offerPunch(ctx, to, punchOffer{Proto: "tcp", Endpoints: mine, Primer: primer}, note)
	if err != nil {
		closeAll(socks)
		return nil, "", err
	}
	n.log.Info("node: punching TCP", "primer", primer, "mine", mine, "theirs", ans.Endpoints)
	at := n.localTime(ans.At)
	if primer == "responder" {
		// The responder primed before it answered: connecting now costs
		// nothing and does not depend on the two clocks agreeing.
		at = time.Now()
	}
	return n.punchAt(ctx, socks, ans.Endpoints, at, to.Key, primer == "initiator")
}

// punchUDP runs the initiator's side of UDP punching; the initiator opens
// the QUIC session over the first path proven.
func (n *Node) punchUDP(ctx context.Context, to *addr.Address, note noter) (*session.Session, string, error) {
	if err := n.settle(ctx); err != nil {
		return nil, "", err
	}
	socks, mine, err := n.udpPunchPorts(ctx, externals(to))
	if err != nil {
		return nil, "", err
	}
	ans, err := n.offerPunch(ctx, to, punchOffer{Proto: "udp", Endpoints: mine}, note)
	if err != nil {
		closeAll(socks)
		return nil, "", err
	}
	return n.punchUDPAt(ctx, socks, n.localTime(ans.At), to.Key, true, probeEndpoints(ans.Endpoints, ans.ID))
}

// offerPunch offers this node's predicted endpoints for a punch over
// proto and waits for the peer's answer.
func (n *Node) offerPunch(ctx context.Context, to *addr.Address, o punchOffer, note noter) (punchAnswer, error) {
	note.say("offering %s over signaling", endpointList(o.Endpoints))
	ans, err := exchange(ctx, n, &n.punchAnswers, to, kindPunchOffer, "punch", punchAnswerTimeout, func(id string) any {
		o.ID, o.Brokers, o.SentAt = id, n.brokerList(), n.clock.Now().UnixNano()
		return o
	})
	if err == nil && ans.Error != "" {
		err = fmt.Errorf("the peer cannot punch: %s", ans.Error)
	}
	if err == nil {
		note.say("the peer answered with %s; punching in %v", endpointList(ans.Endpoints), max(time.Until(n.localTime(ans.At)), 0).Round(time.Millisecond))
	}
	return ans, err
}

// answerPunch runs the responder's side of a punch offer from a peer.
func (n *Node) answerPunch(m signal.Message) {
	var offer punchOffer
	if err := json.Unmarshal(m.Body, &offer); err != nil || offer.ID == "" {
		n.log.Debug("node: malformed punch offer", "err", err)
		return
	}
	n.spawn(func() {
		ctx, cancel := context.WithTimeout(n.ctx, punchAnswerTimeout+punchWindow)
		defer cancel()
		var (
			s   *session.Session
			err error
		)
		switch offer.Proto {
		case "", "tcp":
			socks, mine, perr := n.tcpPunchPorts(ctx, offer.Endpoints)
			prime := offer.Primer == "responder"
			if prime && perr == nil {
				// Before answering: the initiator connects as soon as
				// the answer arrives.
				undo, ok := n.guard(ctx, socks)
				defer undo()
				if !ok {
					perr = errors.New("asked to prime, but the host firewall cannot be told to ignore ICMP time-exceeded (needs root)")
				}
			}
			n.log.Info("node: answering a TCP punch", "prime", prime, "mine", mine, "theirs", offer.Endpoints, "err", perr)
			at, aerr := n.answerOffer(ctx, m, offer, mine, perr)
			if aerr != nil {
				closeAll(socks)
				return
			}
			s, _, err = n.punchAt(ctx, socks, offer.Endpoints, at, m.From, prime)
		case "udp":
			socks, mine, perr := n.udpPunchPorts(ctx, offer.Endpoints)
			at, aerr := n.answerOffer(ctx, m, offer, mine, perr)
			if aerr != nil {
				closeAll(socks)
				return
			}
			s, _, err = n.punchUDPAt(ctx, socks, at, m.From, false, probeEndpoints(offer.Endpoints, offer.ID))
		case "birthday":
			s, err = n.answerBirthday(ctx, m, offer)
		default:
			n.answerOffer(ctx, m, offer, nil, fmt.Errorf("this version does not know %q punching", offer.Proto))
			return
		}
		if err != nil {
			n.log.Info("node: punching failed", "peer", m.From, "proto", offer.Proto, "err", err)
			return
		}
		n.serve(s, false)
	})
}

// answerOffer picks the meet instant and answers the offer with this
// side's endpoints; it returns the instant in local time. With why set
// (this side cannot punch), the answer says so instead.
func (n *Node) answerOffer(ctx context.Context, m signal.Message, offer punchOffer, mine []netip.AddrPort, why error) (time.Time, error) {
	if why != nil {
		body, _ := json.Marshal(punchAnswer{ID: offer.ID, Error: why.Error()})
		n.sig.Send(ctx, m.From, offer.Brokers, kindPunchAnswer, body)
		return time.Time{}, why
	}
	// Meet once the answer has crossed signaling: as long again as the
	// offer took, plus a margin.
	now := n.clock.Now()
	delay := min(max(now.Sub(time.Unix(0, offer.SentAt)), 0), maxSignalDelay)
	at := now.Add(delay + meetMargin)
	body, _ := json.Marshal(punchAnswer{ID: offer.ID, Endpoints: mine, At: at.UnixNano()})
	if err := n.sig.Send(ctx, m.From, offer.Brokers, kindPunchAnswer, body); err != nil {
		n.log.Info("node: could not answer a punch offer", "err", err)
		return time.Time{}, err
	}
	return n.localTime(at.UnixNano()), nil
}

// localTime converts an NTP-corrected instant to this host's clock.
func (n *Node) localTime(ns int64) time.Time {
	return time.Now().Add(time.Unix(0, ns).Sub(n.clock.Now()))
}

// firstSession keeps the first session delivered by racing attempts and
// closes the rest, or hands them to extra if set: the side that does not
// choose keeps every session, as the side that chooses closes those it
// did not pick.
type firstSession struct {
	mu       sync.Mutex
	winner   *session.Session
	finished bool
	won      func() // called once, when the first arrives
	extra    func(*session.Session)
}

func (f *firstSession) deliver(s *session.Session) {
	f.mu.Lock()
	if f.finished || f.winner != nil {
		f.mu.Unlock()
		if f.extra != nil {
			f.extra(s)
		} else {
			s.Close()
		}
		return
	}
	f.winner = s
	f.mu.Unlock()
	f.won()
}

// finish stops taking sessions and returns the winner, if any.
func (f *firstSession) finish() *session.Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished = true
	return f.winner
}

// familyOf returns the endpoints of the same family as local.
func familyOf(local netip.AddrPort, theirs []netip.AddrPort) []netip.AddrPort {
	var dst []netip.AddrPort
	for _, t := range theirs {
		if netif.FamilyOf(t.Addr()) == netif.FamilyOf(local.Addr()) {
			dst = append(dst, t)
		}
	}
	return dst
}

// punchFailure words why no punched session came from errs.
func punchFailure(errs []error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil && !slices.Contains(msgs, shortErr(err)) {
			msgs = append(msgs, shortErr(err))
		}
	}
	switch {
	case len(msgs) == 0:
		msgs = append(msgs, "no connection opened through the NATs")
	case len(msgs) > 3:
		msgs = append(msgs[:3], fmt.Sprintf("and %d more", len(msgs)-3))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// nominated is the octet the choosing side (the TLS client) sends on the
// one punched connection it secures: when several open (a dialed and an
// accepted one, or several predictions hit), both sides must secure the
// same, and the other side secures only the one marked.
const nominated byte = 'N'

// punchAt punches from every socket to the peer's endpoints of the same
// family and secures one connection (TLS roles by node id). The TLS
// client chooses: it marks the first connection that opens and secures
// it (the next one if that fails), and closes the others; the TLS server
// secures the connection that arrives marked.
func (n *Node) punchAt(ctx context.Context, socks []*punch.Socket, theirs []netip.AddrPort, at time.Time, peer []byte, prime bool) (*session.Session, string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Until(at)+punchWindow)
	defer cancel()
	client := bytes.Compare(n.id.Public, peer) < 0
	first := &firstSession{won: cancel}
	nominate := &oneAtATime{}
	defer nominate.stop()
	secure := func(c net.Conn) {
		hctx, hcancel := context.WithTimeout(ctx, dialTimeout)
		defer hcancel()
		if client {
			// Connections that open while one is being secured wait
			// their turn, in case it fails.
			nominate.try(func() error {
				_, err := c.Write([]byte{nominated})
				var sess *session.Session
				if err == nil {
					sess, err = session.Client(hctx, c, n.id, peer)
				} else {
					c.Close()
				}
				if err == nil {
					first.deliver(sess)
				}
				return err
			}, func() { c.Close() })
			return
		}
		var mark [1]byte
		c.SetReadDeadline(time.Now().Add(dialTimeout))
		if _, err := io.ReadFull(c, mark[:]); err != nil || mark[0] != nominated {
			c.Close() // not chosen: the client closes it
			return
		}
		c.SetReadDeadline(time.Time{})
		if sess, err := session.Server(hctx, c, n.id, peer); err == nil {
			first.deliver(sess)
		}
	}
	errs := make(chan error, len(socks))
	running := 0
	for _, s := range socks {
		dst := familyOf(s.Local(), theirs)
		if len(dst) == 0 {
			s.Close()
			continue
		}
		running++
		n.spawnOr(func() {
			s.Close()
			errs <- errors.New("the node is shutting down")
		}, func() {
			opened := func(c net.Conn) { n.spawnOr(func() { c.Close() }, func() { secure(c) }) }
			if prime {
				errs <- punch.RunPrimed(ctx, s, dst, opened)
			} else {
				errs <- punch.Run(ctx, s, dst, at, opened)
			}
		})
	}
	<-ctx.Done()
	if w := first.finish(); w != nil {
		return w, fmt.Sprintf("punched %v to %v", w.LocalAddr(), w.RemoteAddr()), nil
	}
	var all []error
	for range running {
		all = append(all, <-errs)
	}
	return nil, "", punchFailure(all)
}

// udpProbe punches from one socket until ctx ends, calling found with
// the first path proven (punch.RunUDP, with or without a spray).
type udpProbe func(ctx context.Context, s *punch.UDPSocket, found func(netip.AddrPort)) error

// probeEndpoints is the plain UDP punch: probe the peer's endpoints of
// the socket's family.
func probeEndpoints(theirs []netip.AddrPort, token string) udpProbe {
	return func(ctx context.Context, s *punch.UDPSocket, found func(netip.AddrPort)) error {
		dst := familyOf(s.Local(), theirs)
		if len(dst) == 0 {
			return nil
		}
		// Unlike SYNs, early probes cost nothing: one that meets the
		// peer's closed NAT is dropped, and the next gets through once
		// the peer's own probes open it. So probing starts at once, and
		// clock skew costs nothing.
		return punch.RunUDP(ctx, s, dst, punch.Probing{Token: []byte(token)}, found)
	}
}

// oneAtATime runs attempts one after another: while one runs, the next
// waits its turn, and once one succeeds the rest are dropped (their drop
// func, if any, frees what they hold).
type oneAtATime struct {
	mu    sync.Mutex
	busy  bool
	done  bool
	queue []attempt
}

type attempt struct {
	run  func() error
	drop func()
}

// try runs run now, or queues it behind the running attempt.
func (o *oneAtATime) try(run func() error, drop func()) {
	a := attempt{run, drop}
	o.mu.Lock()
	if o.done {
		o.mu.Unlock()
		a.dropIt()
		return
	}
	if o.busy {
		o.queue = append(o.queue, a)
		o.mu.Unlock()
		return
	}
	o.busy = true
	o.mu.Unlock()
	for {
		err := a.run()
		o.mu.Lock()
		if err == nil {
			o.done = true
		}
		if o.done || len(o.queue) == 0 {
			o.busy = false
			rest := o.queue
			o.queue = nil
			o.mu.Unlock()
			for _, r := range rest {
				r.dropIt()
			}
			return
		}
		a, o.queue = o.queue[0], o.queue[1:]
		o.mu.Unlock()
	}
}

// stop drops what is queued and every later attempt.
func (o *oneAtATime) stop() {
	o.mu.Lock()
	o.done = true
	rest := o.queue
	o.queue = nil
	o.mu.Unlock()
	for _, r := range rest {
		r.dropIt()
	}
}

func (a attempt) dropIt() {
	if a.drop != nil {
		a.drop()
	}
}

// punchUDPAt punches a UDP path from every socket with probe and runs a
// QUIC session over a proven path: the initiator chooses, dialing the
// first path found (the next if that handshake fails), so the responder,
// which waits on every socket, gets one session. Should it get more, it
// serves them all: the initiator closes what it did not choose. Sockets
// no session took are closed.
func (n *Node) punchUDPAt(ctx context.Context, socks []*punch.UDPSocket, at time.Time, peer []byte, initiator bool, probe udpProbe) (*session.Session, string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Until(at)+punchWindow)
	defer cancel()
	first := &firstSession{won: cancel}
	if !initiator {
		first.extra = func(s *session.Session) { n.spawnOr(func() { s.Close() }, func() { n.serve(s, false) }) }
	}
	nominate := &oneAtATime{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []error
	fail := func(err error) {
		mu.Lock()
		all = append(all, err)
		mu.Unlock()
	}
	for _, s := range socks {
		wg.Go(func() {
			var sw sync.WaitGroup
			var taken atomic.Bool // a session owns the socket
			take := func(sess *session.Session, err error) {
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					return
				}
				taken.Store(true)
				first.deliver(sess)
			}
			if !initiator {
				sw.Go(func() { take(session.ServerQUIC(ctx, s.Transport(), n.id, peer)) })
			}
			sw.Go(func() {
				err := probe(ctx, s, func(path netip.AddrPort) {
					if initiator {
						sw.Go(func() {
							nominate.try(func() error {
								sess, err := session.ClientQUIC(ctx, s.Transport(), net.UDPAddrFromAddrPort(path), n.id, peer)
								take(sess, err)
								return err
							}, nil)
						})
					}
				})
				if err != nil {
					fail(err)
				}
			})
			sw.Wait()
			if !taken.Load() {
				s.Close()
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	if w := first.finish(); w != nil {
		return w, fmt.Sprintf("punched %v to %v (QUIC)", w.LocalAddr(), w.RemoteAddr()), nil
	}
	return nil, "", punchFailure(all)
}

// endpointList words endpoints for a progress note; port 0 stands for a
// whole address (birthday probing sprays it).
func endpointList(eps []netip.AddrPort) string {
	var parts []string
	for _, ep := range eps {
		if ep.Port() == 0 {
			parts = append(parts, ep.Addr().String()+" (any port)")
		} else {
			parts = append(parts, ep.String())
		}
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("and %d more", len(parts)-4))
	}
	return strings.Join(parts, ", ")
}

func closeAll[S punchPort](socks []S) {
	for _, s := range socks {
		s.Close()
	}
}
func brokersOf(to *addr.Address) []netip.AddrPort {
	via := make([]netip.AddrPort, 0, len(to.Brokers))
	for _, b := range to.Brokers {
		via = append(via, b.Addr)
	}
	return via
}
