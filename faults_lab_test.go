package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// TestKeepaliveOutlivesNATTimeout: both routers forget idle UDP mappings
// after 15 s; a punched and a relayed session stay idle for 40 s and
// still echo, as their keepalives keep the mappings open.
func TestKeepaliveOutlivesNATTimeout(t *testing.T) {
	cases := []struct {
		name, strategy string
		nat            natlab.NAT
	}{
		{"punched", node.PunchUDP, natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF, UDPTimeout: 15 * time.Second}},
		{"relayed", node.Relay, natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF, UDPTimeout: 15 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := natlab.New(t, natlab.Config{A: c.nat, B: c.nat, TURN: true, MQTT: true, NTP: true})
			b := nodeIn(t, l, l.B.Host, "b")
			r := mustConnect(t, l, l.A.Host, "a", v4Only(t, b.addr), c.strategy, "", "--strategies", c.strategy, "--hold", "40s")
			if !r.Held {
				t.Errorf("the session did not survive 40 s idle: %s", r.Ended)
			}
		})
	}
}

// TestDyingSessionReported: the peer's process dies without a word (as
// on a power cut, no QUIC close reaches A); A's idle session notices
// within the keepalive's patience and says so, instead of hanging.
func TestDyingSessionReported(t *testing.T) {
	nat := natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: nat, B: nat, TURN: true, MQTT: true, NTP: true})
	b := nodeIn(t, l, l.B.Host, "b")
	go func() {
		// The connect is done well within this (it takes well under a
		// second here); then B vanishes.
		time.Sleep(5 * time.Second)
		b.cmd.Process.Signal(syscall.SIGKILL)
	}()
	start := time.Now()
	r, err := connectIn(t, l, l.A.Host, "a", v4Only(t, b.addr), "--strategies", node.PunchUDP, "--hold", "90s")
	b.cmd.Wait()
	took := time.Since(start)
	if err == nil || r.Held || !strings.Contains(r.Ended, "ended") {
		t.Fatalf("a dead peer went unnoticed: err %v, held %v, ended %q", err, r.Held, r.Ended)
	}
	if took > 60*time.Second {
		t.Errorf("noticing the dead peer took %v", took)
	}
	t.Logf("reported after %v: %s", took.Round(time.Second), r.Ended)
}

// TestLossyPaths: both routers drop 10% of packets each way; punching
// and relaying still connect and echo.
func TestLossyPaths(t *testing.T) {
	cases := []struct {
		name, want string
		nat        natlab.NAT
	}{
		{"punched", "punch", natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF, Loss: 10}},
		{"relayed", "relay", natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF, Loss: 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := natlab.New(t, natlab.Config{A: c.nat, B: c.nat, TURN: true, MQTT: true, NTP: true})
			b := nodeIn(t, l, l.B.Host, "b")
			r, err := connectIn(t, l, l.A.Host, "a", v4Only(t, b.addr))
			if err != nil || !r.Echo || kindOf(r.Strategy) != c.want {
				t.Fatalf("with 10%% loss: won by %q, echo %v, err %v; want a %s strategy: %s", r.Strategy, r.Echo, err, c.want, eventLines(r.Events))
			}
			t.Logf("connected by %s in %v with 10%% loss", r.Strategy, r.ConnectTime.Round(time.Millisecond))
		})
	}
}

// TestTURNDown: the TURN server does not answer. Where a direct path
// exists nothing changes; where none does, the connection fails and the
// relay's reason names the server.
func TestTURNDown(t *testing.T) {
	cases := []struct {
		name string
		nat  natlab.NAT
		ok   bool
	}{
		{"punchable", natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}, true},
		{"relay-only", natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := natlab.New(t, natlab.Config{A: c.nat, B: c.nat, TURN: true, MQTT: true, NTP: true})
			b := nodeIn(t, l, l.B.Host, "b")
			cfg := l.NodeConfig()
			dead := "turn:" + natlab.ServerIP1.String() + ":3999"
			cfg.TURN = []config.TURN{{URL: dead, User: "test", Pass: "test", Realm: "natlab"}}
			path, err := l.WriteNodeConfig("a-dead-turn", cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, err := connectIn(t, l, l.A.Host, "a", v4Only(t, b.addr), "--config", path, "--timeout", "10s")
			if c.ok {
				if err != nil || !r.Echo || kindOf(r.Strategy) != "punch" {
					t.Fatalf("won by %q, err %v; want punching: %s", r.Strategy, err, eventLines(r.Events))
				}
				return
			}
			rel := find(r.Events, node.Relay)
			if err == nil || rel == nil || rel.State != node.Failed || !strings.Contains(rel.Reason, ":3999") {
				t.Fatalf("want a failure naming the dead relay, got err %v: %s", err, eventLines(r.Events))
			}
			t.Logf("relay failed as it should: %s", rel.Reason)
		})
	}
}
