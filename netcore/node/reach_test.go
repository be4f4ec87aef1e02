package node

import (
	"fmt"
	"net/netip"
	"testing"

	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
	"p2pd/netcore/netif"
	"p2pd/netcore/signal"
	"p2pd/netcore/stun"
)

// reachKinds are the NAT lab's router presets (natlab.Matrix) as
// discovery profiles them, plus a router discovery could not make out.
var reachKinds = map[string]*stun.Profile{
	"open":                 profileOf(false, stun.EndpointIndependent, stun.EndpointIndependent, stun.DeltaEqual),
	"firewall":             profileOf(false, stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual),
	"EIM+EIF":              profileOf(true, stun.EndpointIndependent, stun.EndpointIndependent, stun.DeltaEqual),
	"EIM+ADF":              profileOf(true, stun.EndpointIndependent, stun.AddressDependent, stun.DeltaEqual),
	"EIM+APDF":             profileOf(true, stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual),
	"EIM-random+APDF":      profileOf(true, stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaRandom),
	"ADM+EIF":              profileOf(true, stun.AddressDependent, stun.EndpointIndependent, stun.DeltaRandom),
	"ADM+ADF":              profileOf(true, stun.AddressDependent, stun.AddressDependent, stun.DeltaRandom),
	"ADM+APDF":             profileOf(true, stun.AddressDependent, stun.AddressPortDependent, stun.DeltaRandom),
	"APDM+EIF":             profileOf(true, stun.AddressPortDependent, stun.EndpointIndependent, stun.DeltaRandom),
	"APDM+ADF":             profileOf(true, stun.AddressPortDependent, stun.AddressDependent, stun.DeltaRandom),
	"APDM+APDF":            profileOf(true, stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaRandom),
	"APDM-sequential+ADF":  profileOf(true, stun.AddressPortDependent, stun.AddressDependent, stun.DeltaIndependent),
	"APDM-sequential+APDF": profileOf(true, stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaIndependent),
	"unknown":              profileOf(true, stun.Unknown, stun.Unknown, stun.DeltaUnknown),
}

func profileOf(nat bool, m, f stun.Behaviour, ports stun.Delta) *stun.Profile {
	pp := stun.PortPattern{Kind: ports}
	if ports == stun.DeltaIndependent {
		pp.Step = 1
	}
	return &stun.Profile{NAT: nat, Mapping: m, Filtering: f, TCPMapping: m, UDPPorts: pp, TCPPorts: pp, UDP: true, TCP: true}
}

// TestReachTable names the best path for pairs of the lab's routers, as
// the connectivity matrix (matrix_lab_test.go) expects them to connect.
func TestReachTable(t *testing.T) {
	for _, tc := range []struct {
		me, friend string
		want       Path
	}{
		{"open", "APDM+APDF", PathDirect},
		{"EIM+EIF", "APDM+APDF", PathDirect},
		{"APDM+APDF", "EIM+EIF", PathDirect},
		{"firewall", "firewall", PathPunch},
		{"EIM+ADF", "EIM+APDF", PathPunch},
		{"EIM+APDF", "EIM+APDF", PathPunch},
		{"EIM+APDF", "APDM-sequential+APDF", PathPunch},
		{"EIM+ADF", "APDM+APDF", PathPunch},
		{"EIM+APDF", "APDM+APDF", PathBirthday},
		{"EIM-random+APDF", "ADM+APDF", PathBirthday},
		{"APDM-sequential+APDF", "ADM+ADF", PathBirthday},
		{"APDM-sequential+APDF", "APDM+APDF", PathRelay},
		{"APDM+APDF", "APDM+APDF", PathRelay},
		{"ADM+EIF", "ADM+EIF", PathRelay},
		{"unknown", "unknown", PathRelay},
	} {
		me, friend := natProfile(reachKinds[tc.me]), natProfile(reachKinds[tc.friend])
		if got := Reach(me, friend); got != tc.want {
			t.Errorf("Reach(%s, %s) = %v, want %v", tc.me, tc.friend, got, tc.want)
		}
	}
}

// TestReachAgreesWithPlanning checks Reach against the planning Connect
// does, for every pair of kinds: the reachable side is dialed (Direct or
// Reverse), else punching starts, else birthday probing, else only the
// relay.
func TestReachAgreesWithPlanning(t *testing.T) {
	for nameA, a := range reachKinds {
		for nameB, b := range reachKinds {
			me, friend := planNode(t, a, 1), planNode(t, b, 2)
			to, back := addressOf(friend, b), addressOf(me, a)
			want := PathRelay
			switch {
			case me.reachableBy(to) || friend.reachableBy(back):
				want = PathDirect
			case me.planPunch(to) == "":
				want = PathPunch
			case me.planBirthday(to) == "":
				want = PathBirthday
			}
			if (me.planPunch(to) == "") != (friend.planPunch(back) == "") {
				t.Errorf("%s, %s: punching is planned one way only", nameA, nameB)
			}
			if got := Reach(NATProfileOf(a, false), NATProfileOf(b, false)); got != want {
				t.Errorf("Reach(%s, %s) = %v; Connect plans %v", nameA, nameB, got, want)
			}
		}
	}
}

func TestReachWithMappedPort(t *testing.T) {
	hard := reachKinds["APDM+APDF"]
	n := planNode(t, hard, 1)
	n.endpoints[0].mapped = netip.MustParseAddrPort("198.51.100.1:41000")
	friend := planNode(t, hard, 2)
	if !n.reachableBy(addressOf(friend, hard)) {
		t.Fatal("a node with a mapped port is not reachable")
	}
	if got := Reach(NATProfileOf(hard, true), NATProfileOf(hard, false)); got != PathDirect {
		t.Errorf("with a mapped port: %v, want direct", got)
	}
}

// planNode is a node that has not started: enough to plan strategies.
func planNode(t *testing.T, p *stun.Profile, host byte) *Node {
	t.Helper()
	id, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	local := netip.AddrFrom4([4]byte{192, 168, host, 2})
	return &Node{id: id, sig: &signal.Client{}, brokers: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.1:1883")}, endpoints: []endpoint{{
		ifc: "eth0", family: netif.IPv4, local: netip.AddrPortFrom(local, 4000), profile: p,
	}}}
}

// addressOf is the address n would publish behind its own router.
func addressOf(n *Node, p *stun.Profile) *addr.Address {
	ep := n.endpoints[0]
	ext := netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", ep.local.Addr().As4()[2]))
	return &addr.Address{
		Key:        n.id.Public,
		Brokers:    []addr.Server{{Addr: netip.MustParseAddrPort("203.0.113.1:1883")}},
		Interfaces: []addr.Interface{{V4: &addr.Endpoint{Internal: ep.local.Addr(), External: ext, Port: ep.local.Port(), NAT: natProfile(p)}}},
	}
}
