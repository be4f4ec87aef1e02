package main

import (
	"context"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// TestRelayPaths: between two random symmetric NATs the relay takes the
// one-sided path (B's own socket to A's relayed address) when it can; when
// B's router lets UDP out only to the TURN server's and NTP's ports, as
// strict office firewalls do, B cannot reach A's relayed port, and the
// relay-to-relay path connects instead.
func TestRelayPaths(t *testing.T) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: hard, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	to := v4Only(t, b.addr)
	mustConnect(t, l, l.A.Host, "a", to, node.Relay, "(QUIC, one relay)")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if out, err := l.Exec(ctx, l.B.Router, "nft", "insert", "rule", "inet", "fw", "forward",
		`iifname "lan" oifname "wan" udp dport != { 123, 3478, 3479 } drop`); err != nil {
		t.Fatalf("firewalling B: %v %s", err, out)
	}
	mustConnect(t, l, l.A.Host, "a-again", to, node.Relay, "(QUIC, relay to relay)")
}
