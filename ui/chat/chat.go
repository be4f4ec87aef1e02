// Package chat is the app's Chat screen: pick a friend, read the
// conversation with them (newest at the bottom, each line with when it was
// written and, for lines written here, whether the friend's node has it
// yet), write to them and send them files.
//
// The screen shows what the app hands it and calls back for every action;
// it keeps no state of its own beyond what it shows (a long conversation's
// earlier lines wait behind a "Show earlier messages" button). Call its
// methods on the UI goroutine.
package chat

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"p2pd/ui/wording"
)

// Peer is a friend one can chat with.
type Peer struct {
	Name   string
	Online bool
}

// Line is one message of a conversation.
type Line struct {
	ID        string
	Time      time.Time // when it was written
	Text      string
	Out       bool // written here (else received)
	Delivered bool // an Out line the friend's node confirmed receiving
}

// pickFirst is what the screen says while no conversation is open.
const pickFirst = "Pick a friend to chat with"

// Screen is the Chat screen. Create it with New; call its methods on the
// UI goroutine.
type Screen struct {
	widget.BaseWidget

	// OnOpen hears that the user picked a friend to chat with; the app
	// answers with ShowHistory.
	OnOpen func(friend string)
	// OnSend sends text to friend; a returned error is shown under the
	// input and the text is kept in the input. The screen does not show
	// the line itself: the app adds it with Add.
	OnSend func(friend, text string) error
	// OnSendFiles sends files (attach button's file dialog, or files
	// dropped on the window) to friend.
	OnSendFiles func(friend string, paths []string)

	win     fyne.Window
	peers   []Peer // in the picker's order
	current string // the open conversation's friend, or ""
	// picking is set while the screen itself changes the picker, whose
	// OnChanged must then not read as the user's pick.
	picking bool

	body      *fyne.Container // the whole screen
	top       *fyne.Container // the friend picker, or noFriends
	choose    *fyne.Container // "Chat with" and the picker
	picker    *widget.Select
	noFriends *widget.Label
	bottom    *fyne.Container // the input row and message
	input     *widget.Entry
	send      *widget.Button
	attach    *widget.Button
	message   *widget.Label // under the input: a send's error, or a note

	// The conversation: history[first:] is shown, as rows (see
	// conversation.go).
	history []Line
	index   map[string]int // history's lines by ID
	first   int
	rows    []*row
	lines   *fyne.Container // earlier, then the rows, oldest first
	earlier *widget.Button  // shows lines before first
	scroll  *container.Scroll
	hint    *widget.Label // in place of the conversation when it is empty
	convo   *fyne.Container

	// now reads the clock; tests replace it.
	now func() time.Time
}

// New builds the screen, with no friends listed; win is the window its
// file dialog opens over.
func New(win fyne.Window) *Screen {
	s := &Screen{win: win, now: time.Now}
	s.picker = widget.NewSelect(nil, s.picked)
	s.picker.PlaceHolder = "Pick a friend"
	s.choose = container.NewBorder(nil, nil, widget.NewLabel("Chat with"), nil, s.picker)
	s.noFriends = widget.NewLabel("No friends yet: connect to someone and save them as a friend.")
	s.noFriends.Wrapping = fyne.TextWrapWord
	s.top = container.NewVBox(s.choose, s.noFriends)

	s.input = widget.NewEntry()
	s.input.OnSubmitted = func(string) { s.sendInput() }
	s.send = widget.NewButtonWithIcon("Send", theme.MailSendIcon(), s.sendInput)
	s.send.Importance = widget.HighImportance
	s.attach = widget.NewButtonWithIcon("File…", theme.MailAttachmentIcon(), s.chooseFile)
	s.message = widget.NewLabel("")
	s.message.Wrapping = fyne.TextWrapWord
	s.message.Hide()
	s.bottom = container.NewVBox(container.NewBorder(nil, nil, s.attach, s.send, s.input), s.message)

	s.initConversation()
	s.body = container.NewBorder(s.top, s.bottom, nil, nil, s.convo)
	s.ExtendBaseWidget(s)
	s.close()
	s.SetPeers(nil)
	return s
}

