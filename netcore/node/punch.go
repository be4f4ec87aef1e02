package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
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
	Endpoints []netip.AddrPort `json:"endpoints"`
	Brokers   []netip.AddrPort `json:"brokers"` // where the initiator listens, for the answer
	SentAt    int64            `json:"sent_at"` // unix ns on the sender's NTP-corrected clock
}

// punchAnswer is the body of a kindPunchAnswer message.
type punchAnswer struct {
	ID        string           `json:"id"`
	Endpoints []netip.AddrPort `json:"endpoints"`
	At        int64            `json:"at"` // the meet instant, unix ns, NTP-corrected
}

// punchNAT is what matters of a side's NAT for punching.
type punchNAT struct {
	Predictable bool // its endpoints are known in advance
	Lenient     bool // it admits any port of an address it sent to
}

func traitsOf(p addr.NATProfile) punchNAT {
	return punchNAT{
		Predictable: !p.Translated || p.Mapping == stun.EndpointIndependent || p.Ports == stun.DeltaIndependent || p.Ports == stun.DeltaDependent,
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
	switch {
	case to.Key.Equal(n.id.Public):
		return "connecting to itself"
	case n.sig == nil:
		return "this node reached no signaling broker"
	case len(to.Brokers) == 0:
		return "the peer's address lists no signaling broker"
	}
	for _, ep := range n.endpoints {
		for _, ifc := range to.Interfaces {
			theirs := ifc.V4
			if ep.family == netif.IPv6 {
				theirs = ifc.V6
			}
			if theirs == nil || !theirs.External.IsValid() {
				continue
			}
			mine, peer := n.natOf(ep), traitsOf(theirs.NAT)
			if reaches(mine, peer) || reaches(peer, mine) {
				return ""
			}
		}
	}
	return "the peer's router maps ports at random and this node's filters per address and port (or the reverse): cannot predict"
}

// natOf describes an endpoint's NAT for punching; without a profile the
// address is its own endpoint, behind a filter that is assumed strict.
func (n *Node) natOf(ep endpoint) punchNAT {
	if ep.profile == nil {
		return punchNAT{Predictable: true}
	}
	return traitsOf(natProfile(ep.profile))
}

// punchSockets opens a punching port on each of this node's addresses of
// a family the peer has (in theirs), and predicts its external endpoints.
func (n *Node) punchSockets(ctx context.Context, theirs []netip.AddrPort) ([]*punch.Socket, []netip.AddrPort) {
	var socks []*punch.Socket
	var predicted []netip.AddrPort
	for _, ep := range n.endpoints {
		if !slices.ContainsFunc(theirs, func(t netip.AddrPort) bool { return netif.FamilyOf(t.Addr()) == ep.family }) {
			continue
		}
		var server netip.AddrPort
		if ep.profile != nil && ep.profile.NAT {
			if server = n.stunServer(ep.family); !server.IsValid() {
				continue
			}
		}
		s, err := punch.Listen(ctx, netip.AddrPortFrom(ep.local.Addr(), 0), server)
		if err != nil {
			n.log.Info("node: no punching port", "addr", ep.local.Addr(), "err", err)
			continue
		}
		socks = append(socks, s)
		if p := ep.profile; p != nil && p.NAT {
			independent := p.TCPMapping == stun.EndpointIndependent || (p.TCPMapping == stun.Unknown && p.Mapping == stun.EndpointIndependent)
			predicted = append(predicted, punch.Predict(s.External(), independent, p.TCPPorts.Kind, p.TCPPorts.Step)...)
		} else {
			predicted = append(predicted, s.External())
		}
	}
	return socks, predicted
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

// punchTCP runs the initiator's side: open punching ports, offer their
// endpoints, wait for the answer, then punch at the agreed instant.
func (n *Node) punchTCP(ctx context.Context, to *addr.Address) (*session.Session, string, error) {
	var theirs []netip.AddrPort
	for _, ifc := range to.Interfaces {
		for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if ep != nil && ep.External.IsValid() {
				theirs = append(theirs, netip.AddrPortFrom(ep.External, ep.PublicPort()))
			}
		}
	}
	if slices.ContainsFunc(n.endpoints, func(ep endpoint) bool {
		return ep.profile != nil && ep.profile.NAT && ep.profile.Mapping != stun.EndpointIndependent && ep.profile.TCPPorts.Predictable()
	}) {
		select {
		case <-time.After(sequentialSettle):
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	socks, mine := n.punchSockets(ctx, theirs)
	if len(socks) == 0 {
		return nil, "", errors.New("no punching port could be opened")
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	id := hex.EncodeToString(nonce[:])
	ch := make(chan punchAnswer, 1)
	n.mu.Lock()
	n.punches[id] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.punches, id)
		n.mu.Unlock()
	}()
	body, _ := json.Marshal(punchOffer{ID: id, Endpoints: mine, Brokers: n.brokers, SentAt: n.clock.Now().UnixNano()})
	if err := n.sig.Send(ctx, to.Key, brokersOf(to), kindPunchOffer, body); err != nil {
		closeAll(socks)
		return nil, "", err
	}
	var ans punchAnswer
	select {
	case ans = <-ch:
	case <-time.After(punchAnswerTimeout):
		closeAll(socks)
		return nil, "", fmt.Errorf("the peer did not answer the punch offer within %v", punchAnswerTimeout)
	case <-ctx.Done():
		closeAll(socks)
		return nil, "", ctx.Err()
	}
	return n.punchAt(ctx, socks, ans.Endpoints, n.localTime(ans.At), to.Key)
}

// answerPunch runs the responder's side of a punch offer from a peer.
func (n *Node) answerPunch(m signal.Message) {
	var offer punchOffer
	if err := json.Unmarshal(m.Body, &offer); err != nil || offer.ID == "" {
		n.log.Debug("node: malformed punch offer", "err", err)
		return
	}
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, punchAnswerTimeout+punchWindow)
		defer cancel()
		socks, mine := n.punchSockets(ctx, offer.Endpoints)
		if len(socks) == 0 {
			return
		}
		// Meet once the answer has crossed signaling: as long again as the
		// offer took, plus a margin.
		now := n.clock.Now()
		delay := min(max(now.Sub(time.Unix(0, offer.SentAt)), 0), maxSignalDelay)
		at := now.Add(delay + meetMargin)
		body, _ := json.Marshal(punchAnswer{ID: offer.ID, Endpoints: mine, At: at.UnixNano()})
		if err := n.sig.Send(ctx, m.From, offer.Brokers, kindPunchAnswer, body); err != nil {
			closeAll(socks)
			n.log.Info("node: could not answer a punch offer", "err", err)
			return
		}
		s, _, err := n.punchAt(ctx, socks, offer.Endpoints, n.localTime(at.UnixNano()), m.From)
		if err != nil {
			n.log.Info("node: punching failed", "peer", m.From, "err", err)
			return
		}
		n.serve(s, false)
	})
}

