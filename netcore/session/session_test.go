package session

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"p2pd/netcore/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transports are the ways a session is carried; every test runs on each.
var transports = []string{"tcp", "quic"}

func eachTransport(t *testing.T, test func(t *testing.T, transport string)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { test(t, tr) })
	}
}

// pair makes a session between two fresh identities over loopback; the
// server accepts any key.
func pair(t *testing.T, transport string, clientWants func(server *identity.Identity) ed25519.PublicKey) (cli, srv *Session, errc, errs error) {
	t.Helper()
	if transport == "quic" {
		return pairQUIC(t, clientWants)
	}
	same := func(c net.Conn) net.Conn { return c }
	return pairTCP(t, clientWants, same, same)
}

// pairTCP makes a TLS+yamux session over loopback TCP, with the client's
// and the server's connections wrapped by wrap and wrapServer.
func pairTCP(t *testing.T, clientWants func(server *identity.Identity) ed25519.PublicKey, wrap, wrapServer func(net.Conn) net.Conn) (cli, srv *Session, errc, errs error) {
	t.Helper()
	a, _ := identity.New()
	b, _ := identity.New()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := l.Accept()
		if err != nil {
			errs = err
			return
		}
		srv, errs = Server(ctx, wrapServer(c), b, nil)
	})
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli, errc = Client(ctx, wrap(c), a, clientWants(b))
	if errc != nil {
		// Let the server see the failed handshake instead of waiting.
		c.Close()
	}
	wg.Wait()
	closeLater(t, cli, srv)
	return cli, srv, errc, errs
}

func closeLater(t *testing.T, sessions ...*Session) {
	t.Cleanup(func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
	})
}

// pairQUIC makes a QUIC session between two UDP sockets on loopback.
func pairQUIC(t *testing.T, clientWants func(server *identity.Identity) ed25519.PublicKey) (cli, srv *Session, errc, errs error) {
	t.Helper()
	a, _ := identity.New()
	b, _ := identity.New()
	udp := func() *quic.Transport {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return &quic.Transport{Conn: pc}
	}
	ta, tb := udp(), udp()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	wg.Go(func() { srv, errs = ServerQUIC(sctx, tb, b, nil) })
	cli, errc = ClientQUIC(ctx, ta, tb.Conn.LocalAddr(), a, clientWants(b))
	if errc != nil {
		scancel()
	}
	wg.Wait()
	// Failed sides still own their transports.
	for tr, s := range map[*quic.Transport]*Session{ta: cli, tb: srv} {
		if s == nil {
			tr.Close()
			tr.Conn.Close()
		}
	}
	closeLater(t, cli, srv)
	return cli, srv, errc, errs
}

func serveEcho(srv *Session) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, st, err := srv.Accept(context.Background(), func(p string) bool { return p == "echo/1" })
			if err != nil {
				return
			}
			go func() { io.Copy(st, st); st.Close() }()
		}
	}()
	return done
}

func TestStreams(t *testing.T) { eachTransport(t, testStreams) }

func testStreams(t *testing.T, transport string) {
	cli, srv, errc, errs := pair(t, transport, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
	if errc != nil || errs != nil {
		t.Fatal(errc, errs)
	}
	// Each side sees the other's key: the client's own key is what the
	// server saw, and the reverse.
	if srv.Peer().Equal(cli.Peer()) || cli.PeerID() != identity.IDOf(cli.Peer()) || len(srv.Peer()) != ed25519.PublicKeySize {
		t.Error("peers do not know each other")
	}
	done := serveEcho(srv)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			st, err := cli.Open(ctx, "echo/1")
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			msg := fmt.Sprintf("stream %d", i)
			st.Write([]byte(msg))
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(st, buf); err != nil || string(buf) != msg {
				t.Errorf("stream %d: %q, %v", i, buf, err)
			}
		})
	}
	wg.Wait()
	if _, err := cli.Open(ctx, "chat/9"); !errors.Is(err, ErrUnknownProtocol) {
		t.Errorf("unknown protocol: %v", err)
	}
	if _, err := cli.Open(ctx, ""); err == nil {
		t.Error("empty protocol name accepted")
	}
	cli.Close()
	select {
	case <-srv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not notice the session end")
	}
	<-done
}

