package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
	"p2pd/netcore/pipe"
	"p2pd/netcore/session"
	"p2pd/netcore/signal"
)

// Built-in protocols.
const (
	// EchoProto echoes every byte back.
	EchoProto = "echo/1"
	// MsgProto carries length-prefixed messages as a netcore/pipe; a
	// message "ECHO <data>" is answered with <data>.
	MsgProto = "msg/1"
	// AddrProto exchanges the two nodes' current addresses: the opener
	// sends its own (a 2-byte big-endian length, then the text), the
	// other answers with its own (the text, to the end of the stream).
	AddrProto = "addr/1"
)

// maxAddrText bounds an address read over addr/1: far above what the
// address format's limits allow.
const maxAddrText = 4 << 10

// serveAddr hears the opener's address, tells the OnPeerAddress watchers,
// and answers with this node's own.
func (n *Node) serveAddr(_ context.Context, s *session.Session, st net.Conn) {
	st.SetReadDeadline(time.Now().Add(addrPatience))
	var size [2]byte
	if _, err := io.ReadFull(st, size[:]); err != nil {
		return
	}
	text := make([]byte, binary.BigEndian.Uint16(size[:]))
	if len(text) > maxAddrText {
		return
	}
	if _, err := io.ReadFull(st, text); err != nil {
		return
	}
	if a, err := peerAddress(s, text); err == nil {
		n.heardAddress(s.Peer(), a)
	} else {
		n.log.Debug("node: a peer told a bad address", "peer", identity.IDOf(s.Peer()), "err", err)
	}
	if own, err := n.Address().Encode(); err == nil {
		io.WriteString(st, own)
	}
}

// addrPatience bounds the opener's part of addr/1 (one short write).
const addrPatience = 10 * time.Second

// PeerAddress tells the peer of s this node's current address and asks
// for the peer's, over the session (addr/1): no signaling needed, so
// friends' saved addresses stay fresh whenever they are connected. An
// address of another key than the session's peer is refused.
func (n *Node) PeerAddress(ctx context.Context, s *session.Session) (*addr.Address, error) {
	own, err := n.Address().Encode()
	if err != nil {
		return nil, err
	}
	st, err := s.Open(ctx, AddrProto)
	if err != nil {
		return nil, fmt.Errorf("asking the peer for its address: %w", err)
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(own)))
	if _, err := st.Write(append(msg, own...)); err != nil {
		return nil, fmt.Errorf("telling the peer this node's address: %w", err)
	}
	text, err := io.ReadAll(io.LimitReader(st, maxAddrText+1))
	if err != nil {
		return nil, fmt.Errorf("reading the peer's address: %w", err)
	}
	if len(text) > maxAddrText {
		return nil, fmt.Errorf("the peer's address is over %d bytes", maxAddrText)
	}
	return peerAddress(s, text)
}

// peerAddress parses text, an address the peer of s told for itself.
func peerAddress(s *session.Session, text []byte) (*addr.Address, error) {
	a, err := addr.Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("the peer's address: %w", err)
	}
	if !a.Key.Equal(s.Peer()) {
		return nil, errors.New("the peer told an address of another key")
	}
	return a, nil
}

// heardAddress tells the OnPeerAddress watchers the address peer told.
func (n *Node) heardAddress(peer ed25519.PublicKey, a *addr.Address) {
	n.mu.Lock()
	ws := slices.Clone(n.peerAddrWatchers)
	n.mu.Unlock()
	for _, w := range ws {
		w.f(peer, a)
	}
}

// OnPeerAddress calls f with each address a peer tells for itself, until
// stop is called: over addr/1 (its key proven by the session), and in an
// address request over signaling (FreshAddress; proven by the seal).
func (n *Node) OnPeerAddress(f func(peer ed25519.PublicKey, a *addr.Address)) (stop func()) {
	return watch(n, &n.peerAddrWatchers, &peerAddrWatcher{f: f}, nil)
}

// peerAddrWatcher is one OnPeerAddress registration.
type peerAddrWatcher struct {
	f func(ed25519.PublicKey, *addr.Address)
}

