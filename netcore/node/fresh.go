package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/signal"
)

// addrAnswerTimeout bounds waiting for a peer's current address: two
// signaling hops.
const addrAnswerTimeout = 5 * time.Second

// addrMsg is the body of kindAddrRequest (ID, Brokers, Address) and
// kindAddrAnswer (ID, Address).
type addrMsg struct {
	ID      string           `json:"id"`
	Brokers []netip.AddrPort `json:"brokers,omitempty"` // request: where the asker listens
	// Address is the sender's own: in an answer what was asked for; in a
	// request the asker's, so a friend who saved an older one (without
	// brokers to signal it, say) learns the current one from being asked.
	Address string `json:"address,omitempty"`
}

// FreshAddress asks the node whose (possibly old) address is old for its
// current one, over signaling through the brokers old lists: a friend's
// address changes when their network does, their key does not. The
// answer is sealed by the peer's key, and an address with another key is
// refused. The request tells the peer this node's own address
// (OnPeerAddress, at the peer).
func (n *Node) FreshAddress(ctx context.Context, old *addr.Address) (*addr.Address, error) {
	if why := n.signalable(old); why != "" {
		return nil, errors.New(why)
	}
	own, err := n.Address().Encode()
	if err != nil {
		return nil, err
	}
	ans, err := exchange(ctx, n, &n.addrAnswers, old, kindAddrRequest, "address", addrAnswerTimeout, func(id string) any {
		return addrMsg{ID: id, Brokers: n.brokerList(), Address: own}
	})
	if err != nil {
		return nil, err
	}
	fresh, err := addr.Parse(ans.Address)
	if err != nil {
		return nil, fmt.Errorf("the peer's new address: %w", err)
	}
	if !fresh.Key.Equal(old.Key) {
		return nil, errors.New("the peer answered with an address of another key")
	}
	return fresh, nil
}

// answerAddr answers an address request with this node's address, and
// tells the OnPeerAddress watchers the asker's.
func (n *Node) answerAddr(m signal.Message) {
	var req addrMsg
	if err := json.Unmarshal(m.Body, &req); err != nil || req.ID == "" {
		n.log.Debug("node: malformed address request", "err", err)
		return
	}
	var told *addr.Address
	if req.Address != "" {
		// The seal proves the sender's key; the address must be its own.
		if a, err := addr.Parse(req.Address); err == nil && a.Key.Equal(m.From) {
			told = a
		} else {
			n.log.Debug("node: an address request told a bad address", "err", err)
		}
	}
	text, err := n.Address().Encode()
	if err != nil {
		return
	}
	n.spawn(func() {
		ctx, cancel := context.WithTimeout(n.ctx, addrAnswerTimeout)
		defer cancel()
		body, _ := json.Marshal(addrMsg{ID: req.ID, Address: text})
		if err := n.sig.Send(ctx, m.From, req.Brokers, kindAddrAnswer, body); err != nil {
			n.log.Info("node: could not answer an address request", "err", err)
		}
		if told != nil {
			n.heardAddress(m.From, told)
		}
	})
}