func TestWrongPeer(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		other, _ := identity.New()
		_, _, errc, _ := pair(t, transport, func(*identity.Identity) ed25519.PublicKey { return other.Public })
		if !errors.Is(errc, identity.ErrWrongPeer) {
			t.Errorf("client error %v, want ErrWrongPeer", errc)
		}
	})
}

func TestOpenObeysContext(t *testing.T) { eachTransport(t, testOpenObeysContext) }

func testOpenObeysContext(t *testing.T, transport string) {
	cli, _, errc, errs := pair(t, transport, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
	if errc != nil || errs != nil {
		t.Fatal(errc, errs)
	}
	// Nobody accepts on the server: Open must give up at the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := cli.Open(ctx, "echo/1"); err == nil {
		t.Error("open without an accepting peer succeeded")
	}
}

// TestQUICListenerSharesTransport: a listener accepts two sessions from
// the same peer on one socket; the socket outlives the listener and the
// first session, and closes with the last.
func TestQUICListenerSharesTransport(t *testing.T) {
	a, _ := identity.New()
	b, _ := identity.New()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListenQUIC(&quic.Transport{Conn: pc}, b, a.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var clients, servers []*Session
	for range 2 {
		cpc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctr := &quic.Transport{Conn: cpc}
		cli, err := ClientQUIC(ctx, ctr, pc.LocalAddr(), a, b.Public)
		if err != nil {
			ctr.Close()
			cpc.Close()
			t.Fatal(err)
		}
		srv, err := l.Accept(ctx)
		if err != nil {
			cli.Close()
			t.Fatal(err)
		}
		clients, servers = append(clients, cli), append(servers, srv)
		closeLater(t, cli, srv)
	}
	echo := func(i int) error {
		st, err := clients[i].Open(ctx, "echo/1")
		if err != nil {
			return err
		}
		defer st.Close()
		st.Write([]byte("hi"))
		buf := make([]byte, 2)
		_, err = io.ReadFull(st, buf)
		return err
	}
	done := serveEcho(servers[1])
	servers[0].Close()
	l.Close()
	if err := echo(1); err != nil {
		t.Fatalf("the second session after the first one and the listener closed: %v", err)
	}
	if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); err != nil {
		t.Fatalf("the socket closed while a session uses it: %v", err)
	}
	servers[1].Close()
	<-done
	if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the socket is still open after the last session ended: %v", err)
	}
}

// TestStreamErrorsInWords: a stream whose session ends, here or at the
// peer, fails with words that say so, the transport's error wrapped.
func TestStreamErrorsInWords(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		for _, side := range []string{"here", "peer"} {
			cli, srv, errc, errs := pair(t, transport, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
			if errc != nil || errs != nil {
				t.Fatal(errc, errs)
			}
			done := serveEcho(srv)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := cli.Open(ctx, "echo/1")
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if side == "here" {
				cli.Close()
			} else {
				srv.Close()
			}
			st.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = st.Read(make([]byte, 1))
			st.Close()
			switch {
			case side == "here" && !errors.Is(err, errEnded):
				t.Errorf("%s: the session closed here: %v", transport, err)
			case side == "peer" && !errors.Is(err, errPeerEnded) && !errors.Is(err, errConnClosed):
				t.Errorf("%s: the peer closed the session: %v", transport, err)
			default:
				t.Logf("%s, the session closed %s: %v", transport, map[string]string{"here": "here", "peer": "by the peer"}[side], err)
			}
			cli.Close()
			srv.Close()
			<-done
		}
	})
}

