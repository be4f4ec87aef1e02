package transfers

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/ui/uitest"
)

func newScreen(t *testing.T) (*Screen, fyne.Window) {
	t.Helper()
	w := uitest.Window(t)
	s := New(w)
	w.SetContent(s)
	w.Resize(fyne.NewSize(760, 620))
	return s, w
}

// rowOf is the row showing id.
func rowOf(t *testing.T, s *Screen, id string) *row {
	t.Helper()
	r := s.rows[id]
	if r == nil {
		t.Fatalf("no row for %q", id)
	}
	return r
}

const mib = 1 << 20

func TestEmpty(t *testing.T) {
	s, _ := newScreen(t)
	if !s.empty.Visible() || !strings.HasPrefix(s.empty.Text, "No transfers yet") {
		t.Errorf("empty screen: label %q, visible %v", s.empty.Text, s.empty.Visible())
	}
	s.Update(Row{ID: "a", Peer: "Bob", Name: "photo.jpg"})
	if s.empty.Visible() {
		t.Error("the empty label still shows with a row")
	}
}

// TestUpdateInPlace: the first Update adds a row, the next ones change
// that row's widgets, not the list.
func TestUpdateInPlace(t *testing.T) {
	s, _ := newScreen(t)
	s.Update(Row{ID: "a", Peer: "Bob", Name: "photo.jpg and 2 more", State: Running, Done: 10 * mib, Total: 100 * mib, Rate: mib, ETA: 90 * time.Second})
	r := rowOf(t, s, "a")
	if n := len(s.list.Objects); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	if r.title.Text != "photo.jpg and 2 more — to Bob" {
		t.Errorf("title %q", r.title.Text)
	}
	if r.icon.Resource.Name() != theme.UploadIcon().Name() {
		t.Errorf("outgoing icon %s", r.icon.Resource.Name())
	}
	if r.bar.Value != 0.1 {
		t.Errorf("bar %v, want 0.1", r.bar.Value)
	}
	before := r.details.Text
	obj := r.obj
	s.Update(Row{ID: "a", Peer: "Bob", Name: "photo.jpg and 2 more", State: Running, Done: 50 * mib, Total: 100 * mib, Rate: 2 * mib, ETA: 25 * time.Second})
	if n := len(s.list.Objects); n != 1 || s.rows["a"] != r || s.list.Objects[0] != obj {
		t.Fatalf("the update did not change the row in place (%d rows)", n)
	}
	if r.bar.Value != 0.5 {
		t.Errorf("bar %v, want 0.5", r.bar.Value)
	}
	if want := "50.0 MiB of 100.0 MiB · 2.0 MiB/s · less than a minute left"; r.details.Text != want || r.details.Text == before {
		t.Errorf("details %q, want %q (was %q)", r.details.Text, want, before)
	}
	// Incoming, a row of its own, with the other arrow.
	s.Update(Row{ID: "b", Peer: "Ann", Name: "notes.txt", Incoming: true, State: Waiting})
	if b := rowOf(t, s, "b"); b.title.Text != "notes.txt — from Ann" || b.icon.Resource.Name() != theme.DownloadIcon().Name() {
		t.Errorf("incoming row: %q, icon %s", b.title.Text, b.icon.Resource.Name())
	}
}

func TestNewestFirst(t *testing.T) {
	s, _ := newScreen(t)
	for _, id := range []string{"1", "2", "3"} {
		s.Update(Row{ID: id, Peer: "Bob", Name: "f" + id})
	}
	s.Update(Row{ID: "1", Peer: "Bob", Name: "f1", State: Running, Done: 1, Total: 2}) // stays where it is
	var got []string
	for _, o := range s.list.Objects {
		for id, r := range s.rows {
			if r.obj == o {
				got = append(got, id)
			}
		}
	}
	if strings.Join(got, ",") != "3,2,1" {
		t.Errorf("order %v, want 3,2,1", got)
	}
}

