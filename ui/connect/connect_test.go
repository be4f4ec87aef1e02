package connect

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"go.uber.org/goleak"

	"p2pd/netcore/addr"
	"p2pd/netcore/node"
	"p2pd/ui/uitest"
)

// harness drives a Connect screen from the test goroutine: the screen's
// fyne.Do calls land in queue, and its clock is now.
type harness struct {
	c     *Connect
	w     fyne.Window
	now   time.Time
	queue chan func()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{now: time.Unix(1_700_000_000, 0), queue: make(chan func(), 1024)}
	h.w = uitest.Window(t)
	h.c = New(h.w)
	// The test driver's fyne.Do runs f on the caller's goroutine; queue it
	// instead, as the real driver does, and run it here.
	h.c.Do = func(f func()) {
		select {
		case h.queue <- f:
		default: // a full queue drops ticks, as a busy UI would skip frames
		}
	}
	h.c.now = func() time.Time { return h.now }
	h.w.SetContent(h.c)
	h.w.Resize(fyne.NewSize(700, 900))
	return h
}

// next runs the next queued UI call, waiting for it.
func (h *harness) next(t *testing.T) {
	t.Helper()
	select {
	case f := <-h.queue:
		f()
	case <-time.After(10 * time.Second):
		t.Fatal("no UI update came")
	}
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

func TestInvalidAddressExplainedAndConnectDisabled(t *testing.T) {
	h := newHarness(t)
	called := false
	h.c.OnConnect = func(*addr.Address) { called = true }
	good := friendText(t)
	// Flip one character of the key: the checksum catches it.
	i := strings.Index(good, "-") + 3
	flip := map[byte]byte{'A': 'B'}[good[i]]
	if flip == 0 {
		flip = 'A'
	}
	typo := good[:i] + string(flip) + good[i+1:]
	for _, tc := range []struct{ text, want string }{
		{"hello", "This is not a P2PD address (it should start with P2PD)."},
		{good[:40], "The address is cut short."},
		{typo, "The address has a typo (its checksum does not match)."},
		{"P2PD7-AAAAA", "The address is of a version this P2PD does not know; update P2PD (version 7)."},
	} {
		h.c.entry.SetText("")
		test.Type(h.c.entry, tc.text)
		if h.c.message.Hidden || h.c.message.Text != tc.want {
			t.Errorf("%q: message %q (hidden %v), want %q", tc.text, h.c.message.Text, h.c.message.Hidden, tc.want)
		}
		if !h.c.connect.Disabled() {
			t.Errorf("%q: Connect is enabled", tc.text)
		}
		test.Tap(h.c.connect)
		if called {
			t.Fatalf("%q: OnConnect called for an invalid address", tc.text)
		}
	}
	h.c.entry.SetText("")
	if !h.c.message.Hidden || !h.c.connect.Disabled() {
		t.Error("an empty entry shows a message or enables Connect")
	}
}

func TestValidAddressConnects(t *testing.T) {
	h := newHarness(t)
	var got *addr.Address
	h.c.OnConnect = func(a *addr.Address) { got = a }
	want := friendText(t)
	// Typed sloppily, as read aloud: lower case and spaces.
	test.Type(h.c.entry, strings.ToLower(strings.ReplaceAll(want, "-", " ")))
	if h.c.connect.Disabled() {
		t.Fatalf("Connect disabled for a valid address; message %q", h.c.message.Text)
	}
	if h.c.message.Text != "This is a valid address." {
		t.Errorf("message %q", h.c.message.Text)
	}
	test.Tap(h.c.connect)
	if got == nil {
		t.Fatal("OnConnect not called")
	}
	if s, _ := got.Encode(); s != want {
		t.Errorf("OnConnect got %s, want %s", s, want)
	}
	if !h.c.Connecting() || !h.c.connect.Disabled() {
		t.Error("Connect still enabled while connecting")
	}
	h.c.Done("", context.Canceled)
	if h.c.connect.Disabled() {
		t.Error("Connect disabled after Done")
	}
}

func TestPasteButton(t *testing.T) {
	h := newHarness(t)
	test.Tap(h.c.paste)
	if !strings.Contains(h.c.message.Text, "clipboard is empty") {
		t.Errorf("empty clipboard: message %q", h.c.message.Text)
	}
	want := friendText(t)
	fyne.CurrentApp().Clipboard().SetContent("  " + want + "\n")
	test.Tap(h.c.paste)
	if h.c.entry.Text != want || h.c.connect.Disabled() {
		t.Errorf("after Paste: entry %q, Connect disabled %v", h.c.entry.Text, h.c.connect.Disabled())
	}
}

// TestRowsFollowEvents plays a race as node.Connect reports it: direct
// tries and fails, reverse and birthday are skipped, UDP punching wins,
// TCP punching and the relay are cancelled.
func TestRowsFollowEvents(t *testing.T) {
	h := newHarness(t)
	h.c.SetAddress(friendText(t))
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the ticker ends with Done
	test.Tap(h.c.connect)
	for _, s := range node.Strategies {
		if got := h.c.rows[s].state.Text; got != "Waiting" {
			t.Errorf("%s before any event: %q", s, got)
		}
	}
	ev := func(s string, st node.State, ms int, reason string) {
		h.c.Progress(node.Event{Strategy: s, State: st, Elapsed: time.Duration(ms) * time.Millisecond, Reason: reason})
	}
	check := func(s, state, detail string, mark fyne.ThemeColorName) {
		t.Helper()
		r := h.c.rows[s]
		if r.state.Text != state {
			t.Errorf("%s: state %q, want %q", s, r.state.Text, state)
		}
		if d := map[bool]string{true: "", false: r.detail.Text}[r.detail.Hidden]; d != detail {
			t.Errorf("%s: detail %q, want %q", s, d, detail)
		}
		if r.mark.FillColor != theme.Color(mark) {
			t.Errorf("%s: mark %v, want %s", s, r.mark.FillColor, mark)
		}
	}

	ev(node.Direct, node.Started, 0, "")
	ev(node.Reverse, node.Skipped, 0, "this node reached no signaling broker")
	ev(node.PunchTCP, node.Started, 1, "")
	ev(node.PunchUDP, node.Started, 1, "")
	ev(node.PunchBirthday, node.Skipped, 1, "not needed: these NATs can be punched directly")
	ev(node.Relay, node.Started, 2, "waits 2s for the direct strategies first")
	check(node.Direct, "Trying… 0.0 s", "", theme.ColorNamePrimary)
	check(node.Reverse, "Skipped: This computer is not connected to a signaling server, which this way needs.", "this node reached no signaling broker", theme.ColorNameDisabled)
	check(node.PunchBirthday, "Skipped: Not needed: ordinary hole punching can work.", "not needed: these NATs can be punched directly", theme.ColorNameDisabled)
	check(node.Relay, "Trying… 0.0 s", "Gives the direct ways a head start.", theme.ColorNamePrimary)

	ev(node.Direct, node.Progress, 5, "dialing 198.51.100.2:41234 (external), 192.168.1.20:41234 (internal)")
	// The clock ticks: the real ticker goroutine asks for a redraw.
	h.advance(1200 * time.Millisecond)
	h.next(t)
	check(node.Direct, "Trying… 1.2 s", "dialing 198.51.100.2:41234 (external), 192.168.1.20:41234 (internal)", theme.ColorNamePrimary)
	check(node.PunchUDP, "Trying… 1.2 s", "", theme.ColorNamePrimary)

	ev(node.PunchUDP, node.Progress, 300, "offering 198.51.100.2:50000 over signaling")
	ev(node.PunchUDP, node.Succeeded, 1400, "198.51.100.7:61000")
	ev(node.PunchTCP, node.Cancelled, 1401, "another strategy won first")
	ev(node.Relay, node.Cancelled, 1401, "another strategy won first")
	ev(node.Direct, node.Failed, 3000, "198.51.100.2:41234 (external): i/o timeout; 192.168.1.20:41234 (internal): connect: connection refused")
	h.advance(5 * time.Second) // finished rows keep the engine's time
	h.c.tick()
	check(node.PunchUDP, "Connected in 1.4 s", "198.51.100.7:61000", theme.ColorNameSuccess)
	check(node.PunchTCP, "Stopped after 1.4 s: Another way connected first.", "another strategy won first", theme.ColorNameDisabled)
	check(node.Direct, "Failed after 3.0 s: No answer in time: a router or firewall on the way drops the connection.",
		"198.51.100.2:41234 (external): i/o timeout; 192.168.1.20:41234 (internal): connect: connection refused", theme.ColorNameError)

	h.c.Done(node.PunchUDP, nil)
	if h.c.Connecting() || h.c.stopTicks != nil {
		t.Error("still connecting after Done")
	}
	if want := "Connected to your friend (UDP hole punching)."; h.c.result.Text != want || h.c.result.Hidden {
		t.Errorf("result %q, want %q", h.c.result.Text, want)
	}
	// A tick queued before Done changes nothing.
	h.c.tick()
	check(node.PunchUDP, "Connected in 1.4 s", "198.51.100.7:61000", theme.ColorNameSuccess)
}

func TestUnknownStrategyAndStates(t *testing.T) {
	h := newHarness(t)
	h.c.SetAddress(friendText(t))
	// The app may connect without the button (a saved friend): the first
	// event starts the display.
	h.c.Progress(node.Event{Strategy: "teleport", State: node.Failed, Elapsed: time.Second, Reason: "quantum decoherence"})
	if !h.c.Connecting() {
		t.Fatal("Progress did not start the display")
	}
	r := h.c.rows["teleport"]
	if r == nil {
		t.Fatal("no row for an unknown strategy")
	}
	if want := "Failed after 1.0 s: Quantum decoherence."; r.state.Text != want || !r.detail.Hidden {
		t.Errorf("state %q (detail hidden %v), want %q", r.state.Text, r.detail.Hidden, want)
	}
	h.c.Progress(node.Event{Strategy: node.Direct, State: node.Started})
	h.c.Progress(node.Event{Strategy: node.Reverse, State: node.Started})
	// The user's cancel reaches the engine's strategies as their failure.
	h.c.Progress(node.Event{Strategy: node.Reverse, State: node.Failed, Elapsed: 2 * time.Second, Reason: "the peer did not connect back: context canceled"})
	if got := h.c.rows[node.Reverse]; got.state.Text != "Stopped after 2.0 s" || got.mark.FillColor != theme.Color(theme.ColorNameDisabled) {
		t.Errorf("a strategy stopped by the user: %q", got.state.Text)
	}
	h.c.Done("", errors.New("connect: every strategy failed: teleport failed (quantum decoherence)"))
	if got := h.c.rows[node.Direct].state.Text; !strings.HasPrefix(got, "Stopped after") {
		t.Errorf("a row still running at Done: %q", got)
	}
	if got := h.c.rows[node.Relay].state.Text; got != "Not tried" {
		t.Errorf("a row without events at Done: %q", got)
	}
	if want := "Could not connect: none of the ways worked. Each one's reason is above."; h.c.result.Text != want {
		t.Errorf("result %q, want %q", h.c.result.Text, want)
	}
	if !h.c.friend.Hidden {
		t.Error("offers to save a friend after a failure")
	}
}

func TestDoneExplainsFailures(t *testing.T) {
	h := newHarness(t)
	h.c.SetAddress(friendText(t))
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.Canceled, "You stopped connecting."},
		{context.DeadlineExceeded, "Gave up: no way connected in time."},
		{errors.New("the node is not running"), "Could not connect: The node is not running."},
	} {
		test.Tap(h.c.connect)
		h.c.Done("", tc.err)
		if h.c.result.Text != tc.want {
			t.Errorf("%v: result %q, want %q", tc.err, h.c.result.Text, tc.want)
		}
	}
}

