package chat

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/netcore/node/nodetest"
	"p2pd/netcore/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// peer is a loopback node with a chat.
type peer struct {
	n     *node.Node
	store *Store
	chat  *Chat
	mu    sync.Mutex
	got   []Message
}

func newPeer(t *testing.T, dir string) *peer {
	t.Helper()
	return attach(t, nodetest.Loopback(t), dir)
}

// attach gives n a chat with its history in dir.
func attach(t *testing.T, n *node.Node, dir string) *peer {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p := &peer{n: n, store: s}
	p.chat = New(s, func(_ identity.ID, m Message) {
		p.mu.Lock()
		p.got = append(p.got, m)
		p.mu.Unlock()
	})
	n.Handle(Proto, p.chat.Handle)
	return p
}

func (p *peer) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.got {
		out = append(out, m.Text)
	}
	return out
}

func connect(t *testing.T, from, to *peer) *session.Session {
	t.Helper()
	return nodetest.Connect(t, from.n, to.n)
}

// TestBothWaysWithReceipts: messages go both ways over one session, each
// side marks its own as delivered when the receipt comes back, and
// OnDelivered hears of each.
func TestBothWaysWithReceipts(t *testing.T) {
	a, b := newPeer(t, t.TempDir()), newPeer(t, t.TempDir())
	sess := connect(t, a, b)
	ctx := context.Background()
	var told []string
	a.chat.OnDelivered = func(peer identity.ID, id string) {
		if peer == b.n.ID() {
			told = append(told, id)
		}
	}
	m1, _ := a.chat.Write(b.n.ID(), "hello, B")
	m2, _ := a.chat.Write(b.n.ID(), "ça va? 👋")
	if n, err := a.chat.Deliver(ctx, sess); err != nil || n != 2 {
		t.Fatalf("delivered %d, %v", n, err)
	}
	if slices.Sort(told); !slices.Equal(told, slices.Sorted(slices.Values([]string{m1.ID, m2.ID}))) {
		t.Errorf("OnDelivered heard %q, want %q and %q", told, m1.ID, m2.ID)
	}
	if got := b.received(); strings.Join(got, "|") != "hello, B|ça va? 👋" {
		t.Errorf("B got %q", got)
	}
	// B answers over a session of its own.
	b.chat.Write(a.n.ID(), "hi, A")
	if n, err := b.chat.Deliver(ctx, connect(t, b, a)); err != nil || n != 1 {
		t.Fatalf("B delivered %d, %v", n, err)
	}
	if got := a.received(); len(got) != 1 || got[0] != "hi, A" {
		t.Errorf("A got %q", got)
	}
	hist, _ := a.store.History(b.n.ID())
	if len(hist) != 3 || !hist[0].Out || !hist[0].Delivered || !hist[1].Delivered || hist[2].Out {
		t.Errorf("A's history: %+v", hist)
	}
}

// TestOutboxHistoryAndNoDuplicates: a message written while the peer is
// away waits; the history survives a restart; a message whose receipt
// was lost is sent again but shown once.
func TestOutboxHistoryAndNoDuplicates(t *testing.T) {
	dirA := t.TempDir()
	a, b := newPeer(t, dirA), newPeer(t, t.TempDir())
	m, err := a.chat.Write(b.n.ID(), "written offline")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := a.store.Pending(b.n.ID()); len(p) != 1 || p[0].ID != m.ID {
		t.Fatalf("outbox: %v", p)
	}
	// "Restart": the history is read back from disk.
	a.store.Close()
	s2, err := OpenStore(dirA)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	a2 := &Chat{store: s2}
	if p, _ := s2.Pending(b.n.ID()); len(p) != 1 || p[0].Text != "written offline" {
		t.Fatalf("outbox after restart: %v", p)
	}
	sess := connect(t, a, b)
	// A lost receipt: B stores the message, but A never hears back and
	// keeps it in its outbox.
	if fresh, err := b.store.receive(a.n.ID(), m); !fresh || err != nil {
		t.Fatalf("receive: %v %v", fresh, err)
	}
	if n, err := a2.Deliver(context.Background(), sess); err != nil || n != 1 {
		t.Fatalf("delivered %d, %v", n, err)
	}
	hist, _ := b.store.History(a.n.ID())
	if len(hist) != 1 || len(b.received()) != 0 {
		t.Errorf("B shows the message %d times (%d as new)", len(hist), len(b.received()))
	}
	if p, _ := s2.Pending(b.n.ID()); len(p) != 0 {
		t.Errorf("still pending after the receipt: %v", p)
	}
}

