package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
)

// relayMsg is the body of kindRelayOffer and kindRelayAnswer: a relayed
// address to send to.
type relayMsg struct {
	ID      string           `json:"id"`
	Relayed netip.AddrPort   `json:"relayed,omitzero"`
	Brokers []netip.AddrPort `json:"brokers,omitempty"` // offer: where the initiator listens, for the answer
	Error   string           `json:"error,omitempty"`   // answer: why the peer cannot relay
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

// relayTo runs the initiator's side of the relay: allocate, offer the
// relayed address, and open a QUIC session from relay to relay once the
// peer answers with its own. wait is the head start to give the others
// first.
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
		return relayMsg{ID: id, Relayed: a.Relayed(), Brokers: n.brokers}
	})
	if err != nil {
		a.Close()
		return nil, "", err
	}
	if ans.Error != "" {
		a.Close()
		return nil, "", fmt.Errorf("the peer cannot relay: %s", ans.Error)
	}
	if err := a.Permit(ctx, ans.Relayed); err != nil {
		a.Close()
		return nil, "", err
	}
	note.say("the peer relays from %v; securing the session", ans.Relayed)
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	s, err := session.ClientQUIC(hctx, &quic.Transport{Conn: a.PacketConn()}, net.UDPAddrFromAddrPort(ans.Relayed), n.id, to.Key)
	if err != nil {
		a.Close()
		return nil, "", err
	}
	return s, fmt.Sprintf("relayed by %v: %v to %v (QUIC)", a.Server(), a.Relayed(), ans.Relayed), nil
}

// answerRelay runs the responder's side of a relay offer: allocate,
// permit the initiator's relayed address, wait for its QUIC session, and
// answer with this side's relayed address.
func (n *Node) answerRelay(m signal.Message) {
	var offer relayMsg
	if err := json.Unmarshal(m.Body, &offer); err != nil || offer.ID == "" || !offer.Relayed.IsValid() {
		n.log.Debug("node: malformed relay offer", "err", err)
		return
	}
	n.spawn(func() {
		ctx, cancel := context.WithTimeout(n.ctx, relayAnswerTimeout+dialTimeout)
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
		if err == nil {
			err = a.Permit(ctx, offer.Relayed)
			if err != nil {
				a.Close()
			}
		}
		if err != nil {
			answer(relayMsg{Error: err.Error()})
			n.log.Info("node: could not relay", "peer", m.From, "err", err)
			return
		}
		tr := &quic.Transport{Conn: a.PacketConn()}
		type result struct {
			s   *session.Session
			err error
		}
		done := make(chan result, 1)
		go func() {
			s, err := session.ServerQUIC(ctx, tr, n.id, m.From)
			done <- result{s, err}
		}()
		if err := answer(relayMsg{Relayed: a.Relayed()}); err != nil {
			cancel()
		}
		r := <-done
		if r.err != nil {
			a.Close()
			n.log.Info("node: relayed session failed", "peer", m.From, "err", r.err)
			return
		}
		n.serve(r.s, false)
	})
}
