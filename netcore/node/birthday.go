package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
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
		if birthdayMeets(p.mine, p.peer) {
			return p, true
		}
	}
	return natPair{}, false
}

// birthdayMeets is birthdayPair's test for two NATs (either order).
func birthdayMeets(a, b punchNAT) bool {
	easy, hard := a, b
	if !easy.Predictable {
		easy, hard = hard, easy
	}
	return easy.Predictable && !hard.Predictable && (easy.Independent || hard.Lenient)
}

// birthdaySockets opens this side's sockets for birthday probing on ep:
// BirthdayPorts of them and the external address (port 0: "spray here")
// when this side is the hard one, else one punching port and its
// endpoint.
func (n *Node) birthdaySockets(ctx context.Context, ep endpoint, hard bool) ([]*punch.UDPSocket, []netip.AddrPort, error) {
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
		return nil, nil, fmt.Errorf("the external address of %v is unknown", ep.local.Addr())
	}
	var socks []*punch.UDPSocket
	for range punch.BirthdayPorts {
		s, err := punch.ListenUDP(ctx, netip.AddrPortFrom(ep.local.Addr(), 0), netip.AddrPort{})
		if err != nil {
			if len(socks) == 0 {
				return nil, nil, fmt.Errorf("no probing port could be opened: %w", err)
			}
			n.log.Info("node: birthday probing opened fewer ports", "opened", len(socks), "err", err)
			break
		}
		socks = append(socks, s)
	}
	return socks, []netip.AddrPort{netip.AddrPortFrom(ext, 0)}, nil
}

// birthdayProbe probes from one socket: the hard side's ports probe the
// easy side's endpoint slowly from the start; the easy side sprays the
// hard side's address (the endpoints with port 0) from the instant at,
// when the hard side's ports have opened their mappings, and answers.
func birthdayProbe(theirs []netip.AddrPort, token string, at time.Time) udpProbe {
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
			if err := punch.RunUDP(ctx, s, dst, p, found); err != nil {
				// One message for all the ports, whatever each counted.
				return errors.New("none of the peer's sprayed probes reached this side's ports")
			}
			return nil
		}
		sctx, stop := context.WithCancel(ctx)
		var sent atomic.Int64
		var wg sync.WaitGroup
		for _, ip := range spray {
			wg.Go(func() { sent.Add(int64(punch.Spray(sctx, s, ip, punch.Probing{Token: p.Token, Start: at}))) })
		}
		err := punch.RunUDP(ctx, s, dst, p, func(path netip.AddrPort) {
			stop()
			found(path)
		})
		stop()
		wg.Wait()
		if err != nil {
			return fmt.Errorf("sprayed %d probes at random ports of %v: none reached an open port", sent.Load(), spray)
		}
		return nil
	}
}

// punchBirthday runs the initiator's side of birthday probing.
func (n *Node) punchBirthday(ctx context.Context, to *addr.Address, note noter) (*session.Session, string, error) {
	pair, ok := n.birthdayPair(to)
	if !ok {
		return nil, "", errors.New("no address family where one side's NAT is predictable")
	}
	socks, mine, err := n.birthdaySockets(ctx, pair.ep, !pair.mine.Predictable)
	if err != nil {
		return nil, "", err
	}
	if len(socks) > 1 {
		note.say("this router maps each destination to a random port: opened %d ports for the peer to find", len(socks))
	}
	ans, err := n.offerPunch(ctx, to, punchOffer{Proto: "birthday", Endpoints: mine}, note)
	if err != nil {
		closeAll(socks)
		return nil, "", err
	}
	at := n.localTime(ans.At)
	s, detail, err := n.punchUDPAt(ctx, socks, at, to.Key, true, birthdayProbe(ans.Endpoints, ans.ID, at))
	if err == nil {
		detail = "birthday probing: " + detail
	}
	return s, detail, err
}

// answerBirthday is the responder's side: the offer's endpoints say which
// side is hard (port 0: the initiator's address, to spray). It answers
// only where its own NAT fits the other role, and one offer at a time:
// the hard side's many ports are not for anyone who asks.
func (n *Node) answerBirthday(ctx context.Context, m signal.Message, offer punchOffer) (*session.Session, error) {
	var (
		socks []*punch.UDPSocket
		mine  []netip.AddrPort
		why   = errors.New("this node has no address of the offer's family")
	)
	if !n.birthdayBusy.CompareAndSwap(false, true) {
		why = errors.New("busy with another birthday probe")
	} else {
		defer n.birthdayBusy.Store(false)
		for _, t := range offer.Endpoints {
			for _, ep := range n.endpoints {
				if socks != nil || ep.family != netif.FamilyOf(t.Addr()) {
					continue
				}
				// The initiator is hard if it sent an address to spray.
				hard := t.Port() != 0
				if n.natOf(ep).Predictable == hard {
					why = errors.New("this node's NAT does not fit the role the offer asks of it")
					continue
				}
				socks, mine, why = n.birthdaySockets(ctx, ep, hard)
			}
		}
	}
	at, err := n.answerOffer(ctx, m, offer, mine, why)
	if err != nil {
		closeAll(socks)
		return nil, err
	}
	s, _, err := n.punchUDPAt(ctx, socks, at, m.From, false, birthdayProbe(offer.Endpoints, offer.ID, at))
	return s, err
}
