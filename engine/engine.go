// Package engine runs P2PD for the desktop app: it starts the node and a
// network check in the background, remembers the last address and check
// in the data dir so the next launch shows them at once, connects to
// addresses and saves friends, chats and moves files with them (a
// presence Keeper delivers what waits as soon as a friend can be
// reached), keeps the app's settings, and starts the node again when the
// network changes. It has no UI imports: it tells the app what happens
// through Hooks, and package ui turns that into screen updates.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"p2pd/chat"
	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/lan"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/node"
	"p2pd/presence"
	"p2pd/transfer"
)

// cacheFile keeps the last address and network check in the data dir.
const cacheFile = "app-cache.json"

// Snapshot is what the app knows of this computer's node.
type Snapshot struct {
	Address string           `json:"address"` // text form; "" until known
	Report  *netcheck.Report `json:"report,omitempty"`
	Port    uint16           `json:"port,omitempty"` // where the node listens
	Cached  bool             `json:"-"`              // from the last run, not checked yet
}

// ErrNotStarted: the node is not running (Start has not finished, or
// failed).
var ErrNotStarted = errors.New("P2PD is still starting")

// Options tune an engine.
type Options struct {
	// Logger receives the node's log (default slog.Default()).
	Logger *slog.Logger
	// Loopback keeps the node on the loopback interface (tests, and two
	// instances talking only to each other on one computer).
	Loopback bool
	// ConfigPath is where saved server settings go (default: config.json
	// in the data dir; see config.Locate).
	ConfigPath string
	// Poll is how often each friend is asked whether it is online
	// (default presence.DefaultPoll).
	Poll time.Duration
	// WatchEvery is how often the network is looked at for changes
	// (default watchEvery; negative: never, as with Loopback).
	WatchEvery time.Duration
}

// Engine is the app's node and what goes with it.
type Engine struct {
	home string
	cfg  config.Config
	opt  Options

	friends *friends.List
	store   *chat.Store
	chat    *chat.Chat
	outbox  *transfer.Outbox
	recv    *transfer.Receiver
	watch   sync.WaitGroup

	// runMu makes starts, restarts and closes take turns.
	runMu sync.Mutex

	mu        sync.Mutex
	run       *running        // nil until started, and after Close
	ctx       context.Context // Start's, until Close
	cancel    context.CancelFunc
	last      Snapshot
	saveMu    sync.Mutex          // orders reading the address, keeping and saving it
	nearby    map[string]lan.Peer // by address text
	hooks     Hooks
	settings  Settings
	transfers map[string]*Transfer // by ID
	histMu    sync.Mutex           // one history save at a time
	asking    map[string]asked     // offers waiting for the user, by ID
}

// running is one run of the node and what runs on it; a network change
// or new settings start another.
type running struct {
	n           *node.Node
	keeper      *presence.Keeper
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	stopAddress func() // ends the node's OnAddress registration
}

// nearbyFor is how long a node heard on the LAN stays listed: a few of
// its beacons.
const nearbyFor = 4 * lan.Every

// New prepares an engine on the data dir home with the servers of cfg
// (servers saved in the app's settings replace them); Start brings it up.
func New(home string, cfg config.Config, opt Options) (*Engine, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.ConfigPath == "" {
		opt.ConfigPath = filepath.Join(home, config.FileName)
	}
	if opt.WatchEvery == 0 {
		opt.WatchEvery = watchEvery
	}
	fl, err := friends.Open(home)
	if err != nil {
		return nil, err
	}
	e := &Engine{home: home, cfg: cfg, opt: opt, friends: fl,
		transfers: map[string]*Transfer{}, asking: map[string]asked{}}
	if e.settings, err = loadSettings(home, cfg); err != nil {
		return nil, err
	}
	if e.store, err = chat.OpenStore(filepath.Join(home, "chat")); err != nil {
		return nil, err
	}
	e.chat = chat.New(e.store, e.onMessage)
	e.chat.OnDelivered = e.onDelivered
	if e.outbox, err = transfer.OpenOutbox(home); err != nil {
		e.store.Close()
		return nil, err
	}
	e.outbox.Report = e.onAttempt
	e.recv = &transfer.Receiver{Dir: e.settings.DownloadDir, Choose: e.choose, Progress: e.onIncoming, Done: e.onReceived}
	if err := e.restore(); err != nil {
		opt.Logger.Warn("engine: the transfers of earlier runs are not listed", "err", err)
	}
	if b, err := os.ReadFile(filepath.Join(home, cacheFile)); err == nil {
		if json.Unmarshal(b, &e.last) == nil {
			e.last.Cached = true
		}
	}
	return e, nil
}

