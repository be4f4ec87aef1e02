package presence

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"p2pd/chat"
	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/netcore/node/nodetest"
	"p2pd/transfer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait for the Keeper to act: generous, since it
// is a bound on a loopback round, not a measure of speed.
const waitFor = 20 * time.Second

// bob is the friend: a loopback node with a fixed identity, chat history
// and download folder, which can go away and come back.
type bob struct {
	t     *testing.T
	id    *identity.Identity
	port  uint16
	home  string
	n     *node.Node
	store *chat.Store
	// decide, if set, answers offers (else every offer is taken).
	decide func(identity.ID, transfer.Offer) bool
}

func newBob(t *testing.T) *bob {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	b := &bob{t: t, id: id, home: t.TempDir()}
	b.start(0)
	b.port = b.n.Address().Interfaces[0].V4.Port
	t.Cleanup(b.stop)
	return b
}

// start brings Bob's node up on port (0: any).
func (b *bob) start(port uint16) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Options{Loopback: true, Config: config.Config{}, Identity: b.id, Port: port})
	if err != nil {
		b.t.Fatal(err)
	}
	store, err := chat.OpenStore(filepath.Join(b.home, "chat"))
	if err != nil {
		n.Close()
		b.t.Fatal(err)
	}
	n.Handle(chat.Proto, chat.New(store, nil).Handle)
	decide := b.decide
	if decide == nil {
		decide = func(identity.ID, transfer.Offer) bool { return true }
	}
	r := &transfer.Receiver{Dir: filepath.Join(b.home, "downloads"), Decide: decide}
	n.Handle(transfer.Proto, r.Handle)
	b.n, b.store = n, store
}

func (b *bob) stop() {
	if b.n != nil {
		b.n.Close()
		b.store.Close()
		b.n, b.store = nil, nil
	}
}

// history returns the texts Bob holds from peer.
func (b *bob) history(peer identity.ID) []string {
	s, err := chat.OpenStore(filepath.Join(b.home, "chat"))
	if err != nil {
		b.t.Fatal(err)
	}
	defer s.Close()
	lines, _ := s.History(peer)
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

// alice runs the Keeper, with Bob as a friend.
type alice struct {
	n      *node.Node
	list   *friends.List
	store  *chat.Store
	chat   *chat.Chat
	outbox *transfer.Outbox
	k      *Keeper
	events *recorder
}

// newAlice starts Alice's Keeper; Reconnect(id) is called for each of
// reconnect before it runs.
func newAlice(t *testing.T, friend string, opt Options, reconnect ...identity.ID) *alice {
	t.Helper()
	home := t.TempDir()
	a := &alice{n: nodetest.Loopback(t), events: &recorder{}}
	var err error
	if a.list, err = friends.Open(home); err != nil {
		t.Fatal(err)
	}
	if _, err := a.list.Add("Bob", friend); err != nil {
		t.Fatal(err)
	}
	if a.store, err = chat.OpenStore(filepath.Join(home, "chat")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.store.Close() })
	a.chat = chat.New(a.store, nil)
	if a.outbox, err = transfer.OpenOutbox(home); err != nil {
		t.Fatal(err)
	}
	opt.Work = []Work{{"message", a.chat}, {"file", a.outbox}}
	opt.Report = a.events.add
	opt.Check = 50 * time.Millisecond
	opt.Logger = slog.New(slog.DiscardHandler)
	a.k = New(a.n, a.list, opt)
	for _, id := range reconnect {
		a.k.Reconnect(id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return a
}

func (a *alice) state(t *testing.T) State {
	t.Helper()
	st := a.k.States()
	if len(st) != 1 {
		t.Fatalf("states: %+v", st)
	}
	return st[0]
}

// recorder keeps the events a Keeper reports.
type recorder struct {
	mu  sync.Mutex
	all []Event
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, e)
}

func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

func (r *recorder) String() string {
	var b strings.Builder
	for _, e := range r.events() {
		b.WriteString("\n  " + e.String())
	}
	return b.String()
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool, r *recorder) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; events:%s", what, waitFor, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *recorder) has(kind Kind, text string) func() bool {
	return func() bool {
		return slices.ContainsFunc(r.events(), func(e Event) bool { return e.Kind == kind && strings.Contains(e.String(), text) })
	}
}

