package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/lan"
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
	p, ok := findNearby(nearbyIn(t, l, l.A.Hosts[1].NS, "a2"), a.addr)
	if !ok {
		t.Fatal("the node next door was not found")
	}
	mustConnect(t, l, l.A.Hosts[1].NS, "a2", v4Only(t, p.Address), node.Direct, "LAN", "--strategies", "direct")
}

// TestNearbyOverIPv6: the LAN's hosts drop every IPv4 beacon, in and out,
// so `p2pd nearby` finds the node next door from its IPv6 link-local
// beacons alone, and says where they came from.
func TestNearbyOverIPv6(t *testing.T) {
	t.Parallel()
	l := natlab.New(t, natlab.Config{SecondHosts: true, TURN: true, NTP: true}) // no MQTT
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rules := filepath.Join(t.TempDir(), "nobeacons.nft")
	drop := fmt.Sprintf("policy accept; udp dport %d counter drop;", lan.Port)
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(`table ip nobeacons {
	chain in { type filter hook input priority filter; %s }
	chain out { type filter hook output priority filter; %s }
}
`, drop, drop)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range l.A.Hosts {
		if out, err := l.Exec(ctx, h.NS, "nft", "-f", rules); err != nil {
			t.Fatalf("blocking IPv4 beacons in %s: %v: %s", h.NS, err, out)
		}
	}
	a := nodeIn(t, l, l.A.Host, "a")
	p, ok := findNearby(nearbyIn(t, l, l.A.Hosts[1].NS, "a2"), a.addr)
	if !ok {
		t.Fatal("the node next door was not found over IPv6")
	}
	from, err := netip.ParseAddr(p.From)
	if err != nil || !from.Is6() || from.Is4In6() {
		t.Fatalf("found from %q, want an IPv6 address (%v)", p.From, err)
	}
	// The beacon leaves by the link-local group, so its source is A's
	// link-local address, which is only usable with the interface it was
	// heard on.
	out, err := l.Exec(ctx, l.A.Host, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), " "+from.WithZone("").String()+"/") || from.Zone() != "eth0" {
		t.Errorf("found from %v, want A's link-local address with zone eth0: %s", from, out)
	}
	// The IPv4 beacons were sent and dropped: IPv6 alone carried the node.
	out, err = l.Exec(ctx, l.A.Host, "nft", "list", "chain", "ip", "nobeacons", "out")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`packets (\d+)`).FindSubmatch(out); m == nil || string(m[1]) == "0" {
		t.Errorf("the node sent no IPv4 beacon to drop:\n%s", out)
	}
	t.Logf("found %s from %v", p.ID, from)
}

// nearbyIn runs `p2pd nearby --json` in namespace ns with the lab's
// servers and returns what it found.
func nearbyIn(t *testing.T, l *natlab.Lab, ns, name string) []nearbyPeer {
	t.Helper()
	path, err := l.WriteNodeConfig(name, l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := p2pdIn(ctx, l, ns, t.TempDir(), "nearby", "--json", "--wait", "5s", "--config", path)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("nearby: %v\n%s", err, errOut.String())
	}
	var found []nearbyPeer
	if err := json.Unmarshal(out.Bytes(), &found); err != nil {
		t.Fatalf("nearby printed %q: %v", out.String(), err)
	}
	t.Logf("nearby in %s found %+v", ns, found)
	return found
}

// findNearby returns the peer in found with address text addr.
func findNearby(found []nearbyPeer, addr string) (nearbyPeer, bool) {
	for _, p := range found {
		if p.Address == addr {
			return p, true
		}
	}
	return nearbyPeer{}, false
}
