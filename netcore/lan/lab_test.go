package lan_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/lan"
	"p2pd/netcore/natlab"
)

func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{
		// beacons runs lan.Run for args[0] with a fresh key and prints
		// every report as a childRun. Half a round in, its address grows
		// a signaling broker, as a node's does that reaches one late.
		"beacons": func(args []string) error {
			window, err := time.ParseDuration(args[0])
			if err != nil {
				return err
			}
			pub, _, err := ed25519.GenerateKey(nil)
			if err != nil {
				return err
			}
			self := &addr.Address{Key: pub, Interfaces: []addr.Interface{{V4: &addr.Endpoint{Internal: netip.MustParseAddr("192.0.2.7"), Port: 4000}}}}
			run := childRun{Self: hex.EncodeToString(pub)}
			var mu sync.Mutex
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			start := time.Now()
			var now atomic.Pointer[addr.Address]
			now.Store(self)
			grown := *self
			grown.Brokers = []addr.Server{{Addr: netip.MustParseAddrPort("203.0.113.1:1883")}}
			time.AfterFunc(lan.Every/2, func() { now.Store(&grown) })
			err = lan.Run(ctx, now.Load, func(p lan.Peer) {
				mu.Lock()
				defer mu.Unlock()
				run.Reports = append(run.Reports, report{hex.EncodeToString(p.Address.Key), p.From, p.Seen.Sub(start), len(p.Address.Brokers)})
			})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			return json.NewEncoder(os.Stdout).Encode(run)
		},
	})
	os.Exit(m.Run())
}

// childRun is what one lan.Run in a lab host heard.
type childRun struct {
	Self    string // its key
	Reports []report
}

type report struct {
	Key     string
	From    netip.Addr
	After   time.Duration // since Run started
	Brokers int           // in the address heard
}

// window is how long each host listens: every node's beacons go out at
// least twice in it.
const window = 2*lan.Every + time.Second

// beaconsIn runs lan.Run at once in every host of hosts for window.
func beaconsIn(t *testing.T, l *natlab.Lab, hosts ...string) []childRun {
	t.Helper()
	runs := make([]childRun, len(hosts))
	var wg sync.WaitGroup
	for i, ns := range hosts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), window+30*time.Second)
			defer cancel()
			out, err := l.Run(ctx, ns, "beacons", window.String())
			if err != nil {
				t.Error(err)
				return
			}
			if err := json.Unmarshal(out, &runs[i]); err != nil {
				t.Errorf("%s printed %q: %v", ns, out, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return runs
}

// heard returns the reports in r of the node that made run from.
func heard(r childRun, from childRun) []report {
	var out []report
	for _, rep := range r.Reports {
		if rep.Key == from.Self {
			out = append(out, rep)
		}
	}
	return out
}

// checkFound fails t unless a and b heard each other over the family of
// want (4 or 6), and logs how long it took.
func checkFound(t *testing.T, name string, a, b childRun, want int) {
	t.Helper()
	for _, pair := range [][2]childRun{{a, b}, {b, a}} {
		reps := heard(pair[0], pair[1])
		if len(reps) == 0 {
			t.Errorf("%s: a node did not hear the other in %v: %+v", name, window, pair[0].Reports)
			continue
		}
		for _, rep := range reps {
			if got := family(rep.From); got != want {
				t.Errorf("%s: beacon from %v, want IPv%d", name, rep.From, want)
			}
		}
		t.Logf("%s: found after %v, from %v", name, reps[0].After.Round(time.Millisecond), reps[0].From)
	}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// TestOneNodeReportedOncePerInterval: two dual-stack hosts on one LAN hear
// each other's beacons over IPv4 and IPv6, from two source addresses, yet
// each node is reported no more often than it beacons.
func TestOneNodeReportedOncePerInterval(t *testing.T) {
	t.Parallel()
	l := natlab.New(t, natlab.Config{SecondHosts: true})
	runs := beaconsIn(t, l, l.A.Hosts[0].NS, l.A.Hosts[1].NS)
	for _, pair := range [][2]childRun{{runs[0], runs[1]}, {runs[1], runs[0]}} {
		reps := heard(pair[0], pair[1])
		// A window holds at most this many rounds of the other's beacons.
		rounds := int(window/lan.Every) + 1
		if len(reps) == 0 || len(reps) > rounds {
			t.Errorf("a node was reported %d times in %v, want 1 to %d (one per round of beacons): %+v", len(reps), window, rounds, reps)
		}
		// Its address grew after the first round: the next carry that.
		if !slices.ContainsFunc(reps, func(r report) bool { return r.Brokers == 1 }) {
			t.Errorf("a node's grown address was not announced: %+v", reps)
		}
	}
}

// TestOneFamilyHosts: a host with no IPv4 address finds its neighbour over
// IPv6 beacons alone, one with IPv6 disabled over IPv4 alone, and a host
// with neither gets an error that says so.
func TestOneFamilyHosts(t *testing.T) {
	t.Parallel()
	l := natlab.New(t, natlab.Config{SecondHosts: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v6Only, v4Only := l.A.Hosts[1], l.B.Hosts[1]
	noV4 := func(h natlab.Host) {
		if out, err := l.Exec(ctx, h.NS, "ip", "addr", "del", h.V4.String()+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("removing IPv4 from %s: %v: %s", h.NS, err, out)
		}
	}
	noV4(v6Only)
	if out, err := l.Exec(ctx, v4Only.NS, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"); err != nil {
		t.Fatalf("disabling IPv6 in %s: %v: %s", v4Only.NS, err, out)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		runs := beaconsIn(t, l, l.A.Hosts[0].NS, v6Only.NS)
		checkFound(t, "IPv6 only", runs[0], runs[1], 6)
	})
	wg.Go(func() {
		runs := beaconsIn(t, l, l.B.Hosts[0].NS, v4Only.NS)
		checkFound(t, "IPv4 only", runs[0], runs[1], 4)
	})
	wg.Wait()

	noV4(v4Only)
	_, err := l.Run(ctx, v4Only.NS, "beacons", "1s")
	if err == nil || !strings.Contains(err.Error(), "cannot listen for beacons over IPv4") || !strings.Contains(err.Error(), "IPv6") {
		t.Fatalf("lan.Run on a host with neither family: %v, want it to say it cannot listen over IPv4 or IPv6", err)
	}
	t.Log(strings.TrimSpace(fmt.Sprint(err)))
}
