package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
)

// TestFriendsCommand: add, list, refuse a duplicate, resolve by name,
// remove; each with the exit code and words a person expects.
func TestFriendsCommand(t *testing.T) {
	t.Setenv("P2PD_HOME", t.TempDir())
	id, _ := identity.New()
	a := &addr.Address{Key: id.Public, Interfaces: []addr.Interface{{V4: &addr.Endpoint{
		Internal: netip.MustParseAddr("10.0.0.2"), External: netip.MustParseAddr("192.0.2.2"), Port: 1234}}}}
	text, _ := a.Encode()
	cmd := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, _ := cmd("friends"); code != 0 || !strings.Contains(out, "No friends yet") {
		t.Errorf("empty list: %d %q", code, out)
	}
	if code, out, errOut := cmd("friends", "add", "Alice", text); code != 0 || !strings.Contains(out, "Added Alice") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cmd("friends", "add", "alice", text); code != 1 || !strings.Contains(errOut, "already has that name") {
		t.Errorf("duplicate: %d %q", code, errOut)
	}
	if code, out, _ := cmd("friends", "--json"); code != 0 || !strings.Contains(out, `"name": "Alice"`) {
		t.Errorf("list: %d %q", code, out)
	}
	if got, err := resolvePeer("alice"); err != nil || !got.Key.Equal(id.Public) {
		t.Errorf("resolve by name: %v", err)
	}
	if _, err := resolvePeer("Nobody"); err == nil || !strings.Contains(err.Error(), "nor a friend's name") {
		t.Errorf("resolve an unknown name: %v", err)
	}
	if code, _, _ := cmd("friends", "rm", "Alice"); code != 0 {
		t.Errorf("rm: %d", code)
	}
	if code, _, _ := cmd("friends", "frobnicate"); code != 2 {
		t.Errorf("bad usage: exit %d, want 2", code)
	}
}
