// Package transfers is the app's Transfers screen: every file transfer
// in and out (those of earlier runs too), newest first, each with its
// direction, peer, progress, when it ended and the buttons that fit its
// state (Cancel, Resume, Open folder), "Clear finished" above them, and
// the question asked when a friend offers files. It shows what the app hands
// it and calls back for every action; it keeps no state of its own beyond
// what is on screen.
package transfers

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/transfer"
	"p2pd/ui/wording"
)

// State is where a transfer stands.
type State int

const (
	// Waiting: offered, the receiver has not answered yet.
	Waiting State = iota
	// Running: the files are moving.
	Running
	// Done: every file arrived and was verified.
	Done
	// Failed: the transfer stopped on an error (Row.Err says which).
	Failed
	// Cancelled: a user on either side cancelled it.
	Cancelled
	// Declined: the receiver said no.
	Declined
)

// Row is one transfer.
type Row struct {
	ID        string        // the offer's id
	Peer      string        // the friend's name, or a short id
	Name      string        // what moves: "photo.jpg", or "photo.jpg and 2 more"
	Incoming  bool          // the peer sends, this computer receives
	Done      int64         // bytes done
	Total     int64         // bytes in the whole offer
	Rate      float64       // bytes per second
	ETA       time.Duration // time left at that rate
	State     State         // where the transfer stands
	Err       string        // why it failed, in words
	Where     string        // incoming & done: the folder it was saved in
	Resumable bool          // Failed/Cancelled and can be resumed (the verified part is kept)
	Ended     time.Time     // when it ended for good (zero while it runs, waits or is to be tried again)
}

// over reports whether nothing more happens to r unless the user acts.
func (r Row) over() bool { return !r.Ended.IsZero() }

// Offer is an incoming offer the user answers.
type Offer struct {
	ID    string   // the offer's id, as in Row.ID
	From  string   // the friend's name, or a short id
	Files []string // relative paths
	Total int64    // bytes in all the files
}

// Screen is the Transfers screen. Create it with New; call its methods on
// the UI goroutine.
type Screen struct {
	widget.BaseWidget

	// OnCancel cancels the running or waiting transfer id.
	OnCancel func(id string)
	// OnResume starts the failed or cancelled transfer id again (it
	// resumes from the verified part).
	OnResume func(id string)
	// OnOpenFolder opens the folder a finished incoming transfer went to
	// (may be nil: then no button).
	OnOpenFolder func(dir string)
	// OnClear takes the transfers that ended off the list (the app calls
	// Remove with them); nil: no button.
	OnClear func()

	win   fyne.Window
	body  *fyne.Container // the title, empty and list
	empty *widget.Label
	clear *widget.Button       // "Clear finished", while a row has ended
	list  *fyne.Container      // the rows' objects, newest first
	rows  map[string]*row      // by Row.ID
	asked map[string]*question // the offers whose question is open, by Offer.ID
}

// New builds the screen; win is the window its dialogs open over.
func New(win fyne.Window) *Screen {
	s := &Screen{win: win, list: container.NewVBox(), rows: map[string]*row{}, asked: map[string]*question{}}
	s.empty = widget.NewLabel("No transfers yet: send a file from a chat, or drop files on the window.")
	s.empty.Wrapping = fyne.TextWrapWord
	title := widget.NewLabelWithStyle("Transfers", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	s.clear = widget.NewButtonWithIcon("Clear finished", theme.ContentClearIcon(), func() {
		if s.OnClear != nil {
			s.OnClear()
		}
	})
	s.clear.Importance = widget.LowImportance
	s.clear.Hide()
	s.body = container.NewVBox(container.NewBorder(nil, nil, nil, s.clear, title), s.empty, s.list)
	s.ExtendBaseWidget(s)
	return s
}

// CreateRenderer lays the screen out.
func (s *Screen) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(container.NewVScroll(container.NewPadded(s.body)))
}

// row is one transfer's widgets, kept so that Update, called many times a
// second while files move, changes a few of them in place.
type row struct {
	shown   Row  // what the widgets show now
	fresh   bool // nothing shown yet
	obj     *fyne.Container
	icon    *widget.Icon
	title   *widget.Label
	bar     *widget.ProgressBar
	details *widget.Label
	cancel  *widget.Button
	resume  *widget.Button
	open    *widget.Button
}

