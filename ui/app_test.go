package ui

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"p2pd/engine"
	pfriends "p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
	"p2pd/netcore/lan"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/node"
	"p2pd/ui/connect"
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

// fakeEngine answers with fixed data; Start waits for started.
type fakeEngine struct {
	cached, fresh engine.Snapshot
	started       chan struct{}
	mu            sync.Mutex
	connected     *addr.Address
	friends       []pfriends.Friend
	nearby        []lan.Peer
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