func TestStopButton(t *testing.T) {
	h := newHarness(t)
	stopped := false
	h.c.OnCancel = func() { stopped = true }
	h.c.SetAddress(friendText(t))
	if !h.c.stop.Hidden {
		t.Error("Stop shown before connecting")
	}
	test.Tap(h.c.connect)
	if h.c.stop.Hidden {
		t.Fatal("no Stop button while connecting")
	}
	test.Tap(h.c.stop)
	if !stopped {
		t.Error("Stop did not call OnCancel")
	}
	h.c.Done("", context.Canceled)
	if !h.c.stop.Hidden {
		t.Error("Stop shown after Done")
	}
}

func TestSaveFriend(t *testing.T) {
	h := newHarness(t)
	var saved []string
	h.c.OnSaveFriend = func(name string, a *addr.Address) error {
		if name == "Bob" {
			return errors.New("you already have a friend called Bob")
		}
		s, _ := a.Encode()
		saved = append(saved, name+" "+s)
		return nil
	}
	h.c.SetAddress(friendText(t))
	test.Tap(h.c.connect)
	h.c.Progress(node.Event{Strategy: node.Direct, State: node.Succeeded, Elapsed: 300 * time.Millisecond})
	h.c.Done(node.Direct, nil)
	if h.c.friend.Hidden {
		t.Fatal("no offer to save the friend after connecting")
	}
	test.Tap(h.c.save)
	if !strings.Contains(h.c.saveMsg.Text, "Type a name") {
		t.Errorf("saving without a name: %q", h.c.saveMsg.Text)
	}
	test.Type(h.c.friendName, "Bob")
	test.Tap(h.c.save)
	if want := "Could not save: you already have a friend called Bob"; h.c.saveMsg.Text != want {
		t.Errorf("name taken: %q, want %q", h.c.saveMsg.Text, want)
	}
	h.c.friendName.SetText("")
	test.Type(h.c.friendName, "Alice")
	test.Tap(h.c.save)
	if want := "Alice " + friendText(t); len(saved) != 1 || saved[0] != want {
		t.Errorf("saved %q, want [%q]", saved, want)
	}
	if h.c.saveMsg.Text != "Saved as Alice." || !h.c.save.Disabled() {
		t.Errorf("after saving: %q, Save disabled %v", h.c.saveMsg.Text, h.c.save.Disabled())
	}
}