// Update shows r: a new row (newest first) or the row with the same ID
// updated in place. A question still open about the same offer (Ask) is
// moot once r is past Waiting (the sender gave up, say): it closes,
// answered as declined.
func (s *Screen) Update(r Row) {
	if r.State != Waiting {
		if q := s.asked[r.ID]; q != nil {
			s.end(q, false, "")
		}
	}
	w := s.rows[r.ID]
	if w == nil {
		w = s.newRow(r.ID)
		s.rows[r.ID] = w
		s.list.Objects = append([]fyne.CanvasObject{w.obj}, s.list.Objects...)
		if s.empty.Visible() {
			s.empty.Hide()
			defer s.body.Refresh() // the label's space goes to the list
		} else {
			defer s.list.Refresh() // once the row shows r
		}
	}
	s.show(w, r)
	s.showClear()
}

// Remove takes the rows with ids off the list (Clear finished).
func (s *Screen) Remove(ids ...string) {
	for _, id := range ids {
		w := s.rows[id]
		if w == nil {
			continue
		}
		delete(s.rows, id)
		if q := s.asked[id]; q != nil {
			s.end(q, false, "")
		}
		i := slices.Index(s.list.Objects, fyne.CanvasObject(w.obj))
		if i >= 0 {
			s.list.Objects = slices.Delete(s.list.Objects, i, i+1)
		}
	}
	if len(s.rows) == 0 {
		s.empty.Show()
	}
	s.showClear()
	s.body.Refresh()
}

// showClear shows "Clear finished" while a row has ended.
func (s *Screen) showClear() {
	ended := false
	for _, w := range s.rows {
		ended = ended || w.shown.over()
	}
	setVisible(s.clear, ended && s.OnClear != nil)
}

func (s *Screen) newRow(id string) *row {
	w := &row{fresh: true, icon: widget.NewIcon(theme.UploadIcon()), bar: widget.NewProgressBar()}
	w.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	w.title.Truncation = fyne.TextTruncateEllipsis
	w.details = widget.NewLabel("")
	w.details.Wrapping = fyne.TextWrapWord
	w.cancel = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), func() {
		if s.OnCancel != nil {
			w.cancel.Disable() // once is enough: the transfer's end follows
			s.OnCancel(id)
		}
	})
	w.resume = widget.NewButtonWithIcon("Resume", theme.MediaReplayIcon(), func() {
		if s.OnResume != nil {
			w.resume.Disable() // until the app reports the new attempt
			s.OnResume(id)
		}
	})
	w.open = widget.NewButtonWithIcon("Open folder", theme.FolderOpenIcon(), func() {
		if s.OnOpenFolder != nil {
			s.OnOpenFolder(w.shown.Where)
		}
	})
	w.cancel.Hide()
	w.resume.Hide()
	w.open.Hide()
	w.obj = container.NewVBox(
		container.NewBorder(nil, nil, container.NewCenter(w.icon), container.NewCenter(container.NewHBox(w.cancel, w.resume, w.open)),
			container.NewVBox(w.title, w.bar, w.details)),
		widget.NewSeparator())
	return w
}

// show brings w's widgets to r, touching only those that change.
func (s *Screen) show(w *row, r Row) {
	old := w.shown
	w.shown = r
	first := w.fresh
	w.fresh = false
	if first || r.Incoming != old.Incoming {
		if r.Incoming {
			w.icon.SetResource(theme.DownloadIcon())
		} else {
			w.icon.SetResource(theme.UploadIcon())
		}
	}
	if first || r.Incoming != old.Incoming || r.Name != old.Name || r.Peer != old.Peer {
		w.title.SetText(titleText(r))
	}
	if v := fraction(r); first || v != w.bar.Value {
		w.bar.SetValue(v)
	}
	if t := detailsText(r); first || t != w.details.Text || r.State != old.State {
		imp := widget.LowImportance
		switch r.State {
		case Failed:
			imp = widget.DangerImportance
		case Done:
			imp = widget.SuccessImportance
		}
		w.details.Importance = imp
		w.details.SetText(t) // refreshes with the importance too
	}

	if r.State != old.State {
		w.cancel.Enable() // a tapped Cancel waits for the state to change
	}
	w.resume.Enable() // any update is the app's answer to a tapped Resume
	changed := setVisible(w.cancel, (r.State == Waiting || r.State == Running) && s.OnCancel != nil)
	changed = setVisible(w.resume, r.Resumable && (r.State == Failed || r.State == Cancelled) && s.OnResume != nil) || changed
	changed = setVisible(w.open, r.Incoming && r.State == Done && r.Where != "" && s.OnOpenFolder != nil) || changed
	if changed && !first {
		w.obj.Refresh() // buttons shown or hidden change the layout
	}
}

