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

	"go.uber.org/goleak"

	"p2pd/netcore/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair makes a session between two fresh identities over loopback TCP; the
// server accepts any key.
func pair(t *testing.T, clientWants func(server *identity.Identity) ed25519.PublicKey) (cli, srv *Session, errc, errs error) {
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
		srv, errs = Server(ctx, c, b, nil)
	})
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli, errc = Client(ctx, c, a, clientWants(b))
	if errc != nil {
		// Let the server see the failed handshake instead of waiting.
		c.Close()
	}
	wg.Wait()
	t.Cleanup(func() {
		if cli != nil {
			cli.Close()
		}
		if srv != nil {
			srv.Close()
		}
	})
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

func TestStreams(t *testing.T) {
	cli, srv, errc, errs := pair(t, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
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
	other, _ := identity.New()
	_, _, errc, _ := pair(t, func(*identity.Identity) ed25519.PublicKey { return other.Public })
	if !errors.Is(errc, identity.ErrWrongPeer) {
		t.Errorf("client error %v, want ErrWrongPeer", errc)
	}
}

func TestOpenObeysContext(t *testing.T) {
	cli, _, errc, errs := pair(t, func(s *identity.Identity) ed25519.PublicKey { return s.Public })
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
