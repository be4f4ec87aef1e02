// Package session turns a path between two nodes into one secure session
// carrying many streams (DESIGN.md §5): TLS 1.3 with both sides' keys
// pinned (netcore/identity). Over a TCP connection the streams are yamux
// streams inside TLS ([Client], [Server]); over a UDP path (punched, or
// relayed by TURN) the session is QUIC, with the same TLS handshake and
// pinned keys, so datagram paths are reliable, ordered, encrypted and
// congestion-controlled like TCP ones ([ClientQUIC], [ServerQUIC]).
//
// Each stream names the protocol it speaks ("echo/1", "msg/1", "chat/1",
// ...) when it opens; the side that accepts it answers whether it speaks
// that protocol, so opening a stream for an unknown one fails with a clear
// error.
package session

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"p2pd/netcore/identity"
)

const (
	// MaxProtoLen bounds a protocol name.
	MaxProtoLen = 64
	// streamWindow is the most a stream's flow-control window grows to:
	// 32 MiB a round trip keeps 200 MB/s across 150 ms of ocean. A
	// window doubles while its reader keeps up, within the session's
	// windowBudget (QUIC: its connection window).
	streamWindow = 32 << 20
	// initialWindow is a yamux stream's window from its first byte. On
	// paths of a millisecond or less go-yamux never grows a window, and
	// there a smaller one slows a transfer down: 256 KiB halved its speed
	// (BenchmarkSend); in BenchmarkTransfer's unshaped lab, 4 and 8 MiB
	// gave 341-396 MB/s where 16 MiB gave 403-430.
	initialWindow = 16 << 20
	// maxStreams bounds the streams a peer may have open in a session at
	// once; more are refused. With initialWindow and growthLimit, a peer
	// can make a session hold at most 288 MiB that nothing has read on the
	// streams it opened (those this side opens, it reads).
	maxStreams = 16
	// maxMessage bounds one yamux message: one stream's bulk write holds
	// the connection for at most this long between the others' messages
	// (1 ms at 1 Gbit/s), and each costs one batched send (batchConn).
	// Larger ones are no faster (BenchmarkSend: 128 and 256 KiB alike, 64
	// KiB 7% slower).
	maxMessage = 128 << 10
	// writePatience bounds writing one message to the connection, past
	// which go-yamux ends the session, and the wait for a keepalive's
	// answer. At least half of it is left for each write, so a session
	// outlives links down to 128 KiB / 15 s, about 9 KB/s; a silent peer
	// is noticed within keepAlive + writePatience.
	writePatience = 30 * time.Second
	// keepAlive pings an idle session so NAT mappings, which expire after
	// 30 s of silence on some routers, stay open, and a dead peer is noticed.
	keepAlive = 15 * time.Second
	// handshakeTimeout bounds the TLS handshake and stream negotiation when
	// the caller's context sets no deadline.
	handshakeTimeout = 10 * time.Second
)

// Stream answers (one octet after the protocol name).
const (
	accepted byte = 0
	refused  byte = 1
)

// ErrUnknownProtocol: the peer does not speak the protocol a stream asked for.
var ErrUnknownProtocol = errors.New("the peer does not speak this protocol")

// Session is a secure, multiplexed connection to one peer.
type Session struct {
	mux  muxer
	peer ed25519.PublicKey
}

// muxer is what a session needs of its transport: streams, and an end.
type muxer interface {
	open(ctx context.Context) (net.Conn, error)
	// accept waits for the peer's next stream; ctx ending may end the
	// session (yamux cannot abandon a pending accept).
	accept(ctx context.Context) (net.Conn, error)
	done() <-chan struct{}
	close() error
	localAddr() net.Addr
	remoteAddr() net.Addr
	transport() string
}

// Client runs the TLS client side over c: the peer must hold want.
func Client(ctx context.Context, c net.Conn, id *identity.Identity, want ed25519.PublicKey) (*Session, error) {
	return secure(ctx, c, id, want, true)
}

// Server runs the TLS server side over c; want may be nil to accept any
// peer (Peer then says who it is).
func Server(ctx context.Context, c net.Conn, id *identity.Identity, want ed25519.PublicKey) (*Session, error) {
	return secure(ctx, c, id, want, false)
}

func secure(ctx context.Context, c net.Conn, id *identity.Identity, want ed25519.PublicKey, client bool) (*Session, error) {
	cfg, err := id.TLSConfig(want)
	if err != nil {
		c.Close()
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
	}
	under := &batchConn{Conn: c}
	var t *tls.Conn
	if client {
		t = tls.Client(under, cfg)
	} else {
		t = tls.Server(under, cfg)
	}
	if err := t.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("secure handshake with %v: %w", c.RemoteAddr(), err)
	}
	peer, err := identity.PeerKey(t.ConnectionState())
	if err != nil {
		t.Close()
		return nil, err
	}
	ycfg := yamux.DefaultConfig()
	ycfg.LogOutput = io.Discard
	ycfg.KeepAliveInterval = keepAlive
	ycfg.MaxStreamWindowSize = streamWindow
	ycfg.MaxMessageSize = maxMessage
	ycfg.ConnectionWriteTimeout = writePatience
	ycfg.InitialStreamWindowSize = initialWindow
	ycfg.MaxIncomingStreams = maxStreams
	var mux *yamux.Session
	budget := new(windowBudget)
	// yamux roles follow TLS roles, which both sides agree on.
	if client {
		mux, err = yamux.Client(batchedTLS{t, under}, ycfg, budget.span)
	} else {
		mux, err = yamux.Server(batchedTLS{t, under}, ycfg, budget.span)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	return &Session{mux: yamuxConn{t, mux}, peer: peer}, nil
}

