package home

import (
	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
	"p2pd/netcore/stun"
)

// Level grades a status line for its coloured mark.
type Level int

// Levels, from unknown to worst.
const (
	// Unknown is grey: not known yet, or nothing to judge.
	Unknown Level = iota
	// Good is green: e.g. friends can usually reach you directly.
	Good
	// Fair is amber: it works, with effort (e.g. hole punching).
	Fair
	// Poor is red: e.g. only a relay server can connect you.
	Poor
)

// NATLevel grades a netcheck report's verdict: Good when friends can
// usually connect straight to this computer (no NAT, a full-cone NAT, a
// router that mapped a port, or IPv6 reachable from outside), Fair when
// hole punching is needed, Poor when only a relay can work or nothing
// answered. The best address family of the default interface counts, as
// in the verdict.
func NATLevel(r *netcheck.Report) Level {
	if r == nil {
		return Unknown
	}
	best := Unknown
	for _, fam := range []netif.Family{netif.IPv4, netif.IPv6} {
		f := r.Primary(fam)
		if f == nil {
			continue
		}
		l := familyLevel(f, r.PortMapping, fam == netif.IPv4)
		if best == Unknown || l < best {
			best = l
		}
	}
	if best == Unknown && len(r.Interfaces) > 0 {
		return Poor // interfaces, but no family got anywhere
	}
	return best
}

func familyLevel(f *netcheck.Family, pm *netcheck.PortMapping, v4 bool) Level {
	p := f.Profile
	if f.Inbound {
		return Good
	}
	if p == nil || (!p.UDP && !p.TCP) {
		return Poor
	}
	// A mapping helps only when the router it is on faces the internet.
	if v4 && pm.Reaches(p) {
		return Good
	}
	switch p.Type() {
	case stun.TypeOpen, stun.TypeFullCone:
		return Good
	case stun.TypeFirewall, stun.TypeRestricted, stun.TypePortRestricted:
		return Fair
	case stun.TypeSymmetric:
		if p.UDPPorts.Predictable() {
			return Fair
		}
		return Poor
	case stun.TypeUDPBlocked:
		return Poor
	}
	return Fair // behaviour unclear: every strategy is tried
}

// String names the level's colour.
func (l Level) String() string {
	switch l {
	case Good:
		return "green"
	case Fair:
		return "amber"
	case Poor:
		return "red"
	}
	return "grey"
}
