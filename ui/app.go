// Package ui is P2PD's desktop app, built with Fyne. It holds screens
// only (one subpackage per screen: home, connect, friends, chat,
// transfers, diag, settings); what they show
// comes from the engine through the small Engine interface, and this
// file is the thin layer that turns the engine's results and events into
// fyne.Do updates. Screens are tested with Fyne's headless driver and
// fixed data.
package ui

import (
	"context"
	"fmt"
	"io"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"

	"p2pd/assets"
	"p2pd/chat"
	"p2pd/engine"
	pfriends "p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
	"p2pd/netcore/lan"
	"p2pd/netcore/node"
	"p2pd/presence"
	uchat "p2pd/ui/chat"
	"p2pd/ui/connect"
	"p2pd/ui/diag"
	"p2pd/ui/friends"
	"p2pd/ui/home"
	"p2pd/ui/settings"
	"p2pd/ui/transfers"
)

// AppID identifies the app to the desktop (preferences, notifications); it
// matches FyneApp.toml.
const AppID = "io.p2pd.app"

// Engine is what the app needs from P2PD's engine (package engine).
type Engine interface {
	// Cached is what the last run knew, shown at once.
	Cached() engine.Snapshot
	// Start starts the node and checks the network (seconds).
	Start(ctx context.Context) (engine.Snapshot, error)
	// Check checks the network again.
	Check(ctx context.Context) (engine.Snapshot, error)
	// Connect races every strategy to the peer at a, telling progress
	// each event from other goroutines, and returns the winner.
	Connect(ctx context.Context, a *addr.Address, progress func(node.Event)) (string, error)
	// SaveFriend saves the peer at a as a friend called name.
	SaveFriend(name string, a *addr.Address) error
	// Friends lists the friends; RenameFriend and RemoveFriend change them.
	Friends() ([]pfriends.Friend, error)
	RenameFriend(name, to string) error
	RemoveFriend(name string) error
	// Nearby lists the nodes heard on the local network lately.
	Nearby() []lan.Peer
	// Online says which friends are online now, by name.
	Online() map[string]bool
	// SetHooks sets what hears the engine's events (before Start).
	SetHooks(h engine.Hooks)
	// History is the conversation with a friend; SendMessage writes to
	// them (delivered now or when they can be reached).
	History(name string) ([]chat.Line, error)
	SendMessage(name, text string) (chat.Message, error)
	// SendFiles sends files to a friend; Cancel and Resume act on a
	// transfer by its ID.
	SendFiles(name string, paths []string) (string, error)
	Cancel(id string) error
	Resume(id string) error
	// Transfers lists the transfers, earlier runs' included, oldest
	// first; ClearEnded takes those that ended off the list.
	Transfers() []engine.Transfer
	ClearEnded() ([]string, error)
	// Settings are the settings in use; SaveSettings checks, saves and
	// applies new ones.
	Settings() engine.Settings
	SaveSettings(s engine.Settings) error
}

// refreshEvery spaces the Friends screen's updates (LAN beacons come
// every lan.Every).
const refreshEvery = lan.Every

// do runs f on the UI goroutine: every update from the engine's
// goroutines goes through it (tests serialise it with their reads).
var do = fyne.Do

// connectTimeout bounds one connect from the Connect screen.
const connectTimeout = time.Minute

// Icon is the app icon as a Fyne resource.
var Icon = fyne.NewStaticResource("icon.png", assets.IconPNG)

// Options tune Run.
type Options struct {
	// Drive, if set, is read for commands that work the window as a user
	// would, each answered by one JSON line on Report: the hook a smoke
	// test of the real binary drives two apps through (see drive).
	Drive  io.Reader
	Report io.Writer
}

// Run opens the main window and blocks until the user closes it.
func Run(eng Engine, opt Options) {
	a := app.NewWithID(AppID)
	a.SetIcon(Icon)
	applyTheme(a, eng.Settings().Theme)
	m, stop := newMainWindow(a, eng)
	defer stop()
	if opt.Drive != nil {
		go m.drive(m.ctx, opt.Drive, opt.Report)
	}
	m.win.ShowAndRun()
}