// CreateRenderer lays the screen out: the friend picker at the top, the
// input row at the bottom, the conversation in between.
func (s *Screen) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(container.NewPadded(s.body))
}

// relayout places the screen's parts again after some were shown or
// hidden. Refreshing the screen would too, but would refresh, and so wrap
// again, every line of the conversation.
func (s *Screen) relayout() {
	for _, c := range []*fyne.Container{s.top, s.bottom, s.body} {
		c.Layout.Layout(c.Objects, c.Size())
	}
}

// SetPeers shows the friends one can chat with. The open conversation
// stays open if its friend is still listed, and closes if not; nothing is
// opened otherwise.
func (s *Screen) SetPeers(peers []Peer) {
	s.peers = slices.Clone(peers)
	options := make([]string, len(peers))
	at := -1
	for i, p := range peers {
		options[i] = clean(p.Name)
		if p.Online {
			options[i] += " (online)"
		}
		if p.Name == s.current {
			at = i
		}
	}
	s.picking = true
	s.picker.SetOptions(options)
	if at >= 0 {
		s.picker.SetSelectedIndex(at) // its online state may have changed
	} else {
		s.picker.ClearSelected()
	}
	s.picking = false
	if at < 0 && s.current != "" {
		s.close()
	}
	if len(peers) == 0 {
		s.choose.Hide()
		s.noFriends.Show()
	} else {
		s.choose.Show()
		s.noFriends.Hide()
	}
	s.showMarkers()
	s.relayout()
}

// picked hears the picker: the user chose an option.
func (s *Screen) picked(string) {
	if s.picking {
		return
	}
	i := s.picker.SelectedIndex()
	if i < 0 || i >= len(s.peers) || s.peers[i].Name == s.current {
		return
	}
	s.open(s.peers[i].Name)
	if s.win != nil {
		s.win.Canvas().Focus(s.input) // the user picked a friend to write to
	}
}

// Open opens the conversation with friend (selects it and calls OnOpen),
// if friend is listed.
func (s *Screen) Open(friend string) {
	i := slices.IndexFunc(s.peers, func(p Peer) bool { return p.Name == friend })
	if i < 0 {
		return
	}
	s.picking = true
	s.picker.SetSelectedIndex(i)
	s.picking = false
	s.open(friend)
}

// open shows friend's conversation, empty until ShowHistory, and asks the
// app for it.
func (s *Screen) open(friend string) {
	s.current = friend
	// A draft for one friend must not go to another.
	s.input.SetText("")
	s.input.SetPlaceHolder("Write to " + clean(friend))
	s.input.Enable()
	s.send.Enable()
	s.attach.Enable()
	s.message.Hide()
	s.showLines(nil)
	s.relayout()
	if s.OnOpen != nil {
		s.OnOpen(friend)
	}
}

// close leaves the screen without a conversation.
func (s *Screen) close() {
	s.current = ""
	s.input.SetText("")
	s.input.SetPlaceHolder(pickFirst)
	s.input.Disable()
	s.send.Disable()
	s.attach.Disable()
	s.message.Hide()
	s.showLines(nil)
	s.relayout()
}

// Current is the friend whose conversation is open, or "".
func (s *Screen) Current() string { return s.current }

// ShowHistory shows friend's conversation, oldest line first (ignored
// unless friend is open). The history was read a moment before: what
// showed up since (a line sent or received, a delivery mark) stays.
func (s *Screen) ShowHistory(friend string, lines []Line) {
	if friend == "" || friend != s.current {
		return // an answer that came after the user picked someone else
	}
	at := make(map[string]int, len(lines))
	for i, l := range lines {
		if l.ID != "" {
			at[l.ID] = i
		}
	}
	lines = slices.Clone(lines)
	for _, l := range s.history {
		i, ok := at[l.ID]
		switch {
		case l.ID == "":
		case !ok:
			lines = append(lines, l)
		case l.Delivered:
			lines[i].Delivered = true
		}
	}
	s.showLines(lines)
}

