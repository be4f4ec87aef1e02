package friends

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
)

// address makes an address for a fresh key.
func address(t *testing.T, port uint16) (string, identity.ID) {
	t.Helper()
	id, _ := identity.New()
	a := &addr.Address{Key: id.Public, Interfaces: []addr.Interface{{V4: &addr.Endpoint{
		Internal: netip.MustParseAddr("10.0.0.2"), External: netip.MustParseAddr("192.0.2.2"), Port: port}}}}
	text, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return text, id.ID()
}

func TestList(t *testing.T) {
	home := t.TempDir()
	l, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	alice, aliceID := address(t, 1000)
	bob, _ := address(t, 2000)
	if _, err := l.Add("Alice", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add("bob", bob); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, addr string
		want       error
	}{
		{"alice", bob, ErrNameTaken},
		{"Carol", alice, ErrKnown},
		{"", bob, ErrBadName},
		{" padded", bob, ErrBadName},
		{"tab\there", bob, ErrBadName},
		{"Dave", "P2PD1-NOPE", addr.ErrTruncated},
	} {
		if _, err := l.Add(c.name, c.addr); !errors.Is(err, c.want) {
			t.Errorf("Add(%q): %v, want %v", c.name, err, c.want)
		}
	}
	if err := l.Rename("BOB", "Bobby"); err != nil {
		t.Fatal(err)
	}
	newer, _ := address(t, 3000)
	if err := l.Update(aliceID, newer); err == nil {
		t.Error("an address with another key was taken for Alice's")
	}
	// Alice's own key, new port: a fresh address.
	a, _ := addr.Parse(alice)
	a.Interfaces[0].V4.Port = 4000
	moved, _ := a.Encode()
	if err := l.Update(aliceID, moved); err != nil {
		t.Fatal(err)
	}
	// Read back from disk.
	l2, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	all := l2.All()
	if len(all) != 2 || all[0].Name != "Alice" || all[0].Address != moved || all[0].LastSeen.IsZero() || all[1].Name != "Bobby" {
		t.Fatalf("list read back: %+v", all)
	}
	if err := l2.Remove("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Get("Alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed friend: %v", err)
	}
	// No temporary files left behind.
	if m, _ := filepath.Glob(filepath.Join(home, fileName+".*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}

func TestDamagedFileIsAnError(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, fileName), []byte("[{"), 0o600)
	if _, err := Open(home); err == nil {
		t.Error("a damaged list opened")
	}
	if b, _ := os.ReadFile(filepath.Join(home, fileName)); string(b) != "[{" {
		t.Error("the damaged list was replaced")
	}
}

// TestReloadSeesOtherProcesses: a long-running process sees a friend
// another process added once it reloads.
func TestReloadSeesOtherProcesses(t *testing.T) {
	home := t.TempDir()
	node, _ := Open(home)
	cli, _ := Open(home)
	alice, _ := address(t, 1000)
	if _, err := cli.Add("Alice", alice); err != nil {
		t.Fatal(err)
	}
	if len(node.All()) != 0 {
		t.Fatal("the list changed without a reload")
	}
	if err := node.Reload(); err != nil || len(node.All()) != 1 || node.All()[0].Name != "Alice" {
		t.Errorf("after reloading: %+v, %v", node.All(), err)
	}
}

// TestReloadReadsOnlyChanges: Reload leaves an unchanged file unread (the
// app asks every 2 s), and reads it again once it changes.
func TestReloadReadsOnlyChanges(t *testing.T) {
	home := t.TempDir()
	l, _ := Open(home)
	alice, _ := address(t, 1000)
	if _, err := l.Add("Alice", alice); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, fileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Damage it in place, same size and time: Reload does not notice,
	// because it does not read it.
	b, _ := os.ReadFile(path)
	for i := range b {
		b[i] = '#'
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(b, 0)
	f.Close()
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if err := l.Reload(); err != nil || len(l.All()) != 1 {
		t.Fatalf("an unchanged file was read again: %v, %+v", err, l.All())
	}
	// A newer time is a change: read, and found damaged.
	later := fi.ModTime().Add(time.Second)
	os.Chtimes(path, later, later)
	if err := l.Reload(); err == nil {
		t.Fatal("a changed file was not read again")
	}
}
