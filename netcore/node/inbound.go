package node

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"p2pd/netcore/identity"
	"p2pd/netcore/session"
)

// Bounds on what peers that connect to a node's port unasked may take of
// it: anyone who has its address can, and a key costs nothing to make.
// A source is one IPv4 address or one IPv6 /64 (what one home gets).
// Sessions peers make by answering this node, or its signaling, are not
// counted: signaling has its own policy.
const (
	// maxHandshakes bounds the incoming handshakes under way, and
	// maxSourceHandshakes those from one source; a connection beyond
	// either is closed at once.
	maxHandshakes       = 64
	maxSourceHandshakes = 16
	// inboundHandshakeTimeout is how long a connection may take to
	// complete its handshake: a few round trips, with retransmissions.
	inboundHandshakeTimeout = 5 * time.Second
	// maxPeerSessions bounds the sessions one peer keeps open to this
	// node. A new one beyond it ends the peer's oldest: a peer whose
	// network changed leaves dead sessions behind until the keepalive
	// notices, and must still get in.
	maxPeerSessions = 8
	// maxSourceSessions bounds the sessions from one source, and
	// maxInbound all of them; a new one beyond either is refused.
	maxSourceSessions = 32
	maxInbound        = 256
)

// inbound keeps count of incoming handshakes and sessions against the
// bounds.
type inbound struct {
	mu             sync.Mutex
	handshakes     map[netip.Prefix]int
	handshakeTotal int
	byPeer         map[identity.ID][]*session.Session // oldest first
	bySource       map[netip.Prefix]int
	total          int
}

func newInbound() *inbound {
	return &inbound{handshakes: map[netip.Prefix]int{}, byPeer: map[identity.ID][]*session.Session{}, bySource: map[netip.Prefix]int{}}
}

// sourceOf is the source a connection comes from.
func sourceOf(a net.Addr) netip.Prefix {
	var ip netip.Addr
	if t, ok := a.(*net.TCPAddr); ok {
		ip = t.AddrPort().Addr().Unmap()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// startHandshake takes a slot for an incoming handshake from src, if one
// is free.
func (b *inbound) startHandshake(src netip.Prefix) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handshakeTotal >= maxHandshakes || b.handshakes[src] >= maxSourceHandshakes {
		return false
	}
	b.handshakeTotal++
	b.handshakes[src]++
	return true
}

// endHandshake gives the slot back.
func (b *inbound) endHandshake(src netip.Prefix) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handshakeTotal--
	if b.handshakes[src]--; b.handshakes[src] == 0 {
		delete(b.handshakes, src)
	}
}

// admit counts a new session, or says why not. A peer at its bound gets
// in by giving up its oldest session, which the caller closes.
func (b *inbound) admit(s *session.Session) (evict *session.Session, refused string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id, src := s.PeerID(), sourceOf(s.RemoteAddr())
	total, fromSource := b.total, b.bySource[src]
	if mine := b.byPeer[id]; len(mine) >= maxPeerSessions {
		evict = mine[0] // its place is the new one's
		total--
		if sourceOf(evict.RemoteAddr()) == src {
			fromSource--
		}
	}
	switch {
	case total >= maxInbound:
		return nil, "too many peers connected"
	case fromSource >= maxSourceSessions:
		return nil, "too many sessions from one address"
	}
	if evict != nil {
		b.drop(evict)
	}
	b.byPeer[id] = append(b.byPeer[id], s)
	b.bySource[src]++
	b.total++
	return evict, ""
}

// end uncounts a session that ended (once; an evicted one is already).
func (b *inbound) end(s *session.Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drop(s)
}

func (b *inbound) drop(s *session.Session) {
	id := s.PeerID()
	i := slices.Index(b.byPeer[id], s)
	if i < 0 {
		return
	}
	if b.byPeer[id] = slices.Delete(b.byPeer[id], i, i+1); len(b.byPeer[id]) == 0 {
		delete(b.byPeer, id)
	}
	src := sourceOf(s.RemoteAddr())
	if b.bySource[src]--; b.bySource[src] == 0 {
		delete(b.bySource, src)
	}
	b.total--
}
