package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/stun"
)

// Channels (RFC 8656 §12). Once a peer's address is bound to a channel
// number, datagrams to and from it travel as ChannelData: a 4-byte header
// instead of a Send or Data indication (a STUN message of 36 bytes and
// more, built or parsed per datagram). pion binds channels too, but only
// behind its own WriteTo, with an allocation, a copy and a hop between
// goroutines per datagram, which at QUIC's packet rates costs more CPU
// than QUIC itself. The Allocation binds channels with its own
// ChannelBind requests (sent through pion's transactions) and frames
// ChannelData on its socket: a datagram in or out costs one copy, and a
// burst of QUIC packets leaves in one segmented (GSO) send.
const (
	// channelFirst and channelLast bound the channel numbers a client may
	// bind (RFC 8656 §12).
	channelFirst = 0x4000
	channelLast  = 0x4FFF
	// channelHeader is the ChannelData header: number and length.
	channelHeader = 4
)

// channel is a peer's address bound to a channel number.
type channel struct {
	number uint16
	peer   netip.AddrPort
	from   *net.UDPAddr  // peer, as ReadFrom reports it: one allocation per channel, not per datagram
	ready  chan struct{} // closed once the first ChannelBind is answered
	err    error         // why the first ChannelBind failed; set before ready closes
}

// channels maps peers to bound channels and back.
type channels struct {
	mu       sync.RWMutex
	byPeer   map[netip.AddrPort]*channel
	byNumber map[uint16]*channel
	next     uint16 // the next number to hand out
}

func newChannels() channels {
	return channels{byPeer: map[netip.AddrPort]*channel{}, byNumber: map[uint16]*channel{}, next: channelFirst}
}

// lookup returns the channel bound under number, or nil.
func (cs *channels) lookup(number uint16) *channel {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	return cs.byNumber[number]
}

// get returns peer's channel, creating it if there is none: then created
// is true and the caller must bind it and close ready.
func (cs *channels) get(peer netip.AddrPort) (ch *channel, created bool, err error) {
	cs.mu.RLock()
	ch = cs.byPeer[peer]
	cs.mu.RUnlock()
	if ch != nil {
		return ch, false, nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if ch = cs.byPeer[peer]; ch != nil {
		return ch, false, nil
	}
	if cs.next > channelLast {
		// A failed binding's number is not reused: the server may have
		// bound it after all.
		return nil, false, fmt.Errorf("all %d channel numbers are taken", channelLast-channelFirst+1)
	}
	ch = &channel{number: cs.next, peer: peer, from: net.UDPAddrFromAddrPort(peer), ready: make(chan struct{})}
	cs.next++
	cs.byPeer[peer], cs.byNumber[ch.number] = ch, ch
	return ch, true, nil
}

// drop forgets a channel whose binding failed, so that the next datagram
// to its peer tries again.
func (cs *channels) drop(ch *channel) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.byPeer[ch.peer] == ch {
		delete(cs.byPeer, ch.peer)
		delete(cs.byNumber, ch.number)
	}
}

// bound lists the channels bound, for refreshing.
func (cs *channels) bound() []*channel {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	var out []*channel
	for _, ch := range cs.byPeer {
		select {
		case <-ch.ready:
			if ch.err == nil {
				out = append(out, ch)
			}
		default:
		}
	}
	return out
}

// parseChannelData splits a ChannelData message into its channel number
// and payload. Over TCP the message may carry up to 3 bytes of padding
// after the payload, which the length leaves out.
func parseChannelData(b []byte) (number uint16, payload []byte, ok bool) {
	if len(b) < channelHeader || b[0]&0xC0 != 0x40 {
		return 0, nil, false
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if channelHeader+n > len(b) {
		return 0, nil, false
	}
	return binary.BigEndian.Uint16(b), b[channelHeader : channelHeader+n], true
}

// putChannelHeader writes the ChannelData header for an n-byte payload.
func putChannelHeader(b []byte, number uint16, n int) {
	binary.BigEndian.PutUint16(b, number)
	binary.BigEndian.PutUint16(b[2:], uint16(n))
}

// peerAttr is the XOR-PEER-ADDRESS attribute.
type peerAttr netip.AddrPort

func (p peerAttr) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(p)
	return stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
}

// channelAttr is the CHANNEL-NUMBER attribute: the number, then two
// reserved zero bytes.
type channelAttr uint16

func (c channelAttr) AddTo(m *stun.Message) error {
	m.Add(stun.AttrChannelNumber, []byte{byte(c >> 8), byte(c), 0, 0})
	return nil
}

// errStaleNonce says the server refused a request's nonce and sent a new one.
var errStaleNonce = errors.New("stale nonce")

// bindChannel sends one ChannelBind request for ch (binding it, or
// refreshing its binding) and waits for the answer. A binding installs
// or refreshes the permission for the peer's IP as well.
func (a *Allocation) bindChannel(ch *channel) error {
	var err error
	for range staleNonceRetries {
		if err = a.channelBindOnce(ch); !errors.Is(err, errStaleNonce) {
			return err
		}
	}
	return err
}