func TestDetailsWords(t *testing.T) {
	s, _ := newScreen(t)
	s.OnOpenFolder = func(string) {}
	for i, c := range []struct {
		r    Row
		want string
		bar  float64
		imp  widget.Importance
	}{
		{Row{Peer: "Bob", State: Waiting, Total: 5}, "waiting for Bob to accept", 0, widget.LowImportance},
		{Row{Peer: "Bob", Incoming: true, State: Waiting}, "waiting for you to accept", 0, widget.LowImportance},
		{Row{Peer: "Bob", State: Running, Done: 12*mib + 300*1024, Total: 1 << 30, Rate: 45.6 * mib, ETA: 2 * time.Minute},
			"12.3 MiB of 1.0 GiB · 45.6 MiB/s · about 2 min left", (12*mib + 300*1024) / float64(1<<30), widget.LowImportance},
		{Row{Peer: "Bob", State: Running, Done: 0, Total: 1 << 30}, "0 B of 1.0 GiB", 0, widget.LowImportance},
		{Row{Peer: "Bob", State: Done, Done: 1 << 30, Total: 1 << 30}, "done: 1.0 GiB", 1, widget.SuccessImportance},
		{Row{Peer: "Bob", State: Done}, "done: 0 B", 1, widget.SuccessImportance}, // an empty offer is full when done
		{Row{Peer: "Bob", Incoming: true, State: Done, Done: 2048, Total: 2048, Where: "/home/me/Downloads"},
			"done: 2.0 KiB · saved in /home/me/Downloads", 1, widget.SuccessImportance},
		{Row{Peer: "Bob", State: Failed, Done: 1, Total: 4, Err: "the connection dropped"}, "failed: the connection dropped", 0.25, widget.DangerImportance},
		{Row{Peer: "Bob", State: Failed}, "failed", 0, widget.DangerImportance},
		{Row{Peer: "Bob", State: Cancelled, Done: 3, Total: 4}, "cancelled", 0.75, widget.LowImportance},
		{Row{Peer: "Bob", Incoming: true, State: Cancelled, Err: "Bob withdrew the offer"}, "cancelled: Bob withdrew the offer", 0, widget.LowImportance},
		{Row{Peer: "Bob", State: Declined}, "declined by Bob", 0, widget.LowImportance},
		{Row{Peer: "Bob", Incoming: true, State: Declined}, "you declined", 0, widget.LowImportance},
	} {
		c.r.ID = fmt.Sprint(i)
		s.Update(c.r)
		r := rowOf(t, s, c.r.ID)
		if r.details.Text != c.want || r.bar.Value != c.bar || r.details.Importance != c.imp {
			t.Errorf("%+v: details %q (importance %v), bar %v; want %q (%v), %v", c.r, r.details.Text, r.details.Importance, r.bar.Value, c.want, c.imp, c.bar)
		}
		wantOpen := c.r.Incoming && c.r.State == Done
		if r.open.Visible() != wantOpen {
			t.Errorf("%+v: Open folder shown %v, want %v", c.r, r.open.Visible(), wantOpen)
		}
	}
}

func TestETAWords(t *testing.T) {
	for _, c := range []struct {
		eta  time.Duration
		want string
	}{
		{0, "less than a minute left"},
		{59 * time.Second, "less than a minute left"},
		{time.Minute, "about 1 min left"},
		{89 * time.Second, "about 1 min left"},
		{90 * time.Second, "about 2 min left"},
		{45 * time.Minute, "about 45 min left"},
		{59*time.Minute + 40*time.Second, "about 1 h left"},
		{time.Hour + 2*time.Minute, "about 1 h 2 min left"},
		{3*time.Hour + 30*time.Minute + 10*time.Second, "about 3 h 30 min left"},
		{50 * time.Hour, "about 50 h left"},
	} {
		if got := etaWords(c.eta); got != c.want {
			t.Errorf("%v: %q, want %q", c.eta, got, c.want)
		}
	}
}

