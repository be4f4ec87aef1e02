package home

import (
	"net/netip"
	"testing"

	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
	"p2pd/netcore/portmap"
	"p2pd/netcore/stun"
)

func TestNATLevel(t *testing.T) {
	ext := netip.MustParseAddrPort("198.51.100.2:41234")
	nat := func(m, f stun.Behaviour, ports stun.Delta) *stun.Profile {
		return &stun.Profile{External: ext, NAT: true, Mapping: m, Filtering: f, UDPPorts: stun.PortPattern{Kind: ports}, UDP: true, TCP: true}
	}
	report := func(fams ...netcheck.Family) *netcheck.Report {
		return &netcheck.Report{Interfaces: []netcheck.Interface{{Name: "eth0", Default: true, Families: fams}}}
	}
	v4 := func(p *stun.Profile) netcheck.Family { return netcheck.Family{Family: netif.IPv4, Profile: p} }
	mapped := func(r *netcheck.Report, at netip.AddrPort) *netcheck.Report {
		r.PortMapping = &netcheck.PortMapping{Tried: true, Worked: true, Method: portmap.UPnP, External: at}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *netcheck.Report
		want Level
	}{
		{"no report yet", nil, Unknown},
		{"full cone", report(v4(nat(stun.EndpointIndependent, stun.EndpointIndependent, stun.DeltaEqual))), Good},
		{"open internet", report(v4(&stun.Profile{External: ext, Filtering: stun.EndpointIndependent, UDP: true, TCP: true})), Good},
		{"port restricted", report(v4(nat(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual))), Fair},
		{"port restricted, port mapped", mapped(report(v4(nat(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual))), netip.MustParseAddrPort("198.51.100.2:51000")), Good},
		{"port mapped behind another NAT", mapped(report(v4(nat(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual))), netip.MustParseAddrPort("100.64.0.2:51000")), Fair},
		{"symmetric, sequential ports", report(v4(nat(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaIndependent))), Fair},
		{"symmetric, random ports", report(v4(nat(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaRandom))), Poor},
		{"no STUN answer", report(v4(&stun.Profile{})), Poor},
		{"UDP blocked", report(v4(&stun.Profile{External: ext, NAT: true, TCP: true})), Poor},
		{"random NAT but IPv6 reachable", report(v4(nat(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaRandom)),
			netcheck.Family{Family: netif.IPv6, Inbound: true, Profile: &stun.Profile{UDP: true}}), Good},
		{"interfaces without findings", report(), Poor},
	} {
		if got := NATLevel(tc.r); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
