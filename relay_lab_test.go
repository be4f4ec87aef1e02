package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// TestRelayPaths: between two random symmetric NATs the relay takes B's
// TCP connection to A's relayed TCP address (RFC 6062) when it can; when
// B's router lets no TCP out to the relay's ports, B's own UDP socket to
// A's relayed address (QUIC, one relay). When B's router also lets UDP
// out only to the TURN server's and NTP's ports, as strict office
// firewalls do, B cannot reach A's relayed ports at all, and a
// relay-to-relay path connects: over TCP (B's TURN server connects to
// A's relayed TCP address), or, with TCP to the TURN server blocked too,
// over QUIC. Where B may send nothing but TCP to the TURN server (no UDP
// allocation at all), TCP relay to relay still connects.
func TestRelayPaths(t *testing.T) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: hard, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	to := v4Only(t, b.addr)
	mustConnect(t, l, l.A.Host, "a", to, node.Relay, "(TLS over TCP, one relay)")

	firewall := func(rule string) func() { return firewall(t, l, l.B.Router, rule) }
	firewall(`iifname "lan" oifname "wan" tcp dport 49152-49999 drop`)
	mustConnect(t, l, l.A.Host, "a-no-tcp", to, node.Relay, "(QUIC, one relay)")
	firewall(`iifname "lan" oifname "wan" udp dport != { 123, 3478, 3479 } drop`)
	mustConnect(t, l, l.A.Host, "a-no-udp", to, node.Relay, "(TLS over TCP, relay to relay)")
	undo := firewall(`iifname "lan" oifname "wan" tcp dport 3478 drop`)
	mustConnect(t, l, l.A.Host, "a-udp-turn", to, node.Relay, "(QUIC, relay to relay)")
	undo()
	firewall(`iifname "lan" oifname "wan" udp dport != 123 drop`)
	mustConnect(t, l, l.A.Host, "a-tcp-turn", to, node.Relay, "(TLS over TCP, relay to relay)")
}

// TestRelayOverTCPOnly: A's network lets out nothing but TCP to the TURN
// server and the broker (and NTP): A relays over TCP alone, offering only
// its relayed TCP address. B connects to it by TCP from its own address;
// when B's network is as strict, through its own TCP relay.
func TestRelayOverTCPOnly(t *testing.T) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: hard, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	to := v4Only(t, b.addr)
	strict := []string{
		`iifname "lan" oifname "wan" udp dport != 123 drop`,
		`iifname "lan" oifname "wan" tcp dport != { 1883, 3478 } drop`,
	}
	for _, rule := range strict {
		firewall(t, l, l.A.Router, rule)
	}
	mustConnect(t, l, l.A.Host, "a", to, node.Relay, "(TLS over TCP, one relay)")
	for _, rule := range strict {
		firewall(t, l, l.B.Router, rule)
	}
	mustConnect(t, l, l.A.Host, "a-both", to, node.Relay, "(TLS over TCP, relay to relay)")
}

// firewall inserts rule in router's forward chain and returns what
// deletes it.
func firewall(t *testing.T, l *natlab.Lab, router, rule string) (undo func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := l.Exec(ctx, router, "nft", "--echo", "--handle", "insert", "rule", "inet", "fw", "forward", rule)
	if err != nil {
		t.Fatalf("firewalling %s: %v %s", router, err, out)
	}
	var handle string
	if _, after, ok := strings.Cut(string(out), "# handle "); ok {
		handle = strings.Fields(after)[0]
	}
	return func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if out, err := l.Exec(ctx, router, "nft", "delete", "rule", "inet", "fw", "forward", "handle", handle); err != nil {
			t.Fatalf("removing %s's rule %q (handle %q): %v %s", router, rule, handle, err, out)
		}
	}
}

// TestRelayTCPWithStaleAddress: B's address names an external IP B no
// longer has (its network changed since it shared it), so A learns B's
// real one only from B's answer, and permits it while B already
// connects; the relay still takes the TCP path.
func TestRelayTCPWithStaleAddress(t *testing.T) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: hard, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	a, err := addr.Parse(v4Only(t, b.addr))
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range a.Interfaces {
		if ifc.V4 != nil && ifc.V4.External.IsValid() {
			ifc.V4.External = netip.MustParseAddr("192.0.2.99")
		}
	}
	stale, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustConnect(t, l, l.A.Host, fmt.Sprintf("a%d", i), stale, node.Relay, "(TLS over TCP, one relay)", "--strategies", node.Relay)
	}
}