func (a *Allocation) channelBindOnce(ch *channel) error {
	msg, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		peerAttr(ch.peer), channelAttr(ch.number),
		a.user, a.realm, a.currentNonce(), a.integrity, stun.Fingerprint)
	if err != nil {
		return err
	}
	res, err := a.client.PerformTransaction(msg, net.UDPAddrFromAddrPort(a.server), false)
	if err != nil {
		return err
	}
	if res.Msg.Type.Class != stun.ClassErrorResponse {
		return nil
	}
	var code stun.ErrorCodeAttribute
	if code.GetFrom(res.Msg) != nil {
		return fmt.Errorf("%v without an error code", res.Msg.Type)
	}
	if code.Code == stun.CodeStaleNonce || code.Code == stun.CodeUnauthorized {
		var nonce stun.Nonce
		if nonce.GetFrom(res.Msg) == nil && a.setNonce(nonce) {
			return errStaleNonce
		}
	}
	return fmt.Errorf("%v (error %v)", res.Msg.Type, code)
}

// currentNonce is the nonce for the next request.
func (a *Allocation) currentNonce() stun.Nonce {
	a.nonceMu.Lock()
	defer a.nonceMu.Unlock()
	return a.nonce
}

// setNonce keeps a nonce the server sent; it reports whether it differs
// from the one used so far.
func (a *Allocation) setNonce(n stun.Nonce) bool {
	a.nonceMu.Lock()
	defer a.nonceMu.Unlock()
	if string(n) == string(a.nonce) {
		return false
	}
	a.nonce = append(stun.Nonce(nil), n...)
	return true
}

// noteNonce keeps the nonce of an error response from the server (the
// first is the answer to the unauthenticated Allocate), so the first
// ChannelBind need not be refused for want of one.
func (a *Allocation) noteNonce(b []byte) {
	if len(b) < 2 || b[0]&0x01 == 0 { // not an error response
		return
	}
	m := stun.Message{Raw: b}
	var nonce stun.Nonce
	if m.Decode() == nil && m.Type.Class == stun.ClassErrorResponse && nonce.GetFrom(&m) == nil {
		a.setNonce(nonce)
	}
}

// channelTo returns the channel bound to peer, binding one first if
// there is none: the first datagram to a peer waits for the server's
// answer (one round trip), as it waits for a permission with pion.
func (a *Allocation) channelTo(peer netip.AddrPort) (*channel, error) {
	ch, created, err := a.chans.get(peer)
	if err != nil {
		return nil, err
	}
	if created {
		ch.err = a.bindChannel(ch)
		close(ch.ready)
		if ch.err != nil {
			a.chans.drop(ch)
		} else {
			a.perms.keep()
		}
	}
	select {
	case <-ch.ready:
	case <-a.closing:
		return nil, net.ErrClosed
	}
	if ch.err != nil {
		if a.isClosing() {
			return nil, net.ErrClosed
		}
		return nil, fmt.Errorf("binding a channel to %v: %w", peer, ch.err)
	}
	return ch, nil
}

// pooledSize is the size of pooled datagram buffers: a full-sized
// datagram on a path with a 1500-byte MTU, with room to spare.
const pooledSize = 2048

var (
	// bufPool holds buffers for single datagrams: a peer's payload until
	// ReadFrom copies it out, a ChannelData message while it is sent.
	bufPool = sync.Pool{New: func() any { b := make([]byte, pooledSize); return &b }}
	// burstPool holds buffers for segmented sends: quic-go hands over up
	// to 20 KiB at once, plus a ChannelData header per packet.
	burstPool = sync.Pool{New: func() any { b := make([]byte, 0, maxDatagram); return &b }}
)

// getBuf returns an n-byte buffer, pooled if it fits (then bp is set).
func getBuf(n int) (bp *[]byte, b []byte) {
	if n > pooledSize {
		return nil, make([]byte, n)
	}
	bp = bufPool.Get().(*[]byte)
	return bp, (*bp)[:n]
}

func putBuf(bp *[]byte) {
	if bp != nil {
		bufPool.Put(bp)
	}
}

// errTooLong refuses a datagram that ChannelData cannot carry.
var errTooLong = errors.New("datagram longer than a TURN relay carries")

// sendChannelData sends p to the peer bound to channel number. Over TCP
// the message is padded to a multiple of 4 bytes (RFC 8656 §12.5).
func (a *Allocation) sendChannelData(number uint16, p []byte) error {
	if len(p) > maxDatagram-channelHeader {
		return errTooLong
	}
	n := channelHeader + len(p)
	if a.tcp {
		n = (n + 3) &^ 3
	}
	bp, b := getBuf(n)
	defer putBuf(bp)
	putChannelHeader(b, number, len(p))
	clear(b[channelHeader+copy(b[channelHeader:], p):])
	var err error
	if a.udp != nil {
		_, err = a.udp.WriteToUDPAddrPort(b, a.server)
	} else {
		_, err = a.sock.WriteTo(b, nil)
	}
	return err
}

// sendChannelBurst sends b, packets of seg bytes each (the last one
// shorter maybe), to the peer bound to channel number as a burst of
// ChannelData messages in one segmented send (GSO, over UDP only).
func (a *Allocation) sendChannelBurst(number uint16, b []byte, seg int) error {
	segs := (len(b) + seg - 1) / seg
	if len(b)+segs*channelHeader > maxDatagram {
		return errTooLong
	}
	bp := burstPool.Get().(*[]byte)
	defer burstPool.Put(bp)
	out := (*bp)[:0]
	for off := 0; off < len(b); off += seg {
		p := b[off:min(off+seg, len(b))]
		out = binary.BigEndian.AppendUint16(out, number)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	_, _, err := a.udp.WriteMsgUDPAddrPort(out, gsoControl(seg+channelHeader), a.server)
	return err
}
