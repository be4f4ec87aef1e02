package netif

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Route is a group of an interface's local addresses of one family that
// appear on the internet as the same external address(es). Binding a socket
// to any NIC address of a route makes its traffic leave through that route.
//
// As in the seed library: all private IPv4 addresses of an interface form one
// route; a global address forms its own route when it is its own external
// address; every global IPv6 address is a route of its own and every IPv6
// route also carries the interface's link-local addresses.
type Route struct {
	Family    Family `json:"family"`
	Interface string `json:"interface"`
	// NIC holds the local addresses in this route, best first.
	NIC []netip.Addr `json:"nic"`
	// External holds the addresses the route appears as on the internet;
	// empty while unknown (before a STUN probe).
	External []netip.Addr `json:"external"`
	// LinkLocal holds IPv6 link-local addresses (with zone) usable on the LAN.
	LinkLocal []netip.Addr `json:"link_local,omitempty"`
}

// Bind returns a local address for a socket that should use this route:
// the route's first NIC address (or, for a route of only link-local
// addresses, its first link-local address) with the given port; port 0
// lets the system pick one.
func (r Route) Bind(port uint16) (netip.AddrPort, error) {
	switch {
	case len(r.NIC) > 0:
		return netip.AddrPortFrom(r.NIC[0], port), nil
	case len(r.LinkLocal) > 0:
		return netip.AddrPortFrom(r.LinkLocal[0], port), nil
	}
	return netip.AddrPort{}, fmt.Errorf("route on %s (%v) has no address to bind", r.Interface, r.Family)
}

// BindLinkLocal returns a link-local address (with zone) of the route for a
// socket that should only talk on the local link.
func (r Route) BindLinkLocal(port uint16) (netip.AddrPort, error) {
	if len(r.LinkLocal) == 0 {
		return netip.AddrPort{}, fmt.Errorf("route on %s (%v) has no link-local address", r.Interface, r.Family)
	}
	return netip.AddrPortFrom(r.LinkLocal[0], port), nil
}

// Prober learns the external address that traffic from local appears to come
// from (a STUN binding request sent from local, in netcore/stun).
type Prober func(ctx context.Context, local netip.Addr) (netip.Addr, error)

// Routes groups the interface's addresses into routes, IPv4 routes first.
//
// With a nil prober nothing is sent: global addresses are taken as their own
// external address and private ones are left with an unknown external
// address. With a prober, the first address of each candidate group is
// probed (in parallel) and addresses that turn out to share an external
// address are merged into one route; a failed probe leaves that group's
// external address unknown.
func Routes(ctx context.Context, ifc *Interface, probe Prober) []Route {
	var routes []Route
	for _, f := range Families {
		routes = append(routes, familyRoutes(ctx, ifc, f, probe)...)
	}
	return routes
}

// candidate is a set of NIC addresses that is probed through its first address.
type candidate struct {
	nic []netip.Addr
	ext netip.Addr // learned or assumed external address; zero if unknown
}

func familyRoutes(ctx context.Context, ifc *Interface, f Family, probe Prober) []Route {
	var (
		private, linkLocal []netip.Addr
		cands              []candidate
	)
	for _, a := range ifc.AddrsOf(f) {
		switch a.Scope() {
		case ScopeLinkLocal:
			if f == IPv6 {
				linkLocal = append(linkLocal, a.IP)
			} else {
				private = append(private, a.IP) // 169.254/16: LAN only, behind the same NAT if any
			}
		case ScopeLoopback:
			// Loopback only ever reaches this host, so it is its own "external" address.
			cands = append(cands, candidate{nic: []netip.Addr{a.IP}, ext: a.IP})
		case ScopePrivate:
			if f == IPv4 {
				private = append(private, a.IP)
			} else {
				cands = append(cands, candidate{nic: []netip.Addr{a.IP}}) // ULA: routed or translated, only a probe tells
			}
		case ScopeGlobal:
			cands = append(cands, candidate{nic: []netip.Addr{a.IP}, ext: a.IP})
		}
	}
	if len(private) > 0 {
		// Private addresses sort before IPv4 link-local ones (see fromNet), so the
		// probe goes out from an address that can reach the internet.
		cands = append([]candidate{{nic: private}}, cands...)
	}
	if probe != nil {
		probeAll(ctx, cands, probe)
	}

	var routes []Route
	for _, c := range cands {
		if c.ext.IsValid() {
			if i := slices.IndexFunc(routes, func(r Route) bool { return slices.Contains(r.External, c.ext) }); i >= 0 {
				routes[i].NIC = append(routes[i].NIC, c.nic...)
				continue
			}
		}
		r := Route{Family: f, Interface: ifc.Name, NIC: c.nic, External: []netip.Addr{}}
		if c.ext.IsValid() {
			r.External = append(r.External, c.ext)
		}
		routes = append(routes, r)
	}
	if f == IPv6 {
		if len(routes) == 0 && len(linkLocal) > 0 {
			routes = append(routes, Route{Family: f, Interface: ifc.Name, External: []netip.Addr{}})
		}
		for i := range routes {
			routes[i].LinkLocal = linkLocal
		}
	}
	return routes
}

// probeAll replaces each candidate's external address with what probe learns
// from its first NIC address; a failed probe leaves it unknown.
func probeAll(ctx context.Context, cands []candidate, probe Prober) {
	var wg sync.WaitGroup
	for i := range cands {
		c := &cands[i]
		if ScopeOf(c.nic[0]) == ScopeLoopback {
			continue
		}
		wg.Go(func() {
			ext, err := probe(ctx, c.nic[0])
			if err != nil {
				c.ext = netip.Addr{}
				return
			}
			c.ext = ext.Unmap()
		})
	}
	wg.Wait()
}
