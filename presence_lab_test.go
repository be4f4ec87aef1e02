package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/presence"
)

// TestPresenceDeliversInLab: Alice's `p2pd node` has Bob as a friend. A
// message written for Bob while his node is down waits, and Alice's
// node keeps trying, pausing longer each time; when Bob's node comes
// back behind its NAT, at a new address, Alice's node hears him answer
// over signaling, connects and delivers the message — once — with no one
// doing anything on Alice's side.
func TestPresenceDeliversInLab(t *testing.T) {
	nat := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: nat, B: nat, TURN: true, MQTT: true, NTP: true})
	homeA, homeB := t.TempDir(), t.TempDir()
	first := nodeInHome(t, l, l.B.Host, "b", homeB)
	oldAddr := v4Only(t, first.addr)
	first.stop(t)

	t.Setenv("P2PD_HOME", homeA)
	var sink strings.Builder
	const text = "hello while you were away"
	if code := run([]string{"friends", "add", "Bob", oldAddr}, &sink, &sink); code != 0 {
		t.Fatalf("friends add: %s", sink.String())
	}
	if code := run([]string{"chat", "Bob", "--queue", text}, &sink, &sink); code != 0 {
		t.Fatalf("chat --queue: %s", sink.String())
	}

	alice := watchedNodeIn(t, l, l.A.Host, "a", homeA, "--poll", "2s")
	// Three failed tries: the pause before the next is 20 s, so what
	// finds Bob back is the poll, not the retry.
	alice.waitFor(t, "Alice's node trying Bob while he is away", 2*time.Minute, func(e eventJSON) bool {
		return e.Event == presence.Unreachable && e.Retry >= 20
	})

	back := time.Now()
	bob := nodeInHome(t, l, l.B.Host, "b2", homeB)
	deadline := time.Now().Add(time.Minute)
	for strings.Count(chatHistory(t, homeB), text) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Bob's node did not get the message within a minute of coming back; Alice's node said:%s", alice)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(back)
	alice.waitFor(t, "Alice's node reporting the delivery", 30*time.Second, func(e eventJSON) bool {
		return e.Event == presence.Delivered && e.Text == "delivered 1 message to Bob"
	})
	if after := alice.since(back); len(after) < 3 || after[0].Event != presence.Online || after[1].Event != presence.Connecting {
		t.Errorf("once Bob was back, Alice's node did not first see him online, then connect:%s", alice)
	}
	if n := strings.Count(chatHistory(t, homeB), text); n != 1 {
		t.Errorf("Bob holds the message %d times", n)
	}
	if mine := chatHistory(t, homeA); strings.Count(mine, `"receipt"`) != 1 {
		t.Errorf("Alice's history has no receipt:\n%s", mine)
	}
	list, _ := os.ReadFile(filepath.Join(homeA, "friends.json"))
	if !strings.Contains(string(list), bob.addr) || !strings.Contains(string(list), "last_seen") {
		t.Errorf("Alice's friends list does not have Bob's new address and sighting:\n%s", list)
	}
	t.Logf("delivered %v after Bob's node was started (its start-up included); Alice's node said:%s", took.Round(100*time.Millisecond), alice)
}

// watchedNode is `p2pd node --json` in a lab host, whose presence events
// the test reads.
type watchedNode struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{} // its output ended
	mu     sync.Mutex
	events []eventJSON
}

// watchedNodeIn starts `p2pd node --json` in namespace ns with the data
// dir home and extra flags; it is stopped with SIGTERM when the test
// ends and must shut down cleanly.
func watchedNodeIn(t *testing.T, l *natlab.Lab, ns, name, home string, extra ...string) *watchedNode {
	t.Helper()
	path, err := l.WriteNodeConfig(name, l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	w := &watchedNode{done: make(chan struct{})}
	w.cmd = p2pdIn(context.Background(), l, ns, home, append([]string{"node", "--json", "--config", path}, extra...)...)
	w.cmd.Stderr = &w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		dec := json.NewDecoder(out)
		var address struct{ Address string }
		if dec.Decode(&address) != nil {
			return
		}
		for {
			var e eventJSON
			if dec.Decode(&e) != nil {
				return
			}
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		w.cmd.Process.Signal(syscall.SIGTERM)
		<-w.done
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("node %s did not shut down cleanly: %v\n%s", name, err, w.stderr.String())
		}
	})
	return w
}

func (w *watchedNode) saw(match func(eventJSON) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.events, match)
}

// since returns the events from t on.
func (w *watchedNode) since(t time.Time) []eventJSON {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.IndexFunc(w.events, func(e eventJSON) bool { return !e.Time.Before(t) })
	if i < 0 {
		return nil
	}
	return slices.Clone(w.events[i:])
}

// waitFor waits up to within for an event that matches.
func (w *watchedNode) waitFor(t *testing.T, what string, within time.Duration, match func(eventJSON) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !w.saw(match) {
		select {
		case <-w.done:
			t.Fatalf("%s: the node's output ended; it said:%s", what, w)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; it said:%s", what, within, w)
		}
	}
}

// String lists the events so far, with when each came.
func (w *watchedNode) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, e := range w.events {
		b.WriteString("\n  " + e.Time.Format("15:04:05.000") + " " + e.Text)
	}
	return b.String()
}
