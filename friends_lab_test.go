package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"p2pd/friends"
	"p2pd/netcore/addr"
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

// TestFriendLearnsAddressWhenAsked: Bob saved an address of Alice's
// without brokers (from Nearby, say, or from before her node reached
// one), so he cannot signal her, and they have no session. Alice's node
// asks Bob's over signaling whether he is online, as it does every poll;
// the question carries her current address, and Bob's node keeps it.
func TestFriendLearnsAddressWhenAsked(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true, MQTT: true, NTP: true})
	homeA, homeB := t.TempDir(), t.TempDir()
	alice := nodeInHome(t, l, l.A.Host, "a", homeA, "--poll", "1s")
	bob := nodeInHome(t, l, l.B.Host, "b", homeB)
	current := v4Only(t, alice.addr)
	a, err := addr.Parse(current)
	if err != nil {
		t.Fatal(err)
	}
	a.Brokers = nil
	brokerless, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var sink strings.Builder
	t.Setenv("P2PD_HOME", homeB)
	if code := run([]string{"friends", "add", "Alice", brokerless}, &sink, &sink); code != 0 {
		t.Fatalf("friends add: %s", sink.String())
	}
	t.Setenv("P2PD_HOME", homeA)
	if code := run([]string{"friends", "add", "Bob", v4Only(t, bob.addr)}, &sink, &sink); code != 0 {
		t.Fatalf("friends add: %s", sink.String())
	}
	start := time.Now()
	for {
		list, _ := os.ReadFile(filepath.Join(homeB, "friends.json"))
		var saved []friends.Friend
		json.Unmarshal(list, &saved)
		if len(saved) == 1 {
			if got, err := addr.Parse(saved[0].Address); err == nil && len(got.Brokers) > 0 {
				t.Logf("Bob kept Alice's address with %d brokers %v after she was added as his friend", len(got.Brokers), time.Since(start).Round(time.Millisecond))
				break
			}
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("Bob still keeps an address of Alice's without brokers:\n%s", list)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
