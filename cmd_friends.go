package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/presence"
)

// openFriends opens the friends list in the data dir.
func openFriends() (*friends.List, error) {
	home, err := config.Home()
	if err != nil {
		return nil, err
	}
	return friends.Open(home)
}

// resolvePeer reads an address, or a friend's name standing for one.
func resolvePeer(text string) (*addr.Address, error) {
	a, perr := addr.Parse(text)
	if perr == nil {
		return a, nil
	}
	if l, err := openFriends(); err == nil {
		if f, err := l.Get(text); err == nil {
			return addr.Parse(f.Address)
		}
	}
	return nil, fmt.Errorf("%q is neither an address (%v) nor a friend's name", text, perr)
}

// freshenTimeout bounds asking a friend for its current address before
// connecting: an online friend answers in two signaling hops.
const freshenTimeout = 2 * time.Second

// freshen asks the peer at a, if it is a friend, for its current address
// (its network may have changed since), records it in the friends list,
// and returns it; without an answer, a is used as it is.
func freshen(ctx context.Context, n *node.Node, a *addr.Address) *addr.Address {
	l, err := openFriends()
	if err != nil || !slices.ContainsFunc(l.All(), func(f friends.Friend) bool { return f.ID() == identity.IDOf(a.Key) }) {
		return a
	}
	fctx, cancel := context.WithTimeout(ctx, freshenTimeout)
	defer cancel()
	fresh, err := n.FreshAddress(fctx, a)
	if err != nil {
		return a
	}
	if text, err := fresh.Encode(); err == nil {
		l.Update(identity.IDOf(fresh.Key), text)
	}
	return fresh
}

// cmdFriends lists, adds and removes friends:
// p2pd friends [list] | add NAME ADDR | rm NAME.
func cmdFriends(args []string, stdout io.Writer) error {
	fs := newFlags("friends", stdout)
	asJSON := fs.Bool("json", false, "print the list as JSON")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	l, err := openFriends()
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0 || len(pos) == 1 && pos[0] == "list":
		all := l.All()
		if *asJSON {
			type withOnline struct {
				friends.Friend
				Online bool `json:"online"` // presence.SeenLately
			}
			out := []withOnline{}
			for _, f := range all {
				out = append(out, withOnline{f, presence.SeenLately(f)})
			}
			return writeJSON(stdout, out)
		}
		if len(all) == 0 {
			fmt.Fprintln(stdout, "No friends yet: p2pd friends add NAME ADDR")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, f := range all {
			seen := "never seen"
			switch {
			case presence.SeenLately(f):
				seen = "online"
			case !f.LastSeen.IsZero():
				seen = "seen " + f.LastSeen.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, f.ID(), seen)
		}
		return tw.Flush()
	case len(pos) == 3 && pos[0] == "add":
		f, err := l.Add(pos[1], pos[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Added %s (%s).\n", f.Name, f.ID())
		return nil
	case len(pos) == 2 && (pos[0] == "rm" || pos[0] == "remove"):
		if err := l.Remove(pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Removed %s.\n", pos[1])
		return nil
	}
	return usageError{"usage: p2pd friends [list] | add NAME ADDR | rm NAME"}
}
