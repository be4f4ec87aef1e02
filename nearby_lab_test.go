package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
)

// TestNearbyWithoutServers: two computers behind one router and no MQTT
// broker at all: `p2pd nearby` on one finds the node running on the
// other from its LAN beacons, and connects to it over the LAN.
func TestNearbyWithoutServers(t *testing.T) {
	t.Parallel()
	l := natlab.New(t, natlab.Config{SecondHosts: true, TURN: true, NTP: true}) // no MQTT
	a := nodeIn(t, l, l.A.Host, "a")
	path, err := l.WriteNodeConfig("a2", l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := p2pdIn(ctx, l, l.A.Hosts[1].NS, t.TempDir(), "nearby", "--json", "--wait", "5s", "--config", path)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("nearby: %v\n%s", err, errOut.String())
	}
	var found []nearbyPeer
	if err := json.Unmarshal(out.Bytes(), &found); err != nil {
		t.Fatalf("nearby printed %q: %v", out.String(), err)
	}
	var addr string
	for _, p := range found {
		if p.Address == a.addr {
			addr = p.Address
		}
	}
	if addr == "" {
		t.Fatalf("the node next door was not found: %+v", found)
	}
	mustConnect(t, l, l.A.Hosts[1].NS, "a2", v4Only(t, addr), node.Direct, "LAN", "--strategies", "direct")
}