// Hooks tell the app what happens, from the engine's goroutines (each
// may be nil). Set them with SetHooks before Start.
type Hooks struct {
	// Message: a new message from a peer.
	Message func(from Peer, m chat.Message)
	// Delivered: the message id written to a peer reached it.
	Delivered func(to Peer, id string)
	// Presence: a friend came online or went offline, or work waiting
	// for them was delivered (or could not be).
	Presence func(presence.Event)
	// Offer asks about an incoming offer; answer must be called once,
	// with the folder to save into ("" for the download folder). An offer
	// not answered within offerWait is declined.
	Offer func(o Offer, answer func(accept bool, dir string))
	// Transfer: a transfer started, moved on or ended.
	Transfer func(t Transfer)
	// Network: the network changed (change says how, in words) and the
	// node started again on it; s is what the new check found, err why
	// the node could not start again.
	Network func(s Snapshot, change string, err error)
	// Address: the node is up (started, or started again) with the
	// address in s; the check follows, and s carries the last one
	// (Cached set) until then. Also called, with the current check,
	// when the running node's address changes (a signaling broker
	// reached after the start).
	Address func(s Snapshot)
}

// SetHooks sets what hears the engine's events.
func (e *Engine) SetHooks(h Hooks) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hooks = h
}

func (e *Engine) hook() Hooks {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hooks
}

// Cached returns what the last run knew (Cached set), or what this run
// found once Start or Check finished.
func (e *Engine) Cached() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// Start starts the node and checks the network, and returns what it
// found. It takes a few seconds (the check's servers); run it off the UI
// goroutine. Everything the engine runs stops when ctx ends (and Close
// waits for it).
func (e *Engine) Start(ctx context.Context) (Snapshot, error) {
	ctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.ctx, e.cancel = ctx, cancel
	e.mu.Unlock()
	e.runMu.Lock()
	err := e.startRun(ctx)
	e.runMu.Unlock()
	// The watch runs even if the start failed (no network yet, say): a
	// network that comes up starts the node.
	if !e.opt.Loopback && e.opt.WatchEvery > 0 {
		e.watch.Go(func() { e.watchNetwork(ctx) })
	}
	if err != nil {
		return e.failed(), err
	}
	return e.refresh(ctx, true)
}

// startRun starts the node with the current settings, and on it the
// protocols, the presence Keeper and the LAN beacons; runMu is held.
func (e *Engine) startRun(ctx context.Context) error {
	set := e.Settings()
	cfg := set.Config
	if !set.Relay {
		cfg.TURN = nil // nothing to offer or use
	}
	opt := node.Options{Config: cfg, Home: e.home, Logger: e.opt.Logger, Loopback: e.opt.Loopback, NoPortMapping: !set.UPnP}
	// The last run's port again, so the address friends saved stays
	// right where the network did not change; any port if it is taken.
	opt.Port = e.Cached().Port
	n, err := node.Start(ctx, opt)
	if err != nil && opt.Port != 0 {
		e.opt.Logger.Info("engine: the last port is taken", "port", opt.Port, "err", err)
		opt.Port = 0
		n, err = node.Start(ctx, opt)
	}
	if err != nil {
		return fmt.Errorf("starting P2PD: %w", err)
	}
	n.Handle(chat.Proto, e.chat.Handle)
	n.Handle(transfer.Proto, e.recv.Handle)
	// What runs on the node lives as long as the engine, not as long
	// as this start's caller.
	life := e.life()
	rctx, cancel := context.WithCancel(life)
	r := &running{n: n, cancel: cancel}
	r.keeper = presence.New(n, e.friends, presence.Options{
		Work:   []presence.Work{{Noun: "message", Courier: e.chat}, {Noun: "file", Courier: e.outbox}},
		Poll:   e.opt.Poll,
		Logger: e.opt.Logger,
		Report: func(ev presence.Event) {
			if h := e.hook().Presence; h != nil {
				h(ev)
			}
		},
	})
	r.wg.Go(func() { r.keeper.Run(rctx) })
	r.stopAddress = n.OnAddress(func(*addr.Address) { e.addressChanged(n) })
	// Nodes on this LAN find this one, and it them, with no server (not
	// for a node kept on loopback).
	if !e.opt.Loopback {
		r.wg.Go(func() { e.findNearby(rctx, n) })
	}
	e.mu.Lock()
	e.run = r
	e.mu.Unlock()
	return nil
}

