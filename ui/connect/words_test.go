package connect

import (
	"strings"
	"testing"
	"time"

	"p2pd/netcore/node"
)

// TestPlainReasons feeds the engine's own reasons (copied from
// netcore/node) through the plain-words table.
func TestPlainReasons(t *testing.T) {
	for _, tc := range []struct{ reason, want string }{
		{"this node reached no signaling broker", "This computer is not connected to a signaling server"},
		{"the peer's address lists no signaling broker", "Your friend's address names no signaling server"},
		{"connecting to itself", "This is your own address."},
		{"no TURN server is configured", "No relay server is set up."},
		{"the peer has no address of a family this node has", "only IPv4 or only IPv6"},
		{"this node cannot be reached either (its router filters and maps no port), so the peer could not connect back", "Your router lets nothing in either"},
		{"the peer's router maps ports at random and this node's filters per address and port (or the reverse): cannot predict", "cannot be aimed"},
		{"not needed: these NATs can be punched directly", "Not needed"},
		{"the routers map each destination to a new port (at random, or in sequence behind a strict filter): even birthday probing cannot meet", "even this cannot meet"},
		{"a router hands out ports in sequence, so one punch at a time: UDP punching goes", "One punch at a time"},
		{"another strategy won first", "Another way connected first."},
		{"the peer's address leads to a different key: peer presented a different key than its address carries", "a different computer"},
		{"the peer did not connect back: context deadline exceeded", "did not connect back"},
		{"the peer did not answer the punch offer within 5s", "did not answer"},
		{"sprayed 2000 probes at random ports of 198.51.100.2: none reached an open port", "did not meet"},
		{"the peer cannot punch: busy with another birthday probe", "could not take part"},
		{"TURN server 203.0.113.1:3478 refused the credentials of user \"x\" (wrong user name or password?): 401", "user name or password"},
		{"no punching port could be opened: this node has no address of the peer's families", "could not open a port"},
		{"198.51.100.2:41234 (external): i/o timeout", "No answer in time"},
		{"192.168.1.20:41234 (internal): connect: connection refused", "turned the connection down"},
		{"192.168.1.20:41234 (internal): connect: no route to host", "cannot be reached from this network"},
		{"context canceled", "Stopped."},
	} {
		got, mapped := plainReason(tc.reason)
		if !mapped || !strings.Contains(got, tc.want) {
			t.Errorf("%q: %q (mapped %v), want it to hold %q", tc.reason, got, mapped, tc.want)
		}
	}
	if got, mapped := plainReason("quantum decoherence"); mapped || got != "Quantum decoherence." {
		t.Errorf("an unknown reason: %q (mapped %v)", got, mapped)
	}
}

func TestEveryStrategyHasAName(t *testing.T) {
	for _, s := range node.Strategies {
		if _, ok := strategyNames[s]; !ok {
			t.Errorf("strategy %q has no plain name", s)
		}
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0.0 s",
		1234 * time.Millisecond:  "1.2 s",
		59940 * time.Millisecond: "59.9 s",
		65 * time.Second:         "1 min 5 s",
	} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %q, want %q", d, got, want)
		}
	}
}