// mainWindow is the window and its screens.
type mainWindow struct {
	ctx   context.Context // ends with the window
	win   fyne.Window
	tabs  *container.AppTabs
	home  *home.Home
	conn  *connect.Connect
	chat  *uchat.Screen
	trans *transfers.Screen
	drop  func(fyne.Position, []fyne.URI) // files dropped on the window
	note  *notifier
}

// NewMainWindow builds the main window of app a, shows what the engine
// remembers at once and starts the engine off the UI goroutine. stop
// cancels what is under way.
func NewMainWindow(a fyne.App, eng Engine) (fyne.Window, func()) {
	m, stop := newMainWindow(a, eng)
	return m.win, stop
}

func newMainWindow(a fyne.App, eng Engine) (*mainWindow, func()) {
	ctx, stop := context.WithCancel(context.Background())
	w := a.NewWindow("P2PD")
	h := home.New()
	c := connect.New(w)
	c.Do = do
	d := diag.New()
	f := friends.New(w)
	ch := uchat.New(w)
	tr := transfers.New(w)
	st := settings.New(w)
	tabs := container.NewAppTabs(
		container.NewTabItemWithIcon("Home", theme.HomeIcon(), h),
		container.NewTabItemWithIcon("Connect", theme.LoginIcon(), c),
		container.NewTabItemWithIcon("Friends", theme.AccountIcon(), f),
		container.NewTabItemWithIcon("Chat", theme.MailComposeIcon(), ch),
		container.NewTabItemWithIcon("Transfers", theme.DownloadIcon(), tr),
		container.NewTabItemWithIcon("Diagnostics", theme.InfoIcon(), d.Content()),
		container.NewTabItemWithIcon("Settings", theme.SettingsIcon(), st.Content()),
	)
	tabs.SetTabLocation(container.TabLocationLeading)
	w.SetContent(tabs)
	// Files dropped on the window go to the open chat; a picture dropped
	// anywhere else is a QR code to scan.
	dropped := func(pos fyne.Position, uris []fyne.URI) {
		if tabs.SelectedIndex() == tabChat {
			ch.Dropped(pos, uris)
			return
		}
		tabs.SelectIndex(tabConnect)
		c.Dropped(pos, uris)
	}
	w.SetOnDropped(dropped)
	w.Resize(fyne.NewSize(860, 640))

	var last home.Status
	// setStatus shows s on Home, keeping the last network event.
	setStatus := func(s engine.Snapshot, err error) {
		event := last.Event
		last = status(s, err)
		last.Event = event
		h.ShowStatus(last)
	}
	show := func(s engine.Snapshot, err error) {
		setStatus(s, err)
		d.Show(s.Report)
	}
	// The address as soon as the node is up; Diagnostics waits for the
	// check.
	early := func(s engine.Snapshot) { setStatus(s, nil) }
	network := func(s engine.Snapshot, change string, err error) {
		last.Event = change
		show(s, err)
	}
	if cached := eng.Cached(); cached.Address != "" || cached.Report != nil {
		cached.Cached = true
		last = status(cached, nil)
		h.ShowStatus(last)
		d.Show(cached.Report)
	}
	d.Checking()

	refresh := func() {
		list, err := eng.Friends()
		near := eng.Nearby()
		online := eng.Online()
		do(func() {
			if err == nil {
				f.ShowFriends(friendRows(list, online))
				ch.SetPeers(chatPeers(list, online))
			}
			f.ShowNearby(nearbyRows(near, list))
		})
	}
	note := newNotifier(a, eng)
	eng.SetHooks(wireWork(screens{win: w, chat: ch, trans: tr, note: note, show: tabs.SelectIndex},
		eng, st, func(s engine.Settings) { applyTheme(a, s.Theme) }, refresh, network, early))
	go func() {
		s, err := eng.Start(ctx)
		do(func() { show(s, err) })
	}()
	d.OnRun = func() {
		go func() {
			s, err := eng.Check(ctx)
			do(func() { show(s, err) })
		}()
	}

	var cancelConnect context.CancelFunc
	c.OnCancel = func() {
		if cancelConnect != nil {
			cancelConnect()
		}
	}
	c.OnConnect = func(to *addr.Address) {
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		cancelConnect = cancel
		go func() {
			defer cancel()
			won, err := eng.Connect(cctx, to, func(e node.Event) { do(func() { c.Progress(e) }) })
			do(func() { c.Done(won, err) })
		}()
	}
	c.OnSaveFriend = eng.SaveFriend

	f.OnConnect = func(address string) {
		tabs.SelectIndex(tabConnect)
		c.SetAddress(address)
	}
	f.OnChat = func(name string) {
		tabs.SelectIndex(tabChat)
		ch.Open(name)
	}
	f.OnSendFiles = ch.OnSendFiles
	changed := func(err error) error {
		if err == nil {
			go refresh()
		}
		return err
	}
	f.OnRename = func(name, to string) error { return changed(eng.RenameFriend(name, to)) }
	f.OnRemove = func(name string) error { return changed(eng.RemoveFriend(name)) }
	go func() {
		t := time.NewTicker(refreshEvery)
		defer t.Stop()
		for {
			refresh()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return &mainWindow{ctx: ctx, win: w, tabs: tabs, home: h, conn: c, chat: ch, trans: tr, drop: dropped, note: note}, stop
}

// friendRows turns the friends list into the screen's rows: online as the
// engine's Keeper sees them, or (before it has looked) seen lately.
func friendRows(list []pfriends.Friend, online map[string]bool) []friends.Friend {
	out := make([]friends.Friend, 0, len(list))
	for _, f := range list {
		out = append(out, friends.Friend{Name: f.Name, Address: f.Address, LastSeen: f.LastSeen, Online: isOnline(f, online)})
	}
	return out
}

func isOnline(f pfriends.Friend, online map[string]bool) bool {
	if on, known := online[f.Name]; known {
		return on
	}
	return presence.SeenLately(f)
}

// chatPeers turns the friends list into the Chat screen's picker.
func chatPeers(list []pfriends.Friend, online map[string]bool) []uchat.Peer {
	out := make([]uchat.Peer, 0, len(list))
	for _, f := range list {
		out = append(out, uchat.Peer{Name: f.Name, Online: isOnline(f, online)})
	}
	return out
}

// nearbyRows turns the nodes heard on the LAN into the screen's rows,
// naming the friends among them.
func nearbyRows(near []lan.Peer, list []pfriends.Friend) []friends.Nearby {
	names := map[identity.ID]string{}
	for _, f := range list {
		names[f.ID()] = f.Name
	}
	out := make([]friends.Nearby, 0, len(near))
	for _, p := range near {
		text, err := p.Address.Encode()
		if err != nil {
			continue
		}
		out = append(out, friends.Nearby{Address: text, From: p.From.String(), Friend: names[identity.IDOf(p.Address.Key)]})
	}
	return out
}

// status words a snapshot for the Home screen.
func status(s engine.Snapshot, err error) home.Status {
	st := home.Status{Address: s.Address, Refreshing: s.Cached, Err: err}
	if s.Port != 0 {
		st.Listening = fmt.Sprintf("port %d, TCP and UDP", s.Port)
	}
	if r := s.Report; r != nil {
		st.Verdict, st.Level = r.Verdict, home.NATLevel(r)
		for _, o := range r.Servers {
			if o.Kind == "mqtt" {
				st.Brokers++
				if o.OK {
					st.BrokersUp++
				}
			}
		}
		if pm := r.PortMapping; pm != nil && pm.Worked {
			st.Mapping = fmt.Sprintf("port %d on %s by %s", pm.External.Port(), pm.External.Addr(), pm.Method)
		}
	}
	return st
}
