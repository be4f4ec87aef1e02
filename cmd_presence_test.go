package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"p2pd/chat"
	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
	"p2pd/transfer"
)

// TestQueueCommands: `p2pd send --queue` and `p2pd chat --queue` leave
// the files and the message in the outboxes for the running node, say
// so, and start no node; files are queued for friends only; `p2pd
// friends` calls a friend seen just now online.
func TestQueueCommands(t *testing.T) {
	home := t.TempDir()
	t.Setenv("P2PD_HOME", home)
	bob, _ := identity.New()
	a := &addr.Address{Key: bob.Public, Interfaces: []addr.Interface{{V4: &addr.Endpoint{
		Internal: netip.MustParseAddr("10.0.0.2"), External: netip.MustParseAddr("192.0.2.2"), Port: 1234}}}}
	text, _ := a.Encode()
	stranger, _ := identity.New()
	strangerAddr, _ := (&addr.Address{Key: stranger.Public, Interfaces: a.Interfaces}).Encode()
	cmd := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := cmd("friends", "add", "Bob", text); code != 0 {
		t.Fatalf("friends add: %s", out)
	}
	doc := filepath.Join(t.TempDir(), "doc.txt")
	os.WriteFile(doc, []byte("x"), 0o600)

	if code, out := cmd("send", doc, "--to", "Bob", "--queue"); code != 0 || !strings.Contains(out, "delivers them when Bob can be reached") {
		t.Errorf("send --queue: %d %q", code, out)
	}
	if code, out := cmd("send", doc, "--to", strangerAddr, "--queue"); code != 1 || !strings.Contains(out, "needs a friend") {
		t.Errorf("send --queue to a stranger: %d %q", code, out)
	}
	outbox, _ := transfer.OpenOutbox(home)
	if q, _ := outbox.List(); len(q) != 1 || q[0].Peer != bob.ID() || q[0].Paths[0] != doc {
		t.Errorf("the outbox holds %+v", q)
	}

	if code, out := cmd("chat", "Bob", "--queue", "see you at eight"); code != 0 || !strings.Contains(out, "Queued for Bob") {
		t.Errorf("chat --queue: %d %q", code, out)
	}
	store, _ := chat.OpenStore(filepath.Join(home, "chat"))
	defer store.Close()
	if p, _ := store.Pending(bob.ID()); len(p) != 1 || p[0].Text != "see you at eight" {
		t.Errorf("the chat outbox holds %+v", p)
	}

	if _, out := cmd("friends"); !strings.Contains(out, "never seen") {
		t.Errorf("friends before a sighting: %q", out)
	}
	l, _ := friends.Open(home)
	l.Update(bob.ID(), "")
	if _, out := cmd("friends"); !strings.Contains(out, "online") {
		t.Errorf("friends just after a sighting: %q", out)
	}
	if _, out := cmd("friends", "--json"); !strings.Contains(out, `"online": true`) {
		t.Errorf("friends --json just after a sighting: %q", out)
	}
}
