package chat

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"p2pd/ui/uitest"
)

// now is the tests' clock: a Saturday evening.
var now = time.Date(2026, 11, 21, 18, 0, 0, 0, time.Local)

// newScreen shows a Chat screen in a headless window, its clock at now.
func newScreen(t *testing.T) (*Screen, fyne.Window) {
	t.Helper()
	w := uitest.Window(t)
	s := New(w)
	s.now = func() time.Time { return now }
	w.SetContent(s)
	w.Resize(fyne.NewSize(700, 600))
	return s, w
}

// withBob is a screen listing Bob (online) and Carol, with Bob's
// conversation open.
func withBob(t *testing.T) (*Screen, fyne.Window) {
	t.Helper()
	s, w := newScreen(t)
	s.SetPeers([]Peer{{Name: "Bob", Online: true}, {Name: "Carol"}})
	s.Open("Bob")
	return s, w
}

// enter presses Enter in the input.
func enter(s *Screen) { s.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) }

// texts lists the conversation's rows as "who: text", checking that they
// are what the conversation shows.
func texts(t *testing.T, s *Screen) []string {
	t.Helper()
	var out []string
	if len(s.lines.Objects) != 1+len(s.rows) {
		t.Errorf("%d objects in the conversation for %d rows", len(s.lines.Objects), len(s.rows))
	}
	for i, r := range s.rows {
		if s.lines.Objects[1+i] != r.box {
			t.Errorf("row %d is not in its place", i)
		}
		out = append(out, r.who.Text+": "+r.text.Text)
	}
	return out
}

// byID is the row showing the line with id, or nil.
func byID(s *Screen, id string) *row {
	i, ok := s.index[id]
	if !ok || i < s.first {
		return nil
	}
	return s.rows[i-s.first]
}

func TestSend(t *testing.T) {
	for _, c := range []struct {
		name, typed string
		err         error
		sent        []string // "friend: text"
		input, msg  string   // msg "": hidden
		button      bool     // tap Send rather than press Enter
	}{
		{name: "enter", typed: "hello", sent: []string{"Bob: hello"}},
		{name: "button", typed: "hello", button: true, sent: []string{"Bob: hello"}},
		{name: "trimmed", typed: "  hi there ", sent: []string{"Bob: hi there"}},
		{name: "empty", typed: ""},
		{name: "blank", typed: "  \t ", input: "  \t "},
		{name: "error", typed: "hello", err: errors.New("the chat outbox is full"),
			sent: []string{"Bob: hello"}, input: "hello", msg: "Not sent: the chat outbox is full."},
		{name: "engine words", typed: "hello", err: errors.New("not sent: disk full"),
			sent: []string{"Bob: hello"}, input: "hello", msg: "Not sent: disk full."},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := withBob(t)
			var sent []string
			s.OnSend = func(friend, text string) error {
				sent = append(sent, friend+": "+text)
				return c.err
			}
			test.Type(s.input, c.typed)
			if c.button {
				test.Tap(s.send)
			} else {
				enter(s)
			}
			if !slices.Equal(sent, c.sent) {
				t.Errorf("OnSend heard %q, want %q", sent, c.sent)
			}
			if s.input.Text != c.input {
				t.Errorf("input %q, want %q", s.input.Text, c.input)
			}
			msg := s.message.Text
			if !s.message.Visible() {
				msg = ""
			}
			if msg != c.msg {
				t.Errorf("message %q, want %q", msg, c.msg)
			}
			if c.msg != "" && s.message.Importance != widget.DangerImportance {
				t.Errorf("an error shown with importance %v", s.message.Importance)
			}
		})
	}
}

// TestErrorThenSent: a send that works after one that failed clears the
// error.
func TestErrorThenSent(t *testing.T) {
	s, _ := withBob(t)
	fail := true
	s.OnSend = func(string, string) error {
		if fail {
			return errors.New("no way")
		}
		return nil
	}
	test.Type(s.input, "hello")
	enter(s)
	if !s.message.Visible() || s.input.Text != "hello" {
		t.Fatalf("after a failed send: message visible %v, input %q", s.message.Visible(), s.input.Text)
	}
	fail = false
	enter(s)
	if s.message.Visible() || s.input.Text != "" {
		t.Errorf("after a send: message %q visible %v, input %q", s.message.Text, s.message.Visible(), s.input.Text)
	}
}