// TestReset: the peer of a stream ended with Reset reads that the peer
// dropped it, where one ended with Close reads the stream's end.
func TestReset(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		cli, srv, errc, errs := pair(t, transport, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
		if errc != nil || errs != nil {
			t.Fatal(errc, errs)
		}
		defer cli.Close()
		defer srv.Close()
		got := make(chan net.Conn, 2)
		go func() {
			for {
				_, st, err := srv.Accept(context.Background(), func(string) bool { return true })
				if err != nil {
					return
				}
				got <- st
			}
		}()
		for _, c := range []struct {
			end  func(net.Conn) error
			want error
		}{{net.Conn.Close, io.EOF}, {Reset, errDropped}} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := cli.Open(ctx, "x/1")
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			peer := <-got
			c.end(st)
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := peer.Read(make([]byte, 1)); !errors.Is(err, c.want) {
				t.Errorf("%s: the peer read %v, want %v", transport, err, c.want)
			}
			peer.Close()
		}
	})
}

// TestUnreadStreamsBounded: a peer that opens more streams than a session
// allows and writes into them while nothing reads gets some refused, and
// can make the session hold at most maxStreams first windows plus the
// growth budget (QUIC: its connection window).
func TestUnreadStreamsBounded(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		cli, srv, errc, errs := pair(t, transport, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
		if errc != nil || errs != nil {
			t.Fatal(errc, errs)
		}
		holdStreams(t, srv, "sink/1") // never read
		var (
			wg                    sync.WaitGroup
			mu                    sync.Mutex
			written, most, opened int
		)
		piece := make([]byte, 256<<10)
		for range maxStreams + 8 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				st, err := cli.Open(ctx, "sink/1")
				if err != nil {
					return
				}
				defer st.Close()
				st.SetWriteDeadline(time.Now().Add(3 * time.Second))
				n := 0
				for {
					k, err := st.Write(piece)
					n += k
					if err != nil {
						break
					}
				}
				mu.Lock()
				written += n
				most = max(most, n)
				opened++
				mu.Unlock()
			})
		}
		wg.Wait()
		limit := maxStreams*initialWindow + growthLimit
		t.Logf("%s: %d of %d streams opened; %d MiB written unread (limit %d MiB)", transport, opened, maxStreams+8, written>>20, limit>>20)
		if opened > maxStreams {
			t.Errorf("%d streams opened at once, want at most %d", opened, maxStreams)
		}
		if written > limit {
			t.Errorf("the peer made the session hold %d MiB unread, want at most %d", written>>20, limit>>20)
		}
		if most > initialWindow {
			t.Errorf("one unread stream took %d KiB, more than its first window of %d KiB", most>>10, initialWindow>>10)
		}
		if written < 256<<10 {
			t.Errorf("only %d bytes written into %d streams", written, opened)
		}
	})
}

// holdStreams accepts srv's streams speaking proto and holds them,
// unread, until the test ends.
func holdStreams(t *testing.T, srv *Session, proto string) <-chan net.Conn {
	held := make(chan net.Conn, 2*maxStreams)
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			_, st, err := srv.Accept(context.Background(), func(p string) bool { return p == proto })
			if err != nil {
				return
			}
			held <- st
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
		close(held)
		for st := range held {
			st.Close()
		}
	})
	return held
}

// TestOpenWaitsForAStream: with maxStreams of this side's streams open
// at the peer, Open waits until one ends, then opens.
func TestOpenWaitsForAStream(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		cli, srv, errc, errs := pair(t, transport, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
		if errc != nil || errs != nil {
			t.Fatal(errc, errs)
		}
		held := holdStreams(t, srv, "hold/1")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var open []net.Conn
		for range maxStreams {
			st, err := cli.Open(ctx, "hold/1")
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, st)
		}
		opened := make(chan error, 1)
		go func() {
			st, err := cli.Open(ctx, "hold/1")
			if err == nil {
				st.Close()
			}
			opened <- err
		}()
		select {
		case err := <-opened:
			t.Fatalf("stream %d opened at once (%v), want it to wait", maxStreams+1, err)
		case <-time.After(300 * time.Millisecond):
		}
		// One ends, at both ends.
		open[0].Close()
		(<-held).Close()
		start := time.Now()
		if err := <-opened; err != nil {
			t.Fatalf("after a stream ended: %v", err)
		}
		t.Logf("%s: stream %d opened %v after one ended", transport, maxStreams+1, time.Since(start).Round(time.Millisecond))
		for _, st := range open {
			st.Close()
		}
	})
}
