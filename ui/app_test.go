package ui

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"p2pd/chat"
	"p2pd/engine"
	pfriends "p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/lan"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/node"
	"p2pd/transfer"
	"p2pd/ui/connect"
	"p2pd/ui/transfers"
)

// ui serialises the app's updates from other goroutines with the test's
// reads: the test driver runs fyne.Do at once, on the calling goroutine.
var ui sync.Mutex

func init() {
	do = func(f func()) {
		ui.Lock()
		defer ui.Unlock()
		f()
	}
}

// read runs f (which looks at widgets) serialised with the updates.
func read[T any](f func() T) T {
	ui.Lock()
	defer ui.Unlock()
	return f()
}

// fakeEngine answers with fixed data and records what it is asked;
// Start waits for started.
type fakeEngine struct {
	cached, fresh engine.Snapshot
	started       chan struct{}
	mu            sync.Mutex
	connected     *addr.Address
	friends       []pfriends.Friend
	nearby        []lan.Peer
	online        map[string]bool
	hooks         engine.Hooks
	history       map[string][]chat.Line
	sent          []string // "name: text" of each message
	files         []string // "name: path" of each file sent
	settings      engine.Settings
	saved         []engine.Settings
	transfers     []engine.Transfer // earlier runs'
	reads         int               // History calls
}

func (f *fakeEngine) historyReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeEngine) Online() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.online
}

func (f *fakeEngine) SetHooks(h engine.Hooks) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = h
}

func (f *fakeEngine) hook() engine.Hooks {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hooks
}

func (f *fakeEngine) History(name string) ([]chat.Line, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return append([]chat.Line(nil), f.history[name]...), nil
}

func (f *fakeEngine) SendMessage(name, text string) (chat.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, name+": "+text)
	return chat.Message{ID: fmt.Sprint("m", len(f.sent)), Time: time.Now(), Text: text}, nil
}

func (f *fakeEngine) SendFiles(name string, paths []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range paths {
		f.files = append(f.files, name+": "+p)
	}
	return "t1", nil
}

func (f *fakeEngine) Cancel(string) error { return nil }
func (f *fakeEngine) Resume(string) error { return nil }

func (f *fakeEngine) Transfers() []engine.Transfer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.transfers)
}

func (f *fakeEngine) ClearEnded() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var gone []string
	f.transfers = slices.DeleteFunc(f.transfers, func(t engine.Transfer) bool {
		if t.State == engine.Done {
			gone = append(gone, t.ID)
			return true
		}
		return false
	})
	return gone, nil
}

func (f *fakeEngine) Settings() engine.Settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settings.Theme == "" {
		return engine.DefaultSettings(config.Config{})
	}
	return f.settings
}

func (f *fakeEngine) SaveSettings(s engine.Settings) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saved = append(f.saved, s)
	f.settings = s
	return nil
}

func (f *fakeEngine) Cached() engine.Snapshot { return f.cached }

func (f *fakeEngine) Start(ctx context.Context) (engine.Snapshot, error) {
	select {
	case <-f.started:
	case <-ctx.Done():
	}
	return f.fresh, nil
}

func (f *fakeEngine) Check(context.Context) (engine.Snapshot, error) { return f.fresh, nil }

func (f *fakeEngine) Connect(_ context.Context, a *addr.Address, progress func(node.Event)) (string, error) {
	f.mu.Lock()
	f.connected = a
	f.mu.Unlock()
	progress(node.Event{Strategy: node.Direct, State: node.Started})
	progress(node.Event{Strategy: node.Direct, State: node.Failed, Elapsed: 20 * time.Millisecond, Reason: "connection refused"})
	progress(node.Event{Strategy: node.PunchUDP, State: node.Started})
	progress(node.Event{Strategy: node.PunchUDP, State: node.Succeeded, Elapsed: 60 * time.Millisecond})
	return node.PunchUDP, nil
}

func (f *fakeEngine) SaveFriend(string, *addr.Address) error { return nil }

func (f *fakeEngine) Friends() ([]pfriends.Friend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pfriends.Friend(nil), f.friends...), nil
}

func (f *fakeEngine) RenameFriend(name, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.friends {
		if f.friends[i].Name == name {
			f.friends[i].Name = to
		}
	}
	return nil
}

func (f *fakeEngine) RemoveFriend(string) error { return nil }

func (f *fakeEngine) Nearby() []lan.Peer { return f.nearby }