// Add adds a line at the end of friend's conversation, or updates the line
// with the same ID (e.g. now delivered); ignored unless friend is open.
func (s *Screen) Add(friend string, l Line) {
	if friend == "" || friend != s.current {
		return
	}
	s.add(l)
}

// MarkDelivered marks the line id of friend's conversation delivered, in
// place; ignored unless friend is open and the line is there.
func (s *Screen) MarkDelivered(friend, id string) {
	if friend == "" || friend != s.current {
		return
	}
	if i, ok := s.index[id]; ok && !s.history[i].Delivered {
		l := s.history[i]
		l.Delivered = true
		s.add(l)
	}
}

// sendInput sends the input's text to the open friend.
func (s *Screen) sendInput() {
	text := strings.TrimSpace(s.input.Text)
	if s.current == "" || text == "" || s.OnSend == nil {
		return
	}
	if err := s.OnSend(s.current, text); err != nil {
		s.say(notSent(err), widget.DangerImportance)
		return
	}
	s.input.SetText("")
	s.message.Hide()
	s.relayout()
	if s.win != nil {
		s.win.Canvas().Focus(s.input) // the Send button may have taken it
	}
}

// notSent words a send's error as a sentence that says so.
func notSent(err error) string {
	msg := strings.TrimSpace(err.Error())
	if !strings.HasPrefix(strings.ToLower(msg), "not sent") {
		msg = "Not sent: " + msg
	}
	return wording.Sentence(msg)
}

// say shows msg under the input.
func (s *Screen) say(msg string, imp widget.Importance) {
	s.message.Importance = imp
	s.message.SetText(msg)
	s.message.Show()
	s.relayout()
}

// chooseFile asks for a file to send to the open friend.
func (s *Screen) chooseFile() {
	friend := s.current
	if friend == "" || s.win == nil {
		return
	}
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			s.say("Could not open that file: "+err.Error(), widget.DangerImportance)
			return
		}
		if r == nil {
			return // the user closed the dialog
		}
		r.Close() // the engine reads it, by its path
		if friend != s.current {
			return // the friend was removed while the dialog was open
		}
		s.sendFiles([]string{r.URI().Path()})
	}, s.win).Show()
}

// Dropped takes files dropped on the window: it sends the local files to
// the open friend via OnSendFiles (nothing open: a short message says to
// pick a friend first). Route the window's drops here while the screen is
// shown.
func (s *Screen) Dropped(_ fyne.Position, uris []fyne.URI) {
	if len(uris) == 0 {
		return
	}
	if s.current == "" {
		s.say("Pick a friend first, then drop the files again.", widget.WarningImportance)
		return
	}
	var paths []string
	for _, u := range uris {
		if u.Scheme() == "file" {
			paths = append(paths, u.Path())
		}
	}
	if len(paths) == 0 {
		s.say("Only files on this computer can be sent.", widget.WarningImportance)
		return
	}
	s.sendFiles(paths)
}

// sendFiles hands paths to OnSendFiles and says so.
func (s *Screen) sendFiles(paths []string) {
	if s.OnSendFiles == nil {
		return
	}
	s.OnSendFiles(s.current, paths)
	what := clean(filepath.Base(paths[0]))
	if len(paths) > 1 {
		what = fmt.Sprintf("%d files", len(paths))
	}
	s.say("Sending "+what+" to "+clean(s.current)+".", widget.MediumImportance)
}

// SendText does what typing text in the input and pressing Enter does,
// and returns what the screen then says under the input ("" when sent).
func (s *Screen) SendText(text string) string {
	s.input.SetText(text)
	s.sendInput()
	if !s.message.Visible() {
		return ""
	}
	return s.message.Text
}

// Lines returns the open conversation, oldest first.
func (s *Screen) Lines() []Line { return slices.Clone(s.history) }
