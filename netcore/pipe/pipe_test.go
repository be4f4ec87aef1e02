package pipe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEchoEveryTransport(t *testing.T) {
	for _, fam := range []struct {
		name string
		addr netip.AddrPort
	}{{"IPv4", lo4}, {"IPv6", lo6}} {
		for _, tc := range []struct {
			proto   Proto
			framing Framing
		}{{TCP, Raw}, {TCP, Frames}, {TCP, Lines}, {UDP, Raw}} {
			t.Run(fmt.Sprintf("%s/%v/%v", fam.name, tc.proto, tc.framing), func(t *testing.T) {
				if fam.name == "IPv6" {
					needIPv6(t)
				}
				srv := mustListen(t, tc.proto, fam.addr, WithFraming(tc.framing), WithMsgHandler(echo))
				cli := mustOpen(t, tc.proto, srv.LocalAddr(), WithFraming(tc.framing))
				if cli.RemoteAddr() != srv.LocalAddr() {
					t.Errorf("client remote = %v, want %v", cli.RemoteAddr(), srv.LocalAddr())
				}
				if err := cli.Send(testCtx(t), []byte("hello pipe"), netip.AddrPort{}); err != nil {
					t.Fatal(err)
				}
				m, err := cli.Recv(testCtx(t), SubAll)
				if err != nil {
					t.Fatal(err)
				}
				if string(m.Data) != "hello pipe" || m.From != srv.LocalAddr() || m.Pipe != cli {
					t.Errorf("got %q from %v on %p, want the echo from %v on %p", m.Data, m.From, m.Pipe, srv.LocalAddr(), cli)
				}
			})
		}
	}
}