// Reset ends st, a stream of a session, both ways at once, without
// Close's orderly end: the peer's reads fail (the peer dropped the
// stream) instead of reaching the stream's end, so it can tell a sender
// that stopped from one that finished what it had to say.
func Reset(st net.Conn) error {
	switch s := st.(type) {
	case yamuxStream:
		return s.Stream.Reset()
	case quicStream:
		s.Stream.CancelRead(0)
		s.Stream.CancelWrite(0)
		return nil
	}
	return st.Close()
}

// Peer returns the peer's public key, proven in the handshake.
func (s *Session) Peer() ed25519.PublicKey { return s.peer }

// PeerID returns the peer's node id.
func (s *Session) PeerID() identity.ID { return identity.IDOf(s.peer) }

// LocalAddr returns this side's transport address (for a relayed
// session, the relayed address).
func (s *Session) LocalAddr() net.Addr { return s.mux.localAddr() }

// RemoteAddr returns the peer's transport address.
func (s *Session) RemoteAddr() net.Addr { return s.mux.remoteAddr() }

// Transport names what carries the session: "tcp" (TLS and yamux) or
// "quic".
func (s *Session) Transport() string { return s.mux.transport() }

// Done is closed when the session ends: closed by either side, or its
// peer silent past the keepalive's patience.
func (s *Session) Done() <-chan struct{} { return s.mux.done() }

// Close ends the session and every stream.
func (s *Session) Close() error { return s.mux.close() }

// Open opens a stream speaking proto and waits for the peer to accept it.
// While the peer has maxStreams of this side's streams open, it waits for
// one to end (within ctx, or negotiateTimeout if ctx sets no deadline).
func (s *Session) Open(ctx context.Context, proto string) (net.Conn, error) {
	if len(proto) == 0 || len(proto) > MaxProtoLen {
		return nil, fmt.Errorf("protocol name %q: want 1 to %d bytes", proto, MaxProtoLen)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, negotiateTimeout)
		defer cancel()
	}
	// A QUIC peer grants streams as others end, and opening waits for
	// that; a yamux peer resets a stream over its limit at once, so it is
	// opened again a little later.
	wait := 5 * time.Millisecond
	for {
		st, err := s.open(ctx, proto)
		if err == nil || !errors.Is(err, errDropped) || s.Transport() != "tcp" {
			return st, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		case <-s.Done():
			return nil, err
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// open opens a stream speaking proto once.
func (s *Session) open(ctx context.Context, proto string) (net.Conn, error) {
	st, err := s.mux.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening a %s stream: %w", proto, err)
	}
	stop := deadline(ctx, st)
	defer stop()
	if _, err := st.Write(append([]byte{byte(len(proto))}, proto...)); err != nil {
		st.Close()
		return nil, fmt.Errorf("opening a %s stream: %w", proto, err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(st, answer[:]); err != nil {
		st.Close()
		return nil, fmt.Errorf("opening a %s stream: %w", proto, err)
	}
	if answer[0] != accepted {
		st.Close()
		return nil, fmt.Errorf("%s: %w", proto, ErrUnknownProtocol)
	}
	return st, nil
}

// Accept waits for the peer's next stream and returns it with its protocol
// once speaks (a func of the session's registered protocols) accepts it.
// Streams for protocols it refuses are answered so and closed. yamux
// cannot abandon a pending accept, so ctx ending may close the session:
// pass the session's lifetime, not a short timeout.
func (s *Session) Accept(ctx context.Context, speaks func(proto string) bool) (string, net.Conn, error) {
	for {
		st, err := s.mux.accept(ctx)
		if err != nil {
			return "", nil, err
		}
		proto, err := readProto(ctx, st)
		if err != nil {
			st.Close() // a peer that cannot name its protocol loses the stream, not the session
			continue
		}
		if !speaks(proto) {
			st.Write([]byte{refused})
			st.Close()
			continue
		}
		if _, err := st.Write([]byte{accepted}); err != nil {
			st.Close()
			continue
		}
		return proto, st, nil
	}
}

func readProto(ctx context.Context, st net.Conn) (string, error) {
	stop := deadline(ctx, st)
	defer stop()
	var n [1]byte
	if _, err := io.ReadFull(st, n[:]); err != nil {
		return "", err
	}
	if n[0] == 0 || int(n[0]) > MaxProtoLen {
		return "", fmt.Errorf("protocol name of %d bytes", n[0])
	}
	name := make([]byte, n[0])
	if _, err := io.ReadFull(st, name); err != nil {
		return "", err
	}
	return string(name), nil
}

// negotiateTimeout bounds naming a stream's protocol when ctx has no
// deadline: one round trip.
const negotiateTimeout = 10 * time.Second

// deadline applies ctx's deadline (or negotiateTimeout) to st until the
// returned func is called.
func deadline(ctx context.Context, st net.Conn) func() {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(negotiateTimeout)
	}
	st.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	return func() {
		stop()
		st.SetDeadline(time.Time{})
	}
}
