package punch

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"p2pd/netcore/identity"
	"p2pd/netcore/session"
)

// TestUDPLoopback: two punching ports on loopback find each other, and a
// QUIC session runs over the punched path while the probes still fly.
func TestUDPLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	a, err := ListenUDP(ctx, lo, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ListenUDP(ctx, lo, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	ida, _ := identity.New()
	idb, _ := identity.New()
	token := []byte("test-punch")
	at := time.Now().Add(20 * time.Millisecond)
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()

	var wg sync.WaitGroup
	var srv *session.Session
	var srvErr error
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		srv, srvErr = session.ServerQUIC(pctx, b.Transport(), idb, ida.Public)
	}()
	wg.Go(func() {
		RunUDP(pctx, b, []netip.AddrPort{a.External()}, Probing{Token: token, Start: at}, func(netip.AddrPort) {})
	})
	found := make(chan netip.AddrPort, 1)
	wg.Go(func() {
		if err := RunUDP(pctx, a, []netip.AddrPort{b.External()}, Probing{Token: token, Start: at}, func(p netip.AddrPort) { found <- p }); err != nil {
			t.Error(err)
		}
	})
	var peer netip.AddrPort
	select {
	case peer = <-found:
	case <-ctx.Done():
		t.Fatal("no path found")
	}
	if peer != b.Local() {
		t.Errorf("found %v, want %v", peer, b.Local())
	}
	cli, err := session.ClientQUIC(ctx, a.Transport(), net.UDPAddrFromAddrPort(peer), ida, idb.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	<-srvDone // the server's handshake completes after the client's
	pcancel()
	wg.Wait()
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	defer srv.Close()
	go func() {
		_, st, err := srv.Accept(ctx, func(string) bool { return true })
		if err == nil {
			io.Copy(st, st)
			st.Close()
		}
	}()
	st, err := cli.Open(ctx, "echo/1")
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("over quic"))
	buf := make([]byte, 9)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "over quic" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	st.Close()
}

// TestUDPIgnoresStrangers: probes with another token are not answered and
// never count as the peer.
func TestUDPIgnoresStrangers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	a, err := ListenUDP(ctx, lo, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	stranger, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	// The stranger knows the format but not the token, and answers
	// whatever it gets as if it were the peer.
	go func() {
		buf := make([]byte, 100)
		for {
			_, from, err := stranger.ReadFrom(buf)
			if err != nil {
				return
			}
			stranger.WriteTo(packet(answerType, []byte("other")), from)
			stranger.WriteTo(packet(probeType, []byte("other")), from)
		}
	}()
	rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer rcancel()
	err = RunUDP(rctx, a, []netip.AddrPort{stranger.LocalAddr().(*net.UDPAddr).AddrPort()}, Probing{Token: []byte("mine")}, func(p netip.AddrPort) {
		t.Errorf("found %v", p)
	})
	if err == nil {
		t.Error("punching a stranger succeeded")
	}
	t.Log(err)
	// Bad tokens are refused up front.
	if err := RunUDP(ctx, a, []netip.AddrPort{a.Local()}, Probing{}, func(netip.AddrPort) {}); err == nil {
		t.Error("empty token accepted")
	}
}