// TestNothingOpen: without an open conversation the input is off, and
// without friends the screen says how to get one.
func TestNothingOpen(t *testing.T) {
	s, _ := newScreen(t)
	s.OnSend = func(friend, text string) error { t.Errorf("OnSend(%q, %q)", friend, text); return nil }
	if !s.noFriends.Visible() || s.noFriends.Text != "No friends yet: connect to someone and save them as a friend." {
		t.Errorf("no friends: label %q visible %v", s.noFriends.Text, s.noFriends.Visible())
	}
	if s.choose.Visible() {
		t.Error("the picker shows without friends")
	}
	s.SetPeers([]Peer{{Name: "Bob"}})
	if s.noFriends.Visible() || !s.choose.Visible() {
		t.Error("with a friend: the picker is hidden or the no-friends label shown")
	}
	if s.Current() != "" {
		t.Errorf("a conversation opened by itself: %q", s.Current())
	}
	if !s.input.Disabled() || !s.send.Disabled() || !s.attach.Disabled() || s.input.PlaceHolder != "Pick a friend to chat with" {
		t.Errorf("input disabled %v (placeholder %q), Send disabled %v, File disabled %v",
			s.input.Disabled(), s.input.PlaceHolder, s.send.Disabled(), s.attach.Disabled())
	}
	test.Type(s.input, "hello")
	enter(s)
	test.Tap(s.send)
}

func TestPickAndPeers(t *testing.T) {
	s, _ := newScreen(t)
	var opened []string
	s.OnOpen = func(friend string) { opened = append(opened, friend) }
	s.SetPeers([]Peer{{Name: "Bob", Online: true}, {Name: "Carol"}})
	if want := []string{"Bob (online)", "Carol"}; !slices.Equal(s.picker.Options, want) {
		t.Errorf("options %q, want %q", s.picker.Options, want)
	}
	if len(opened) != 0 {
		t.Fatalf("SetPeers opened %q", opened)
	}

	s.picker.SetSelected("Carol") // as the picker's menu does
	if !slices.Equal(opened, []string{"Carol"}) || s.Current() != "Carol" {
		t.Fatalf("picking Carol: OnOpen heard %q, current %q", opened, s.Current())
	}
	if s.input.Disabled() || s.input.PlaceHolder != "Write to Carol" {
		t.Errorf("input disabled %v, placeholder %q", s.input.Disabled(), s.input.PlaceHolder)
	}
	if !s.hint.Visible() || s.hint.Text != "No messages with Carol yet: say hello." {
		t.Errorf("hint %q visible %v", s.hint.Text, s.hint.Visible())
	}
	s.picker.SetSelected("Carol") // picked again: nothing new
	if len(opened) != 1 {
		t.Errorf("picking the open friend again: OnOpen heard %q", opened)
	}

	// Carol comes online: still open, not opened again.
	s.ShowHistory("Carol", []Line{{ID: "1", Text: "hi"}})
	s.SetPeers([]Peer{{Name: "Bob"}, {Name: "Carol", Online: true}})
	if s.Current() != "Carol" || s.picker.Selected != "Carol (online)" || len(opened) != 1 {
		t.Errorf("after SetPeers: current %q, picker %q, OnOpen heard %q", s.Current(), s.picker.Selected, opened)
	}
	if len(s.rows) != 1 {
		t.Errorf("SetPeers dropped the conversation: %d rows", len(s.rows))
	}

	s.Open("Bob")
	if !slices.Equal(opened, []string{"Carol", "Bob"}) || s.Current() != "Bob" || s.picker.Selected != "Bob" {
		t.Errorf("Open(Bob): OnOpen heard %q, current %q, picker %q", opened, s.Current(), s.picker.Selected)
	}
	if len(s.rows) != 0 {
		t.Errorf("Bob's conversation shows %d of Carol's rows", len(s.rows))
	}
	s.Open("Zed")
	if s.Current() != "Bob" || len(opened) != 2 {
		t.Errorf("Open of someone not listed: current %q, OnOpen heard %q", s.Current(), opened)
	}

	// Bob is no longer a friend: his conversation closes.
	s.SetPeers([]Peer{{Name: "Carol"}})
	if s.Current() != "" || s.picker.Selected != "" || !s.input.Disabled() || len(opened) != 2 {
		t.Errorf("after Bob left: current %q, picker %q, input disabled %v, OnOpen heard %q",
			s.Current(), s.picker.Selected, s.input.Disabled(), opened)
	}
}

