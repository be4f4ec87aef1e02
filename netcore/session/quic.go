package session

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"p2pd/netcore/identity"
)

const (
	// quicKeepAlive pings an idle QUIC session: UDP mappings in home
	// routers expire after as little as 30 s of silence, and a relay's
	// permission needs traffic too.
	quicKeepAlive = 10 * time.Second
	// quicIdleTimeout ends a session whose peer has been silent this long
	// in spite of keepalives: it is gone, and the session reports it.
	quicIdleTimeout = 30 * time.Second
	// quicHandshakeIdle bounds a handshake with a silent peer when the
	// caller's context allows longer.
	quicHandshakeIdle = 5 * time.Second
)

func quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:       quicHandshakeIdle,
		MaxIdleTimeout:             quicIdleTimeout,
		KeepAlivePeriod:            quicKeepAlive,
		MaxStreamReceiveWindow:     streamWindow,
		MaxConnectionReceiveWindow: growthLimit,
		MaxIncomingStreams:         maxStreams,
	}
}

// ClientQUIC opens a QUIC session to the peer at raddr over tr; the peer
// must hold want. On success the session owns tr and its socket
// (tr.Conn): ending the session closes both. On failure the caller keeps
// them.
func ClientQUIC(ctx context.Context, tr *quic.Transport, raddr net.Addr, id *identity.Identity, want ed25519.PublicKey) (*Session, error) {
	cfg, err := id.TLSConfig(want)
	if err != nil {
		return nil, err
	}
	c, err := tr.Dial(ctx, raddr, cfg, quicConfig())
	if err != nil {
		return nil, fmt.Errorf("secure handshake with %v over QUIC: %w", raddr, err)
	}
	return quicSession(c, tr, closeTransport(tr))
}

// closeTransport returns a release func that closes tr and its socket.
func closeTransport(tr *quic.Transport) func() {
	return func() {
		tr.Close()
		tr.Conn.Close()
	}
}

// ServerQUIC waits on tr for the peer holding want (nil: any peer) to open
// a QUIC session, until ctx ends. On success the session owns tr and its
// socket; on failure the caller keeps them. Peers with another key fail
// their handshake and are not returned.
func ServerQUIC(ctx context.Context, tr *quic.Transport, id *identity.Identity, want ed25519.PublicKey) (*Session, error) {
	cfg, err := id.TLSConfig(want)
	if err != nil {
		return nil, err
	}
	ln, err := tr.Listen(cfg, quicConfig())
	if err != nil {
		return nil, fmt.Errorf("waiting for a QUIC session: %w", err)
	}
	// Established connections outlive their listener.
	defer ln.Close()
	c, err := ln.Accept(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for a QUIC session: %w", err)
	}
	return quicSession(c, tr, closeTransport(tr))
}

// QUICListener accepts QUIC sessions on a transport until it is closed. More than one may arrive when the peer races paths that
// end at this socket; the peer keeps one and closes the others. The
// listener and the sessions it accepted share the transport: it and its
// socket are closed once the listener is closed and each of those
// sessions has ended.
type QUICListener struct {
	ln        *quic.Listener
	tr        *quic.Transport
	mu        sync.Mutex
	refs      int // the listener until Close, and each session accepted
	closeOnce sync.Once
}

// ListenQUIC listens on tr for QUIC sessions from the peer holding want
// (nil: any peer). From then on the listener owns tr and its socket.
func ListenQUIC(tr *quic.Transport, id *identity.Identity, want ed25519.PublicKey) (*QUICListener, error) {
	cfg, err := id.TLSConfig(want)
	if err != nil {
		return nil, err
	}
	ln, err := tr.Listen(cfg, quicConfig())
	if err != nil {
		return nil, fmt.Errorf("waiting for a QUIC session: %w", err)
	}
	return &QUICListener{ln: ln, tr: tr, refs: 1}, nil
}

// Accept waits until ctx ends for the next session. Peers with another
// key fail their handshake and are not returned.
func (l *QUICListener) Accept(ctx context.Context) (*Session, error) {
	c, err := l.ln.Accept(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for a QUIC session: %w", err)
	}
	l.mu.Lock()
	if l.refs == 0 { // closed meanwhile, and the transport with it
		l.mu.Unlock()
		c.CloseWithError(0, "")
		return nil, fmt.Errorf("waiting for a QUIC session: %w", net.ErrClosed)
	}
	l.refs++
	l.mu.Unlock()
	s, err := quicSession(c, l.tr, l.unref)
	if err != nil {
		l.unref()
	}
	return s, err
}

// Close stops accepting sessions; those accepted go on.
func (l *QUICListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		err = l.ln.Close()
		l.unref()
	})
	return err
}

func (l *QUICListener) unref() {
	l.mu.Lock()
	l.refs--
	last := l.refs == 0
	l.mu.Unlock()
	if last {
		closeTransport(l.tr)()
	}
}

// quicSession makes a session of c; release frees its transport when the
// session ends. On failure c is closed and release not called.
func quicSession(c *quic.Conn, tr *quic.Transport, release func()) (*Session, error) {
	peer, err := identity.PeerKey(c.ConnectionState().TLS)
	if err != nil {
		c.CloseWithError(0, "")
		return nil, err
	}
	q := &quicConn{c: c, tr: tr, free: release}
	// A session that ends by itself (peer closed, idle timeout) frees its
	// socket too.
	go func() {
		<-c.Context().Done()
		q.release()
	}()
	return &Session{mux: q, peer: peer}, nil
}

// quicConn carries a session's streams as QUIC streams.
type quicConn struct {
	c    *quic.Conn
	tr   *quic.Transport
	free func() // frees the transport, or the session's share of it
	once sync.Once
}

func (q *quicConn) release() { q.once.Do(q.free) }

func (q *quicConn) open(ctx context.Context) (net.Conn, error) {
	st, err := q.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return quicStream{st, q.c}, nil
}

func (q *quicConn) accept(ctx context.Context) (net.Conn, error) {
	st, err := q.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return quicStream{st, q.c}, nil
}

func (q *quicConn) done() <-chan struct{} { return q.c.Context().Done() }

func (q *quicConn) close() error {
	err := q.c.CloseWithError(0, "")
	q.release()
	var app *quic.ApplicationError
	if errors.As(err, &app) {
		return nil
	}
	return err
}

func (q *quicConn) localAddr() net.Addr  { return q.c.LocalAddr() }
func (q *quicConn) remoteAddr() net.Addr { return q.c.RemoteAddr() }
func (q *quicConn) transport() string    { return "quic" }

// quicStream is a QUIC stream as a net.Conn.
type quicStream struct {
	*quic.Stream
	c *quic.Conn
}

func (s quicStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	return n, plain(err)
}

func (s quicStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	return n, plain(err)
}

func (s quicStream) LocalAddr() net.Addr  { return s.c.LocalAddr() }
func (s quicStream) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

// Close closes both directions, as closing a socket does: a QUIC stream's
// Close only ends what this side sends.
func (s quicStream) Close() error {
	s.Stream.CancelRead(0)
	return s.Stream.Close()
}
