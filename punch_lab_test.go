package main

import (
	"time"

	"testing"

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

// TestPunchTCP: TCP punching connects every punchable pair.
func TestPunchTCP(t *testing.T) { testPunch(t, node.PunchTCP, punchPairs) }

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

// TestPunchTCPSkipsUnpredictable: both routers map each destination to a
// random port and filter per address and port: no prediction can meet,
// and the strategy says so instead of trying.
func TestPunchTCPSkipsUnpredictable(t *testing.T) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: hard, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	r, err := connectIn(t, l, l.A.Host, "a", v4Only(t, b.addr), "--timeout", "8s")
	if err == nil {
		t.Fatalf("connected through two random symmetric NATs without a relay: %s", eventLines(r.Events))
	}
	p := find(r.Events, node.PunchTCP)
	if p == nil || p.State != node.Skipped || p.Reason == "" {
		t.Fatalf("punch-tcp should be skipped with its reason: %s", eventLines(r.Events))
	}
	t.Logf("punch-tcp skipped: %s", p.Reason)
}

// TestPunchTCPClockSkew: B's only NTP server runs 2.5 s ahead, so the two
// nodes disagree on the meet instant by that much; the punch still
// meets, as the side that starts first keeps trying until the other does.
func TestPunchTCPClockSkew(t *testing.T) {
	nat := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: nat, B: nat, TURN: true, MQTT: true, NTP: true, NTPOffset: 2500 * time.Millisecond})
	b := nodeIn(t, l, l.B.Host, "b") // uses the offset server only
	cfg := l.NodeConfig()
	cfg.NTP = []string{natlab.ServerIP1.String()}
	path, err := l.WriteNodeConfig("a-true-clock", cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustConnect(t, l, l.A.Host, "a", v4Only(t, b.addr), node.PunchTCP, l.B.WAN4.String()+":", "--config", path)
}