// address makes a valid address text with a fresh key.
func address(t *testing.T) string {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	text, err := (&addr.Address{Key: id.Public, Interfaces: []addr.Interface{{V4: &addr.Endpoint{
		Internal: netip.MustParseAddr("192.0.2.7"), External: netip.MustParseAddr("192.0.2.7"), Port: 41234}}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// walk calls fn for o and every object under it.
func walk(o fyne.CanvasObject, fn func(fyne.CanvasObject)) {
	fn(o)
	if c, ok := o.(*fyne.Container); ok {
		for _, x := range c.Objects {
			walk(x, fn)
		}
	} else if w, ok := o.(fyne.Widget); ok {
		for _, x := range test.WidgetRenderer(w).Objects() {
			walk(x, fn)
		}
	}
}

// first returns the first object of type T under o that ok accepts.
func first[T fyne.CanvasObject](o fyne.CanvasObject, ok func(T) bool) T {
	var found T
	var done bool
	walk(o, func(x fyne.CanvasObject) {
		if t, is := x.(T); is && !done && ok(t) {
			found, done = t, true
		}
	})
	return found
}

func button(text string) func(*widget.Button) bool {
	return func(b *widget.Button) bool { return b.Text == text }
}

// texts gathers every text shown under o.
func texts(o fyne.CanvasObject) string {
	var b strings.Builder
	walk(o, func(x fyne.CanvasObject) {
		switch v := x.(type) {
		case *widget.Label:
			b.WriteString(v.Text + "\n")
		case *canvas.Text:
			b.WriteString(v.Text + "\n")
		case *widget.RichText:
			b.WriteString(v.String() + "\n")
		}
	})
	return b.String()
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

// TestWindowShowsCachedThenFresh: the last run's address shows at once;
// the fresh one replaces it when the engine has started.
func TestWindowShowsCachedThenFresh(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	old, fresh := address(t), address(t)
	eng := &fakeEngine{
		cached:  engine.Snapshot{Address: old, Report: &netcheck.Report{Verdict: "old verdict"}},
		fresh:   engine.Snapshot{Address: fresh, Port: 41234, Report: &netcheck.Report{Verdict: "fresh verdict"}},
		started: make(chan struct{}),
	}
	w, stop := NewMainWindow(a, eng)
	defer stop()
	defer read(func() bool { w.Close(); return true })
	tabs := w.Content().(*container.AppTabs)
	home := tabs.Items[0].Content
	if got := read(func() string { return texts(home) }); !strings.Contains(got, old) || !strings.Contains(got, "Refreshing") {
		t.Fatalf("at once the home screen shows:\n%s", got)
	}
	close(eng.started)
	eventually(t, "the fresh address shows", func() bool {
		got := read(func() string { return texts(home) })
		return strings.Contains(got, fresh) && !strings.Contains(got, old) && strings.Contains(got, "41234")
	})
}

// TestConnectFromWindow: an address typed on the Connect tab reaches the
// engine, and its progress events fill the strategy rows.
func TestConnectFromWindow(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	eng := &fakeEngine{started: make(chan struct{})}
	close(eng.started)
	w, stop := NewMainWindow(a, eng)
	defer stop()
	defer read(func() bool { w.Close(); return true })
	tabs := w.Content().(*container.AppTabs)
	read(func() bool { tabs.SelectIndex(1); return true })
	c := tabs.Items[1].Content.(*connect.Connect)
	peer := address(t)
	read(func() bool { c.SetAddress(peer); return true })
	tap := read(func() *widget.Button { return first(c, button("Connect")) })
	if tap == nil || read(tap.Disabled) {
		t.Fatalf("no enabled Connect button for a valid address")
	}
	read(func() bool { test.Tap(tap); return true })
	eventually(t, "the connect ends", func() bool {
		return read(func() bool { return !c.Connecting() && strings.Contains(texts(c), "Connected") })
	})
	eng.mu.Lock()
	got := eng.connected
	eng.mu.Unlock()
	if text, _ := got.Encode(); text != peer {
		t.Errorf("the engine was asked to connect to %q, want %q", text, peer)
	}
	if shown := read(func() string { return texts(c) }); !strings.Contains(shown, "Failed") {
		t.Errorf("the failed strategy's row is missing:\n%s", shown)
	}
}

// TestFriendsTab: friends show with their presence, a nearby node that is
// a friend shows under the friend's name, and Connect on a friend fills
// the Connect tab with their address.
func TestFriendsTab(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	bob := address(t)
	bobAddr, err := addr.Parse(bob)
	if err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{
		started: make(chan struct{}),
		friends: []pfriends.Friend{
			{Name: "Bob", Address: bob, LastSeen: time.Now().Add(-30 * time.Second)},
			{Name: "Carol", Address: address(t)},
		},
		nearby: []lan.Peer{{Address: bobAddr, From: netip.MustParseAddr("192.168.1.7"), Seen: time.Now()}},
	}
	close(eng.started)
	w, stop := NewMainWindow(a, eng)
	defer stop()
	defer read(func() bool { w.Close(); return true })
	tabs := w.Content().(*container.AppTabs)
	screen := tabs.Items[2].Content
	eventually(t, "the friends show", func() bool {
		got := read(func() string { return texts(screen) })
		return strings.Contains(got, "Bob") && strings.Contains(got, "online") &&
			strings.Contains(got, "Carol") && strings.Contains(got, "not seen yet") &&
			strings.Contains(got, "Bob, at 192.168.1.7")
	})
	connect := read(func() *widget.Button { return first(screen, button("Connect")) })
	if connect == nil {
		t.Fatal("no Connect button for the first friend")
	}
	read(func() bool { test.Tap(connect); return true })
	if got := read(func() int { return tabs.SelectedIndex() }); got != 1 {
		t.Errorf("Connect on a friend selected tab %d, want the Connect tab", got)
	}
	entry := read(func() *widget.Entry { return first(tabs.Items[1].Content, func(*widget.Entry) bool { return true }) })
	if entry == nil || read(func() string { return entry.Text }) != bob {
		t.Errorf("the Connect tab's address is not Bob's")
	}
}

// newWindow opens the main window on a fake engine that has started.
func newWindow(t *testing.T, eng *fakeEngine) *mainWindow {
	t.Helper()
	a := test.NewApp()
	t.Cleanup(a.Quit)
	if eng.started == nil {
		eng.started = make(chan struct{})
		close(eng.started)
	}
	m, stop := newMainWindow(a, eng)
	t.Cleanup(func() { read(func() bool { m.win.Close(); return true }) })
	t.Cleanup(stop)
	// The start's own update lands first: a test's later ones must not
	// race with it.
	eventually(t, "the start shown", func() bool { return !read(m.home.Status).Refreshing })
	return m
}

// TestChatFromWindow: Chat on a friend opens the conversation; Enter
// sends through the engine; a message the engine hears shows, and a
// receipt marks its line delivered in place.
func TestChatFromWindow(t *testing.T) {
	eng := &fakeEngine{
		friends: []pfriends.Friend{{Name: "Bob", Address: address(t)}},
		online:  map[string]bool{"Bob": true},
		history: map[string][]chat.Line{"Bob": {{Message: chat.Message{ID: "old", Time: time.Now(), Text: "earlier"}}}},
	}
	m := newWindow(t, eng)
	screen := m.tabs.Items[tabFriends].Content
	talk := func() *widget.Button { return first(screen, button("Chat")) }
	eventually(t, "Bob's Chat button", func() bool { return read(talk) != nil })
	read(func() bool { test.Tap(talk()); return true })
	if got := read(m.tabs.SelectedIndex); got != tabChat || read(m.chat.Current) != "Bob" {
		t.Fatalf("Chat on Bob shows tab %d with %q", got, read(m.chat.Current))
	}
	eventually(t, "the history", func() bool {
		return read(func() bool { l := m.chat.Lines(); return len(l) == 1 && l[0].Text == "earlier" })
	})
	if said := read(func() string { return m.chat.SendText("hello Bob") }); said != "" {
		t.Fatalf("sending says %q", said)
	}
	eng.mu.Lock()
	sent := fmt.Sprint(eng.sent)
	eng.mu.Unlock()
	if sent != "[Bob: hello Bob]" {
		t.Errorf("the engine was asked to send %s", sent)
	}
	eng.hook().Message(engine.Peer{Name: "Bob"}, chat.Message{ID: "in", Time: time.Now(), Text: "hi Ann"})
	lines := read(m.chat.Lines)
	if len(lines) != 3 || lines[1].Text != "hello Bob" || !lines[1].Out || lines[2].Text != "hi Ann" || lines[2].Out {
		t.Errorf("the conversation: %+v", lines)
	}

	// A receipt marks the line where it is, without reading the
	// history again.
	reads := eng.historyReads()
	eng.hook().Delivered(engine.Peer{Name: "Bob"}, lines[1].ID)
	eventually(t, "the delivery mark", func() bool {
		return read(func() bool { l := m.chat.Lines(); return len(l) == 3 && l[1].Delivered && !l[2].Delivered })
	})
	if got := eng.historyReads(); got != reads {
		t.Errorf("a receipt read the history %d more times", got-reads)
	}
}

// TestOfferFromWindow: an incoming offer brings the Transfers tab up with
// its question; Accept answers the engine with the download folder; the
// engine's transfer events fill the row.
func TestOfferFromWindow(t *testing.T) {
	eng := &fakeEngine{}
	m := newWindow(t, eng)
	answers := make(chan string, 2)
	eng.hook().Offer(engine.Offer{ID: "o1", From: engine.Peer{Name: "Bob"}, Files: []string{"a.txt"}, Total: 5, Dir: "/home/ann/Downloads"},
		func(ok bool, dir string) { answers <- fmt.Sprint(ok, " ", dir) })
	if got := read(m.tabs.SelectedIndex); got != tabTransfers {
		t.Errorf("an offer shows tab %d", got)
	}
	if !read(func() bool { return m.trans.Answer("o1", true) }) {
		t.Fatal("no question about the offer")
	}
	if got := <-answers; got != "true /home/ann/Downloads" {
		t.Errorf("the engine heard %q", got)
	}
	eng.hook().Transfer(engine.Transfer{ID: "o1", Peer: engine.Peer{Name: "Bob"}, Incoming: true, Files: []string{"a.txt"}, State: engine.Done,
		Progress: transfer.Progress{Done: 5, Total: 5}, Dir: "/home/ann/Downloads"})
	rows := read(m.trans.Rows)
	if len(rows) != 1 || rows[0].State != transfers.Done || rows[0].Where != "/home/ann/Downloads" || rows[0].Name != "a.txt" {
		t.Errorf("the transfer rows: %+v", rows)
	}
}

// TestEarlierTransfersFromWindow: the transfers of earlier runs show
// when the window opens; Clear finished takes the ended ones off, through
// the engine.
func TestEarlierTransfersFromWindow(t *testing.T) {
	eng := &fakeEngine{transfers: []engine.Transfer{
		{ID: "old", Peer: engine.Peer{Name: "Bob"}, Files: []string{"a.txt"}, State: engine.Done,
			Progress: transfer.Progress{Done: 5, Total: 5}, Ended: time.Now().Add(-24 * time.Hour)},
		{ID: "queued", Peer: engine.Peer{Name: "Bob"}, Files: []string{"b.txt"}, State: engine.Waiting},
	}}
	m := newWindow(t, eng)
	rows := read(m.trans.Rows)
	if len(rows) != 2 || rows[0].ID != "queued" || rows[1].ID != "old" || rows[1].Ended.IsZero() {
		t.Fatalf("the rows at start: %+v", rows)
	}
	clear := func() *widget.Button { return first(m.tabs.Items[tabTransfers].Content, button("Clear finished")) }
	if read(clear) == nil || !read(func() bool { return clear().Visible() }) {
		t.Fatal("no Clear finished button with a transfer done")
	}
	read(func() bool { test.Tap(clear()); return true })
	eventually(t, "the done transfer cleared", func() bool {
		rows := read(m.trans.Rows)
		return len(rows) == 1 && rows[0].ID == "queued"
	})
	if left := eng.Transfers(); len(left) != 1 {
		t.Errorf("the engine still lists %+v", left)
	}
}

// TestNetworkChangeShows: the engine's word of a network change shows on
// Home with the new address.
func TestNetworkChangeShows(t *testing.T) {
	eng := &fakeEngine{}
	m := newWindow(t, eng)
	fresh := address(t)
	eng.hook().Network(engine.Snapshot{Address: fresh}, "the network changed (new: 10.0.0.7 on wlan0)", nil)
	st := read(m.home.Status)
	if st.Address != fresh || !strings.Contains(st.Event, "the network changed (new: 10.0.0.7 on wlan0)") || st.Err != nil {
		t.Errorf("Home shows %+v", st)
	}
	eng.hook().Network(engine.Snapshot{Address: fresh}, "the network changed (gone: 10.0.0.7 on wlan0)", errors.New("no usable network address"))
	if st := read(m.home.Status); st.Err == nil || !strings.Contains(st.Event, "gone: 10.0.0.7") {
		t.Errorf("a restart that failed shows %+v", st)
	}
}

// TestNotifications: a message that arrives while the window is in the
// background raises a system notification, unless they are turned off;
// none while the window has the focus.
func TestNotifications(t *testing.T) {
	eng := &fakeEngine{friends: []pfriends.Friend{{Name: "Bob", Address: address(t)}}}
	m := newWindow(t, eng)
	msg := func() {
		eng.hook().Message(engine.Peer{Name: "Bob"}, chat.Message{ID: "x", Time: time.Now(), Text: "hi"})
	}
	test.AssertNotificationSent(t, nil, msg) // focused
	read(func() bool { m.note.focused = false; return true })
	test.AssertNotificationSent(t, fyne.NewNotification("Message from Bob", "hi"), msg)
	off := engine.DefaultSettings(config.Config{})
	off.Notifications = false
	eng.SaveSettings(off)
	test.AssertNotificationSent(t, nil, msg)
}