// stopRun stops the running node and what runs on it; runMu is held.
func (e *Engine) stopRun() error {
	e.mu.Lock()
	r := e.run
	e.run = nil
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	r.stopAddress()
	r.cancel()
	r.wg.Wait()
	return r.n.Close()
}

// Restart starts the node again (new settings, a changed network, or
// after a start that failed) and checks the network; the friends'
// sessions end, and those connected are connected again.
func (e *Engine) Restart(ctx context.Context) (Snapshot, error) {
	life := e.life()
	if life == nil || life.Err() != nil {
		return e.Cached(), ErrNotStarted
	}
	e.runMu.Lock()
	// The friends connected now are connected again on the new node.
	var were []identity.ID
	if k := e.keeper(); k != nil {
		for _, st := range k.States() {
			if st.Sessions > 0 {
				were = append(were, st.ID)
			}
		}
	}
	e.stopRun()
	err := e.startRun(ctx)
	e.runMu.Unlock()
	if err != nil {
		return e.failed(), err
	}
	if k := e.keeper(); k != nil {
		for _, id := range were {
			k.Reconnect(id)
		}
	}
	return e.refresh(ctx, true)
}

// findNearby runs the LAN beacons until ctx ends.
func (e *Engine) findNearby(ctx context.Context, n *node.Node) {
	err := lan.Run(ctx, n.Address, func(p lan.Peer) {
		text, err := p.Address.Encode()
		if err != nil {
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.nearby == nil {
			e.nearby = map[string]lan.Peer{}
		}
		e.nearby[text] = p
	})
	if err != nil && ctx.Err() == nil {
		e.opt.Logger.Debug("no LAN beacons", "err", err)
	}
}

// Nearby lists the nodes heard on the local network lately.
func (e *Engine) Nearby() []lan.Peer {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []lan.Peer
	for text, p := range e.nearby {
		if time.Since(p.Seen) > nearbyFor {
			delete(e.nearby, text)
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b lan.Peer) int { return a.From.Compare(b.From) })
	return out
}

// Friends lists the friends (read again: another process may have
// changed the list).
func (e *Engine) Friends() ([]friends.Friend, error) {
	if err := e.friends.Reload(); err != nil {
		return nil, err
	}
	return e.friends.All(), nil
}

// RenameFriend gives a friend another name.
func (e *Engine) RenameFriend(name, to string) error { return e.friends.Rename(name, to) }

// RemoveFriend removes a friend.
func (e *Engine) RemoveFriend(name string) error { return e.friends.Remove(name) }

// Check runs the network check again.
func (e *Engine) Check(ctx context.Context) (Snapshot, error) {
	if e.node() == nil {
		return e.Cached(), ErrNotStarted
	}
	return e.refresh(ctx, false)
}

// refresh reads the node's address and runs the network check; started
// says the node has just started, and the NAT profiles it measured then
// are current (Check, asked for by the user, measures them again).
func (e *Engine) refresh(ctx context.Context, started bool) (Snapshot, error) {
	n := e.node()
	if n == nil {
		return e.Cached(), ErrNotStarted
	}
	// The address is known once the node is up: the app shows it while
	// the check (seconds) runs.
	s, err := addressOf(n)
	if err != nil {
		return e.Cached(), err
	}
	if h := e.hook().Address; h != nil {
		early := s
		early.Report, early.Cached = e.Cached().Report, true
		h(early)
	}
	var opt netcheck.Options
	if started {
		opt.Known = n.Discoveries()
	}
	s.Report = netcheck.Run(ctx, e.Settings().Config, opt)
	if e.node() != n {
		// The node started again meanwhile (a restart overlapped this
		// check): its own check tells the newer address.
		return e.Cached(), nil
	}
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	// A broker reached during the check grew the address meanwhile.
	if now, err := addressOf(n); err == nil {
		s.Address, s.Port = now.Address, now.Port
	}
	e.keepSnapshot(s)
	return s, nil
}

// failed is what the app shows while the node is not running: the last
// known address and check, not marked as being refreshed.
func (e *Engine) failed() Snapshot {
	s := e.Cached()
	s.Cached = false
	return s
}

// addressChanged shows and remembers the running node's new address,
// with the check the last one made.
func (e *Engine) addressChanged(n *node.Node) {
	if e.node() != n {
		return
	}
	e.saveMu.Lock()
	s, err := addressOf(n)
	if err != nil {
		e.saveMu.Unlock()
		return
	}
	s.Report = e.Cached().Report
	e.keepSnapshot(s)
	e.saveMu.Unlock()
	if h := e.hook().Address; h != nil {
		h(s)
	}
}

// keepSnapshot makes s what Cached returns, and saves it for the next
// launch; saveMu is held, so the address read last is the one kept.
func (e *Engine) keepSnapshot(s Snapshot) {
	e.mu.Lock()
	e.last = s
	e.mu.Unlock()
	if err := saveJSON(filepath.Join(e.home, cacheFile), s); err != nil {
		e.opt.Logger.Debug("engine: cannot remember the address for the next launch", "err", err)
	}
}

// addressOf is the snapshot of n's address, without a check.
func addressOf(n *node.Node) (Snapshot, error) {
	a := n.Address()
	text, err := a.Encode()
	if err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Address: text}
	for _, i := range a.Interfaces {
		for _, ep := range []*addr.Endpoint{i.V4, i.V6} {
			if ep != nil && s.Port == 0 {
				s.Port = ep.Port
			}
		}
	}
	return s, nil
}

