package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
)

// watchLine is what the "watch" child prints: the address after the start,
// then one line per network change.
type watchLine struct {
	Change  string `json:"change,omitempty"`
	Address string `json:"address"`
}

// watchChild starts an engine in a lab host with the config at args[0]
// and the data dir args[1], prints its address, then a line per network
// change, until it is told to stop (SIGTERM).
func watchChild(args []string) error {
	cfg, err := config.Load(args[0])
	if err != nil {
		return err
	}
	e, err := New(args[1], cfg, Options{WatchEvery: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	out := func(w watchLine) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(w)
	}
	e.SetHooks(Hooks{
		Network: func(s Snapshot, change string, err error) {
			if err != nil {
				change += "; not started again: " + err.Error()
			}
			out(watchLine{Change: change, Address: s.Address})
		},
		Address: func(s Snapshot) {
			if !s.Cached { // not the one each start shows before its check
				change := "the address grew"
				if e.Cached().Address != s.Address {
					change += ", not remembered"
				}
				out(watchLine{Change: change, Address: s.Address})
			}
		},
	})
	s, err := e.Start(ctx)
	if err != nil {
		return err
	}
	out(watchLine{Address: s.Address})
	<-ctx.Done()
	return e.Close()
}

// localV4 lists the IPv4 interface addresses an address text carries.
func localV4(t *testing.T, text string) []netip.Addr {
	t.Helper()
	a, err := addr.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, i := range a.Interfaces {
		if i.V4 != nil {
			out = append(out, i.V4.Internal)
		}
	}
	return out
}

// TestNetworkChange: the host behind a NAT moves to another address (as
// on another Wi-Fi); the app notices within seconds, says what changed,
// starts the node again and hands out an address with the new one.
func TestNetworkChange(t *testing.T) {
	l := natlab.New(t, natlab.Config{MQTT: true, TURN: true})
	cfgPath, err := l.WriteNodeConfig("watch", l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	next := startWatch(t, ctx, l, cfgPath)
	first := next()
	if got := localV4(t, first.Address); len(got) != 1 || got[0] != l.A.Host4 {
		t.Fatalf("the first address has %v, want %v", got, l.A.Host4)
	}

	moved := netip.MustParseAddr("10.0.1.77")
	start := time.Now()
	for _, c := range [][]string{
		{"addr", "del", l.A.Host4.String() + "/24", "dev", "eth0"},
		{"addr", "add", moved.String() + "/24", "dev", "eth0"},
		{"route", "add", "default", "via", "10.0.1.1"},
	} {
		if _, err := l.Exec(ctx, l.A.Host, "ip", c...); err != nil {
			t.Fatal(err)
		}
	}
	w := next()
	took := time.Since(start)
	if !strings.Contains(w.Change, "gone: "+l.A.Host4.String()) || !strings.Contains(w.Change, "new: "+moved.String()) {
		t.Errorf("the change in words: %q", w.Change)
	}
	if got := localV4(t, w.Address); len(got) != 1 || got[0] != moved {
		t.Errorf("the new address has %v, want %v", got, moved)
	}
	if p, q := port(t, first.Address), port(t, w.Address); p != q {
		t.Errorf("the port moved from %d to %d: friends' saved addresses break for nothing", p, q)
	}
	t.Logf("noticed and started again in %v: %s", took.Round(time.Millisecond), w.Change)
	if took > 15*time.Second {
		t.Errorf("the change took %v to show, want seconds", took)
	}
}

// startWatch runs the watch child in host A until the test ends, and
// returns what reads its next line.
func startWatch(t *testing.T, ctx context.Context, l *natlab.Lab, cfgPath string) (next func() watchLine) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := l.ChildCommand(ctx, l.A.Host, "watch", cfgPath, t.TempDir())
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	return func() watchLine {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the app stopped: %v", lines.Err())
		}
		var w watchLine
		if err := json.Unmarshal(lines.Bytes(), &w); err != nil {
			t.Fatalf("the app printed %q", lines.Text())
		}
		return w
	}
}

// TestBrokersReachedLate: the app starts while the MQTT brokers are down
// (an address no friend can signal); once they are up it shows, and
// remembers, an address that lists them, without starting again.
func TestBrokersReachedLate(t *testing.T) {
	l := natlab.New(t, natlab.Config{MQTT: true, TURN: true})
	cfgPath, err := l.WriteNodeConfig("watch", l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []int{1, 2} {
		if err := l.StopBroker(b); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	next := startWatch(t, ctx, l, cfgPath)
	first := next()
	if b := brokers(t, first.Address); len(b) != 0 {
		t.Fatalf("the first address lists brokers %v while both are down", b)
	}
	for _, b := range []int{1, 2} {
		if err := l.StartBroker(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	up := time.Now()
	for {
		w := next()
		if w.Change != "the address grew" {
			t.Fatalf("the app printed %+v", w)
		}
		if port(t, w.Address) != port(t, first.Address) {
			t.Errorf("the port moved: %s", w.Address)
		}
		if len(brokers(t, w.Address)) == 2 {
			break
		}
	}
	t.Logf("the address listed both brokers %v after they came up", time.Since(up).Round(time.Millisecond))
}

// brokers lists the brokers an address text carries.
func brokers(t *testing.T, text string) []addr.Server {
	t.Helper()
	a, err := addr.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return a.Brokers
}

// port is the listen port an address text carries.
func port(t *testing.T, text string) uint16 {
	t.Helper()
	a, err := addr.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range a.Interfaces {
		if i.V4 != nil {
			return i.V4.Port
		}
	}
	return 0
}
