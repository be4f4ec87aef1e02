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
	// relayPairDelay is the head start of the one-sided path (this
	// node's own socket to the peer's relay) over the relay-to-relay
	// path. Its handshake takes a round trip through one relay, so it is
	// done well within a second where it works at all; it fails where
	// this node cannot send UDP to the relay's port, or reaches it from
	// an address the peer did not permit, and then waiting longer only
	// delays the fallback.
	relayPairDelay = time.Second
)

// relayMsg is the body of kindRelayOffer and kindRelayAnswer: a relayed
// address to send to.
type relayMsg struct {
	ID      string           `json:"id"`
	Relayed netip.AddrPort   `json:"relayed,omitzero"`
	Brokers []netip.AddrPort `json:"brokers,omitempty"` // offer: where the initiator listens, for the answer
	// Direct, in the offer, lists the initiator's external addresses:
	// it will also try its own socket to the peer's relay, which must
	// permit them. In the answer it lists those the relay permitted.
	Direct []netip.Addr `json:"direct,omitempty"`
	Error  string       `json:"error,omitempty"` // answer: why the peer cannot relay
}

// planRelay says whether the relay can start towards to, or why not.
func (n *Node) planRelay(to *addr.Address) string {
	switch {
	case to.Key.Equal(n.id.Public):
		return "connecting to itself"
	case len(n.opt.Config.TURN) == 0:
		return "no TURN server is configured"
	case n.sig == nil:
		return "this node reached no signaling broker"
	case len(to.Brokers) == 0:
		return "the peer's address lists no signaling broker"
	}
	return ""
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

// externalIPs lists this node's external addresses, as its address has
// them: where its packets come from as the internet sees them.
func (n *Node) externalIPs() []netip.Addr {
	var out []netip.Addr
	if mine := n.Address(); mine != nil {
		for _, ifc := range mine.Interfaces {
			for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
				if ep != nil && ep.External.IsValid() && !slices.Contains(out, ep.External) {
					out = append(out, ep.External)
				}
			}
		}
	}
	return out
}

// relayTo runs the initiator's side of the relay: allocate, offer the
// relayed address, and, once the peer answers with its own, race two
// paths to it as ICE pairs a relayed candidate with a peer's reflexive
// one: this node's own UDP socket to the peer's relayed address (one
// relay, and quic-go on a socket of its own), and after relayPairDelay
// this node's relayed address to the peer's (relay to relay, the path
// that works wherever both reach the TURN server at all). wait is the
// head start to give the other strategies first.
//
// The peer's relay forwards the one-sided path's packets because it
// permitted this node's external IP; this node's NAT lets the replies
// in because they come from the very address it sent to.
func (n *Node) relayTo(ctx context.Context, to *addr.Address, wait time.Duration, note noter) (*session.Session, string, error) {
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	a, err := n.allocate(ctx)
	if err != nil {
		return nil, "", err
	}
	note.say("allocated %v on %v; offering it over signaling", a.Relayed(), a.Server())
	ans, err := exchange(ctx, n, &n.relayAnswers, to, kindRelayOffer, "relay", relayAnswerTimeout, func(id string) any {
		return relayMsg{ID: id, Relayed: a.Relayed(), Brokers: n.brokers, Direct: n.externalIPs()}
	})
	if err != nil {
		a.Close()
		return nil, "", err
	}
	if ans.Error != "" {
		a.Close()
		return nil, "", fmt.Errorf("the peer cannot relay: %s", ans.Error)
	}
	if !ans.Relayed.IsValid() {
		a.Close()
		return nil, "", errors.New("the peer answered the relay offer without a relayed address")
	}
	if err := a.Permit(ctx, ans.Relayed); err != nil {
		a.Close()
		return nil, "", err
	}
	return n.relayPaths(ctx, a, ans, to.Key, note)
}

// relayPath is one path of relayPaths: its session, or why it failed.
type relayPath struct {
	oneSided bool
	s        *session.Session
	err      error
}