func addressOf(t *testing.T, n *node.Node) string {
	t.Helper()
	text, err := n.Address().Encode()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestReconnectsAndDelivers: messages and a file written while Bob is
// away wait, and the Keeper keeps trying; when Bob's node comes back, it
// connects on its own and delivers each message once and the file, and
// the outboxes empty. Bob shows online, then offline when he leaves.
func TestReconnectsAndDelivers(t *testing.T) {
	b := newBob(t)
	addrB := addressOf(t, b.n)
	b.stop()
	a := newAlice(t, addrB, Options{MinRetry: 50 * time.Millisecond, MaxRetry: 200 * time.Millisecond, Poll: 200 * time.Millisecond})
	bobID := b.id.ID()

	doc := filepath.Join(t.TempDir(), "doc.txt")
	os.WriteFile(doc, []byte("the report"), 0o600)
	a.chat.Write(bobID, "written while you were away")
	a.chat.Write(bobID, "and a second one")
	if _, err := a.outbox.Add(bobID, []string{doc}); err != nil {
		t.Fatal(err)
	}
	a.k.Nudge()
	eventually(t, "trying Bob while he is away", a.events.has(Unreachable, "could not reach Bob"), a.events)
	eventually(t, "pausing longer after each failure", func() bool {
		return slices.ContainsFunc(a.events.events(), func(e Event) bool { return e.Kind == Unreachable && e.Retry == 200*time.Millisecond })
	}, a.events)
	if st := a.state(t); st.Online || st.Waiting != 3 || st.LastError == "" {
		t.Errorf("while Bob is away: %+v", st)
	}

	b.start(b.port)
	eventually(t, "delivering the messages", func() bool { return len(b.history(a.n.ID())) == 2 }, a.events)
	eventually(t, "delivering the file", func() bool {
		got, _ := os.ReadFile(filepath.Join(b.home, "downloads", "doc.txt"))
		return string(got) == "the report"
	}, a.events)
	eventually(t, "emptying the outbox", func() bool {
		n, _ := a.outbox.Waiting(bobID)
		m, _ := a.chat.Waiting(bobID)
		return n == 0 && m == 0
	}, a.events)
	eventually(t, "reporting the messages", a.events.has(Delivered, "delivered 2 messages to Bob"), a.events)
	eventually(t, "reporting the file", a.events.has(Delivered, "delivered 1 file to Bob"), a.events)
	for _, want := range []string{"connecting to Bob because 2 messages and 1 file wait", "Bob is online"} {
		if !strings.Contains(a.events.String(), want) {
			t.Errorf("no event %q; events:%s", want, a.events)
		}
	}
	eventually(t, "showing Bob online with nothing waiting", func() bool {
		st := a.state(t)
		return st.Online && st.Sessions > 0 && st.Waiting == 0
	}, a.events)
	if f, _ := a.list.Get("Bob"); f.LastSeen.IsZero() {
		t.Error("Bob's last sighting was not recorded")
	}

	b.stop()
	eventually(t, "noticing Bob left", a.events.has(Offline, "Bob went offline"), a.events)
	if st := a.state(t); st.Online {
		t.Errorf("after Bob left: %+v", st)
	}

	// Bob comes back and connects: nothing waits, nothing goes twice.
	b.start(b.port)
	nodetest.Connect(t, b.n, a.n)
	eventually(t, "seeing Bob again", func() bool { return a.state(t).Online }, a.events)
	a.chat.Write(bobID, "third")
	a.k.Nudge()
	eventually(t, "delivering over Bob's session", func() bool { return len(b.history(a.n.ID())) == 3 }, a.events)
	if got := b.history(a.n.ID()); strings.Join(got, "|") != "written while you were away|and a second one|third" {
		t.Errorf("Bob's history: %q", got)
	}
}

// TestDeliversWhenFriendConnects: the address Alice keeps for Bob is
// stale and the pause after a failure long, so only Bob's own session
// can carry the message — and it does, at once; Alice learns Bob's
// current address over it.
func TestDeliversWhenFriendConnects(t *testing.T) {
	b := newBob(t)
	stale := addressOf(t, b.n)
	b.stop()
	b.start(0) // another port: the stale address leads nowhere
	a := newAlice(t, stale, Options{MinRetry: time.Hour, MaxRetry: time.Hour})
	a.chat.Write(b.id.ID(), "hello")
	a.k.Nudge()
	eventually(t, "failing to reach Bob", a.events.has(Unreachable, "next try in 1h0m0s"), a.events)

	nodetest.Connect(t, b.n, a.n)
	eventually(t, "delivering over Bob's session", func() bool { return len(b.history(a.n.ID())) == 1 }, a.events)
	eventually(t, "reporting it", a.events.has(Delivered, "delivered 1 message to Bob"), a.events)
	// Bob's session also told Alice where Bob is now (addr/1): the
	// next try needs no signaling.
	current := addressOf(t, b.n)
	eventually(t, "keeping Bob's current address", func() bool {
		f, err := a.list.Get("Bob")
		return err == nil && f.Address == current
	}, a.events)
	if err := a.k.Run(context.Background()); err == nil {
		t.Error("a second Run did not refuse")
	}
}

// TestToldAddressKept: an address a friend tells over addr/1 (as when
// its address changed during a session) replaces the one saved; one told
// by a stranger changes nothing.
func TestToldAddressKept(t *testing.T) {
	b := newBob(t)
	a := newAlice(t, addressOf(t, b.n), Options{})
	grown, err := addr.Parse(addressOf(t, b.n))
	if err != nil {
		t.Fatal(err)
	}
	grown.Brokers = []addr.Server{{Addr: netip.MustParseAddrPort("203.0.113.1:1883")}}
	text, _ := grown.Encode()
	stranger, _ := identity.New()
	eventually(t, "reading the friends list", func() bool { return len(a.k.States()) == 1 }, a.events)
	a.k.told(stranger.Public, grown)
	a.k.told(b.id.Public, grown)
	if f, err := a.list.Get("Bob"); err != nil || f.Address != text {
		t.Errorf("Bob's saved address: %+v, %v; want the one he told", f, err)
	}
}

// TestMessageNotHeldByFile: each kind of work goes on its own, so a
// message written while Bob has yet to answer a file offer reaches him
// before he answers.
func TestMessageNotHeldByFile(t *testing.T) {
	asked, answer := make(chan struct{}, 1), make(chan struct{})
	b := &bob{t: t, home: t.TempDir(), decide: func(identity.ID, transfer.Offer) bool {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-answer
		return true
	}}
	var err error
	if b.id, err = identity.New(); err != nil {
		t.Fatal(err)
	}
	b.start(0)
	t.Cleanup(b.stop)
	var once sync.Once
	release := func() { once.Do(func() { close(answer) }) }
	t.Cleanup(release) // before Bob stops: his node waits for the answer
	a := newAlice(t, addressOf(t, b.n), Options{})
	bobID := b.id.ID()
	doc := filepath.Join(t.TempDir(), "doc.txt")
	os.WriteFile(doc, []byte("the report"), 0o600)
	if _, err := a.outbox.Add(bobID, []string{doc}); err != nil {
		t.Fatal(err)
	}
	a.k.Nudge()
	select {
	case <-asked:
	case <-time.After(waitFor):
		t.Fatalf("the offer never reached Bob; events:%s", a.events)
	}
	a.chat.Write(bobID, "did you get the file?")
	a.k.Nudge()
	eventually(t, "delivering the message while the offer waits", func() bool { return len(b.history(a.n.ID())) == 1 }, a.events)
	release()
	eventually(t, "delivering the file once taken", a.events.has(Delivered, "delivered 1 file to Bob"), a.events)
}

// TestFailingFileHoldsNoMessage: a queued file that cannot be sent (it
// was deleted) pauses its own kind of work, for an hour here; a message
// written meanwhile goes over the same session at once, and its delivery
// leaves the file's pause as it was.
func TestFailingFileHoldsNoMessage(t *testing.T) {
	b := newBob(t)
	a := newAlice(t, addressOf(t, b.n), Options{MinRetry: time.Hour, MaxRetry: time.Hour})
	bobID := b.id.ID()
	doc := filepath.Join(t.TempDir(), "gone.txt")
	os.WriteFile(doc, []byte("soon gone"), 0o600)
	if _, err := a.outbox.Add(bobID, []string{doc}); err != nil {
		t.Fatal(err)
	}
	os.Remove(doc)
	a.k.Nudge()
	eventually(t, "failing to send the file", a.events.has(Undelivered, "next try in 1h0m0s"), a.events)
	a.chat.Write(bobID, "the file is gone, sorry")
	a.k.Nudge()
	eventually(t, "delivering the message meanwhile", func() bool { return len(b.history(a.n.ID())) == 1 }, a.events)
	eventually(t, "reporting it", a.events.has(Delivered, "delivered 1 message to Bob"), a.events)
	st := a.state(t)
	if st.Waiting != 1 || st.LastError == "" || time.Until(st.NextTry) < 50*time.Minute {
		t.Errorf("the file's pause after the message went: %+v", st)
	}
}

// TestReconnect: a friend the node had a session with before it started
// again is connected to with nothing waiting for them, and without a
// "connecting because" event (nothing waits).
func TestReconnect(t *testing.T) {
	b := newBob(t)
	a := newAlice(t, addressOf(t, b.n), Options{}, b.id.ID())
	eventually(t, "connecting to Bob", func() bool {
		st := a.k.States()
		return len(st) == 1 && st[0].Sessions > 0
	}, a.events)
	if a.events.has(Connecting, "")() {
		t.Errorf("a reconnect reported work waiting; events:%s", a.events)
	}
	// Asked once: after Bob's session ends, nothing brings him back.
	b.stop()
	eventually(t, "noticing Bob left", func() bool { return a.state(t).Sessions == 0 }, a.events)
	b.start(b.port)
	time.Sleep(300 * time.Millisecond)
	if st := a.state(t); st.Sessions != 0 {
		t.Errorf("connected again with nothing waiting and no Reconnect: %+v", st)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 5*time.Second, 5*time.Minute
	pause, got := lo, []time.Duration{}
	for range 9 {
		got = append(got, pause)
		pause = backoff(pause, lo, hi)
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("pauses %v, want %v", got, want)
	}
	if d := backoff(0, lo, hi); d != lo {
		t.Errorf("after no pause: %v", d)
	}
}

func TestJitterStaysNear(t *testing.T) {
	for range 1000 {
		if d := jitter(time.Minute); d < 48*time.Second || d > 72*time.Second {
			t.Fatalf("jitter(1m) = %v", d)
		}
	}
}

func TestWords(t *testing.T) {
	k := New(nil, nil, Options{Work: []Work{{Noun: "message"}, {Noun: "file"}}})
	seen := time.Date(2026, 5, 1, 14, 30, 0, 0, time.Local)
	cases := []struct {
		e    Event
		want string
	}{
		{Event{Kind: Online, Friend: "Bob"}, "Bob is online"},
		{Event{Kind: Offline, Friend: "Bob", LastSeen: seen}, "Bob went offline (last seen 14:30:00)"},
		{Event{Kind: Connecting, Friend: "Bob", What: k.what([]int{2, 0})}, "connecting to Bob because 2 messages wait"},
		{Event{Kind: Connecting, Friend: "Bob", What: k.what([]int{1, 0})}, "connecting to Bob because 1 message waits"},
		{Event{Kind: Connecting, Friend: "Bob", What: k.what([]int{1, 1})}, "connecting to Bob because 1 message and 1 file wait"},
		{Event{Kind: Delivered, Friend: "Bob", What: k.what([]int{0, 3})}, "delivered 3 files to Bob"},
		{Event{Kind: Unreachable, Friend: "Bob", Reason: "every strategy failed:\n direct", Retry: 40 * time.Second}, "could not reach Bob: every strategy failed: direct; next try in 40s"},
		{Event{Kind: Undelivered, Friend: "Bob", Reason: "chat/1: unknown protocol", Retry: 5 * time.Minute}, "could not deliver to Bob: chat/1: unknown protocol; next try in 5m0s"},
	}
	for _, c := range cases {
		if got := c.e.String(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.e.Kind, got, c.want)
		}
	}
}