func TestCancelButton(t *testing.T) {
	s, _ := newScreen(t)
	var got []string
	s.OnCancel = func(id string) { got = append(got, id) }
	s.Update(Row{ID: "x", Peer: "Bob", State: Waiting})
	r := rowOf(t, s, "x")
	if !r.cancel.Visible() || r.resume.Visible() || r.open.Visible() {
		t.Fatalf("waiting: Cancel %v, Resume %v, Open %v", r.cancel.Visible(), r.resume.Visible(), r.open.Visible())
	}
	s.Update(Row{ID: "x", Peer: "Bob", State: Running, Done: 1, Total: 10})
	test.Tap(r.cancel)
	test.Tap(r.cancel) // disabled after the first tap
	if len(got) != 1 || got[0] != "x" {
		t.Errorf("OnCancel heard %v, want [x]", got)
	}
	s.Update(Row{ID: "x", Peer: "Bob", State: Running, Done: 2, Total: 10})
	if !r.cancel.Disabled() {
		t.Error("Cancel enabled again while the cancel is under way")
	}
	s.Update(Row{ID: "x", Peer: "Bob", State: Done, Done: 10, Total: 10})
	if r.cancel.Visible() {
		t.Error("Cancel still shown once done")
	}
}

func TestResumeButton(t *testing.T) {
	s, _ := newScreen(t)
	var got []string
	s.OnCancel = func(string) {}
	s.OnResume = func(id string) { got = append(got, id) }
	s.Update(Row{ID: "x", Peer: "Bob", State: Failed, Err: "the connection dropped"})
	r := rowOf(t, s, "x")
	if r.resume.Visible() || r.cancel.Visible() {
		t.Errorf("failed, not resumable: Resume %v, Cancel %v", r.resume.Visible(), r.cancel.Visible())
	}
	s.Update(Row{ID: "x", Peer: "Bob", State: Failed, Err: "the connection dropped", Resumable: true})
	if !r.resume.Visible() {
		t.Fatal("Resume hidden for a resumable failure")
	}
	test.Tap(r.resume)
	test.Tap(r.resume) // disabled until the app reports back
	if len(got) != 1 || got[0] != "x" {
		t.Errorf("OnResume heard %v, want [x]", got)
	}
	// The new attempt failed at once: Resume works again.
	s.Update(Row{ID: "x", Peer: "Bob", State: Failed, Err: "Bob is offline", Resumable: true})
	if r.resume.Disabled() {
		t.Error("Resume still disabled after the app reported back")
	}
	s.Update(Row{ID: "x", Peer: "Bob", State: Cancelled, Resumable: true})
	if !r.resume.Visible() {
		t.Error("Resume hidden for a resumable cancel")
	}
	s.Update(Row{ID: "x", Peer: "Bob", State: Running, Resumable: true})
	if r.resume.Visible() || !r.cancel.Visible() {
		t.Errorf("running again: Resume %v, Cancel %v", r.resume.Visible(), r.cancel.Visible())
	}
}

func TestOpenFolderButton(t *testing.T) {
	s, _ := newScreen(t)
	s.Update(Row{ID: "x", Peer: "Bob", Incoming: true, State: Done, Where: "/home/me/Downloads"})
	r := rowOf(t, s, "x")
	if r.open.Visible() {
		t.Error("Open folder shown without OnOpenFolder")
	}
	var got string
	s.OnOpenFolder = func(dir string) { got = dir }
	s.Update(Row{ID: "x", Peer: "Bob", Incoming: true, State: Done, Where: "/home/me/Downloads"})
	if !r.open.Visible() {
		t.Fatal("Open folder hidden")
	}
	test.Tap(r.open)
	if got != "/home/me/Downloads" {
		t.Errorf("OnOpenFolder got %q", got)
	}
	s.Update(Row{ID: "y", Peer: "Bob", State: Done}) // outgoing: nothing to open
	if rowOf(t, s, "y").open.Visible() {
		t.Error("Open folder shown for an outgoing transfer")
	}
}

// answers records Ask's answers.
type answers []string

func (a *answers) record(accept bool, dir string) { *a = append(*a, fmt.Sprint(accept, " ", dir)) }