// TestDraftNotCarriedOver: text typed for one friend does not stay in the
// input for another.
func TestDraftNotCarriedOver(t *testing.T) {
	s, _ := withBob(t)
	test.Type(s.input, "for Bob only")
	s.picker.SetSelected("Carol")
	if s.input.Text != "" {
		t.Errorf("input %q after switching to Carol", s.input.Text)
	}
}

func TestHistoryAndAddOnlyForTheOpenFriend(t *testing.T) {
	s, _ := withBob(t)
	s.ShowHistory("Bob", []Line{{ID: "1", Text: "hi Bob", Out: true}, {ID: "2", Text: "hi you"}})
	s.ShowHistory("Carol", []Line{{ID: "3", Text: "hi Carol"}})
	s.Add("Carol", Line{ID: "4", Text: "are you there?"})
	s.ShowHistory("", nil)
	s.Add("", Line{ID: "5", Text: "nobody's"})
	if got, want := texts(t, s), []string{"You: hi Bob", "Bob: hi you"}; !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
	if s.hint.Visible() {
		t.Errorf("hint %q shows over the conversation", s.hint.Text)
	}
}

func TestAddUpdatesByID(t *testing.T) {
	s, _ := withBob(t)
	s.ShowHistory("Bob", []Line{{ID: "1", Text: "earlier", Time: now.Add(-time.Hour)}})
	at := now.Add(-time.Minute)
	s.Add("Bob", Line{ID: "2", Text: "hello", Out: true, Time: at})
	if r := byID(s, "2"); r == nil || r.status.Text != "not delivered yet" {
		t.Fatalf("a new Out line: %+v", r)
	}
	s.Add("Bob", Line{ID: "2", Text: "hello", Out: true, Time: at, Delivered: true})
	if got, want := texts(t, s), []string{"Bob: earlier", "You: hello"}; !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
	if r := byID(s, "2"); r.status.Text != "delivered" || r.when.Text != "17:59" {
		t.Errorf("delivered line: status %q, time %q", r.status.Text, r.when.Text)
	}
	if r := byID(s, "1"); r.status.Text != "" || r.mark.Resource != nil {
		t.Errorf("a received line has a delivery mark %q", r.status.Text)
	}
	// A line that changed sides is drawn again, in place.
	s.Add("Bob", Line{ID: "1", Text: "earlier", Out: true})
	if got, want := texts(t, s), []string{"You: earlier", "You: hello"}; !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestHistoryReadBeforeNews: a history read before a line was sent and
// its receipt came keeps both when it arrives: the line stays, marked.
func TestHistoryReadBeforeNews(t *testing.T) {
	s, _ := withBob(t)
	at := now.Add(-time.Minute)
	s.Add("Bob", Line{ID: "new", Text: "just sent", Out: true, Time: at})
	s.MarkDelivered("Bob", "new")
	s.Add("Bob", Line{ID: "late", Text: "sent after the read", Out: true, Time: at})
	s.ShowHistory("Bob", []Line{{ID: "old", Text: "earlier", Time: at.Add(-time.Hour)}, {ID: "new", Text: "just sent", Out: true, Time: at}})
	l := s.Lines()
	if len(l) != 3 || l[0].ID != "old" || l[1].ID != "new" || !l[1].Delivered || l[2].ID != "late" || l[2].Delivered {
		t.Errorf("the lines: %+v", l)
	}
}

// TestMarkDelivered: a receipt marks its line in place, in the open
// conversation only; an unknown id changes nothing.
func TestMarkDelivered(t *testing.T) {
	s, _ := withBob(t)
	at := now.Add(-time.Minute)
	s.ShowHistory("Bob", []Line{{ID: "1", Text: "hello", Out: true, Time: at}, {ID: "2", Text: "again", Out: true, Time: at}})
	before := byID(s, "1")
	s.MarkDelivered("Ann", "1")
	s.MarkDelivered("Bob", "unknown")
	if r := byID(s, "1"); r.status.Text != "not delivered yet" {
		t.Errorf("marked by another friend's receipt: %q", r.status.Text)
	}
	s.MarkDelivered("Bob", "1")
	if r := byID(s, "1"); r != before || r.status.Text != "delivered" {
		t.Errorf("line 1 after its receipt: same row %v, status %q", r == before, r.status.Text)
	}
	if r := byID(s, "2"); r.status.Text != "not delivered yet" {
		t.Errorf("line 2 marked by line 1's receipt: %q", r.status.Text)
	}
	if l := s.Lines(); !l[0].Delivered || l[1].Delivered {
		t.Errorf("the lines: %+v", l)
	}
}

func TestWhen(t *testing.T) {
	s, _ := newScreen(t)
	at := func(y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, time.Local)
	}
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{at(2026, 11, 21, 9, 5), "09:05"},
		{at(2026, 11, 21, 0, 0), "00:00"},
		{at(2026, 11, 20, 23, 59), "Fri 23:59"},
		{at(2026, 11, 15, 10, 0), "Sun 10:00"},
		{at(2026, 11, 14, 10, 0), "14 Nov 10:00"}, // a week ago: "Sat" would read as today
		{at(2026, 1, 2, 15, 4), "2 Jan 15:04"},
		{at(2025, 12, 31, 23, 0), "31 Dec 2025 23:00"},
		{at(2026, 11, 22, 8, 0), "22 Nov 08:00"}, // the friend's clock is ahead
		{time.Time{}, ""},
	} {
		if got := s.when(c.t); got != c.want {
			t.Errorf("%v: %q, want %q", c.t, got, c.want)
		}
	}
	// The words reach the screen.
	s.SetPeers([]Peer{{Name: "Bob"}})
	s.Open("Bob")
	s.ShowHistory("Bob", []Line{{ID: "1", Time: at(2026, 11, 20, 23, 59), Text: "late"}})
	if got := byID(s, "1").when.Text; got != "Fri 23:59" {
		t.Errorf("row's time %q", got)
	}
}

