package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/pipe"
	"p2pd/netcore/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loopNode starts a node on loopback only, with no servers.
func loopNode(t *testing.T, opt Options) *Node {
	t.Helper()
	opt.Loopback = true
	opt.Config = config.Config{}
	if opt.Identity == nil {
		opt.Identity, _ = identity.New()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func connectCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConnectEchoAndPipe(t *testing.T) {
	a, b := loopNode(t, Options{}), loopNode(t, Options{})
	var events []Event
	res, err := a.Connect(connectCtx(t), b.Address(), ConnectOptions{Progress: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != Direct || !res.Session.Peer().Equal(b.Identity().Public) {
		t.Errorf("won by %s with peer %x", res.Strategy, res.Session.Peer())
	}
	if len(events) != len(res.Events) || events[len(events)-1].State == "" {
		t.Errorf("progress saw %d events, result has %d", len(events), len(res.Events))
	}
	if e := find(res.Events, Reverse, Skipped); e == nil || !strings.Contains(e.Reason, "signaling") {
		t.Errorf("reverse should be skipped for want of signaling: %+v", res.Events)
	}

	// echo/1 echoes bytes.
	st, err := res.Session.Open(connectCtx(t), EchoProto)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo/1: %q, %v", buf, err)
	}
	st.Close()

	// msg/1: ECHO is answered, other messages reach the peer's handlers.
	got := make(chan string, 1)
	b.OnMessage(func(msg []byte, peer ed25519.PublicKey, p *pipe.Pipe) {
		if peer.Equal(a.Identity().Public) {
			got <- string(msg)
		}
	})
	p, err := OpenPipe(connectCtx(t), res.Session)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Send(connectCtx(t), []byte("ECHO hello over msg/1"), netip.AddrPort{})
	m, err := p.Recv(connectCtx(t), pipe.SubAll)
	if err != nil || string(m.Data) != "hello over msg/1" {
		t.Errorf("ECHO: %q, %v", m.Data, err)
	}
	p.Send(connectCtx(t), []byte("just a message"), netip.AddrPort{})
	select {
	case s := <-got:
		if s != "just a message" {
			t.Errorf("handler got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("the message handler never ran")
	}
}

func find(events []Event, strategy string, state State) *Event {
	for i := range events {
		if events[i].Strategy == strategy && events[i].State == state {
			return &events[i]
		}
	}
	return nil
}

func TestConnectToSelf(t *testing.T) {
	a := loopNode(t, Options{})
	res, err := a.Connect(connectCtx(t), a.Address(), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPipe(connectCtx(t), res.Session)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Send(connectCtx(t), []byte("ECHO me"), netip.AddrPort{})
	if m, err := p.Recv(connectCtx(t), pipe.SubAll); err != nil || string(m.Data) != "me" {
		t.Errorf("self echo: %q, %v", m.Data, err)
	}
}

// TestManInTheMiddle: an address carrying B's key but leading to M must
// fail, naming the key mismatch.
func TestManInTheMiddle(t *testing.T) {
	b, m := loopNode(t, Options{}), loopNode(t, Options{})
	a := loopNode(t, Options{})
	forged := *m.Address()
	forged.Key = b.Identity().Public
	_, err := a.Connect(connectCtx(t), &forged, ConnectOptions{Strategies: []string{Direct}})
	if err == nil || !errors.Is(err, identity.ErrWrongPeer) && !strings.Contains(err.Error(), "different key") {
		t.Errorf("err = %v, want a key mismatch", err)
	}
}

func TestRefusedPeer(t *testing.T) {
	a := loopNode(t, Options{})
	b := loopNode(t, Options{Accept: func(ed25519.PublicKey) bool { return false }})
	res, err := a.Connect(connectCtx(t), b.Address(), ConnectOptions{Strategies: []string{Direct}})
	if err == nil {
		// The handshake completes before B looks at the key; B then hangs up.
		_, err = res.Session.Open(connectCtx(t), EchoProto)
	}
	if err == nil {
		t.Error("a refused peer got a working session")
	}
}

func TestConnectErrors(t *testing.T) {
	a := loopNode(t, Options{})
	if _, err := a.Connect(connectCtx(t), a.Address(), ConnectOptions{Strategies: []string{"telepathy"}}); err == nil {
		t.Error("an unknown strategy was accepted")
	}
	// A peer with IPv4 only on an address nothing listens on.
	other, _ := identity.New()
	dead := &addr.Address{Key: other.Public, Interfaces: []addr.Interface{{V4: &addr.Endpoint{
		External: netip.MustParseAddr("127.0.0.1"), Internal: netip.MustParseAddr("127.0.0.1"), Port: 1}}}}
	res, err := a.Connect(connectCtx(t), dead, ConnectOptions{})
	if err == nil || res == nil || find(res.Events, Direct, Failed) == nil {
		t.Errorf("connect to a dead address: %v, events %+v", err, res)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	a := loopNode(t, Options{})
	b := loopNode(t, Options{})
	res, err := a.Connect(connectCtx(t), b.Address(), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	select {
	case <-res.Session.Done():
	case <-time.After(5 * time.Second):
		t.Error("closing a node left its sessions open")
	}
}

// TestOnSession: watchers hear of incoming and outgoing sessions once
// each, a late watcher of those already up, and a stopped one of none.
func TestOnSession(t *testing.T) {
	a, b := loopNode(t, Options{}), loopNode(t, Options{})
	watch := func(n *Node) (chan *session.Session, func()) {
		ch := make(chan *session.Session, 10)
		return ch, n.OnSession(func(s *session.Session) { ch <- s })
	}
	next := func(ch chan *session.Session) *session.Session {
		t.Helper()
		select {
		case s := <-ch:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no session reported")
			return nil
		}
	}
	// One address to dial, so one session per connect (a losing dial
	// would be a session too).
	to := *b.Address()
	to.Interfaces = []addr.Interface{{V4: b.Address().Interfaces[0].V4}}
	inB, stopB := watch(b)
	outA, stopA := watch(a)
	defer stopA()
	res, err := a.Connect(connectCtx(t), &to, ConnectOptions{Strategies: []string{Direct}})
	if err != nil {
		t.Fatal(err)
	}
	if s := next(inB); s.PeerID() != a.ID() {
		t.Errorf("B heard of a session with %s, want %s", s.PeerID(), a.ID())
	}
	if s := next(outA); s != res.Session {
		t.Errorf("A heard of another session than the one Connect made")
	}

	late, stopLate := watch(b)
	defer stopLate()
	if len(late) != 1 || (<-late).PeerID() != a.ID() {
		t.Error("a late watcher did not hear of the session already up")
	}
	stopB()
	if _, err := a.Connect(connectCtx(t), &to, ConnectOptions{Strategies: []string{Direct}}); err != nil {
		t.Fatal(err)
	}
	next(late)
	next(outA)
	if len(inB) != 0 || len(outA) != 0 {
		t.Errorf("sessions reported twice, or to a stopped watcher: %d, %d", len(inB), len(outA))
	}
}

// TestPeerAddress: addr/1 exchanges the two nodes' current addresses
// over the session: the opener gets the peer's, the peer hears the
// opener's. An answer with another key is refused.
func TestPeerAddress(t *testing.T) {
	a, b, c := loopNode(t, Options{}), loopNode(t, Options{}), loopNode(t, Options{})
	heard := make(chan string, 1)
	stop := b.OnPeerAddress(func(peer ed25519.PublicKey, told *addr.Address) {
		if peer.Equal(a.Identity().Public) {
			text, _ := told.Encode()
			heard <- text
		}
	})
	defer stop()
	res, err := a.Connect(connectCtx(t), b.Address(), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.PeerAddress(connectCtx(t), res.Session)
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := got.Encode(); text != addrText(t, b) {
		t.Errorf("a got %q; want %q", text, addrText(t, b))
	}
	select {
	case text := <-heard:
		if text != addrText(t, a) {
			t.Errorf("b heard %q; want %q", text, addrText(t, a))
		}
	case <-time.After(5 * time.Second):
		t.Error("b did not hear a's address")
	}
	// b answers with c's address, as a peer that lies would.
	b.Handle(AddrProto, func(_ context.Context, _ *session.Session, st net.Conn) {
		io.CopyN(io.Discard, st, 2+int64(len(addrText(t, a))))
		io.WriteString(st, addrText(t, c))
	})
	if _, err := a.PeerAddress(connectCtx(t), res.Session); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Errorf("an address of another key: %v", err)
	}
}

func addrText(t *testing.T, n *Node) string {
	t.Helper()
	text, err := n.Address().Encode()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestDirectMakesOneSession: dialing a peer at several addresses that all
// reach it, over a slow path, gives the peer one session, not one per
// address: a session the dialer closes as a loser must not be the one the
// peer takes (say, as the answer to a reverse connect).
func TestDirectMakesOneSession(t *testing.T) {
	a, b := loopNode(t, Options{}), loopNode(t, Options{})
	at := b.Address().Interfaces[0].V4
	real := netip.AddrPortFrom(at.Internal, at.Port)
	to := *b.Address()
	to.Interfaces = nil
	loop := netip.MustParseAddr("127.0.0.1")
	for range 2 {
		ep := &addr.Endpoint{Internal: loop, External: loop, Port: slowProxy(t, loop, real, 25*time.Millisecond)}
		to.Interfaces = append(to.Interfaces, addr.Interface{V4: ep})
	}
	in := make(chan *session.Session, 20)
	defer b.OnSession(func(s *session.Session) { in <- s })()
	const connects = 3
	for range connects {
		res, err := a.Connect(connectCtx(t), &to, ConnectOptions{Strategies: []string{Direct}})
		if err != nil {
			t.Fatal(err)
		}
		res.Session.Close()
	}
	time.Sleep(300 * time.Millisecond) // a second handshake would end by now
	if len(in) != connects {
		t.Errorf("B served %d sessions for %d connects", len(in), connects)
	}
}

// TestTurns: a handshake that succeeds keeps the turn; one that fails
// passes it at once; one that runs past the stagger lets the next start
// beside it, and not before.
func TestTurns(t *testing.T) {
	ctx := connectCtx(t)
	ran := func(tr *turns, ctx context.Context) bool {
		started := false
		tr.take(ctx, func() error { started = true; return nil })
		return started
	}
	t.Run("success keeps it", func(t *testing.T) {
		tr := newTurns(2, time.Hour)
		tr.take(ctx, func() error { return nil })
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if ran(tr, short) {
			t.Error("a handshake started after one succeeded")
		}
	})
	t.Run("failure passes it", func(t *testing.T) {
		tr := newTurns(2, time.Hour)
		tr.take(ctx, func() error { return errors.New("wrong peer") })
		if !ran(tr, ctx) {
			t.Error("the next handshake never started after one failed")
		}
	})
	t.Run("slow passes it", func(t *testing.T) {
		const stagger = 30 * time.Millisecond
		tr := newTurns(2, stagger)
		first := make(chan time.Time)
		release := make(chan struct{})
		go tr.take(ctx, func() error {
			first <- time.Now()
			<-release
			return nil
		})
		began := <-first
		var after time.Duration
		tr.take(ctx, func() error { after = time.Since(began); return nil })
		close(release)
		if after < stagger {
			t.Errorf("the next handshake started %v after a slow one, before the %v stagger", after, stagger)
		}
	})
}

// slowProxy forwards connections on host to to, delaying each chunk back
// by delay; it returns its port.
func slowProxy(t *testing.T, host netip.Addr, to netip.AddrPort, delay time.Duration) uint16 {
	t.Helper()
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(host, 0)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to.String())
			if err != nil {
				c.Close()
				continue
			}
			wg.Go(func() { io.Copy(up, c); up.Close() })
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := up.Read(buf)
					if err != nil {
						return
					}
					time.Sleep(delay)
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// TestInboundBounds: peers that connect unasked get bounded room. One
// peer keeps at most maxPeerSessions sessions (a new one ends its oldest),
// one source maxSourceSessions and all peers together maxInbound (more
// are refused), and at most maxHandshakes connections may sit in the
// handshake at once, maxSourceHandshakes from one source.
func TestInboundBounds(t *testing.T) {
	b := loopNode(t, Options{})
	ep := b.Address().Interfaces[0].V4
	at := netip.AddrPortFrom(ep.Internal, ep.Port).String()
	// from connects to B from a loopback address of its own.
	from := func(t *testing.T, local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dialFrom := func(t *testing.T, local string, id *identity.Identity) *session.Session {
		t.Helper()
		s, err := session.Client(connectCtx(t), from(t, local), id, b.Identity().Public)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// until waits for B's count to say true.
	until := func(t *testing.T, what string, ok func(in *inbound) bool) {
		t.Helper()
		for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
			b.inbound.mu.Lock()
			done := ok(b.inbound)
			b.inbound.mu.Unlock()
			if done {
				return
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("B never had %s", what)
			}
		}
	}
	none := func(t *testing.T) {
		until(t, "no sessions left from before", func(in *inbound) bool { return in.total == 0 })
	}
	ends := func(s *session.Session) bool {
		select {
		case <-s.Done():
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
	alive := func(s *session.Session) bool {
		st, err := s.Open(connectCtx(t), EchoProto)
		if err != nil {
			return false
		}
		defer st.Close()
		st.Write([]byte("x"))
		_, err = io.ReadFull(st, make([]byte, 1))
		return err == nil
	}
	closedAtOnce := func(c net.Conn) bool {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || errors.Is(err, syscall.ECONNRESET)
	}
	newID := func() *identity.Identity {
		id, _ := identity.New()
		return id
	}

	t.Run("one peer", func(t *testing.T) {
		id := newID()
		var ss []*session.Session
		for i := range maxPeerSessions + 2 {
			ss = append(ss, dialFrom(t, "127.0.0.1", id))
			// In order, so the first two are the oldest.
			until(t, "the session counted", func(in *inbound) bool { return len(in.byPeer[id.ID()]) == min(i+1, maxPeerSessions) })
		}
		for i, s := range ss {
			if i < 2 && !ends(s) || i >= 2 && !alive(s) {
				t.Errorf("session %d of %d: the first two should end, the others stay up", i+1, len(ss))
			}
		}
	})

	t.Run("one source", func(t *testing.T) {
		none(t)
		for range maxSourceSessions {
			dialFrom(t, "127.0.0.2", newID())
		}
		until(t, "every session counted", func(in *inbound) bool { return in.total == maxSourceSessions })
		if !ends(dialFrom(t, "127.0.0.2", newID())) {
			t.Errorf("a session beyond %d from one address was served", maxSourceSessions)
		}
		if !alive(dialFrom(t, "127.0.0.3", newID())) {
			t.Error("a session from another address was refused")
		}
	})

	t.Run("all peers", func(t *testing.T) {
		none(t)
		var ss []*session.Session
		for i := range maxInbound {
			ss = append(ss, dialFrom(t, fmt.Sprintf("127.0.0.%d", 10+i/maxSourceSessions), newID()))
		}
		until(t, "every session counted", func(in *inbound) bool { return in.total == maxInbound })
		if !ends(dialFrom(t, "127.0.0.100", newID())) {
			t.Errorf("a session beyond %d was served", maxInbound)
		}
		if !alive(ss[0]) || !alive(ss[len(ss)-1]) {
			t.Error("the sessions within the bound did not stay up")
		}
		// A peer B asked to connect back (a reverse connect) still gets in.
		asked := newID()
		ch := make(chan *session.Session, 1)
		b.mu.Lock()
		b.waiting[asked.ID()] = append(b.waiting[asked.ID()], ch)
		b.mu.Unlock()
		s := dialFrom(t, "127.0.0.100", asked)
		select {
		case got := <-ch:
			if !alive(s) || !got.Peer().Equal(asked.Public) {
				t.Error("the asked-for session did not stay up")
			}
		case <-time.After(5 * time.Second):
			t.Error("the asked-for session was refused with the others")
		}
	})

	t.Run("handshakes", func(t *testing.T) {
		var silent []net.Conn
		defer func() {
			for _, c := range silent {
				c.Close()
			}
		}()
		hold := func(local string, n int) {
			for range n {
				silent = append(silent, from(t, local))
			}
		}
		hold("127.0.0.2", maxSourceHandshakes)
		until(t, "the silent handshakes under way", func(in *inbound) bool { return in.handshakeTotal == maxSourceHandshakes })
		if !closedAtOnce(from(t, "127.0.0.2")) {
			t.Errorf("a connection beyond %d handshakes from one address was kept", maxSourceHandshakes)
		}
		id := newID()
		dialFrom(t, "127.0.0.1", id).Close() // another address gets in
		for i := 3; len(silent) < maxHandshakes; i++ {
			hold(fmt.Sprintf("127.0.0.%d", i), min(maxSourceHandshakes, maxHandshakes-len(silent)))
		}
		until(t, "every slot taken", func(in *inbound) bool { return in.handshakeTotal == maxHandshakes })
		if !closedAtOnce(from(t, "127.0.0.100")) {
			t.Errorf("a connection beyond %d handshakes was kept", maxHandshakes)
		}
		for _, c := range silent {
			c.Close()
		}
		until(t, "the slots free", func(in *inbound) bool { return in.handshakeTotal == 0 })
		dialFrom(t, "127.0.0.1", id).Close()
	})
}

// TestSourceOf: one IPv4 address, or one IPv6 /64, is one source.
func TestSourceOf(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"192.0.2.7:4000", "192.0.2.7/32"},
		{"[::ffff:192.0.2.7]:4000", "192.0.2.7/32"},
		{"[2001:db8:1:2:aaaa::1]:4000", "2001:db8:1:2::/64"},
	} {
		tcp := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(c.addr))
		if got := sourceOf(tcp).String(); got != c.want {
			t.Errorf("sourceOf(%s) = %s, want %s", c.addr, got, c.want)
		}
	}
}

// TestUnreadAnswersDropTheStream: a peer that writes to echo/1 and never
// reads the echo loses the stream once the handler's write has waited
// answerPatience, so what it sent does not sit in the node for good; a
// peer that reads, late but within it, keeps the stream.
func TestUnreadAnswersDropTheStream(t *testing.T) {
	defer func(p time.Duration) { answerPatience = p }(answerPatience)
	answerPatience = 2 * time.Second
	a, b := loopNode(t, Options{}), loopNode(t, Options{})
	res, err := a.Connect(connectCtx(t), b.Address(), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Session.Close()

	// Past the stream's window and the handler's: the handler's write of
	// the echo blocks, and then so do the peer's writes.
	st, err := res.Session.Open(connectCtx(t), EchoProto)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wrote := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if _, err := st.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
	}()
	select {
	case err := <-wrote:
		t.Logf("the writer stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("a peer that never reads its echo still holds the stream")
	}

	// A peer that starts reading within the patience keeps the stream,
	// though the handler's write waited for it.
	st2, err := res.Session.Open(connectCtx(t), EchoProto)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	const size = 48 << 20
	go func() {
		st2.Write(make([]byte, size))
		wrote <- nil
	}()
	time.Sleep(answerPatience / 4)
	st2.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, io.LimitReader(st2, size)); n != size {
		t.Errorf("a peer that read late got %d of %d bytes echoed: %v", n, size, err)
	}
	<-wrote
}

// TestLongAnswerThatMoves: one big write of an answer that takes longer
// than answerPatience in all, to a peer that reads steadily but slowly,
// is not dropped: the patience is for each piece.
func TestLongAnswerThatMoves(t *testing.T) {
	defer func(p time.Duration) { answerPatience = p }(answerPatience)
	answerPatience = 2 * time.Second
	a, b := loopNode(t, Options{}), loopNode(t, Options{})
	const size = 48 << 20
	wrote := make(chan error, 1)
	b.Handle("big/1", func(_ context.Context, _ *session.Session, st net.Conn) {
		_, err := st.Write(make([]byte, size))
		wrote <- err
	})
	res, err := a.Connect(connectCtx(t), b.Address(), ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Session.Close()
	st, err := res.Session.Open(connectCtx(t), "big/1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	buf := make([]byte, 1<<20)
	var got int
	for got < size {
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.ReadFull(st, buf)
		got += n
		if err != nil {
			t.Fatalf("after %d of %d bytes, in %v: %v", got, size, time.Since(start), err)
		}
		time.Sleep(100 * time.Millisecond) // 10 MiB/s
	}
	if err := <-wrote; err != nil {
		t.Errorf("the handler's write: %v", err)
	}
	if took := time.Since(start); took < answerPatience {
		t.Logf("the answer took %v, less than the patience: the test proves little on this machine", took)
	}
}
