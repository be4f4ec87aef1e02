// Package friends is the app's Friends screen: the people saved as
// friends, with whether they are online and when they were last seen,
// and the P2PD nodes found on this local network (Nearby). It shows what
// the app hands it and calls back for every action; it keeps no state of
// its own beyond what is on screen.
package friends

import (
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Friend is one row of the list.
type Friend struct {
	Name     string
	Address  string
	Online   bool
	LastSeen time.Time // zero: never
}

// Nearby is a node found on the local network.
type Nearby struct {
	Address string
	From    string // where its beacon came from, for people to read
	Friend  string // the friend's name, if it is one
}

// Screen is the Friends screen; call its methods on the UI goroutine.
type Screen struct {
	widget.BaseWidget

	// OnConnect asks to connect to the peer at address (a friend's or a
	// nearby node's).
	OnConnect func(address string)
	// OnChat opens the conversation with the friend called name.
	OnChat func(name string)
	// OnSendFiles sends files (picked in a file dialog) to the friend
	// called name.
	OnSendFiles func(name string, paths []string)
	// OnRename and OnRemove change the list; their errors are shown.
	OnRename func(name, to string) error
	OnRemove func(name string) error

	win     fyne.Window
	friends *fyne.Container
	nearby  *fyne.Container
	now     func() time.Time
}

// New builds the screen; win is the window its dialogs open over.
func New(win fyne.Window) *Screen {
	s := &Screen{win: win, friends: container.NewVBox(), nearby: container.NewVBox(), now: time.Now}
	s.ExtendBaseWidget(s)
	s.ShowFriends(nil)
	s.ShowNearby(nil)
	return s
}

// CreateRenderer lays the screen out.
func (s *Screen) CreateRenderer() fyne.WidgetRenderer {
	title := func(t string) *widget.Label {
		l := widget.NewLabelWithStyle(t, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		l.SizeName = theme.SizeNameSubHeadingText
		return l
	}
	body := container.NewVBox(title("Friends"), s.friends, widget.NewSeparator(), title("Nearby"),
		widget.NewLabel("P2PD on this local network (found without any server):"), s.nearby)
	return widget.NewSimpleRenderer(container.NewVScroll(container.NewPadded(body)))
}

// ShowFriends shows the friends list.
func (s *Screen) ShowFriends(list []Friend) {
	s.friends.RemoveAll()
	if len(list) == 0 {
		s.friends.Add(widget.NewLabel("No friends yet: connect to someone on the Connect tab and save them."))
	}
	for _, f := range list {
		s.friends.Add(s.friendRow(f))
	}
	s.friends.Refresh()
}

// seen words a friend's presence.
func (s *Screen) seen(f Friend) string {
	switch {
	case f.Online:
		return "online"
	case f.LastSeen.IsZero():
		return "not seen yet"
	}
	ago := s.now().Sub(f.LastSeen)
	switch {
	case ago < time.Minute:
		return "last seen just now"
	case ago < time.Hour:
		return fmt.Sprintf("last seen %d min ago", int(ago.Minutes()))
	case ago < 24*time.Hour:
		return "last seen at " + f.LastSeen.Local().Format("15:04")
	}
	return "last seen " + f.LastSeen.Local().Format("2 Jan 2006")
}

func (s *Screen) friendRow(f Friend) fyne.CanvasObject {
	mark := widget.NewIcon(theme.RadioButtonIcon())
	if f.Online {
		mark.SetResource(theme.NewSuccessThemedResource(theme.RadioButtonCheckedIcon()))
	}
	name := widget.NewLabelWithStyle(f.Name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	seen := widget.NewLabel(s.seen(f))
	seen.Importance = widget.LowImportance
	connect := widget.NewButtonWithIcon("Connect", theme.LoginIcon(), func() {
		if s.OnConnect != nil {
			s.OnConnect(f.Address)
		}
	})
	talk := widget.NewButtonWithIcon("Chat", theme.MailComposeIcon(), func() {
		if s.OnChat != nil {
			s.OnChat(f.Name)
		}
	})
	send := widget.NewButtonWithIcon("Send file", theme.UploadIcon(), func() { s.pickFile(f.Name) })
	rename := widget.NewButtonWithIcon("", theme.DocumentCreateIcon(), func() { s.askRename(f.Name) })
	remove := widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { s.askRemove(f.Name) })
	return container.NewBorder(nil, nil, mark, container.NewHBox(talk, send, connect, rename, remove), container.NewHBox(name, seen))
}

// pickFile asks for a file to send to the friend called name.
func (s *Screen) pickFile(name string) {
	dialog.ShowFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			dialog.ShowError(err, s.win)
			return
		}
		if r == nil || s.OnSendFiles == nil {
			return // cancelled
		}
		r.Close()
		s.OnSendFiles(name, []string{r.URI().Path()})
	}, s.win)
}

func (s *Screen) askRename(name string) {
	entry := widget.NewEntry()
	entry.SetText(name)
	dialog.ShowForm("Rename "+name, "Rename", "Cancel", []*widget.FormItem{widget.NewFormItem("New name", entry)}, func(ok bool) {
		if !ok || s.OnRename == nil || entry.Text == name {
			return
		}
		if err := s.OnRename(name, entry.Text); err != nil {
			dialog.ShowError(err, s.win)
		}
	}, s.win)
}

func (s *Screen) askRemove(name string) {
	dialog.ShowConfirm("Remove "+name+"?", "You can add them again from their address.", func(ok bool) {
		if !ok || s.OnRemove == nil {
			return
		}
		if err := s.OnRemove(name); err != nil {
			dialog.ShowError(err, s.win)
		}
	}, s.win)
}

// ShowNearby shows the nodes found on the local network.
func (s *Screen) ShowNearby(list []Nearby) {
	s.nearby.RemoveAll()
	if len(list) == 0 {
		l := widget.NewLabel("None found. Friends on the same Wi-Fi appear here while P2PD runs on their computer.")
		l.Wrapping = fyne.TextWrapWord
		s.nearby.Add(l)
	}
	for _, n := range list {
		who := "A computer at " + n.From
		if n.Friend != "" {
			who = n.Friend + ", at " + n.From
		}
		connect := widget.NewButtonWithIcon("Connect", theme.LoginIcon(), func() {
			if s.OnConnect != nil {
				s.OnConnect(n.Address)
			}
		})
		s.nearby.Add(container.NewBorder(nil, nil, widget.NewIcon(theme.ComputerIcon()), connect, widget.NewLabel(who)))
	}
	s.nearby.Refresh()
}