func TestServerManyClients(t *testing.T) {
	const clients, msgs = 40, 25
	srv := mustListen(t, TCP, lo4, WithFraming(Frames), WithMsgHandler(echo))
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			cli, err := Open(testCtx(t), TCP, srv.LocalAddr().String(), WithFraming(Frames))
			if err != nil {
				errs <- err
				return
			}
			defer cli.Close()
			for j := range msgs {
				want := fmt.Sprintf("client %d message %d", i, j)
				if err := cli.Send(testCtx(t), []byte(want), netip.AddrPort{}); err != nil {
					errs <- err
					return
				}
				m, err := cli.Recv(testCtx(t), SubAll)
				if err != nil || string(m.Data) != want {
					errs <- fmt.Errorf("client %d got %q, %v; want %q", i, m.Data, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.Stats().Received; got != 0 {
		// The server pipe itself receives nothing: its clients' pipes do.
		t.Errorf("server pipe counted %d messages of its own", got)
	}
}

func TestAcceptAndServerSend(t *testing.T) {
	srv := mustListen(t, TCP, lo4, WithFraming(Lines))
	srv.Subscribe(SubAll)
	cli := mustOpen(t, TCP, srv.LocalAddr(), WithFraming(Lines))
	peer, err := srv.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if peer.RemoteAddr() != cli.LocalAddr() || peer.IsServer() || !srv.IsServer() {
		t.Fatalf("accepted pipe from %v, client is %v", peer.RemoteAddr(), cli.LocalAddr())
	}
	if got := srv.Clients(); len(got) != 1 || got[0] != peer {
		t.Errorf("server clients = %v, want the accepted pipe", got)
	}
	// The server reaches a client by its address...
	if err := srv.Send(testCtx(t), []byte("to you"), cli.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got := recvString(t, cli, SubAll); got != "to you" {
		t.Errorf("client got %q", got)
	}
	// ...and server subscriptions see every client's messages, with the client's pipe.
	if err := cli.Send(testCtx(t), []byte("to server"), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	m, err := srv.Recv(testCtx(t), SubAll)
	if err != nil || string(m.Data) != "to server" || m.Pipe != peer || m.From != cli.LocalAddr() {
		t.Errorf("server got %q from %v on %p (%v), want the client's line on %p", m.Data, m.From, m.Pipe, err, peer)
	}
	if got := recvString(t, peer, SubAll); got != "to server" {
		t.Errorf("accepted pipe got %q", got)
	}
	if err := srv.Send(testCtx(t), []byte("x"), netip.MustParseAddrPort("127.0.0.1:9")); err == nil {
		t.Error("send to an unknown client succeeded")
	}
	if err := srv.Send(testCtx(t), []byte("x"), netip.AddrPort{}); !errors.Is(err, ErrNoDest) {
		t.Errorf("server send without destination: %v, want ErrNoDest", err)
	}
	if _, err := cli.Accept(testCtx(t)); !errors.Is(err, ErrNotServer) {
		t.Errorf("accept on a client: %v, want ErrNotServer", err)
	}
}

func TestSubscriptions(t *testing.T) {
	srv := mustListen(t, UDP, lo4)
	a := mustOpen(t, UDP, srv.LocalAddr())
	b := mustOpen(t, UDP, srv.LocalAddr())

	// The clients are bound to 0.0.0.0; the server sees them as 127.0.0.1.
	seenAs := func(p *Pipe) string { return fmt.Sprintf("127.0.0.1:%d", p.LocalAddr().Port()) }
	pong := MustSub("^PONG", "")
	fromA := MustSub("", seenAs(a))
	fromAnyPortOfLo := MustSub("", "127.0.0.1")
	pongFromB := MustSub("^PONG", seenAs(b))
	for _, s := range []Sub{pong, fromA, fromAnyPortOfLo, pongFromB, pong} {
		srv.Subscribe(s) // subscribing twice to pong is harmless
	}

	send := func(p *Pipe, msg string) {
		if err := p.Send(testCtx(t), []byte(msg), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
	}
	send(a, "PONG 1")
	send(b, "PING 2")
	send(b, "PONG 3")

	want := map[Sub][]string{
		pong:            {"PONG 1", "PONG 3"},
		fromA:           {"PONG 1"},
		fromAnyPortOfLo: {"PONG 1", "PING 2", "PONG 3"},
		pongFromB:       {"PONG 3"},
	}
	for sub, msgs := range want {
		for _, w := range msgs {
			// Datagrams from two sockets may interleave; order holds per sender.
			if got := recvString(t, srv, sub); got != w {
				t.Errorf("%v: got %q, want %q", sub, got, w)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if m, err := srv.Recv(ctx, sub); err == nil {
			t.Errorf("%v: unexpected extra message %q", sub, m.Data)
		}
		cancel()
	}

	srv.Unsubscribe(pong)
	if _, err := srv.Recv(testCtx(t), pong); !errors.Is(err, ErrNotSubscribed) {
		t.Errorf("recv after unsubscribe: %v, want ErrNotSubscribed", err)
	}
	// The server had no default subscription (no destination).
	if _, err := srv.Recv(testCtx(t), SubAll); !errors.Is(err, ErrNotSubscribed) {
		t.Errorf("server default subscription: %v, want ErrNotSubscribed", err)
	}
}

func TestSubscriptionCopiesAreIndependent(t *testing.T) {
	srv := mustListen(t, UDP, lo4)
	cli := mustOpen(t, UDP, srv.LocalAddr())
	s1, s2 := MustSub("abc", ""), MustSub("b", "")
	srv.Subscribe(s1)
	srv.Subscribe(s2)
	if err := cli.Send(testCtx(t), []byte("abc"), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if recvString(t, srv, s1) != "abc" || recvString(t, srv, s2) != "abc" {
		t.Error("message not in both matching queues")
	}
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	srv := mustListen(t, TCP, lo4, WithFraming(Frames))
	cli := mustOpen(t, TCP, srv.LocalAddr(), WithFraming(Frames), WithQueueSize(3))
	peer, err := srv.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := peer.Send(testCtx(t), []byte{byte('0' + i)}, netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return cli.Stats().Received == 10 })
	for _, want := range []string{"7", "8", "9"} {
		if got := recvString(t, cli, SubAll); got != want {
			t.Errorf("got %q, want %q (oldest dropped first)", got, want)
		}
	}
	if st := cli.Stats(); st.Dropped != 7 || st.Queued != 0 {
		t.Errorf("stats = %+v, want 7 dropped and nothing queued", st)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHandlers(t *testing.T) {
	srv := mustListen(t, TCP, lo4, WithFraming(Lines))
	var got []string
	var mu sync.Mutex
	record := func(tag string) MsgHandler {
		return func(msg []byte, _ netip.AddrPort, _ *Pipe) {
			mu.Lock()
			got = append(got, tag+":"+string(msg))
			mu.Unlock()
		}
	}
	cli := mustOpen(t, TCP, srv.LocalAddr(), WithFraming(Lines), WithMsgHandler(record("opt")))
	id := cli.AddMsgHandler(record("added"))
	peer, err := srv.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	send := func(s string) {
		if err := peer.Send(testCtx(t), []byte(s), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		recvString(t, cli, SubAll) // handlers ran before the message was queued
	}
	send("one")
	cli.RemoveMsgHandler(id)
	send("two")
	mu.Lock()
	if want := "opt:one added:one opt:two"; strings.Join(got, " ") != want {
		t.Errorf("handler calls = %q, want %q", strings.Join(got, " "), want)
	}
	mu.Unlock()

	// End handlers: the peer closing ends the client with io.EOF, once.
	ended := make(chan error, 2)
	cli.AddEndHandler(func(p *Pipe, err error) { ended <- err })
	removed := cli.AddEndHandler(func(*Pipe, error) { t.Error("removed end handler ran") })
	cli.RemoveEndHandler(removed)
	peer.Close()
	if err := <-ended; !errors.Is(err, io.EOF) {
		t.Errorf("end reason = %v, want io.EOF", err)
	}
	<-cli.Done()
	if _, err := cli.Recv(testCtx(t), SubAll); !errors.Is(err, io.EOF) {
		t.Errorf("recv after the peer closed: %v, want io.EOF", err)
	}
	// Added after the end, it runs at once.
	cli.AddEndHandler(func(p *Pipe, err error) { ended <- err })
	if err := <-ended; !errors.Is(err, io.EOF) {
		t.Errorf("late end handler got %v", err)
	}
}

func TestServerEndHandlerSeesClients(t *testing.T) {
	ends := make(chan *Pipe, 4)
	srv := mustListen(t, TCP, lo4, WithEndHandler(func(p *Pipe, err error) { ends <- p }))
	cli := mustOpen(t, TCP, srv.LocalAddr())
	peer, err := srv.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if got := <-ends; got != peer {
		t.Errorf("server end handler got %p, want the client's pipe %p", got, peer)
	}
	waitFor(t, func() bool { return len(srv.Clients()) == 0 })
	srv.Close()
	if got := <-ends; got != srv {
		t.Errorf("server end handler got %p, want the server %p", got, srv)
	}
}

func TestLinkRelays(t *testing.T) {
	// client X -> front server (pipe A) <=> pipe B -> echo server Y
	y := mustListen(t, TCP, lo4, WithFraming(Frames), WithMsgHandler(echo))
	front := mustListen(t, TCP, lo4, WithFraming(Frames))
	x := mustOpen(t, TCP, front.LocalAddr(), WithFraming(Frames))
	a, err := front.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, TCP, y.LocalAddr(), WithFraming(Frames))
	unlink := Link(a, b)
	for i := range 5 {
		want := fmt.Sprintf("relayed %d", i)
		if err := x.Send(testCtx(t), []byte(want), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		if got := recvString(t, x, SubAll); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	unlink()
	unlink() // idempotent
	if err := x.Send(testCtx(t), []byte("not relayed"), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if got := recvString(t, a, SubAll); got == "" {
		t.Fatal("a received nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if m, err := x.Recv(ctx, SubAll); err == nil {
		t.Errorf("message relayed after unlink: %q", m.Data)
	}
}

func TestLinkEndsWithPipe(t *testing.T) {
	srv := mustListen(t, UDP, lo4)
	a := mustOpen(t, UDP, srv.LocalAddr())
	b := mustOpen(t, UDP, srv.LocalAddr())
	Link(a, b)
	a.Close()
	waitFor(t, func() bool {
		l := b.enders.Load()
		return len(*b.handlerList()) == 0 && (l == nil || len(*l) == 0)
	})
	// Linking an already ended pipe unlinks at once.
	Link(a, b)
	if n := len(*b.handlerList()); n != 0 {
		t.Errorf("b keeps %d handlers after linking to an ended pipe", n)
	}
}

func TestDedup(t *testing.T) {
	srv := mustListen(t, UDP, lo4, WithDedup(0, nil))
	srv.Subscribe(SubAll)
	cli := mustOpen(t, UDP, srv.LocalAddr())
	for _, m := range []string{"a", "a", "b", "a"} {
		if err := cli.Send(testCtx(t), []byte(m), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { s := srv.Stats(); return s.Received+s.Duplicates == 4 })
	if st := srv.Stats(); st.Received != 2 || st.Duplicates != 2 {
		t.Errorf("stats = %+v, want 2 received and 2 duplicates", st)
	}

	// With an id function only the id counts: "7:x" and "7:y" share id 7.
	byID := mustListen(t, UDP, lo4, WithDedup(2, func(msg []byte) []byte {
		id, _, ok := bytes.Cut(msg, []byte(":"))
		if !ok {
			return nil // no id: always delivered
		}
		return id
	}))
	cli2 := mustOpen(t, UDP, byID.LocalAddr())
	for _, m := range []string{"7:x", "7:y", "noid", "noid", "8:z", "9:z", "7:again"} {
		if err := cli2.Send(testCtx(t), []byte(m), netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
	}
	// "7:again" passes: with room for 2 ids, 7 was forgotten after 8 and 9.
	waitFor(t, func() bool { s := byID.Stats(); return s.Received+s.Duplicates == 7 })
	if st := byID.Stats(); st.Received != 6 || st.Duplicates != 1 {
		t.Errorf("stats = %+v, want 6 received and 1 duplicate", st)
	}
}

func TestFramingAcrossChunkBoundaries(t *testing.T) {
	for _, tc := range []struct {
		framing Framing
		wire    []byte
		want    []string
	}{
		{Frames, append(append(frame("first"), frame("")...), frame(strings.Repeat("x", 200000))...), []string{"first", "", strings.Repeat("x", 200000)}},
		{Lines, []byte("one\r\ntwo\n\n" + strings.Repeat("y", 100000) + "\nlast"), []string{"one", "two", "", strings.Repeat("y", 100000), "last"}},
	} {
		t.Run(tc.framing.String(), func(t *testing.T) {
			got := make(chan string, len(tc.want))
			srv := mustListen(t, TCP, lo4, WithFraming(tc.framing), WithMsgHandler(func(msg []byte, _ netip.AddrPort, _ *Pipe) {
				got <- string(msg)
			}))
			c, err := net.Dial("tcp", srv.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			// Dribble the stream out in odd-sized pieces so boundaries fall everywhere.
			for rest, n := tc.wire, 1; len(rest) > 0; n = n*3 + 1 {
				k := min(n, len(rest))
				if _, err := c.Write(rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
				time.Sleep(100 * time.Microsecond)
			}
			c.Close()
			for i, w := range tc.want {
				select {
				case g := <-got:
					if g != w {
						t.Errorf("message %d: got %d bytes %.20q, want %d bytes %.20q", i, len(g), g, len(w), w)
					}
				case <-time.After(testTimeout):
					t.Fatalf("message %d never arrived", i)
				}
			}
		})
	}
}

func frame(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

func TestRawChunksLoseNothing(t *testing.T) {
	srv := mustListen(t, TCP, lo4)
	cli := mustOpen(t, TCP, srv.LocalAddr())
	peer, err := srv.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB in many chunks
	go func() {
		cli.Send(context.Background(), want, netip.AddrPort{})
		cli.Close()
	}()
	var got []byte
	for {
		m, err := peer.Recv(testCtx(t), SubAll)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Data...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got %d bytes, want %d identical bytes", len(got), len(want))
	}
}

func TestBadInput(t *testing.T) {
	ctx := testCtx(t)
	t.Run("unknown host", func(t *testing.T) {
		r := startDNS(t, false, map[string]netip.Addr{"known.p2pd.test": netip.MustParseAddr("127.0.0.1")})
		_, err := Open(ctx, TCP, "nosuch.p2pd.test:80", WithResolver(r))
		if err == nil || !strings.Contains(err.Error(), `cannot resolve "nosuch.p2pd.test": no such host`) {
			t.Errorf("err = %v, want a no-such-host error naming the host", err)
		}
	})
	t.Run("host name resolves", func(t *testing.T) {
		srv := mustListen(t, UDP, lo4, WithMsgHandler(echo))
		r := startDNS(t, false, map[string]netip.Addr{"known.p2pd.test": netip.MustParseAddr("127.0.0.1")})
		cli, err := Open(ctx, UDP, fmt.Sprintf("known.p2pd.test:%d", srv.LocalAddr().Port()), WithResolver(r))
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		if cli.RemoteAddr() != srv.LocalAddr() {
			t.Errorf("resolved to %v, want %v", cli.RemoteAddr(), srv.LocalAddr())
		}
	})
	t.Run("DNS timeout", func(t *testing.T) {
		r := startDNS(t, true, nil)
		start := time.Now()
		_, err := Open(ctx, TCP, "slow.p2pd.test:80", WithResolver(r), WithDNSTimeout(200*time.Millisecond))
		if err == nil || !strings.Contains(err.Error(), "no DNS answer within 200ms") {
			t.Errorf("err = %v, want a DNS timeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("lookup took %v despite a 200ms budget", d)
		}
	})
	t.Run("refused port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = Open(ctx, TCP, addr)
		if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), addr) {
			t.Errorf("err = %v, want connection refused naming %s", err, addr)
		}
	})
	t.Run("bad destinations", func(t *testing.T) {
		for _, dest := range []string{"no-port", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:http"} {
			if _, err := Open(ctx, TCP, dest); err == nil {
				t.Errorf("Open(%q) succeeded", dest)
			}
		}
		if _, err := Open(ctx, UDP, "[::1]:53", WithLocal(netip.MustParseAddrPort("127.0.0.1:0"))); err == nil {
			t.Error("IPv6 destination from an IPv4 local address succeeded")
		}
		if _, err := Listen(ctx, TCP, netip.AddrPort{}); err == nil {
			t.Error("Listen without an address succeeded")
		}
		if _, err := Open(ctx, TCP, "127.0.0.1:1", WithQueueSize(0)); err == nil {
			t.Error("queue size 0 accepted")
		}
	})
	t.Run("invalid patterns", func(t *testing.T) {
		if _, err := NewSub("([unclosed", ""); err == nil || !strings.Contains(err.Error(), "invalid message pattern") {
			t.Errorf("bad regexp: %v", err)
		}
		for _, p := range []string{"10.0.0.1:port", "300.1.1.1", "10.0.0.0/99", "[::1:5"} {
			if _, err := NewSub("", p); err == nil {
				t.Errorf("address pattern %q accepted", p)
			}
		}
	})
	t.Run("oversize frame", func(t *testing.T) {
		srv := endsWith(t, ErrFrameTooLarge, binary.BigEndian.AppendUint32(nil, 1<<30), // announces 1 GiB
			WithFraming(Frames), WithMaxFrame(1024))
		// The sender side refuses to send one at all.
		cli := mustOpen(t, TCP, srv.LocalAddr(), WithFraming(Frames), WithMaxFrame(1024))
		if err := cli.Send(ctx, make([]byte, 1025), netip.AddrPort{}); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("sending an oversize frame: %v", err)
		}
		if cli.Err() != nil {
			t.Errorf("a refused send ended the pipe: %v", cli.Err())
		}
	})
	t.Run("line too long", func(t *testing.T) {
		endsWith(t, ErrFrameTooLarge, bytes.Repeat([]byte("z"), 200000), WithFraming(Lines), WithMaxFrame(100))
	})
	t.Run("peer closes mid-frame", func(t *testing.T) {
		srv := mustListen(t, TCP, lo4, WithFraming(Frames))
		c, err := net.Dial("tcp", srv.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := srv.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(append(frame("whole"), frame("cut short")[:7]...))
		c.Close()
		if got := recvString(t, peer, SubAll); got != "whole" {
			t.Errorf("got %q before the cut, want the whole frame", got)
		}
		if _, err := peer.Recv(ctx, SubAll); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "3 of 9 bytes") {
			t.Errorf("recv after the cut: %v, want ErrTruncated (3 of 9 bytes)", err)
		}
	})
	t.Run("line with newline", func(t *testing.T) {
		srv := mustListen(t, TCP, lo4)
		cli := mustOpen(t, TCP, srv.LocalAddr(), WithFraming(Lines))
		if err := cli.Send(ctx, []byte("two\nlines"), netip.AddrPort{}); err == nil {
			t.Error("a line with a newline was sent")
		}
	})
	t.Run("send without destination", func(t *testing.T) {
		srv := mustListen(t, UDP, lo4)
		if err := srv.Send(ctx, []byte("x"), netip.AddrPort{}); !errors.Is(err, ErrNoDest) {
			t.Errorf("err = %v, want ErrNoDest", err)
		}
		if err := srv.Send(ctx, make([]byte, 70000), srv.LocalAddr()); err == nil {
			t.Error("oversize datagram sent")
		}
		cli := mustOpen(t, TCP, mustListen(t, TCP, lo4).LocalAddr())
		if err := cli.Send(ctx, []byte("x"), netip.MustParseAddrPort("127.0.0.1:9")); err == nil {
			t.Error("TCP send to a stranger succeeded")
		}
	})
}

// endsWith starts a TCP server with opts, sends it wire from a raw client
// and checks that the client's pipe on the server ends with want.
func endsWith(t *testing.T, want error, wire []byte, opts ...Option) *Pipe {
	t.Helper()
	ended := make(chan error, 1)
	srv := mustListen(t, TCP, lo4, append(opts, WithEndHandler(func(p *Pipe, err error) {
		if !p.IsServer() {
			ended <- err
		}
	}))...)
	c, err := net.Dial("tcp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(wire)
	if err := <-ended; !errors.Is(err, want) {
		t.Errorf("end reason = %v, want %v", err, want)
	}
	return srv
}

func TestSendObeysContext(t *testing.T) {
	// The peer never reads, so the socket buffers fill and Send must give up.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli := mustOpen(t, TCP, netip.MustParseAddrPort(l.Addr().String()))
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// 16 MiB outgrows loopback socket buffers; 1 s leaves time for the first
	// bytes to go out even on a loaded machine under the race detector.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = cli.Send(ctx, make([]byte, 16<<20), netip.AddrPort{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	// Part of the message went out, so the stream is unusable and the pipe ended.
	if !errors.Is(cli.Err(), context.DeadlineExceeded) {
		t.Errorf("pipe error = %v (send error %v)", cli.Err(), err)
	}

	// A context canceled before anything is written leaves the pipe usable.
	cli2 := mustOpen(t, TCP, netip.MustParseAddrPort(l.Addr().String()))
	dead, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := cli2.Send(dead, []byte("x"), netip.AddrPort{}); err == nil {
		// A tiny write may beat the cancellation; then it simply went out.
		t.Log("send raced ahead of cancellation")
	}
	if err := cli2.Send(context.Background(), []byte("still fine"), netip.AddrPort{}); err != nil {
		t.Errorf("pipe unusable after a canceled send: %v", err)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	srv := mustListen(t, TCP, lo4, WithFraming(Frames), WithMsgHandler(echo))
	var clients []*Pipe
	for range 5 {
		clients = append(clients, mustOpen(t, TCP, srv.LocalAddr(), WithFraming(Frames)))
	}
	waitFor(t, func() bool { return len(srv.Clients()) == 5 })
	udp := mustListen(t, UDP, lo6)
	udp.Subscribe(SubAll)

	// A Recv and an Accept waiting when Close comes must return ErrClosed.
	errs := make(chan error, 2)
	go func() { _, err := udp.Recv(context.Background(), SubAll); errs <- err }()
	go func() {
		srv.Accept(context.Background()) // the 5 queued clients first
		for {
			if _, err := srv.Accept(context.Background()); err != nil {
				errs <- err
				return
			}
		}
	}()
	udp.Close()
	srv.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("waiting call returned %v, want ErrClosed", err)
		}
	}
	for _, c := range clients {
		select {
		case <-c.Done():
		case <-time.After(testTimeout):
			t.Fatal("a client of the closed server is still running")
		}
		if !errors.Is(c.Err(), io.EOF) {
			t.Errorf("client ended with %v, want io.EOF", c.Err())
		}
	}
	if n := len(srv.Clients()); n != 0 {
		t.Errorf("closed server still lists %d clients", n)
	}
}

func TestCloseFromHandler(t *testing.T) {
	srv := mustListen(t, TCP, lo4, WithMsgHandler(func(_ []byte, _ netip.AddrPort, p *Pipe) {
		p.Close() // must not deadlock waiting for the reader running this handler
	}))
	cli := mustOpen(t, TCP, srv.LocalAddr())
	if err := cli.Send(testCtx(t), []byte("close yourself"), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cli.Done():
	case <-time.After(testTimeout):
		t.Fatal("handler's Close did not end the connection")
	}
}

func TestConcurrentSendersKeepFramesWhole(t *testing.T) {
	srv := mustListen(t, TCP, lo4, WithFraming(Frames), WithQueueSize(10000))
	srv.Subscribe(SubAll)
	cli := mustOpen(t, TCP, srv.LocalAddr(), WithFraming(Frames))
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte('a' + i)}, 3000+i)
			for range each {
				if err := cli.Send(context.Background(), msg, netip.AddrPort{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	counts := map[byte]int{}
	for range senders * each {
		m, err := srv.Recv(testCtx(t), SubAll)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) != 3000+int(m.Data[0]-'a') || bytes.Count(m.Data, m.Data[:1]) != len(m.Data) {
			t.Fatalf("interleaved frame: %d bytes starting %q", len(m.Data), m.Data[:1])
		}
		counts[m.Data[0]]++
	}
	var keys []string
	for k, n := range counts {
		if n != each {
			keys = append(keys, fmt.Sprintf("%c=%d", k, n))
		}
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		t.Errorf("wrong counts: %v", keys)
	}
}

func TestWrap(t *testing.T) {
	a, b := net.Pipe()
	pa, err := Wrap(a, WithFraming(Lines))
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	go b.Write([]byte("over net.Pipe\n"))
	if got := recvString(t, pa, SubAll); got != "over net.Pipe" {
		t.Errorf("got %q", got)
	}
	b.Close()

	uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4))
	if err != nil {
		t.Fatal(err)
	}
	srv := mustListen(t, UDP, lo4, WithMsgHandler(echo))
	pu, err := WrapPacket(uc, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pu.Close()
	pu.Send(testCtx(t), []byte("wrapped"), netip.AddrPort{})
	if got := recvString(t, pu, SubAll); got != "wrapped" {
		t.Errorf("got %q", got)
	}
	var counted atomic.Int32
	pu.AddEndHandler(func(*Pipe, error) { counted.Add(1) })
	pu.Close()
	pu.Close()
	if counted.Load() != 1 {
		t.Errorf("end handler ran %d times, want once", counted.Load())
	}

	// Any net.PacketConn works, not only UDP sockets (a TURN allocation is one).
	uc2, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4))
	if err != nil {
		t.Fatal(err)
	}
	pg, err := WrapPacket(opaquePacketConn{uc2}, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	pg.Send(testCtx(t), []byte("generic"), netip.AddrPort{})
	m, err := pg.Recv(testCtx(t), SubAll)
	if err != nil || string(m.Data) != "generic" || m.From != srv.LocalAddr() {
		t.Errorf("got %q from %v (%v), want the echo from %v", m.Data, m.From, err, srv.LocalAddr())
	}
}

// opaquePacketConn hides the concrete socket type behind net.PacketConn.
type opaquePacketConn struct{ net.PacketConn }

// TestSubRegexp: the seed's subscriptions match the sender's "ip:port"
// text with a regular expression.
func TestSubRegexp(t *testing.T) {
	v4 := netip.MustParseAddrPort("10.0.0.1:5000")
	v6 := netip.MustParseAddrPort("[fd00::2]:36859")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("10.0.0.1").As16()), 5000)
	for _, c := range []struct {
		msg, from string
		data      string
		sender    netip.AddrPort
		want      bool
	}{
		{"", `^10\.0\.0\.1:`, "x", v4, true},
		{"", `^10\.0\.0\.1:`, "x", mapped, true},
		{"", `:5000$`, "x", v4, true},
		{"", `^10\.0\.0\.2:`, "x", v4, false},
		{"", `^fd00::2:36859$`, "x", v6, true},
		{"^he", `10\.0`, "hello", v4, true},
		{"^he", `10\.0`, "bye", v4, false},
	} {
		s, err := NewSubRegexp(c.msg, c.from)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Match([]byte(c.data), c.sender); got != c.want {
			t.Errorf("%v matching %q from %v: %v", s, c.data, c.sender, got)
		}
	}
	if _, err := NewSubRegexp("", "(["); err == nil || !strings.Contains(err.Error(), "sender pattern") {
		t.Errorf("bad sender regex: %v", err)
	}
	if s, _ := NewSubRegexp("", ""); s.id() != SubAll.id() {
		t.Error("blank patterns are not SubAll")
	}
}
