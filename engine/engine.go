// Package engine runs P2PD for the desktop app: it starts the node and a
// network check in the background, remembers the last address and check
// in the data dir so the next launch shows them at once, connects to
// addresses and saves friends. It has no UI imports; package ui turns its
// results into screen updates.
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

	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/lan"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/node"
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
}

// Engine is the app's node and what goes with it.
type Engine struct {
	home string
	cfg  config.Config
	opt  Options

	mu      sync.Mutex
	n       *node.Node
	last    Snapshot
	friends *friends.List
	nearby  map[string]lan.Peer // by address text
	beacons sync.WaitGroup
}

// nearbyFor is how long a node heard on the LAN stays listed: a few of
// its beacons.
const nearbyFor = 4 * lan.Every

// New prepares an engine on the data dir home with the servers of cfg;
// Start brings it up.
func New(home string, cfg config.Config, opt Options) (*Engine, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	fl, err := friends.Open(home)
	if err != nil {
		return nil, err
	}
	e := &Engine{home: home, cfg: cfg, opt: opt, friends: fl}
	if b, err := os.ReadFile(filepath.Join(home, cacheFile)); err == nil {
		if json.Unmarshal(b, &e.last) == nil {
			e.last.Cached = true
		}
	}
	return e, nil
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
// goroutine.
func (e *Engine) Start(ctx context.Context) (Snapshot, error) {
	n, err := node.Start(ctx, node.Options{Config: e.cfg, Home: e.home, Logger: e.opt.Logger, Loopback: e.opt.Loopback})
	if err != nil {
		return e.Cached(), fmt.Errorf("starting P2PD: %w", err)
	}
	e.mu.Lock()
	e.n = n
	e.mu.Unlock()
	// Nodes on this LAN find this one, and it them, with no server (not
	// for a node kept on loopback).
	if !e.opt.Loopback {
		e.findNearby(ctx, n)
	}
	return e.refresh(ctx)
}

// findNearby runs the LAN beacons until ctx ends.
func (e *Engine) findNearby(ctx context.Context, n *node.Node) {
	e.beacons.Go(func() {
		err := lan.Run(ctx, n.Address(), func(p lan.Peer) {
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
	})
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
	return e.refresh(ctx)
}

func (e *Engine) refresh(ctx context.Context) (Snapshot, error) {
	n := e.node()
	s := Snapshot{Report: netcheck.Run(ctx, e.cfg, netcheck.Options{})}
	a := n.Address()
	text, err := a.Encode()
	if err != nil {
		return e.Cached(), err
	}
	s.Address = text
	for _, i := range a.Interfaces {
		for _, ep := range []*addr.Endpoint{i.V4, i.V6} {
			if ep != nil && s.Port == 0 {
				s.Port = ep.Port
			}
		}
	}
	e.mu.Lock()
	e.last = s
	e.mu.Unlock()
	if b, err := json.MarshalIndent(s, "", "  "); err == nil {
		tmp := filepath.Join(e.home, cacheFile+".tmp")
		if os.WriteFile(tmp, b, 0o600) == nil {
			os.Rename(tmp, filepath.Join(e.home, cacheFile))
		}
	}
	return s, nil
}

func (e *Engine) node() *node.Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
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
	res, err := n.Connect(ctx, a, node.ConnectOptions{Progress: progress})
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
	_, err = e.friends.Add(name, text)
	return err
}

// Close stops the node; the context given to Start must have ended
// first, or Close waits for it (the LAN beacons run until it does).
func (e *Engine) Close() error {
	var err error
	if n := e.node(); n != nil {
		err = n.Close()
	}
	e.beacons.Wait()
	return err
}
