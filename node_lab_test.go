package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// runningNode is `p2pd node` running in a lab host.
type runningNode struct {
	addr string
	home string // its P2PD_HOME
	cmd  *exec.Cmd
	err  bytes.Buffer
	out  *json.Decoder // what it prints after its first address
}

// nodeIn starts `p2pd node --json` (this test binary as p2pd) in namespace
// ns with the lab's servers and a data dir of its own, and returns its
// address. The node is stopped with SIGTERM when the test ends and must
// shut down cleanly.
func nodeIn(t testing.TB, l *natlab.Lab, ns, name string) *runningNode {
	t.Helper()
	return nodeInHome(t, l, ns, name, t.TempDir())
}

// nodeInHome is nodeIn with the data dir home (the node's identity) and
// extra flags for p2pd node.
func nodeInHome(t testing.TB, l *natlab.Lab, ns, name, home string, extra ...string) *runningNode {
	t.Helper()
	path, err := l.WriteNodeConfig(name, l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	cmd := p2pdIn(context.Background(), l, ns, home, append([]string{"node", "--json", "--config", path}, extra...)...)
	cmd.Env = append(cmd.Env, "P2PD_LOG=1") // its log, for a failed test
	n := &runningNode{cmd: cmd, home: home}
	cmd.Stderr = &n.err
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var first struct{ Address string }
		dec := json.NewDecoder(bufio.NewReader(out))
		err := dec.Decode(&first)
		n.addr, n.out = first.Address, dec
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("node %s printed no address: %v\n%s", name, err, n.err.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("node %s did not start\n%s", name, n.err.String())
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

// nextAddress waits up to wait for the node to print an address again,
// one for which ok holds (it skips the other lines it prints).
func (n *runningNode) nextAddress(t testing.TB, wait time.Duration, ok func(*addr.Address) bool) *addr.Address {
	t.Helper()
	found := make(chan *addr.Address, 1)
	go func() {
		defer close(found)
		for {
			var line struct{ Address string }
			if err := n.out.Decode(&line); err != nil {
				return
			}
			if a, err := addr.Parse(line.Address); err == nil && ok(a) {
				found <- a
				return
			}
		}
	}()
	select {
	case a, open := <-found:
		if !open {
			t.Fatalf("the node stopped printing before the address expected\n%s", n.err.String())
		}
		return a
	case <-time.After(wait):
		t.Fatalf("no such address from the node within %v\n%s", wait, n.err.String())
	}
	return nil
}

// stop interrupts the node and checks that it shut down cleanly.
func (n *runningNode) stop(t testing.TB) {
	t.Helper()
	if n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	err := n.cmd.Wait()
	log := n.err.String()
	log = log[max(0, len(log)-8000):]
	if err != nil {
		t.Errorf("node did not shut down cleanly: %v\n%s", err, log)
	} else if t.Failed() {
		t.Logf("the node's log (its end):\n%s", log)
	}
}

// connectIn runs `p2pd connect --json ADDR` in namespace ns.
func connectIn(t testing.TB, l *natlab.Lab, ns, name, to string, extra ...string) (connectReport, error) {
	t.Helper()
	path, err := l.WriteNodeConfig(name, l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"connect", "--json", "--config", path}, extra...)
	cmd := p2pdIn(ctx, l, ns, homeFor(t), append(args, to)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var r connectReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("connect printed %q (%v): %v\n%s", stdout.String(), runErr, err, stderr.String())
	}
	if runErr != nil {
		runErr = fmt.Errorf("%w: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return r, runErr
}

// p2pdIn returns the command `p2pd args...` (this test binary, run as
// p2pd) in namespace ns, with home as its data dir.
func p2pdIn(ctx context.Context, l *natlab.Lab, ns, home string, args ...string) *exec.Cmd {
	cmd := l.Command(ctx, ns, os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(cmd.Env, "P2PD_RUN_MAIN=1", "P2PD_HOME="+home, "HOME="+os.TempDir())
	return cmd
}

// homeFor is the data dir for a command: the test's P2PD_HOME if it set
// one (t.Setenv), else a fresh one.
func homeFor(t testing.TB) string {
	if h := os.Getenv("P2PD_HOME"); h != "" {
		return h
	}
	return t.TempDir()
}

// mustConnect connects and checks the winner and the echo.
func mustConnect(t *testing.T, l *natlab.Lab, ns, name, to, wantStrategy, wantDetail string, extra ...string) connectReport {
	t.Helper()
	r, err := connectIn(t, l, ns, name, to, extra...)
	if err != nil || r.Strategy != wantStrategy || !r.Echo {
		t.Fatalf("connect: won by %q, echo %v, err %v; want %s with the echo\nevents: %s", r.Strategy, r.Echo, err, wantStrategy, eventLines(r.Events))
	}
	if win := winner(r); !strings.Contains(win.Reason, wantDetail) {
		t.Errorf("won by %s %q, want it through %q", win.Strategy, win.Reason, wantDetail)
	}
	t.Logf("%s connected by %s in %v (echo %v): %s%s", name, r.Strategy, r.ConnectTime.Round(time.Millisecond), r.EchoTime, winner(r).Reason, eventLines(r.Events))
	return r
}

func winner(r connectReport) node.Event {
	for _, e := range r.Events {
		if e.State == node.Succeeded {
			return e
		}
	}
	return node.Event{}
}

func eventLines(events []node.Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("\n  " + e.Elapsed.String() + " " + e.Strategy + " " + string(e.State) + " " + e.Reason)
	}
	return b.String()
}

// TestDirectToMappedPeer: B sits behind an EIM NAT whose router maps its
// port over UPnP (and opens an IPv6 pinhole), so A reaches it directly;
// over IPv4 alone, at the mapped address.
func TestDirectToMappedPeer(t *testing.T) {
	l := natlab.New(t, natlab.Config{B: natlab.NAT{Unsolicited: natlab.Accept}, UPnPB: true, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	// Direct and reverse race here; every strategy races in the
	// connectivity matrix.
	mustConnect(t, l, l.A.Host, "a", b.addr, node.Direct, "", "--strategies", "direct,reverse")
	mustConnect(t, l, l.A.Host, "a-v4", v4Only(t, b.addr), node.Direct, l.B.WAN4.String()+":", "--strategies", "direct,reverse")

	// A clean shutdown removes the mapping from the router.
	b.stop(t)
	out, err := l.Exec(context.Background(), l.B.Router, "iptables-legacy", "-t", "nat", "-S", "MINIUPNPD")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "DNAT") {
		t.Errorf("the port mapping outlived the node:\n%s", out)
	}
}

// TestManInTheMiddleCLI: an address with B's key that leads to C fails,
// saying the key does not match.
func TestManInTheMiddleCLI(t *testing.T) {
	l := natlab.New(t, natlab.Config{B: natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF}, SecondHosts: true, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	c := nodeIn(t, l, l.B.Hosts[1].NS, "c")
	forged, err := addr.Parse(c.addr)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := addr.Parse(b.addr)
	forged.Key = real.Key
	text, _ := forged.Encode()
	r, err := connectIn(t, l, l.A.Host, "a", text, "--strategies", "direct")
	if err == nil || r.Echo {
		t.Fatalf("connected to an impostor: %+v", r)
	}
	if e := find(r.Events, node.Direct); e == nil || !strings.Contains(e.Reason, "different key") {
		t.Errorf("direct failed for another reason: %s", eventLines(r.Events))
	}
}

// v4Only strips the IPv6 endpoints from an address.
func v4Only(t testing.TB, text string) string {
	t.Helper()
	a, err := addr.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Interfaces {
		a.Interfaces[i].V6 = nil
	}
	out, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDirectToOpenPeer: B has no NAT at all.
func TestDirectToOpenPeer(t *testing.T) {
	l := natlab.New(t, natlab.Config{B: natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF}, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	mustConnect(t, l, l.A.Host, "a", b.addr, node.Direct, l.B.Host4.String(), "--strategies", "direct,reverse")
}

// TestReverseFromReachablePeer: A is behind a port-restricted NAT, B is
// reachable. A reaches B directly; B reaches A by asking it, over
// signaling, to connect back. With one of A's two brokers down, the
// reverse connect is within a second of the healthy one.
func TestReverseFromReachablePeer(t *testing.T) {
	l := natlab.New(t, natlab.Config{B: natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF}, TURN: true, MQTT: true, NTP: true})
	a := nodeIn(t, l, l.A.Host, "a")
	b := nodeIn(t, l, l.B.Host, "b")
	mustConnect(t, l, l.A.Host, "a2b", b.addr, node.Direct, l.B.Host4.String(), "--strategies", "direct,reverse")
	healthy := mustConnect(t, l, l.B.Host, "b2a", v4Only(t, a.addr), node.Reverse, "the peer connected", "--strategies", "reverse")
	if d := find(healthy.Events, node.Direct); d != nil {
		t.Errorf("direct was not asked for but ran: %+v", d)
	}
	// Racing both: direct to a port-restricted NAT cannot succeed (it is
	// cancelled once reverse wins, or has failed by then).
	full := mustConnect(t, l, l.B.Host, "b2a-race", v4Only(t, a.addr), node.Reverse, "the peer connected", "--strategies", "direct,reverse")
	if e := find(full.Events, node.Direct); e == nil || (e.State != node.Failed && e.State != node.Cancelled) {
		t.Errorf("direct to a port-restricted NAT: %+v", full.Events)
	}

	// A's address with its first broker replaced by one that is down.
	parsed, err := addr.Parse(a.addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Brokers) != 2 {
		t.Fatalf("A listens on %d brokers, want 2", len(parsed.Brokers))
	}
	parsed.Brokers[0].Addr = netip.AddrPortFrom(natlab.SilentIP, 1883)
	oneDown, _ := parsed.Encode()
	degraded := mustConnect(t, l, l.B.Host, "b2a-one-down", oneDown, node.Reverse, "the peer connected", "--strategies", "reverse")
	if slow := degraded.ConnectTime - healthy.ConnectTime; slow > time.Second {
		t.Errorf("with one broker down the reverse connect took %v, healthy %v", degraded.ConnectTime, healthy.ConnectTime)
	}
}

func find(events []node.Event, strategy string) *node.Event {
	var last *node.Event
	for i := range events {
		if events[i].Strategy == strategy {
			last = &events[i]
		}
	}
	return last
}

// TestSignalingReachedLate: A starts while both MQTT brokers are down, so
// its address lists none and no peer can signal it. When the brokers come
// up, A subscribes by itself, prints its grown address, and B connects to
// it at that address by reverse connect, which only signaling starts.
// (A node once stayed without signaling until it was started again.)
func TestSignalingReachedLate(t *testing.T) {
	l := natlab.New(t, natlab.Config{B: natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF}, TURN: true, MQTT: true, NTP: true})
	for _, b := range []int{1, 2} {
		if err := l.StopBroker(b); err != nil {
			t.Fatal(err)
		}
	}
	a := nodeInHome(t, l, l.A.Host, "a", t.TempDir())
	first, err := addr.Parse(a.addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Brokers) != 0 {
		t.Fatalf("A lists brokers %v while both are down", first.Brokers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, b := range []int{1, 2} {
		if err := l.StartBroker(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	up := time.Now()
	grown := a.nextAddress(t, 30*time.Second, func(a *addr.Address) bool { return len(a.Brokers) == 2 })
	t.Logf("A listed both brokers %v after they came up", time.Since(up).Round(time.Millisecond))
	text, err := grown.Encode()
	if err != nil {
		t.Fatal(err)
	}
	mustConnect(t, l, l.B.Host, "b2a", v4Only(t, text), node.Reverse, "the peer connected", "--strategies", "reverse")
}

// TestSameLAN: two computers behind the same router connect over their
// LAN addresses (IPv6 ones, or over IPv4 alone the private address).
func TestSameLAN(t *testing.T) {
	l := natlab.New(t, natlab.Config{SecondHosts: true, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.A.Hosts[1].NS, "a2")
	// On a shared LAN reverse works too and may win the race; direct is
	// the path under test.
	r := mustConnect(t, l, l.A.Host, "a", b.addr, node.Direct, "", "--strategies", "direct")
	if w := winner(r).Reason; !strings.Contains(w, l.A.Hosts[1].V4.String()+":") && !strings.Contains(w, l.A.Hosts[1].V6.String()) {
		t.Errorf("won through %q, not a LAN address", w)
	}
	mustConnect(t, l, l.A.Host, "a-v4", v4Only(t, b.addr), node.Direct, l.A.Hosts[1].V4.String()+":", "--strategies", "direct")
	// Racing both, either may win (reverse dials back over IPv6 too), over
	// the LAN.
	r = mustConnectAny(t, l, l.A.Host, "a-race", v4Only(t, b.addr))
	if w := winner(r).Reason; !strings.Contains(w, "10.0.1.") && !strings.Contains(w, "fd00:a::") {
		t.Errorf("won through %q, not the LAN", w)
	}
}

// mustConnectAny connects with every strategy and checks the echo.
func mustConnectAny(t *testing.T, l *natlab.Lab, ns, name, to string) connectReport {
	t.Helper()
	r, err := connectIn(t, l, ns, name, to)
	if err != nil || !r.Echo {
		t.Fatalf("connect: won by %q, echo %v, err %v\nevents: %s", r.Strategy, r.Echo, err, eventLines(r.Events))
	}
	return r
}

// TestIPv6ThroughFirewalls: both IPv4 paths are behind port-restricted
// NATs, but B's IPv6 firewall lets connections in: A connects over IPv6.
func TestIPv6ThroughFirewalls(t *testing.T) {
	l := natlab.New(t, natlab.Config{B: natlab.NAT{IPv6Open: true}, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	mustConnect(t, l, l.A.Host, "a", b.addr, node.Direct, "IPv6", "--strategies", "direct")
}

// TestAddrCommand prints a node's address from a lab host.
func TestAddrCommand(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true, MQTT: true, NTP: true})
	path, _ := l.WriteNodeConfig("addr", l.NodeConfig())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := p2pdIn(ctx, l, l.A.Host, t.TempDir(), "addr", "--config", path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	a, err := addr.Parse(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("p2pd addr printed %q: %v", out, err)
	}
	v4 := a.Interfaces[0].V4
	if v4 == nil || v4.External != l.A.WAN4 || v4.Internal != l.A.Host4 || !v4.NAT.Translated || len(a.Brokers) != 2 || len(a.Relays) != 1 {
		t.Errorf("address %+v", a)
	}
}