// dialogParts walks what win shows on top (a dialog) for its buttons and
// labels.
func dialogParts(t *testing.T, win fyne.Window) (map[string]*widget.Button, []string) {
	t.Helper()
	top := win.Canvas().Overlays().Top()
	if top == nil {
		t.Fatal("no dialog shown")
	}
	buttons := map[string]*widget.Button{}
	var labels []string
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch o := o.(type) {
		case *widget.Button:
			buttons[o.Text] = o
		case *widget.Label:
			labels = append(labels, o.Text)
		case *widget.PopUp:
			walk(o.Content)
		case *fyne.Container:
			for _, x := range o.Objects {
				walk(x)
			}
		}
	}
	walk(top)
	return buttons, labels
}

func tapButton(t *testing.T, win fyne.Window, text string) {
	t.Helper()
	b, _ := dialogParts(t, win)
	if b[text] == nil {
		t.Fatalf("no %q button on top; buttons: %v", text, b)
	}
	test.Tap(b[text])
}

func TestAskAccept(t *testing.T) {
	s, w := newScreen(t)
	var got answers
	s.Ask(Offer{ID: "o", From: "Bob", Files: []string{"a.txt", "b/c.jpg"}, Total: 3 * mib}, "/home/me/Downloads", got.record)
	_, labels := dialogParts(t, w)
	text := strings.Join(labels, "\n")
	for _, want := range []string{"Bob wants to send you 2 files (3.0 MiB):", "a.txt", "b/c.jpg", "/home/me/Downloads"} {
		if !strings.Contains(text, want) {
			t.Errorf("the question lacks %q:\n%s", want, text)
		}
	}
	b, _ := dialogParts(t, w)
	accept := b["Accept"]
	tapButton(t, w, "Accept")
	test.Tap(accept) // a second tap on the closed dialog changes nothing
	if len(got) != 1 || got[0] != "true /home/me/Downloads" {
		t.Errorf("answers %q, want [true /home/me/Downloads]", got)
	}
	if w.Canvas().Overlays().Top() != nil {
		t.Error("the question is still open")
	}
}

func TestAskDecline(t *testing.T) {
	s, w := newScreen(t)
	var got answers
	s.Ask(Offer{ID: "o", From: "Bob", Files: []string{"a.txt"}, Total: 10}, "/dl", got.record)
	tapButton(t, w, "Decline")
	if len(got) != 1 || got[0] != "false " {
		t.Errorf("answers %q, want [false ]", got)
	}
}

func TestAskDismissed(t *testing.T) {
	s, w := newScreen(t)
	var got answers
	q := s.ask(Offer{ID: "o", From: "Bob", Files: []string{"a.txt"}, Total: 10}, "/dl", got.record)
	b, _ := dialogParts(t, w)
	q.d.Dismiss()
	q.d.Hide()
	test.Tap(b["Accept"])
	if len(got) != 1 || got[0] != "false " {
		t.Errorf("answers %q, want one decline", got)
	}
}

// TestAskWithdrawn: the sender gives up while the question is open; the
// app's Update closes it.
func TestAskWithdrawn(t *testing.T) {
	s, w := newScreen(t)
	var got answers
	s.Ask(Offer{ID: "o", From: "Bob", Files: []string{"a.txt"}, Total: 10}, "/dl", got.record)
	s.Update(Row{ID: "o", Peer: "Bob", Incoming: true, State: Waiting})
	if len(got) != 0 || w.Canvas().Overlays().Top() == nil {
		t.Fatalf("a waiting row closed the question (answers %q)", got)
	}
	s.Update(Row{ID: "o", Peer: "Bob", Incoming: true, State: Cancelled})
	if len(got) != 1 || got[0] != "false " || w.Canvas().Overlays().Top() != nil {
		t.Errorf("answers %q, dialog still open %v", got, w.Canvas().Overlays().Top() != nil)
	}
}