// relayPaths races the one-sided path (if the peer's relay permitted
// this node) and the relay-to-relay path to the peer's relayed address,
// and keeps the first session secured; a is freed unless its path wins.
func (n *Node) relayPaths(ctx context.Context, a *relay.Allocation, ans relayMsg, want ed25519.PublicKey, note noter) (*session.Session, string, error) {
	peer := net.UDPAddrFromAddrPort(ans.Relayed)
	var direct *net.UDPConn
	if slices.ContainsFunc(ans.Direct, func(ip netip.Addr) bool { return ip.Is4() == ans.Relayed.Addr().Is4() }) {
		network := "udp4"
		if !ans.Relayed.Addr().Is4() {
			network = "udp6"
		}
		var err error
		if direct, err = net.ListenUDP(network, nil); err != nil {
			n.log.Debug("node: no socket for the one-sided relay path", "err", err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan relayPath, 2)
	// directFailed starts the relay-to-relay path early.
	directFailed := make(chan struct{})
	if direct != nil {
		note.say("the peer relays from %v; securing the session from this node's own socket to it, relay to relay after %v", ans.Relayed, relayPairDelay)
		go func() {
			hctx, hcancel := context.WithTimeout(rctx, dialTimeout)
			defer hcancel()
			tr := &quic.Transport{Conn: direct}
			s, err := session.ClientQUIC(hctx, tr, peer, n.id, want)
			if err != nil {
				tr.Close()
				direct.Close()
				close(directFailed)
			}
			results <- relayPath{true, s, err}
		}()
	} else {
		note.say("the peer relays from %v; securing the session relay to relay", ans.Relayed)
		close(directFailed)
	}
	go func() {
		t := time.NewTimer(relayPairDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-directFailed:
		case <-rctx.Done():
			a.Close()
			results <- relayPath{err: rctx.Err()}
			return
		}
		hctx, hcancel := context.WithTimeout(rctx, dialTimeout)
		defer hcancel()
		s, err := session.ClientQUIC(hctx, &quic.Transport{Conn: a.PacketConn()}, peer, n.id, want)
		if err != nil {
			a.Close()
		}
		results <- relayPath{false, s, err}
	}()
	paths := 1
	if direct != nil {
		paths = 2
	}
	var won *relayPath
	var errs []string
	for range paths {
		r := <-results
		switch {
		case r.err == nil && won == nil:
			won = &r
			cancel() // the other path stops; if it made a session, it is closed below
		case r.err == nil:
			r.s.Close()
		case won == nil && !errors.Is(r.err, context.Canceled):
			what := "relay to relay"
			if r.oneSided {
				what = "from this node's socket"
			}
			errs = append(errs, fmt.Sprintf("%s: %v", what, r.err))
		}
	}
	if won == nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, "", errors.New(strings.Join(errs, "; "))
	}
	if won.oneSided {
		return won.s, fmt.Sprintf("relayed by %v: this node's own socket to %v (QUIC, one relay)", a.Server(), ans.Relayed), nil
	}
	return won.s, fmt.Sprintf("relayed by %v: %v to %v (QUIC, relay to relay)", a.Server(), a.Relayed(), ans.Relayed), nil
}

// answerRelay runs the responder's side of a relay offer: allocate,
// permit the initiator's relayed address and its external addresses,
// answer with this side's relayed address, and serve the QUIC sessions
// the initiator opens to it (from its relay, from its own socket, or
// both: it keeps one and closes the other) until the offer's time is up.
func (n *Node) answerRelay(m signal.Message) {
	var offer relayMsg
	if err := json.Unmarshal(m.Body, &offer); err != nil || offer.ID == "" || !offer.Relayed.IsValid() {
		n.log.Debug("node: malformed relay offer", "err", err)
		return
	}
	n.spawn(func() {
		ctx, cancel := context.WithTimeout(n.ctx, relayAnswerTimeout+relayPairDelay+dialTimeout)
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
		a, err := n.allocate(ctx)
		var direct []netip.Addr
		if err == nil {
			direct, err = n.permitOffer(ctx, a, offer)
			if err != nil {
				a.Close()
			}
		}
		if err != nil {
			answer(relayMsg{Error: err.Error()})
			n.log.Info("node: could not relay", "peer", m.From, "err", err)
			return
		}
		l, err := session.ListenQUIC(&quic.Transport{Conn: a.PacketConn()}, n.id, m.From)
		if err != nil {
			a.Close()
			answer(relayMsg{Error: err.Error()})
			return
		}
		defer l.Close()
		if err := answer(relayMsg{Relayed: a.Relayed(), Direct: direct}); err != nil {
			n.log.Info("node: could not answer a relay offer", "peer", m.From, "err", err)
			return
		}
		served := false
		for {
			s, err := l.Accept(ctx)
			if err != nil {
				if !served {
					n.log.Info("node: relayed session failed", "peer", m.From, "err", err)
				}
				return
			}
			served = true
			n.spawnOr(func() { s.Close() }, func() { n.serve(s, false) })
		}
	})
}

// permitOffer permits the initiator's relayed address on a, and its
// external addresses of the relay's family for the one-sided path; it
// returns those permitted. Only the first is required: a server may
// refuse to relay for some addresses.
func (n *Node) permitOffer(ctx context.Context, a *relay.Allocation, offer relayMsg) ([]netip.Addr, error) {
	var direct []netip.AddrPort
	for _, ip := range offer.Direct {
		if ip.Unmap().Is4() == a.Relayed().Addr().Is4() {
			direct = append(direct, netip.AddrPortFrom(ip.Unmap(), 0))
		}
	}
	directErr := make(chan error, 1)
	if len(direct) > 0 {
		go func() { directErr <- a.Permit(ctx, direct...) }()
	} else {
		directErr <- errors.New("the initiator offered no address of the relay's family")
	}
	if err := a.Permit(ctx, offer.Relayed); err != nil {
		<-directErr
		return nil, err
	}
	if err := <-directErr; err != nil {
		n.log.Debug("node: no one-sided relay path", "err", err)
		return nil, nil
	}
	ips := make([]netip.Addr, len(direct))
	for i, d := range direct {
		ips[i] = d.Addr()
	}
	return ips, nil
}
