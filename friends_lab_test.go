package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// TestFriendMoved: Bob restarts on another port, so the address A keeps
// for him is stale; `p2pd connect Bob` asks Bob over signaling for his
// current address, connects to it, and updates A's friends list.
func TestFriendMoved(t *testing.T) {
	l := natlab.New(t, natlab.Config{B: natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF}, TURN: true, MQTT: true, NTP: true})
	homeB, homeA := t.TempDir(), t.TempDir()
	old := nodeInHome(t, l, l.B.Host, "b", homeB, "--port", "40001")
	oldAddr := v4Only(t, old.addr)
	old.stop(t)
	moved := nodeInHome(t, l, l.B.Host, "b2", homeB, "--port", "40002")
	if moved.addr == old.addr {
		t.Fatal("the restarted node kept its address")
	}

	t.Setenv("P2PD_HOME", homeA)
	var sink strings.Builder
	if code := run([]string{"friends", "add", "Bob", oldAddr}, &sink, &sink); code != 0 {
		t.Fatalf("friends add: %s", sink.String())
	}
	// Direct only: the stale port cannot work, the fresh one does.
	mustConnect(t, l, l.A.Host, "a", "Bob", node.Direct, ":40002", "--strategies", "direct")
	list, _ := os.ReadFile(filepath.Join(homeA, "friends.json"))
	if strings.Contains(string(list), oldAddr) || !strings.Contains(string(list), "last_seen") {
		t.Errorf("the friends list was not updated:\n%s", list)
	}
}