// TestTwoQuestions: two offers at once, each answered on its own.
func TestTwoQuestions(t *testing.T) {
	s, w := newScreen(t)
	var first, second answers
	s.Ask(Offer{ID: "1", From: "Ann", Files: []string{"a"}, Total: 1}, "/dl", first.record)
	s.Ask(Offer{ID: "2", From: "Bob", Files: []string{"b"}, Total: 1}, "/dl", second.record)
	tapButton(t, w, "Decline") // Bob's, on top
	tapButton(t, w, "Accept")  // Ann's, beneath
	if len(first) != 1 || first[0] != "true /dl" || len(second) != 1 || second[0] != "false " {
		t.Errorf("Ann's answers %q, Bob's %q", first, second)
	}
	// The same offer asked again replaces its open question.
	var old, again answers
	s.Ask(Offer{ID: "3", From: "Bob", Files: []string{"c"}, Total: 1}, "/dl", old.record)
	s.Ask(Offer{ID: "3", From: "Bob", Files: []string{"c"}, Total: 1}, "/dl", again.record)
	tapButton(t, w, "Accept")
	if len(old) != 1 || old[0] != "false " || len(again) != 1 || again[0] != "true /dl" || w.Canvas().Overlays().Top() != nil {
		t.Errorf("asked again: first answers %q, second %q", old, again)
	}
}

func TestAskChooseFolder(t *testing.T) {
	s, w := newScreen(t)
	start := t.TempDir()
	var got answers
	s.Ask(Offer{ID: "o", From: "Bob", Files: []string{"a.txt"}, Total: 10}, start, got.record)
	question := w.Canvas().Overlays().Top()

	tapButton(t, w, "Choose folder…")
	if w.Canvas().Overlays().Top() == question {
		t.Fatal("no folder dialog")
	}
	tapButton(t, w, "Cancel")
	if len(got) != 0 || w.Canvas().Overlays().Top() != question {
		t.Fatalf("cancelling the folder dialog: answers %q, back at the question %v", got, w.Canvas().Overlays().Top() == question)
	}

	tapButton(t, w, "Choose folder…")
	tapButton(t, w, "Save here") // the folder it opened in
	want := "true " + filepath.ToSlash(start)
	if len(got) != 1 || got[0] != want || w.Canvas().Overlays().Top() != nil {
		t.Errorf("answers %q, want [%s]; a dialog still open %v", got, want, w.Canvas().Overlays().Top() != nil)
	}
}

func TestLongListCut(t *testing.T) {
	s, w := newScreen(t)
	var files []string
	for i := range 12 {
		files = append(files, fmt.Sprintf("file%02d.txt", i))
	}
	s.Ask(Offer{ID: "o", From: "Bob", Files: files, Total: 12 * mib}, "/dl", func(bool, string) {})
	_, labels := dialogParts(t, w)
	text := strings.Join(labels, "\n")
	for i, f := range files {
		if shown := strings.Contains(text, f); shown != (i < 5) {
			t.Errorf("%s shown %v", f, shown)
		}
	}
	if !strings.Contains(text, "\nand 7 more\n") || !strings.Contains(text, "12 files (12.0 MiB)") {
		t.Errorf("the question:\n%s", text)
	}
}

func TestControlCharactersReplaced(t *testing.T) {
	s, w := newScreen(t)
	s.Ask(Offer{ID: "o", From: "Bo\x1b[31mb", Files: []string{"evil\nname.txt", "photo\u202egpj.exe", "bad\xffbyte"}, Total: 1}, "/dl", func(bool, string) {})
	_, labels := dialogParts(t, w)
	text := strings.Join(labels, "\n")
	for _, want := range []string{"Bo\uFFFD[31mb wants", "evil\uFFFDname.txt", "photo\uFFFDgpj.exe", "bad\uFFFDbyte"} {
		if !strings.Contains(text, want) {
			t.Errorf("the question lacks %q:\n%q", want, text)
		}
	}
	if strings.ContainsAny(text, "\x1b\u202e") {
		t.Errorf("control characters shown: %q", text)
	}
	s.Update(Row{ID: "r", Peer: "Bob", Name: "a\rb", Incoming: true})
	if got := rowOf(t, s, "r").title.Text; got != "a\uFFFDb — from Bob" {
		t.Errorf("row title %q", got)
	}
}

