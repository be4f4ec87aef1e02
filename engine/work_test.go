package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/chat"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/presence"
	"p2pd/transfer"
)

// recorder keeps what an engine's hooks heard.
type recorder struct {
	mu        sync.Mutex
	messages  []chat.Message
	delivered []string // "peer: id" of each receipt
	presence  []presence.Event
	transfers map[string]Transfer // the latest of each
	answer    func(o Offer) (bool, string)
	changed   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{transfers: map[string]Transfer{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) hooks() Hooks {
	poke := func() {
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	return Hooks{
		Message: func(_ Peer, m chat.Message) {
			r.mu.Lock()
			r.messages = append(r.messages, m)
			r.mu.Unlock()
			poke()
		},
		Delivered: func(to Peer, id string) {
			r.mu.Lock()
			r.delivered = append(r.delivered, to.Name+": "+id)
			r.mu.Unlock()
			poke()
		},
		Presence: func(e presence.Event) {
			r.mu.Lock()
			r.presence = append(r.presence, e)
			r.mu.Unlock()
			poke()
		},
		Offer: func(o Offer, answer func(bool, string)) {
			r.mu.Lock()
			f := r.answer
			r.mu.Unlock()
			go func() { answer(f(o)) }() // the app answers later, from the UI
		},
		Transfer: func(t Transfer) {
			r.mu.Lock()
			r.transfers[t.ID] = t
			r.mu.Unlock()
			poke()
		},
	}
}

func (r *recorder) setAnswer(f func(o Offer) (bool, string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

// wait waits until ok holds for what r heard.
func (r *recorder) wait(t *testing.T, what string, ok func(r *recorder) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		done := ok(r)
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waited 20 s for %s; presence events heard: %v", what, r.presence)
		}
	}
}

// friendsPair starts two engines that are each other's friends "a" and
// "b", with hooks recording what they hear.
func friendsPair(t *testing.T) (a, b *Engine, ra, rb *recorder) {
	t.Helper()
	ra, rb = newRecorder(), newRecorder()
	a, sa := startWith(t, t.TempDir(), ra.hooks())
	b, sb := startWith(t, t.TempDir(), rb.hooks())
	for _, p := range []struct {
		e    *Engine
		name string
		s    Snapshot
	}{{a, "b", sb}, {b, "a", sa}} {
		to, err := addr.Parse(p.s.Address)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.e.SaveFriend(p.name, to); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, ra, rb
}

func startWith(t *testing.T, home string, h Hooks) (*Engine, Snapshot) {
	t.Helper()
	e, err := New(home, config.Config{}, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	e.SetHooks(h)
	t.Cleanup(func() { e.Close() })
	// Start's context is the engine's life.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := e.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return e, s
}

// TestChatBetweenEngines: a message written in one app reaches the other
// (its hook hears it once) and comes back delivered in the writer's
// history, the writer's Delivered hook hearing the receipt.
func TestChatBetweenEngines(t *testing.T) {
	a, b, ra, rb := friendsPair(t)
	m, err := a.SendMessage("b", "hello from a")
	if err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "the message at b", func(r *recorder) bool { return len(r.messages) == 1 && r.messages[0].Text == "hello from a" })
	ra.wait(t, "the receipt at a", func(r *recorder) bool { return len(r.delivered) == 1 && r.delivered[0] == "b: "+m.ID })
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := a.History("b")
		if err != nil {
			t.Fatal(err)
		}
		if len(h) == 1 && h[0].ID == m.ID && h[0].Out && h[0].Delivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's history: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h, _ := b.History("a"); len(h) != 1 || h[0].Out || h[0].Text != "hello from a" {
		t.Errorf("b's history: %+v", h)
	}
	if _, err := a.SendMessage("nobody", "x"); err == nil {
		t.Error("a message to someone who is no friend was accepted")
	}
	if _, err := a.SendMessage("b", string([]byte{0xff})); err == nil {
		t.Error("a message that is not UTF-8 was accepted")
	}
}

func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFilesBetweenEngines: a file sent from one app is offered in the
// other, accepted into a folder chosen there, and both sides see the
// transfer done; a declined one ends declined on the sender's side and
// leaves its outbox.
func TestFilesBetweenEngines(t *testing.T) {
	a, _, ra, rb := friendsPair(t)
	src, chosen := t.TempDir(), filepath.Join(t.TempDir(), "chosen")
	data := randomFile(t, filepath.Join(src, "photo.jpg"), 3*transfer.ChunkSize+5)
	rb.setAnswer(func(o Offer) (bool, string) { return true, chosen })
	id, err := a.SendFiles("b", []string{filepath.Join(src, "photo.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the transfer done at a", func(r *recorder) bool { return r.transfers[id].State == Done })
	rb.wait(t, "the transfer done at b", func(r *recorder) bool {
		for _, tr := range r.transfers {
			return tr.State == Done && tr.Incoming && tr.Dir == chosen && tr.Progress.Done == int64(len(data))
		}
		return false
	})
	if got, _ := os.ReadFile(filepath.Join(chosen, "photo.jpg")); !bytes.Equal(got, data) {
		t.Error("photo.jpg did not arrive whole in the chosen folder")
	}

	rb.setAnswer(func(Offer) (bool, string) { return false, "" })
	randomFile(t, filepath.Join(src, "no.txt"), 10)
	id, err = a.SendFiles("b", []string{filepath.Join(src, "no.txt")})
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the declined transfer at a", func(r *recorder) bool { return r.transfers[id].State == Declined && r.transfers[id].Resumable })
	if q, _ := a.outbox.List(); len(q) != 0 {
		t.Errorf("the declined files stay queued: %+v", q)
	}
}

// TestCancelAndResume: the sender cancels a running transfer; it ends
// cancelled on both sides, and Resume sends it again under the same ID
// and it arrives whole (package transfer tests that only the part not
// verified moves).
func TestCancelAndResume(t *testing.T) {
	a, _, ra, rb := friendsPair(t)
	src, dir := t.TempDir(), t.TempDir()
	data := randomFile(t, filepath.Join(src, "big.bin"), 256*transfer.ChunkSize)
	rb.setAnswer(func(o Offer) (bool, string) { return true, dir })
	id, err := a.SendFiles("b", []string{filepath.Join(src, "big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the transfer running", func(r *recorder) bool { return r.transfers[id].Progress.Done > 4*transfer.ChunkSize })
	if err := a.Cancel(id); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the transfer cancelled at a", func(r *recorder) bool { return r.transfers[id].State == Cancelled && r.transfers[id].Resumable })
	rb.wait(t, "the transfer ended at b", func(r *recorder) bool {
		for _, tr := range r.transfers {
			return tr.State == Failed || tr.State == Cancelled
		}
		return false
	})
	if err := a.Resume(id); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the resumed transfer done", func(r *recorder) bool { return r.transfers[id].State == Done })
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); !bytes.Equal(got, data) {
		t.Error("big.bin did not arrive whole after resuming")
	}
	if err := a.Resume(id); err == nil {
		t.Error("a finished transfer was resumed")
	}
}

// TestWithdrawnOffer: the sender cancels an offer the receiver's user
// has not answered yet, and the question ends at once, saying so; a
// sender that quits while asked has not withdrawn its offer (it comes
// again), and the question says it went away.
func TestWithdrawnOffer(t *testing.T) {
	a, _, _, rb := friendsPair(t)
	src := t.TempDir()
	randomFile(t, filepath.Join(src, "a.bin"), 1000)
	randomFile(t, filepath.Join(src, "b.bin"), 1000)
	never := make(chan struct{})
	defer close(never)
	rb.setAnswer(func(o Offer) (bool, string) { <-never; return false, "" })
	incoming := func(r *recorder, name string) Transfer {
		for _, tr := range r.transfers {
			if tr.Incoming && slices.Equal(tr.Files, []string{name}) {
				return tr
			}
		}
		return Transfer{}
	}
	for _, c := range []struct {
		file, state, note string
		end               func(id string) error
	}{
		{"a.bin", "cancelled", "a withdrew the offer", a.Cancel},
		{"b.bin", "failed", "a went away before you answered", func(string) error { return a.Close() }},
	} {
		id, err := a.SendFiles("b", []string{filepath.Join(src, c.file)})
		if err != nil {
			t.Fatal(err)
		}
		rb.wait(t, "the question at b", func(r *recorder) bool { return incoming(r, c.file).State == Waiting })
		if err := c.end(id); err != nil {
			t.Fatal(err)
		}
		rb.wait(t, "the question ended at b", func(r *recorder) bool {
			tr := incoming(r, c.file)
			return tr.State != Waiting && tr.State != ""
		})
		rb.mu.Lock()
		if tr := incoming(rb, c.file); string(tr.State) != c.state || tr.Note != c.note {
			t.Errorf("%s: b's question ended %s, %q; want %s, %q", c.file, tr.State, tr.Note, c.state, c.note)
		}
		rb.mu.Unlock()
	}
}

// TestChangedFileWaitsForTheUser: a file written to while it is sent
// fails without being tried again on its own (each try would ask the
// friend again), and the user can send it again, as it is then.
func TestChangedFileWaitsForTheUser(t *testing.T) {
	a, _, ra, rb := friendsPair(t)
	src, dir := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "draft.txt")
	randomFile(t, path, 1000)
	hour := time.Now().Add(-time.Hour)
	os.Chtimes(path, hour, hour) // a change made now has another time
	var asked atomic.Int32
	rb.setAnswer(func(o Offer) (bool, string) {
		if asked.Add(1) == 1 {
			os.WriteFile(path, []byte("edited while offered; the same size? no matter"), 0o644)
		}
		return true, dir
	})
	id, err := a.SendFiles("b", []string{path})
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the send to fail", func(r *recorder) bool { return r.transfers[id].State == Failed })
	ra.mu.Lock()
	got := ra.transfers[id]
	ra.mu.Unlock()
	if !got.Resumable || !strings.Contains(got.Note, "changed") || got.Ended.IsZero() {
		t.Errorf("the changed file's transfer (over, to be kept in the history): %+v", got)
	}
	if q, _ := a.outbox.List(); len(q) != 0 {
		t.Errorf("the changed file stays queued, to be offered again and again: %+v", q)
	}
	if err := a.Resume(id); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the file sent again", func(r *recorder) bool { return r.transfers[id].State == Done })
	want, _ := os.ReadFile(path)
	if got, _ := os.ReadFile(filepath.Join(dir, "draft.txt")); !bytes.Equal(got, want) {
		t.Errorf("sent again, the file arrived as %q, want %q", got, want)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("the friend was asked %d times, want 2", n)
	}
}

// TestSettings: saved settings come back in the next run (the servers
// from the config file, the rest from the data dir), a wrong one is
// refused with what is wrong and nothing saved, and new servers start the
// node again.
func TestSettings(t *testing.T) {
	home := t.TempDir()
	e, _ := startWith(t, home, Hooks{})
	before := e.node()
	s := e.Settings()
	if !s.UPnP || !s.Relay || !s.Notifications || s.Theme != ThemeSystem || s.DownloadDir == "" {
		t.Errorf("the defaults: %+v", s)
	}
	bad := s
	bad.DownloadDir = "relative/dir"
	if err := e.SaveSettings(bad); err == nil || !strings.Contains(err.Error(), "full path") {
		t.Errorf("a relative download folder: %v", err)
	}
	bad = s
	bad.Config.STUN = []string{"udp//nowhere"}
	if err := e.SaveSettings(bad); err == nil || !strings.Contains(err.Error(), "stun") {
		t.Errorf("a bad STUN server: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, config.FileName)); err == nil {
		t.Error("a refused save wrote the config file")
	}

	s.DownloadDir, s.Theme, s.Relay = filepath.Join(home, "in"), ThemeDark, false
	s.Config.NTP = []string{"ntp.example.org"}
	if err := e.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); e.node() == before || e.node() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("new servers did not start the node again")
		}
	}
	e.Close()
	cfg, err := config.Load(filepath.Join(home, config.FileName))
	if err != nil || cfg.NTP[0] != "ntp.example.org" {
		t.Fatalf("the config file: %+v, %v", cfg, err)
	}
	next, err := New(home, cfg, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if got := next.Settings(); got.DownloadDir != s.DownloadDir || got.Theme != ThemeDark || got.Relay || got.Config.NTP[0] != "ntp.example.org" {
		t.Errorf("the next run's settings: %+v", got)
	}
}

// TestRestartReconnects: a friend connected before the node starts again
// (a changed network, new settings) is connected again after, with
// nothing waiting for them.
func TestRestartReconnects(t *testing.T) {
	a, _, _, _ := friendsPair(t)
	if _, err := a.SendMessage("b", "hello"); err != nil {
		t.Fatal(err)
	}
	online := func() bool { return a.Online()["b"] }
	for deadline := time.Now().Add(20 * time.Second); !online(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("b never came online")
		}
	}
	before := a.node()
	if _, err := a.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.node() == before {
		t.Fatal("the node did not start again")
	}
	for deadline := time.Now().Add(20 * time.Second); !online(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("b is not connected again after the restart: %+v", a.keeper().States())
		}
	}
}

// TestAddressBeforeCheck: the address is told as soon as the node is up,
// marked as waiting for the check, before Start returns with the check.
func TestAddressBeforeCheck(t *testing.T) {
	var mu sync.Mutex
	var early []Snapshot
	_, s := startWith(t, t.TempDir(), Hooks{Address: func(s Snapshot) {
		mu.Lock()
		early = append(early, s)
		mu.Unlock()
	}})
	mu.Lock()
	defer mu.Unlock()
	if len(early) != 1 || early[0].Address != s.Address || !early[0].Cached || early[0].Port != s.Port {
		t.Errorf("told early %+v; the start found %+v", early, s)
	}
}

// TestRestartAfterFailedStart: a node that could not start (here: a
// damaged key file) is started by a later Restart once the cause is gone,
// as the network watch does when a network comes up.
func TestRestartAfterFailedStart(t *testing.T) {
	home := t.TempDir()
	key := filepath.Join(home, identity.KeyFile)
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := New(home, config.Config{}, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if s, err := e.Start(ctx); err == nil || e.node() != nil || s.Cached {
		t.Fatalf("a start with a damaged key: %v, node %v, snapshot %+v", err, e.node(), s)
	}
	os.Remove(key)
	if _, err := e.Restart(ctx); err != nil || e.node() == nil {
		t.Fatalf("Restart after a failed start: %v", err)
	}
}

// TestThemeAloneKeepsTheNode: a save that changes no server (empty lists
// as the screen returns them: nil) neither rewrites the config nor starts
// the node again.
func TestThemeAloneKeepsTheNode(t *testing.T) {
	home := t.TempDir()
	e, _ := startWith(t, home, Hooks{})
	before := e.node()
	s := e.Settings()
	s.Config = config.Config{STUN: []string{}, MQTT: nil}
	s.Theme = ThemeDark
	if err := e.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a restart would have begun
	if e.node() != before {
		t.Error("a theme change started the node again")
	}
	if _, err := os.Stat(filepath.Join(home, config.FileName)); err == nil {
		t.Error("a theme change wrote the config file")
	}
}

// TestMessageNotHeldByFile: a message written while a file waits for the
// friend's answer reaches them before they answer.
func TestMessageNotHeldByFile(t *testing.T) {
	a, _, _, rb := friendsPair(t)
	release := make(chan struct{})
	defer close(release)
	rb.setAnswer(func(Offer) (bool, string) { <-release; return false, "" })
	src := t.TempDir()
	randomFile(t, filepath.Join(src, "big.bin"), 1<<20)
	if _, err := a.SendFiles("b", []string{filepath.Join(src, "big.bin")}); err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "the offer at b", func(r *recorder) bool {
		for _, tr := range r.transfers {
			return tr.Incoming && tr.State == Waiting
		}
		return false
	})
	if _, err := a.SendMessage("b", "did you get the file?"); err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "the message while the offer waits", func(r *recorder) bool { return len(r.messages) == 1 })
}

// TestTransfersAfterRestart: the next run lists the transfers that ended
// (with their sizes, and the paths a declined one is resumed from) and
// those still queued; ClearEnded takes the ended ones off for good; a
// damaged history is moved aside, not lost, and the engine starts.
func TestTransfersAfterRestart(t *testing.T) {
	a, b, ra, rb := friendsPair(t)
	src := t.TempDir()
	data := randomFile(t, filepath.Join(src, "done.txt"), 1000)
	randomFile(t, filepath.Join(src, "no.txt"), 10)
	randomFile(t, filepath.Join(src, "later.txt"), 10)
	rb.setAnswer(func(o Offer) (bool, string) { return o.Files[0] == "done.txt", "" })
	done, err := a.SendFiles("b", []string{filepath.Join(src, "done.txt")})
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the transfer done", func(r *recorder) bool { return r.transfers[done].State == Done })
	declined, err := a.SendFiles("b", []string{filepath.Join(src, "no.txt")})
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, "the transfer declined", func(r *recorder) bool { return r.transfers[declined].State == Declined })
	b.Close()
	queued, err := a.SendFiles("b", []string{filepath.Join(src, "later.txt")})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	next := func(e *Engine) *Engine {
		t.Helper()
		n, err := New(e.home, config.Config{}, Options{Loopback: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	byID := func(e *Engine) map[string]Transfer {
		out := map[string]Transfer{}
		for _, tr := range e.Transfers() {
			out[tr.ID] = tr
		}
		return out
	}
	a2 := next(a)
	got := byID(a2)
	if d := got[done]; d.State != Done || d.Progress.Total != int64(len(data)) || d.Ended.IsZero() || d.Peer.Name != "b" || len(d.Files) != 1 || d.Files[0] != "done.txt" {
		t.Errorf("the done transfer after a restart: %+v", d)
	}
	if d := got[declined]; d.State != Declined || !d.Resumable {
		t.Errorf("the declined transfer after a restart: %+v", d)
	}
	if q := got[queued]; q.State != Waiting || q.Ended.IsZero() == false {
		t.Errorf("the queued transfer after a restart: %+v", q)
	}
	if len(got) != 3 {
		t.Errorf("listed after a restart: %+v", got)
	}
	incoming := byID(next(b))
	if len(incoming) != 2 {
		t.Errorf("b lists after a restart: %+v", incoming)
	}

	// The declined one is sent again from the paths kept, and so leaves
	// the history.
	if err := a2.Resume(declined); err != nil {
		t.Fatalf("resuming a transfer of the last run: %v", err)
	}
	if q, _ := a2.outbox.List(); len(q) != 2 {
		t.Errorf("queued after resuming: %+v", q)
	}
	gone, err := a2.ClearEnded()
	if err != nil || len(gone) != 1 || gone[0] != done {
		t.Errorf("ClearEnded: %v, %v", gone, err)
	}
	a2.Close()
	if got := byID(next(a2)); len(got) != 2 || got[done].ID != "" || got[declined].State != Waiting || got[queued].State != Waiting {
		t.Errorf("listed after clearing and a restart: %+v", got)
	}

	// A damaged history: kept aside, and the engine starts without it.
	path := filepath.Join(a.home, historyFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	next(a)
	if kept, err := os.ReadFile(path + ".damaged"); err != nil || string(kept) != "{not json" {
		t.Errorf("the damaged history was not kept aside: %q, %v", kept, err)
	}
}

// TestOffersWaitingBounded: a peer's offers beyond maxPeerAsks that wait
// for the user at once are declined at once, unseen.
func TestOffersWaitingBounded(t *testing.T) {
	a, b, _, rb := friendsPair(t)
	release := make(chan struct{})
	rb.setAnswer(func(Offer) (bool, string) { <-release; return false, "" })
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := a.node().Connect(ctx, b.node().Address(), node.ConnectOptions{Strategies: []string{node.Direct}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Session.Close()
	src := t.TempDir()
	const offers = maxPeerAsks + 2
	errs := make(chan error, offers)
	for i := range offers {
		path := filepath.Join(src, fmt.Sprintf("f%d.txt", i))
		randomFile(t, path, 10)
		go func() {
			_, _, err := transfer.Send(ctx, res.Session, []string{path}, nil)
			errs <- err
		}()
	}
	for range offers - maxPeerAsks {
		if err := <-errs; !errors.Is(err, transfer.ErrDeclined) {
			t.Fatalf("an offer beyond the bound: %v, want declined", err)
		}
	}
	rb.wait(t, "the offers within the bound shown", func(r *recorder) bool { return len(r.transfers) == maxPeerAsks })
	close(release)
	for range maxPeerAsks {
		if err := <-errs; !errors.Is(err, transfer.ErrDeclined) {
			t.Errorf("an offer the user declined: %v", err)
		}
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if len(rb.transfers) != maxPeerAsks {
		t.Errorf("the user saw %d offers, want %d", len(rb.transfers), maxPeerAsks)
	}
}