// TestCrashCutsOnlyTheLastLine: a history file whose last line was cut
// by a crash loads everything before it, and appends after it.
func TestCrashCutsOnlyTheLastLine(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStore(dir)
	c := New(s, nil)
	peerID := identity.ID{1}
	c.Write(peerID, "one")
	c.Write(peerID, "two")
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, peerID.String()+".jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"cut","text":"thr`)
	f.Close()
	s2, _ := OpenStore(dir)
	defer s2.Close()
	c2 := New(s2, nil)
	c2.Write(peerID, "three")
	hist, err := s2.History(peerID)
	if err != nil || len(hist) != 3 || hist[2].Text != "three" {
		t.Fatalf("history after the crash: %+v %v", hist, err)
	}
	s2.Close()
	s3, _ := OpenStore(dir)
	defer s3.Close()
	if hist, _ := s3.History(peerID); len(hist) != 3 {
		t.Errorf("history read again: %+v", hist)
	}
}

func TestRefusesBadText(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	defer s.Close()
	c := New(s, nil)
	if _, err := c.Write(identity.ID{2}, strings.Repeat("x", MaxText+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("long: %v", err)
	}
	if _, err := c.Write(identity.ID{2}, "\xff"); !errors.Is(err, ErrNotText) {
		t.Errorf("not UTF-8: %v", err)
	}
}

func TestPrintable(t *testing.T) {
	got := Printable("hi\x1b]52;c;ZXZpbA==\x07 there\tand\nmore\r")
	if strings.ContainsAny(got, "\x1b\x07\r") || !strings.Contains(got, "\t") || !strings.Contains(got, "\n") {
		t.Errorf("Printable: %q", got)
	}
}

// TestTwoProcessesShareAHistory: what one process appends (p2pd chat
// writing a message, p2pd node recording its receipt), another with the
// same history open sees; a line still being written waits for its end.
func TestTwoProcessesShareAHistory(t *testing.T) {
	dir := t.TempDir()
	node, cli := openStore(t, dir), openStore(t, dir)
	peerID := identity.ID{3}
	if n, err := node.Waiting(peerID); n != 0 || err != nil {
		t.Fatalf("waiting before any message: %d, %v", n, err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("counting created %v", files)
	}
	New(cli, nil).Write(peerID, "first")
	node.History(peerID) // the node has the file open from here on
	m, _ := New(cli, nil).Write(peerID, "queued by the CLI")
	if n, err := node.Waiting(peerID); n != 2 || err != nil {
		t.Fatalf("the node sees %d waiting (%v), want 2", n, err)
	}
	if err := node.append(peerID, Entry{Receipt: m.ID}); err != nil {
		t.Fatal(err)
	}
	if p, _ := cli.Pending(peerID); len(p) != 1 || p[0].Text != "first" {
		t.Errorf("the CLI's outbox after the node's receipt: %+v", p)
	}

	f, _ := os.OpenFile(filepath.Join(dir, peerID.String()+".jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	defer f.Close()
	f.WriteString(`{"id":"half","text":"in progr`)
	if h, _ := node.History(peerID); len(h) != 2 {
		t.Errorf("a half-written line was read: %+v", h)
	}
	f.WriteString("ess\"}\n")
	if h, _ := node.History(peerID); len(h) != 3 || h[2].Text != "in progress" {
		t.Errorf("the finished line was not read: %+v", h)
	}
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