// TestAnswerAsTheButtons: Answer goes the way of the question's buttons,
// once, and says when no question is open.
func TestAnswerAsTheButtons(t *testing.T) {
	s := New(uitest.Window(t))
	var got []string
	s.Ask(Offer{ID: "o1", From: "Bob", Files: []string{"a.txt"}, Total: 1}, "/tmp/in", func(ok bool, dir string) { got = append(got, fmt.Sprint(ok, " ", dir)) })
	if ids := s.Asking(); len(ids) != 1 || ids[0] != "o1" {
		t.Fatalf("Asking = %v", ids)
	}
	if !s.Answer("o1", true) || s.Answer("o1", false) || len(s.Asking()) != 0 {
		t.Error("Answer did not close the question once")
	}
	if len(got) != 1 || got[0] != "true /tmp/in" {
		t.Errorf("answers: %q", got)
	}
	s.Update(Row{ID: "o1", Peer: "Bob", Name: "a.txt", Incoming: true, State: Running, Total: 1})
	if rows := s.Rows(); len(rows) != 1 || rows[0].State != Running {
		t.Errorf("Rows = %+v", rows)
	}
}

// TestClearFinished: "Clear finished" shows while a row has ended, and
// Remove takes rows off (the empty label back when none is left).
func TestClearFinished(t *testing.T) {
	s, _ := newScreen(t)
	cleared := 0
	s.OnClear = func() { cleared++ }
	s.Update(Row{ID: "run", Peer: "Bob", Name: "a", State: Running, Total: mib})
	s.Update(Row{ID: "retried", Peer: "Bob", Name: "c", State: Failed, Err: "timeout; trying again"})
	if s.clear.Visible() {
		t.Error("Clear finished shows with nothing ended for good")
	}
	s.Remove("retried")
	s.Update(Row{ID: "done", Peer: "Bob", Name: "b", State: Done, Total: mib, Ended: time.Now()})
	if !s.clear.Visible() {
		t.Fatal("no Clear finished with a row done")
	}
	test.Tap(s.clear)
	if cleared != 1 {
		t.Errorf("OnClear called %d times", cleared)
	}
	s.Remove("done", "unknown")
	if rows := s.Rows(); len(rows) != 1 || rows[0].ID != "run" || s.clear.Visible() {
		t.Errorf("after Remove: %+v, clear shown %v", rows, s.clear.Visible())
	}
	s.Remove("run")
	if len(s.Rows()) != 0 || !s.empty.Visible() {
		t.Error("the empty label is not back after the last row went")
	}
}

// TestWhenEnded: an ended row says when: the time today, the date too
// for earlier days.
func TestWhenEnded(t *testing.T) {
	now := time.Date(2026, 11, 21, 18, 30, 0, 0, time.Local)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 21, 14, 2, 0, 0, time.Local), "14:02"},
		{time.Date(2026, 11, 20, 14, 2, 0, 0, time.Local), "20 Nov 14:02"},
		{time.Date(2025, 11, 21, 14, 2, 0, 0, time.Local), "21 Nov 2025"},
	} {
		if got := whenWords(c.t, now); got != c.want {
			t.Errorf("whenWords(%v) = %q, want %q", c.t, got, c.want)
		}
	}
	r := Row{ID: "x", Peer: "Bob", State: Cancelled, Ended: time.Now()}
	if got := detailsText(r); !strings.HasPrefix(got, "cancelled · ") {
		t.Errorf("details of a cancelled row: %q", got)
	}
	r.State, r.Ended, r.Done, r.Total = Running, time.Time{}, mib, 2*mib
	if got := detailsText(r); got != "1.0 MiB of 2.0 MiB" {
		t.Errorf("details of a running row: %q", got)
	}
}