// onPunchAnswer hands an answer to the punch waiting for it.
func (n *Node) onPunchAnswer(m signal.Message) {
	var ans punchAnswer
	if err := json.Unmarshal(m.Body, &ans); err != nil {
		n.log.Debug("node: malformed punch answer", "err", err)
		return
	}
	n.mu.Lock()
	ch := n.punches[ans.ID]
	n.mu.Unlock()
	if ch != nil {
		select {
		case ch <- ans:
		default:
		}
	}
}

// localTime converts an NTP-corrected instant to this host's clock.
func (n *Node) localTime(ns int64) time.Time {
	return time.Now().Add(time.Unix(0, ns).Sub(n.clock.Now()))
}

// punchAt punches from every socket to the peer's endpoints of the same
// family, secures every connection that opens (TLS roles by node id), and
// returns the first session. Several may complete when several
// predictions hit; both sides keep the first, and a session the other
// side dropped ends at once.
func (n *Node) punchAt(ctx context.Context, socks []*punch.Socket, theirs []netip.AddrPort, at time.Time, peer []byte) (*session.Session, string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Until(at)+punchWindow)
	defer cancel()
	client := bytes.Compare(n.id.Public, peer) < 0
	var (
		mu       sync.Mutex
		winner   *session.Session
		finished bool
	)
	deliver := func(s *session.Session) {
		mu.Lock()
		if finished || winner != nil {
			mu.Unlock()
			s.Close()
			return
		}
		winner = s
		mu.Unlock()
		cancel()
	}
	errs := make(chan error, len(socks))
	running := 0
	for _, s := range socks {
		family := netif.FamilyOf(s.Local().Addr())
		var dst []netip.AddrPort
		for _, t := range theirs {
			if netif.FamilyOf(t.Addr()) == family {
				dst = append(dst, t)
			}
		}
		if len(dst) == 0 {
			s.Close()
			continue
		}
		running++
		n.wg.Go(func() {
			errs <- punch.Run(ctx, s, dst, at, func(c net.Conn) {
				n.wg.Go(func() {
					hctx, hcancel := context.WithTimeout(ctx, dialTimeout)
					defer hcancel()
					var sess *session.Session
					var err error
					if client {
						sess, err = session.Client(hctx, c, n.id, peer)
					} else {
						sess, err = session.Server(hctx, c, n.id, peer)
					}
					if err == nil {
						deliver(sess)
					}
				})
			})
		})
	}
	<-ctx.Done()
	mu.Lock()
	finished = true
	w := winner
	mu.Unlock()
	if w != nil {
		return w, fmt.Sprintf("punched %v to %v", w.LocalAddr(), w.RemoteAddr()), nil
	}
	var msgs []string
	for range running {
		if err := <-errs; err != nil {
			msgs = append(msgs, shortErr(err))
		}
	}
	if len(msgs) == 0 {
		msgs = append(msgs, "no connection opened through the NATs")
	}
	return nil, "", errors.New(strings.Join(slices.Compact(msgs), "; "))
}

func closeAll(socks []*punch.Socket) {
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