// life is the context Start was given (nil before): it ends with the
// engine.
func (e *Engine) life() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ctx
}

func (e *Engine) node() *node.Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run == nil {
		return nil
	}
	return e.run.n
}

func (e *Engine) keeper() *presence.Keeper {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run == nil {
		return nil
	}
	return e.run.keeper
}

// Connect connects to the peer at a, racing every strategy, and tells
// progress each strategy's events as they happen (from other
// goroutines). It returns the winning strategy; the session stays open
// until the engine closes.
func (e *Engine) Connect(ctx context.Context, a *addr.Address, progress func(node.Event)) (string, error) {
	n := e.node()
	if n == nil {
		return "", ErrNotStarted
	}
	opt := node.ConnectOptions{Progress: progress}
	if !e.Settings().Relay {
		opt.Strategies = slices.DeleteFunc(slices.Clone(node.Strategies), func(s string) bool { return s == node.Relay })
	}
	res, err := n.Connect(ctx, a, opt)
	if err != nil {
		return "", err
	}
	return res.Strategy, nil
}

// SaveFriend adds the peer at a to the friends list as name.
func (e *Engine) SaveFriend(name string, a *addr.Address) error {
	text, err := a.Encode()
	if err != nil {
		return err
	}
	if _, err = e.friends.Add(name, text); err != nil {
		return err
	}
	if k := e.keeper(); k != nil {
		k.Nudge() // the Keeper starts looking after them now
	}
	return nil
}

// Close stops the node and everything the engine runs.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.cancel != nil {
		e.cancel()
	}
	e.mu.Unlock()
	e.runMu.Lock()
	err := e.stopRun()
	e.runMu.Unlock()
	e.watch.Wait()
	e.declineAll()
	return errors.Join(err, e.store.Close())
}