// MsgHandler sees the messages of msg/1 pipes other than ECHO requests,
// with the peer that sent them and the pipe to answer on.
type MsgHandler func(msg []byte, peer ed25519.PublicKey, p *pipe.Pipe)

// OnMessage registers h for messages on incoming msg/1 pipes.
func (n *Node) OnMessage(h MsgHandler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onMsg = append(n.onMsg, h)
}

func serveEcho(_ context.Context, _ *session.Session, st net.Conn) {
	io.Copy(st, st)
}

var echoPrefix = []byte("ECHO ")

// serveMsg runs an incoming msg/1 stream as a pipe until the peer ends it.
func (n *Node) serveMsg(ctx context.Context, s *session.Session, st net.Conn) {
	peer := s.Peer()
	p, err := pipe.Wrap(st, pipe.WithFraming(pipe.Frames), pipe.WithoutDefaultSub(),
		pipe.WithMsgHandler(func(msg []byte, _ netip.AddrPort, p *pipe.Pipe) {
			if data, ok := bytes.CutPrefix(msg, echoPrefix); ok {
				p.Send(p.Context(), data, netip.AddrPort{})
				return
			}
			n.mu.Lock()
			hs := n.onMsg
			n.mu.Unlock()
			for _, h := range hs {
				h(msg, peer, p)
			}
		}))
	if err != nil {
		return
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
	}
	p.Close()
}

// OpenPipe opens a msg/1 stream on a session as a pipe (frames; every
// message is queued for Recv with SubAll).
func OpenPipe(ctx context.Context, s *session.Session) (*pipe.Pipe, error) {
	st, err := s.Open(ctx, MsgProto)
	if err != nil {
		return nil, err
	}
	return pipe.Wrap(st, pipe.WithFraming(pipe.Frames))
}

// Signaling message kinds.
const (
	// kindReverse asks the recipient to connect to the sender's address.
	kindReverse byte = 1
	// kindPunchOffer asks the recipient to punch towards the sender's
	// predicted endpoints; kindPunchAnswer agrees, with its own endpoints
	// and the instant to start.
	kindPunchOffer  byte = 2
	kindPunchAnswer byte = 3
	// kindRelayOffer offers the sender's relayed address (TURN);
	// kindRelayAnswer answers with the recipient's, or why it cannot.
	kindRelayOffer  byte = 4
	kindRelayAnswer byte = 5
	// kindAddrRequest asks the recipient for its current address (it
	// changes with its network); kindAddrAnswer carries it.
	kindAddrRequest byte = 6
	kindAddrAnswer  byte = 7
)

// reverseRequest is the body of a kindReverse message.
type reverseRequest struct {
	Address string `json:"address"` // the requester's address, to dial
}

// onSignal handles a signaling message that opened and passed the policy.
func (n *Node) onSignal(m signal.Message) {
	switch m.Kind {
	case kindReverse:
		var req reverseRequest
		if err := json.Unmarshal(m.Body, &req); err != nil {
			n.log.Debug("node: malformed reverse request", "err", err)
			return
		}
		a, err := addr.Parse(req.Address)
		if err != nil || !a.Key.Equal(m.From) {
			n.log.Debug("node: reverse request with a bad address", "err", err)
			return
		}
		n.spawn(func() {
			ctx, cancel := context.WithTimeout(n.ctx, reverseDialTimeout)
			defer cancel()
			s, _, err := n.dialDirect(ctx, a, nil)
			if err != nil {
				n.log.Info("node: could not answer a reverse connect", "peer", a.Key, "err", err)
				return
			}
			n.serve(s, false)
		})
	case kindPunchOffer:
		n.answerPunch(m)
	case kindPunchAnswer:
		n.punchAnswers.deliver(n, m, func(a punchAnswer) string { return a.ID })
	case kindRelayOffer:
		n.answerRelay(m)
	case kindRelayAnswer:
		n.relayAnswers.deliver(n, m, func(a relayMsg) string { return a.ID })
	case kindAddrRequest:
		n.answerAddr(m)
	case kindAddrAnswer:
		n.addrAnswers.deliver(n, m, func(a addrMsg) string { return a.ID })
	default:
		n.log.Debug("node: unknown signaling message", "kind", m.Kind)
	}
}