func TestDropPicture(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	want := friendText(t)
	good := filepath.Join(dir, "friend.png")
	if err := os.WriteFile(good, encodePNG(t, screenshot(qrImage(t, want, 3), false)), 0o600); err != nil {
		t.Fatal(err)
	}
	h.c.Dropped(fyne.NewPos(10, 10), []fyne.URI{storage.NewFileURI(good)})
	h.next(t)
	if h.c.entry.Text != want {
		t.Errorf("entry %q after the drop, want %q", h.c.entry.Text, want)
	}
	if h.c.message.Text != "Found your friend's address in friend.png." || h.c.connect.Disabled() {
		t.Errorf("message %q, Connect disabled %v", h.c.message.Text, h.c.connect.Disabled())
	}

	blank := filepath.Join(dir, "cat.png")
	if err := os.WriteFile(blank, encodePNG(t, screenshot(image.NewRGBA(image.Rect(0, 0, 1, 1)), false)), 0o600); err != nil {
		t.Fatal(err)
	}
	h.c.Dropped(fyne.NewPos(10, 10), []fyne.URI{storage.NewFileURI(blank)})
	h.next(t)
	if h.c.message.Text != "No QR code found in that picture." {
		t.Errorf("message %q after dropping a picture without a QR code", h.c.message.Text)
	}
	if h.c.entry.Text != want {
		t.Error("a failed scan changed the entry")
	}
}

