package session

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/libp2p/go-yamux/v5"
)

// yamuxConn carries a session's streams as yamux streams inside TLS over
// a TCP connection.
type yamuxConn struct {
	tls *tls.Conn
	mux *yamux.Session
}

func (y yamuxConn) open(ctx context.Context) (net.Conn, error) {
	st, err := y.mux.OpenStream(ctx)
	if err != nil {
		return nil, plain(err)
	}
	return yamuxStream{st}, nil
}

func (y yamuxConn) accept(ctx context.Context) (net.Conn, error) {
	type result struct {
		st  *yamux.Stream
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := y.mux.AcceptStream()
		ch <- result{st, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, plain(r.err)
		}
		return yamuxStream{r.st}, nil
	case <-ctx.Done():
		// AcceptStream has no context: closing the session releases it.
		y.mux.Close()
		<-ch
		return nil, ctx.Err()
	}
}

func (y yamuxConn) done() <-chan struct{} { return y.mux.CloseChan() }
func (y yamuxConn) close() error          { return y.mux.Close() }
func (y yamuxConn) localAddr() net.Addr   { return y.tls.LocalAddr() }
func (y yamuxConn) remoteAddr() net.Addr  { return y.tls.RemoteAddr() }
func (y yamuxConn) transport() string     { return "tcp" }

// yamuxStream is a yamux stream whose errors say why in words (plain).
type yamuxStream struct{ *yamux.Stream }

func (s yamuxStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	return n, plain(err)
}

func (s yamuxStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	return n, plain(err)
}
