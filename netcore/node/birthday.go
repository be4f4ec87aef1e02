package node

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/netif"
	"p2pd/netcore/punch"
	"p2pd/netcore/session"
	"p2pd/netcore/signal"
)

// hardProbeEvery spaces the probes from each of the hard side's many
// ports: they open and keep the mappings; the proof comes from the
// triggered check when a spray probe lands, not from these.
const hardProbeEvery = 250 * time.Millisecond

// planBirthday says whether birthday probing can work towards to (one
// side's NAT is predictable, the other's is not, and plain punching
// cannot meet), or why not.
func (n *Node) planBirthday(to *addr.Address) string {
	if why := n.signalable(to); why != "" {
		return why
	}
	if n.planPunch(to) == "" {
		return "not needed: these NATs can be punched directly"
	}
	if _, ok := n.birthdayPair(to); ok {
		return ""
	}
	return "the routers map each destination to a new port (at random, or in sequence behind a strict filter): even birthday probing cannot meet"
}

// birthdayPair finds a family where one side maps predictably and the
// other does not. The easy side's sprayed probes leave from one endpoint
// only if its router maps endpoint-independently; a router that maps in
// sequence gives each probe a new port, which the hard side admits only
// if it filters by address alone.
func (n *Node) birthdayPair(to *addr.Address) (natPair, bool) {
	for _, p := range n.natPairs(to) {
		easy, hard := p.mine, p.peer
		if !easy.Predictable {
			easy, hard = hard, easy
		}
		if easy.Predictable && !hard.Predictable && (easy.Independent || hard.Lenient) {
			return p, true
		}
	}
	return natPair{}, false
}

// birthdaySockets opens this side's sockets for birthday probing on ep:
// BirthdayPorts of them and the external address (port 0: "spray here")
// when this side is the hard one, else one punching port and its
// endpoint.
func (n *Node) birthdaySockets(ctx context.Context, ep endpoint, hard bool) ([]*punch.UDPSocket, []netip.AddrPort) {
	if !hard {
		return n.udpPunchPorts(ctx, []netip.AddrPort{netip.AddrPortFrom(ep.local.Addr(), 1)})
	}
	var ext netip.Addr
	for _, ifc := range n.Address().Interfaces {
		for _, e := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if e != nil && e.Internal == ep.local.Addr() {
				ext = e.External
			}
		}
	}
	if !ext.IsValid() {
		return nil, nil
	}
	var socks []*punch.UDPSocket
	for range punch.BirthdayPorts {
		s, err := punch.ListenUDP(ctx, netip.AddrPortFrom(ep.local.Addr(), 0), netip.AddrPort{})
		if err != nil {
			n.log.Info("node: birthday probing opened fewer ports", "opened", len(socks), "err", err)
			break
		}
		socks = append(socks, s)
	}
	if len(socks) == 0 {
		return nil, nil
	}
	return socks, []netip.AddrPort{netip.AddrPortFrom(ext, 0)}
}

// birthdayProbe probes from one socket: the hard side's ports probe the
// easy side's endpoint slowly; the easy side sprays the hard side's
// address (the endpoints with port 0) and answers.
func birthdayProbe(theirs []netip.AddrPort, token string) udpProbe {
	return func(ctx context.Context, s *punch.UDPSocket, found func(netip.AddrPort)) error {
		var spray []netip.Addr
		var dst []netip.AddrPort
		for _, t := range familyOf(s.Local(), theirs) {
			if t.Port() == 0 {
				spray = append(spray, t.Addr())
			} else {
				dst = append(dst, t)
			}
		}
		p := punch.Probing{Token: []byte(token)}
		if len(spray) == 0 {
			p.Every = hardProbeEvery
			return punch.RunUDP(ctx, s, dst, p, found)
		}
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		for _, ip := range spray {
			go punch.Spray(sctx, s, ip, p)
		}
		return punch.RunUDP(ctx, s, dst, p, func(path netip.AddrPort) {
			stop()
			found(path)
		})
	}
}

// punchBirthday runs the initiator's side of birthday probing.
func (n *Node) punchBirthday(ctx context.Context, to *addr.Address, note noter) (*session.Session, string, error) {
	pair, ok := n.birthdayPair(to)
	if !ok {
		return nil, "", errors.New("no address family where one side's NAT is predictable")
	}
	socks, mine := n.birthdaySockets(ctx, pair.ep, !pair.mine.Predictable)
	if len(socks) == 0 {
		return nil, "", errors.New("no probing port could be opened")
	}
	if len(socks) > 1 {
		note.say("this router maps each destination to a random port: opened %d ports for the peer to find", len(socks))
	}
	ans, err := n.offerPunch(ctx, to, "birthday", mine, note)
	if err != nil {
		closeAll(socks)
		return nil, "", err
	}
	s, detail, err := n.punchUDPAt(ctx, socks, n.localTime(ans.At), to.Key, true, birthdayProbe(ans.Endpoints, ans.ID))
	if err == nil {
		detail = "birthday probing: " + detail
	}
	return s, detail, err
}

// answerBirthday is the responder's side: the offer's endpoints say which
// side is hard (port 0: the initiator's address, to spray).
func (n *Node) answerBirthday(ctx context.Context, m signal.Message, offer punchOffer) (*session.Session, error) {
	var socks []*punch.UDPSocket
	var mine []netip.AddrPort
	for _, t := range offer.Endpoints {
		for _, ep := range n.endpoints {
			if len(socks) == 0 && ep.family == netif.FamilyOf(t.Addr()) {
				// The initiator is hard if it sent an address to spray.
				socks, mine = n.birthdaySockets(ctx, ep, t.Port() != 0)
			}
		}
	}
	at, err := n.answerOffer(ctx, m, offer, mine)
	if err != nil {
		closeAll(socks)
		return nil, err
	}
	s, _, err := n.punchUDPAt(ctx, socks, at, m.From, false, birthdayProbe(offer.Endpoints, offer.ID))
	return s, err
}