func TestDropped(t *testing.T) {
	a, b := storage.NewFileURI("/home/me/a.txt"), storage.NewFileURI("/home/me/b c.png")
	web, err := storage.ParseURI("https://example.com/x.png")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		open   bool
		uris   []fyne.URI
		sent   string // "friend: paths"
		prefix string // of the message
	}{
		{name: "nothing open", uris: []fyne.URI{a}, prefix: "Pick a friend first"},
		{name: "one", open: true, uris: []fyne.URI{a}, sent: "Bob: [/home/me/a.txt]", prefix: "Sending a.txt to Bob."},
		{name: "two", open: true, uris: []fyne.URI{a, web, b}, sent: "Bob: [/home/me/a.txt /home/me/b c.png]", prefix: "Sending 2 files to Bob."},
		{name: "not local", open: true, uris: []fyne.URI{web}, prefix: "Only files on this computer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newScreen(t)
			s.SetPeers([]Peer{{Name: "Bob"}})
			if c.open {
				s.Open("Bob")
			}
			sent := ""
			s.OnSendFiles = func(friend string, paths []string) { sent += fmt.Sprintf("%s: %v", friend, paths) }
			s.Dropped(fyne.NewPos(10, 10), c.uris)
			if sent != c.sent {
				t.Errorf("OnSendFiles heard %q, want %q", sent, c.sent)
			}
			if !s.message.Visible() || !strings.HasPrefix(s.message.Text, c.prefix) {
				t.Errorf("message %q (visible %v), want it to start %q", s.message.Text, s.message.Visible(), c.prefix)
			}
		})
	}
}

// TestAttachOpensDialog: the File… button opens a file dialog over the
// window.
func TestAttachOpensDialog(t *testing.T) {
	s, w := withBob(t)
	if w.Canvas().Overlays().Top() != nil {
		t.Fatal("an overlay before the tap")
	}
	test.Tap(s.attach)
	if w.Canvas().Overlays().Top() == nil {
		t.Error("no file dialog")
	}
}