// TestTicksStop: the ticker goroutine ends when the connect does.
func TestTicksStop(t *testing.T) {
	stop, done := make(chan struct{}), make(chan struct{})
	got := make(chan struct{}, 10)
	go func() {
		ticks(stop, time.Millisecond, func(f func()) { f() }, func() {
			select {
			case got <- struct{}{}:
			default:
			}
		})
		close(done)
	}()
	<-got
	close(stop)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the ticker goroutine did not end")
	}
}

// TestSubmitAndSaveAs: Submit, Result and SaveAs go the buttons' ways.
func TestSubmitAndSaveAs(t *testing.T) {
	h := newHarness(t)
	var asked int
	h.c.OnConnect = func(*addr.Address) { asked++ }
	h.c.OnSaveFriend = func(string, *addr.Address) error { return nil }
	h.c.Submit()
	if asked != 0 {
		t.Error("Submit connected with no address")
	}
	h.c.SetAddress(friendText(t))
	h.c.Submit()
	h.c.Submit() // a connect runs: no second one
	if asked != 1 || h.c.Result() != "" || h.c.SaveAs("Ann") != "" {
		t.Fatalf("while connecting: %d connects, result %q", asked, h.c.Result())
	}
	h.c.Done(node.Direct, nil)
	if !strings.HasPrefix(h.c.Result(), "Connected") {
		t.Errorf("Result = %q", h.c.Result())
	}
	if got := h.c.SaveAs("Ann"); got != "Saved as Ann." {
		t.Errorf("SaveAs = %q", got)
	}
}
