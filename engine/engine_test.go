package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{"watch": watchChild, "check": checkChild})
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, home string) (*Engine, Snapshot) {
	t.Helper()
	e, err := New(home, config.Config{}, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := e.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return e, s
}

// TestRemembersLastRun: what a run found is shown at once by the next
// one, marked as cached, before it has started.
func TestRemembersLastRun(t *testing.T) {
	home := t.TempDir()
	first, s := start(t, home)
	if s.Address == "" || s.Port == 0 || s.Report == nil || s.Cached {
		t.Fatalf("the first run found %+v", s)
	}
	first.Close()
	next, err := New(home, config.Config{}, Options{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	c := next.Cached()
	if !c.Cached || c.Address != s.Address || c.Report == nil {
		t.Errorf("the next run shows %+v at once, want the last address, cached", c)
	}
	if _, err := next.Check(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Errorf("a check before the start: %v", err)
	}
}

// TestConnectAndSaveFriend: one app connects to another with progress
// events, and saves it as a friend once (the name is then taken).
func TestConnectAndSaveFriend(t *testing.T) {
	home := t.TempDir()
	a, _ := start(t, home)
	_, sb := start(t, t.TempDir())
	to, err := addr.Parse(sb.Address)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []node.Event
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	won, err := a.Connect(ctx, to, func(e node.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	if err != nil || won != node.Direct {
		t.Fatalf("connect: won by %q, %v", won, err)
	}
	mu.Lock()
	n := len(events)
	mu.Unlock()
	if n == 0 {
		t.Error("no progress events")
	}
	if err := a.SaveFriend("Bob", to); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveFriend("Bob", to); !errors.Is(err, friends.ErrNameTaken) {
		t.Errorf("saving the name twice: %v", err)
	}
	l, _ := friends.Open(home)
	if f, err := l.Get("bob"); err != nil || f.Address != sb.Address {
		t.Errorf("the friend saved: %+v %v", f, err)
	}
}
