package ui

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"

	"p2pd/chat"
	"p2pd/engine"
	"p2pd/netcore/config"
	"p2pd/presence"
	uchat "p2pd/ui/chat"
	"p2pd/ui/settings"
	"p2pd/ui/transfers"
)

// chatLines turns a conversation from the engine into the screen's lines.
func chatLines(h []chat.Line) []uchat.Line {
	out := make([]uchat.Line, len(h))
	for i, l := range h {
		out[i] = uchat.Line{ID: l.ID, Time: l.Time, Text: l.Text, Out: l.Out, Delivered: l.Delivered}
	}
	return out
}

// transferRow turns an engine transfer into the screen's row.
func transferRow(t engine.Transfer) transfers.Row {
	name := ""
	if len(t.Files) > 0 {
		name = filepath.Base(t.Files[0])
		if len(t.Files) > 1 {
			name += fmt.Sprintf(" and %d more", len(t.Files)-1)
		}
	}
	r := transfers.Row{ID: t.ID, Peer: t.Peer.Name, Name: name, Incoming: t.Incoming,
		Done: t.Progress.Done, Total: t.Progress.Total, Rate: t.Progress.Rate, ETA: t.Progress.ETA,
		Err: t.Note, Resumable: t.Resumable, Ended: t.Ended}
	switch t.State {
	case engine.Waiting:
		r.State = transfers.Waiting
	case engine.Running:
		r.State = transfers.Running
	case engine.Done:
		r.State, r.Where = transfers.Done, t.Dir
	case engine.Failed:
		r.State = transfers.Failed
	case engine.Cancelled:
		r.State = transfers.Cancelled
	case engine.Declined:
		r.State = transfers.Declined
	}
	return r
}

// settingsValues and engineSettings convert between the engine's settings
// and the screen's.
func settingsValues(s engine.Settings) settings.Values {
	return settings.Values{Config: s.Config, DownloadDir: s.DownloadDir, UPnP: s.UPnP, Relay: s.Relay,
		Notifications: s.Notifications, Theme: s.Theme}
}

func engineSettings(v settings.Values) engine.Settings {
	return engine.Settings{Config: v.Config, DownloadDir: v.DownloadDir, UPnP: v.UPnP, Relay: v.Relay,
		Notifications: v.Notifications, Theme: v.Theme}
}

// defaultValues are the built-in settings, as the screen shows them.
func defaultValues() settings.Values {
	return settingsValues(engine.DefaultSettings(config.Default()))
}

// notifier sends system notifications while the window is in the
// background and the user wants them.
type notifier struct {
	app     fyne.App
	eng     Engine
	focused bool // only touched on the UI goroutine
}

func newNotifier(a fyne.App, eng Engine) *notifier {
	n := &notifier{app: a, eng: eng, focused: true}
	a.Lifecycle().SetOnEnteredForeground(func() { n.focused = true })
	a.Lifecycle().SetOnExitedForeground(func() { n.focused = false })
	return n
}

// notify shows title and body unless the window has the focus; call it
// on the UI goroutine.
func (n *notifier) notify(title, body string) {
	if n.focused || !n.eng.Settings().Notifications {
		return
	}
	n.app.SendNotification(fyne.NewNotification(title, body))
}

// screens is the app's window and the screens its events update.
type screens struct {
	win   fyne.Window
	chat  *uchat.Screen
	trans *transfers.Screen
	note  *notifier
	show  func(tab int) // select a tab
}

// Tab indexes of the main window.
const (
	tabHome = iota
	tabConnect
	tabFriends
	tabChat
	tabTransfers
	tabDiagnostics
	tabSettings
)

// wireWork connects the Chat, Transfers and Settings screens to the
// engine, and returns the hooks that carry the engine's events to them
// (from its goroutines, through do). refresh updates the friends' rows;
// network shows a network change on Home, early the address the node has
// as soon as it is up.
func wireWork(s screens, eng Engine, st *settings.Screen, apply func(engine.Settings), refresh func(), network func(engine.Snapshot, string, error), early func(engine.Snapshot)) engine.Hooks {
	openHistory := func(name string) {
		go func() {
			h, err := eng.History(name)
			do(func() {
				if err != nil {
					dialog.ShowError(err, s.win)
					return
				}
				s.chat.ShowHistory(name, chatLines(h))
			})
		}()
	}
	s.chat.OnOpen = openHistory
	s.chat.OnSend = func(name, text string) error {
		m, err := eng.SendMessage(name, text)
		if err != nil {
			return err
		}
		s.chat.Add(name, uchat.Line{ID: m.ID, Time: m.Time, Text: m.Text, Out: true})
		return nil
	}
	sendFiles := func(name string, paths []string) {
		go func() {
			_, err := eng.SendFiles(name, paths)
			do(func() {
				if err != nil {
					dialog.ShowError(err, s.win)
					return
				}
				s.show(tabTransfers)
			})
		}()
	}
	s.chat.OnSendFiles = sendFiles

	s.trans.OnCancel = func(id string) {
		go func() {
			if err := eng.Cancel(id); err != nil {
				do(func() { dialog.ShowError(err, s.win) })
			}
		}()
	}
	s.trans.OnResume = func(id string) {
		go func() {
			if err := eng.Resume(id); err != nil {
				do(func() { dialog.ShowError(err, s.win) })
			}
		}()
	}
	s.trans.OnClear = func() {
		go func() {
			ids, err := eng.ClearEnded()
			do(func() {
				s.trans.Remove(ids...)
				if err != nil {
					dialog.ShowError(err, s.win)
				}
			})
		}()
	}
	for _, t := range eng.Transfers() { // earlier runs' too
		s.trans.Update(transferRow(t))
	}
	s.trans.OnOpenFolder = func(dir string) {
		u := &url.URL{Scheme: "file", Path: dir}
		if err := fyne.CurrentApp().OpenURL(u); err != nil {
			dialog.ShowError(fmt.Errorf("opening %s: %w", dir, err), s.win)
		}
	}

	st.Show(settingsValues(eng.Settings()))
	st.OnDefaults = defaultValues
	st.OnSave = func(v settings.Values) error {
		set := engineSettings(v)
		if err := eng.SaveSettings(set); err != nil {
			return err
		}
		apply(set)
		return nil
	}

	return engine.Hooks{
		Message: func(from engine.Peer, m chat.Message) {
			do(func() {
				s.chat.Add(from.Name, uchat.Line{ID: m.ID, Time: m.Time, Text: m.Text})
				s.note.notify("Message from "+from.Name, chat.Printable(m.Text))
			})
		},
		Delivered: func(to engine.Peer, id string) {
			do(func() { s.chat.MarkDelivered(to.Name, id) })
		},
		Presence: func(e presence.Event) {
			go refresh()
		},
		Offer: func(o engine.Offer, answer func(bool, string)) {
			do(func() {
				s.show(tabTransfers)
				s.trans.Ask(transfers.Offer{ID: o.ID, From: o.From.Name, Files: o.Files, Total: o.Total}, o.Dir, answer)
				s.note.notify(o.From.Name+" offers files", fmt.Sprintf("%d file(s): %s", len(o.Files), chat.Printable(filepath.Base(o.Files[0]))))
			})
		},
		Transfer: func(t engine.Transfer) {
			do(func() { s.trans.Update(transferRow(t)) })
		},
		Network: func(snap engine.Snapshot, change string, err error) {
			do(func() { network(snap, time.Now().Format("15:04")+": "+change, err) })
		},
		Address: func(snap engine.Snapshot) {
			do(func() { early(snap) })
		},
	}
}