func TestClean(t *testing.T) {
	const bad = "\uFFFD"
	for _, c := range []struct{ in, want string }{
		{"plain text, ünïcödé ✓", "plain text, ünïcödé ✓"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab"},
		{"windows\r\nline", "windows\nline"},
		{"red\x1b[31mtext", "red" + bad + "[31mtext"},
		{"bell\a nul\x00 cr\r del\x7f", "bell" + bad + " nul" + bad + " cr" + bad + " del" + bad},
		{"c1\u0085\u009b", "c1" + bad + bad},
		{"abc\u202edcba", "abc" + bad + "dcba"},
		{"\u2066isolate\u2069", bad + "isolate" + bad},
		{"bad\xffutf8", "bad" + bad + "utf8"},
	} {
		if got := clean(c.in); got != c.want {
			t.Errorf("clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// What the peer wrote is shown cleaned.
	s, _ := withBob(t)
	s.ShowHistory("Bob", []Line{{ID: "1", Text: "hi\x1b[2J"}})
	s.Add("Bob", Line{ID: "2", Text: "\x00"})
	if got, want := texts(t, s), []string{"Bob: hi" + bad + "[2J", "Bob: " + bad}; !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestSides: one's own lines sit to the right of the friend's.
func TestSides(t *testing.T) {
	s, _ := withBob(t)
	s.ShowHistory("Bob", []Line{{ID: "in", Text: "hi"}, {ID: "out", Text: "hello", Out: true}})
	d := fyne.CurrentApp().Driver()
	in, out := d.AbsolutePositionForObject(byID(s, "in").text), d.AbsolutePositionForObject(byID(s, "out").text)
	if out.X < in.X+indent {
		t.Errorf("own line's text at x %v, the friend's at %v", out.X, in.X)
	}
	inW, outW := byID(s, "in").text.Size().Width, byID(s, "out").text.Size().Width
	if inW != outW || inW <= 0 {
		t.Errorf("widths %v and %v", inW, outW)
	}
}

// TestLongConversation: a thousand lines show in reasonable time, the
// newest page of them at first, and the newest is in view, also after one
// more is added; earlier lines show a page at a time on demand.
func TestLongConversation(t *testing.T) {
	s, w := withBob(t)
	lines := make([]Line, 1000)
	for i := range lines {
		lines[i] = Line{ID: fmt.Sprint(i), Time: now.Add(time.Duration(i-1000) * time.Minute), Out: i%3 == 0, Delivered: i%2 == 0,
			Text: strings.Repeat(fmt.Sprintf("line %d says something. ", i), 1+i%7)}
	}
	start := time.Now()
	s.ShowHistory("Bob", lines)
	shown := time.Since(start)
	start = time.Now()
	w.Canvas().(test.WindowlessCanvas).Capture()
	drawn := time.Since(start)
	start = time.Now()
	s.Add("Bob", Line{ID: "new", Time: now, Text: "the newest line"})
	added := time.Since(start)
	start = time.Now()
	s.Add("Bob", Line{ID: "999", Time: now, Text: lines[999].Text, Out: true, Delivered: true})
	updated := time.Since(start)
	t.Logf("1000 lines shown in %v, drawn in %v; one added in %v, one updated in %v", shown, drawn, added, updated)
	if len(s.rows) != page+1 || byID(s, "899") != nil || byID(s, "900") == nil {
		t.Fatalf("%d rows, the first shown %q", len(s.rows), s.rows[0].text.Text)
	}
	if !inView(s, byID(s, "new").text) {
		t.Error("the added line is out of view")
	}
	if want := fmt.Sprintf("Show earlier messages (%d more)", 900); !s.earlier.Visible() || s.earlier.Text != want {
		t.Errorf("earlier button %q (visible %v), want %q", s.earlier.Text, s.earlier.Visible(), want)
	}

	// Earlier lines come above, and the view stays on the lines it showed.
	s.scroll.ScrollToTop()
	top := fyne.CurrentApp().Driver().AbsolutePositionForObject(byID(s, "900").text).Y
	test.Tap(s.earlier)
	if len(s.rows) != 2*page+1 || byID(s, "800") == nil || s.earlier.Text != "Show earlier messages (800 more)" {
		t.Fatalf("after Show earlier: %d rows, button %q", len(s.rows), s.earlier.Text)
	}
	if again := fyne.CurrentApp().Driver().AbsolutePositionForObject(byID(s, "900").text).Y; again != top {
		t.Errorf("the line in view moved from %v to %v", top, again)
	}
}

// TestEarlierPages: Show earlier shows a page at a time until all is
// shown, with the updates that came to lines not shown yet.
func TestEarlierPages(t *testing.T) {
	s, _ := withBob(t)
	var lines []Line
	for i := range 2*page + 10 {
		lines = append(lines, Line{ID: fmt.Sprint(i), Text: fmt.Sprint("line ", i), Out: true})
	}
	s.ShowHistory("Bob", lines)
	s.Add("Bob", Line{ID: "3", Text: "edited", Out: true, Delivered: true})
	if len(s.rows) != page {
		t.Errorf("an update to a line not shown added a row")
	}
	for _, want := range []string{"Show earlier messages (110 more)", "Show earlier messages (10 more)", ""} {
		got := s.earlier.Text
		if !s.earlier.Visible() {
			got = ""
		}
		if got != want {
			t.Fatalf("%d rows: button %q, want %q", len(s.rows), got, want)
		}
		test.Tap(s.earlier)
	}
	if got := texts(t, s); len(got) != len(lines) || got[3] != "You: edited" || byID(s, "3").status.Text != "delivered" {
		t.Errorf("%d rows, line 3 shows %q", len(got), got[3])
	}
}

// TestScrollsOnAdd: adding a line scrolls to it; updating one does not
// move the conversation.
func TestScrollsOnAdd(t *testing.T) {
	s, _ := withBob(t)
	var lines []Line
	for i := range 40 {
		lines = append(lines, Line{ID: fmt.Sprint(i), Text: "a line that\nspans\nthree rows", Out: true})
	}
	s.ShowHistory("Bob", lines)
	if !inView(s, byID(s, "39").text) {
		t.Error("the newest line of the history is out of view")
	}
	s.scroll.ScrollToTop()
	s.Add("Bob", Line{ID: "0", Text: "a line that\nspans\nthree rows", Out: true, Delivered: true})
	if s.scroll.Offset.Y != 0 {
		t.Errorf("an update scrolled to %v", s.scroll.Offset.Y)
	}
	s.Add("Bob", Line{ID: "40", Text: "a long line that wraps: " + strings.Repeat("word ", 200)})
	if !inView(s, byID(s, "40").text) {
		t.Error("the added line is out of view")
	}
}

// TestWrappedLineFits: a line that wraps gets the height of all its
// rows, also in a conversation shorter than the screen.
func TestWrappedLineFits(t *testing.T) {
	s, _ := withBob(t)
	long := "a long line that wraps: " + strings.Repeat("word ", 100)
	one := widget.NewLabel("word").MinSize().Height
	fits := func(how, id string) {
		t.Helper()
		r := byID(s, id)
		if got := r.text.Size().Height; got < 3*one || got < r.text.MinSize().Height {
			t.Errorf("%s: %v high, needs %v", how, got, r.text.MinSize().Height)
		}
	}
	s.ShowHistory("Bob", []Line{{ID: "1", Text: "short"}})
	s.Add("Bob", Line{ID: "2", Text: long, Out: true})
	fits("added", "2")
	s.Add("Bob", Line{ID: "1", Text: long})
	fits("updated", "1")
	s.ShowHistory("Bob", []Line{{ID: "3", Text: long}})
	fits("in the history", "3")
}

// inView reports whether o's bottom edge is within the conversation's
// visible part.
func inView(s *Screen, o fyne.CanvasObject) bool {
	d := fyne.CurrentApp().Driver()
	bottom := d.AbsolutePositionForObject(o).Y + o.Size().Height
	top := d.AbsolutePositionForObject(s.scroll).Y
	return o.Size().Height > 0 && bottom > top && bottom <= top+s.scroll.Size().Height+1
}

// TestSendTextAndLines: SendText goes the way of Enter; Lines is the
// conversation as shown.
func TestSendTextAndLines(t *testing.T) {
	s := New(uitest.Window(t))
	var sent []string
	s.OnSend = func(friend, text string) error {
		if text == "fail" {
			return errors.New("no way")
		}
		sent = append(sent, friend+": "+text)
		s.Add(friend, Line{ID: text, Text: text, Out: true})
		return nil
	}
	s.SetPeers([]Peer{{Name: "Bob"}})
	s.Open("Bob")
	if got := s.SendText("  hi  "); got != "" || len(sent) != 1 || sent[0] != "Bob: hi" {
		t.Errorf("SendText: %q, sent %q", got, sent)
	}
	if got := s.SendText("fail"); !strings.Contains(got, "no way") {
		t.Errorf("a failed send says %q", got)
	}
	if l := s.Lines(); len(l) != 1 || l[0].Text != "hi" || !l[0].Out {
		t.Errorf("Lines = %+v", l)
	}
}
