package netcheck

import (
	"strings"

	"p2pd/netcore/netif"
	"p2pd/netcore/stun"
)

// verdict explains the report in a sentence or two for someone who does
// not know what a NAT is: what it means for connecting with friends.
func verdict(r *Report) string {
	v4, v6 := r.Primary(netif.IPv4), r.Primary(netif.IPv6)
	if v4 == nil && v6 == nil {
		return "This computer has no connection to the internet, so friends cannot reach it."
	}
	var parts []string
	if v4 != nil {
		parts = append(parts, familyVerdict(v4, r.PortMapping))
	}
	switch p := profileOf(v6); {
	case p == nil:
	case v4 == nil:
		parts = append(parts, familyVerdict(v6, nil))
	case v6.Inbound:
		parts = append(parts, "Over IPv6 your computer is reachable directly, so friends with IPv6 connect straight to you.")
	case !p.NAT && (p.Filtering == stun.AddressDependent || p.Filtering == stun.AddressPortDependent):
		parts = append(parts, "Over IPv6 a firewall lets in only replies, so friends with IPv6 connect to you by hole punching.")
	case p.UDP:
		parts = append(parts, "IPv6 works too.")
	}
	return strings.Join(parts, " ")
}

func profileOf(f *Family) *stun.Profile {
	if f == nil {
		return nil
	}
	return f.Profile
}

// Primary returns the findings for a family on the default interface (on
// the first interface that has the family when none is the default), or
// nil.
func (r *Report) Primary(fam netif.Family) *Family {
	var found *Family
	for i := range r.Interfaces {
		for j := range r.Interfaces[i].Families {
			f := &r.Interfaces[i].Families[j]
			if f.Family == fam && (found == nil || r.Interfaces[i].Default) {
				found = f
			}
		}
	}
	return found
}

func familyVerdict(f *Family, pm *PortMapping) string {
	p := f.Profile
	if p == nil || (!p.UDP && !p.TCP) {
		return "No STUN server answered: either you are offline or your network blocks traffic to the outside, so P2PD cannot connect you to friends from here."
	}
	var s string
	switch p.Type() {
	case stun.TypeUDPBlocked:
		return "Your network lets only TCP out (UDP is blocked): P2PD connects to friends over TCP only, which works when one of you can be reached or both routers are easy."
	case stun.TypeOpen:
		return "Your computer is directly on the internet with nothing blocking it: friends can connect to you straight away."
	case stun.TypeFirewall:
		s = "Your computer has its own public address, but a firewall lets in only replies to what you send: friends connect to you by hole punching (both of you sending at the same moment)."
	case stun.TypeFullCone:
		s = "Your router lets anyone reach you once you have sent something out (a \"full cone\" NAT): friends can connect to you directly."
	case stun.TypeRestricted:
		s = "Your router lets in only computers you have contacted first (a \"restricted cone\" NAT): friends connect to you directly by hole punching, which works with almost every other router."
	case stun.TypePortRestricted:
		s = "Your router lets in only replies from exactly where you sent (a \"port-restricted cone\" NAT), the most common kind: friends connect to you directly by hole punching, unless their router is of the hardest kind too, when P2PD relays through a TURN server."
	case stun.TypeSymmetric:
		if p.UDPPorts.Predictable() {
			s = "Your router gives every connection a new port, but in a predictable order (a \"symmetric\" NAT with sequential ports): hole punching still works by guessing the next port."
		} else {
			s = "Your router gives every connection a new random port (a \"symmetric\" NAT), the hardest kind: you connect directly to friends on easier networks, otherwise P2PD relays through a TURN server."
		}
	default:
		s = "P2PD could reach its STUN servers but could not tell how your router behaves, so it will try every way to connect and relay through a TURN server if none works."
	}
	switch {
	case pm == nil || !pm.Tried:
	case pm.Reaches(p):
		s += " Your router also opens ports on request (" + string(pm.Method) + "), so friends can reach you directly."
	case pm.Worked:
		s += " Your router opens ports on request, but it sits behind another NAT (it calls itself " + pm.External.Addr().String() +
			", the internet sees " + p.External.Addr().String() + "), so that does not help friends reach you."
	default:
		s += " Your router answers " + pm.Offered() + " but refused to open a port."
	}
	return s
}

// Reaches reports whether the mapping lets friends reach the computer
// whose NAT profile is p: it worked, on the router that faces the internet
// (one behind another NAT maps a port nobody outside sees). A nil mapping
// reaches nobody.
func (pm *PortMapping) Reaches(p *stun.Profile) bool {
	return pm != nil && p != nil && pm.Worked && pm.External.Addr() == p.External.Addr()
}

// Offered names the ways the router offers to open ports ("NAT-PMP and
// UPnP").
func (pm *PortMapping) Offered() string {
	var p []string
	if pm.Gateway.NATPMP {
		p = append(p, "NAT-PMP")
	}
	if pm.Gateway.UPnP {
		p = append(p, "UPnP")
	}
	return strings.Join(p, " and ")
}