// setVisible shows or hides b, reporting whether that changed anything.
func setVisible(b *widget.Button, visible bool) bool {
	if b.Visible() == visible {
		return false
	}
	if visible {
		b.Show()
	} else {
		b.Hide()
	}
	return true
}

// titleText is a row's heading: what moves, and to or from whom.
func titleText(r Row) string {
	name := clean(r.Name)
	if name == "" {
		name = "Files"
	}
	if r.Incoming {
		return name + " — from " + peerName(r.Peer)
	}
	return name + " — to " + peerName(r.Peer)
}

func peerName(p string) string {
	if p = clean(p); p == "" {
		return "your friend"
	}
	return p
}

// fraction is the progress bar's value, from 0 to 1.
func fraction(r Row) float64 {
	if r.State == Done {
		return 1 // also an empty offer (Total 0)
	}
	if r.Total <= 0 {
		return 0
	}
	return min(max(float64(r.Done)/float64(r.Total), 0), 1)
}

// detailsText words where a transfer stands, under its progress bar, and
// when it ended (for the transfers of earlier days, the date too).
func detailsText(r Row) string {
	t := stateText(r)
	if r.over() && t != "" {
		t += " · " + whenWords(r.Ended, time.Now())
	}
	return t
}

// whenWords words the moment t seen at now: "14:02" today, "20 Nov
// 14:02" this year, "20 Nov 2025" before.
func whenWords(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	switch {
	case t.YearDay() == now.YearDay() && t.Year() == now.Year():
		return t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("2 Jan 15:04")
	}
	return t.Format("2 Jan 2006")
}

// stateText words where a transfer stands.
func stateText(r Row) string {
	who := peerName(r.Peer)
	switch r.State {
	case Waiting:
		if r.Incoming {
			return "waiting for you to accept"
		}
		return "waiting for " + who + " to accept"
	case Running:
		parts := []string{transfer.FormatSize(r.Done)}
		if r.Total > 0 {
			parts[0] += " of " + transfer.FormatSize(r.Total)
		}
		if r.Rate > 0 {
			parts = append(parts, transfer.FormatSize(int64(r.Rate))+"/s", etaWords(r.ETA))
		}
		return strings.Join(parts, " · ")
	case Done:
		size := r.Total
		if size <= 0 {
			size = r.Done
		}
		t := "done: " + transfer.FormatSize(size)
		if r.Incoming && r.Where != "" {
			t += " · saved in " + clean(r.Where)
		}
		return t
	case Failed:
		if r.Err == "" {
			return "failed"
		}
		return "failed: " + clean(r.Err)
	case Cancelled:
		if r.Err == "" {
			return "cancelled"
		}
		return "cancelled: " + clean(r.Err)
	case Declined:
		if r.Incoming {
			return "you declined"
		}
		return "declined by " + who
	}
	return "" // a state from a newer engine: the bar says enough
}

// etaWords words the time left, rounded as people say it: minutes count,
// seconds do not.
func etaWords(eta time.Duration) string {
	if eta < time.Minute {
		return "less than a minute left"
	}
	m := int64(math.Round(eta.Minutes()))
	if m < 60 {
		return "about " + strconv.FormatInt(m, 10) + " min left"
	}
	h, m := m/60, m%60
	if m == 0 {
		return fmt.Sprintf("about %d h left", h)
	}
	return fmt.Sprintf("about %d h %d min left", h, m)
}

// clean makes text from a peer fit to show on one line (wording.Shown).
func clean(s string) string { return wording.Shown(s, false) }

// Rows returns what the rows show, newest first.
func (s *Screen) Rows() []Row {
	out := make([]Row, 0, len(s.rows))
	for _, o := range s.list.Objects {
		for _, w := range s.rows {
			if w.obj == o {
				out = append(out, w.shown)
			}
		}
	}
	return out
}
