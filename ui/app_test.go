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
	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
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

// texts gathers every text shown under o.
func texts(o fyne.CanvasObject) string {
	var b strings.Builder
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch v := o.(type) {
		case *widget.Label:
			b.WriteString(v.Text + "\n")
		case *canvas.Text:
			b.WriteString(v.Text + "\n")
		case *widget.RichText:
			b.WriteString(v.String() + "\n")
		case *fyne.Container:
			for _, c := range v.Objects {
				walk(c)
			}
			return
		}
		if w, ok := o.(fyne.Widget); ok {
			for _, c := range test.WidgetRenderer(w).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
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
	w, stop := NewMainWindow(a, Info{Version: "test"}, eng)
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
	w, stop := NewMainWindow(a, Info{}, eng)
	defer stop()
	defer read(func() bool { w.Close(); return true })
	tabs := w.Content().(*container.AppTabs)
	read(func() bool { tabs.SelectIndex(1); return true })
	c := tabs.Items[1].Content.(*connect.Connect)
	peer := address(t)
	read(func() bool { c.SetAddress(peer); return true })
	var button *widget.Button
	var find func(fyne.CanvasObject)
	find = func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == "Connect" {
			button = b
		}
		if ct, ok := o.(*fyne.Container); ok {
			for _, x := range ct.Objects {
				find(x)
			}
		} else if wd, ok := o.(fyne.Widget); ok {
			for _, x := range test.WidgetRenderer(wd).Objects() {
				find(x)
			}
		}
	}
	read(func() bool { find(c); return true })
	if button == nil || read(button.Disabled) {
		t.Fatalf("no enabled Connect button for a valid address")
	}
	read(func() bool { test.Tap(button); return true })
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
