package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// punchPairs are router pairs that drop unsolicited traffic and map no
// port, so direct and reverse cannot work, while punching can: both
// mappings are predictable, or one side filters leniently.
var punchPairs = []struct{ a, b natlab.NAT }{
	{natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}, natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}},
	{natlab.NAT{Mapping: natlab.MapAPDMSequential, Filtering: natlab.FilterAPDF}, natlab.NAT{Mapping: natlab.MapAPDMSequential, Filtering: natlab.FilterAPDF}},
	{natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterADF}, natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}},
	{natlab.NAT{Mapping: natlab.MapADM, Filtering: natlab.FilterAPDF}, natlab.NAT{Mapping: natlab.MapEIMRandom, Filtering: natlab.FilterADF}},
}

// TestPunchTCP: TCP punching connects every punchable pair, and routers
// that reset unsolicited SYNs (one side primes with SYNs that die between
// the routers).
func TestPunchTCP(t *testing.T) {
	reject := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF, Unsolicited: natlab.Reject}
	testPunch(t, node.PunchTCP, append(punchPairs, struct{ a, b natlab.NAT }{reject, reject}))
}

// TestPunchUDP: UDP punching with QUIC on top connects the same pairs,
// and routers that reset unsolicited TCP (UDP gets an ICMP error, which
// closes nothing).
func TestPunchUDP(t *testing.T) {
	reject := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF, Unsolicited: natlab.Reject}
	testPunch(t, node.PunchUDP, append(punchPairs, struct{ a, b natlab.NAT }{reject, reject}))
}

func testPunch(t *testing.T, strategy string, pairs []struct{ a, b natlab.NAT }) {
	for _, c := range pairs {
		t.Run(c.a.String()+"_vs_"+c.b.String(), func(t *testing.T) {
			t.Parallel()
			l := natlab.New(t, natlab.Config{A: c.a, B: c.b, TURN: true, MQTT: true, NTP: true})
			b := nodeIn(t, l, l.B.Host, "b")
			mustConnect(t, l, l.A.Host, "a", v4Only(t, b.addr), strategy, l.B.WAN4.String()+":", "--strategies", "direct,reverse,"+strategy)
		})
	}
}

// TestRelayWhenNothingDirect: both routers map each destination to a
// random port and filter per address and port: no prediction can meet.
// The punches say so instead of trying, the relay starts at once and
// wins; with the relay turned off the connection fails, with reasons.
func TestRelayWhenNothingDirect(t *testing.T) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: hard, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	r := mustConnect(t, l, l.A.Host, "a", v4Only(t, b.addr), node.Relay, natlab.ServerIP1.String())
	for _, s := range []string{node.PunchTCP, node.PunchUDP} {
		if p := find(r.Events, s); p == nil || p.State != node.Skipped || p.Reason == "" {
			t.Errorf("%s should be skipped with its reason: %s", s, eventLines(r.Events))
		}
	}
	if !slices.ContainsFunc(r.Events, func(e node.Event) bool {
		return e.Strategy == node.Relay && e.State == node.Started && strings.Contains(e.Reason, "at once")
	}) {
		t.Errorf("the relay should start at once: %s", eventLines(r.Events))
	}
	r, err := connectIn(t, l, l.A.Host, "a-no-relay", v4Only(t, b.addr), "--no-relay", "--timeout", "8s")
	if err == nil {
		t.Fatalf("connected through two random symmetric NATs without a relay: %s", eventLines(r.Events))
	}
	if find(r.Events, node.Relay) != nil {
		t.Errorf("the relay ran although turned off: %s", eventLines(r.Events))
	}
}

// TestPunchClockSkew: B's only NTP server runs 2.5 s ahead, so the two
// nodes disagree on the meet instant by that much; the punch still
// meets, as the side that starts first keeps trying until the other does
// (TCP), or probes from the moment the endpoints are known (UDP).
func TestPunchClockSkew(t *testing.T) {
	for _, strategy := range []string{node.PunchTCP, node.PunchUDP} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			nat := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}
			l := natlab.New(t, natlab.Config{A: nat, B: nat, TURN: true, MQTT: true, NTP: true, NTPOffset: 2500 * time.Millisecond})
			b := nodeIn(t, l, l.B.Host, "b") // uses the offset server only
			cfg := l.NodeConfig()
			cfg.NTP = []string{natlab.ServerIP1.String()}
			path, err := l.WriteNodeConfig("a-true-clock", cfg)
			if err != nil {
				t.Fatal(err)
			}
			mustConnect(t, l, l.A.Host, "a", v4Only(t, b.addr), strategy, l.B.WAN4.String()+":", "--config", path, "--strategies", strategy)
		})
	}
}
