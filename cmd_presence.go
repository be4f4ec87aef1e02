package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"p2pd/chat"
	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/presence"
	"p2pd/transfer"
)

// friendOf returns the friend whose key a has, if any.
func friendOf(a *addr.Address) (friends.Friend, bool) {
	l, err := openFriends()
	if err != nil {
		return friends.Friend{}, false
	}
	i := slices.IndexFunc(l.All(), func(f friends.Friend) bool { return f.ID() == identity.IDOf(a.Key) })
	if i < 0 {
		return friends.Friend{}, false
	}
	return l.All()[i], true
}

// queueFiles puts paths in the outbox for the friend to (a name or an
// address): `p2pd send --queue`.
func queueFiles(to string, paths []string, stdout io.Writer) error {
	peer, err := resolvePeer(to)
	if err != nil {
		return err
	}
	f, ok := friendOf(peer)
	if !ok {
		return errors.New("--queue needs a friend: the running node delivers queued files to friends only (p2pd friends add NAME ADDR)")
	}
	home, err := config.Home()
	if err != nil {
		return err
	}
	outbox, err := transfer.OpenOutbox(home)
	if err != nil {
		return err
	}
	if _, err := outbox.Add(f.ID(), paths); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Queued %d file(s) for %s: the running node (p2pd node) delivers them when %s can be reached.\n", len(paths), f.Name, f.Name)
	return nil
}

// queueMessage writes text to the outbox for peer: `p2pd chat ADDR
// --queue TEXT`.
func queueMessage(store *chat.Store, peer *addr.Address, text string, stdout io.Writer) error {
	if _, err := chat.New(store, nil).Write(identity.IDOf(peer.Key), text); err != nil {
		return err
	}
	if f, ok := friendOf(peer); ok {
		fmt.Fprintf(stdout, "Queued for %s: the running node (p2pd node) delivers it when %s can be reached.\n", f.Name, f.Name)
	} else {
		fmt.Fprintln(stdout, "Queued: it goes with the next p2pd chat session with this address (add it as a friend for p2pd node to deliver it on its own).")
	}
	return nil
}

// runPresence runs a presence Keeper on n until ctx ends: it delivers the
// chat outbox (through c) and the file outbox in home to friends, and
// prints each change and delivery, one line each (JSON with asJSON),
// holding out while it writes. The returned func waits for it to stop.
func runPresence(ctx context.Context, n *node.Node, c *chat.Chat, home string, poll time.Duration, asJSON bool, out *sync.Mutex, stdout io.Writer) (wait func(), err error) {
	list, err := friends.Open(home)
	if err != nil {
		return nil, err
	}
	outbox, err := transfer.OpenOutbox(home)
	if err != nil {
		return nil, err
	}
	log := envLogger()
	k := presence.New(n, list, presence.Options{
		Work:   []presence.Work{{Noun: "message", Courier: c}, {Noun: "file", Courier: outbox}},
		Poll:   poll,
		Logger: log,
		Report: func(e presence.Event) {
			out.Lock()
			defer out.Unlock()
			printEvent(stdout, e, asJSON)
		},
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx)
	}()
	return func() { <-done }, nil
}

// eventJSON is a presence event as `p2pd node --json` prints it.
type eventJSON struct {
	Event    presence.Kind `json:"event"`
	Time     time.Time     `json:"time"`
	Friend   string        `json:"friend"`
	ID       string        `json:"id"`
	LastSeen time.Time     `json:"last_seen,omitzero"`
	What     string        `json:"what,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	Retry    float64       `json:"retry_seconds,omitempty"`
	Text     string        `json:"text"`
}

func printEvent(w io.Writer, e presence.Event, asJSON bool) {
	if !asJSON {
		fmt.Fprintf(w, "%s  %s\n", e.Time.Local().Format("15:04"), e)
		return
	}
	json.NewEncoder(w).Encode(eventJSON{Event: e.Kind, Time: e.Time, Friend: e.Friend, ID: e.ID.String(),
		LastSeen: e.LastSeen, What: e.What, Reason: e.Reason, Retry: e.Retry.Seconds(), Text: e.String()})
}
