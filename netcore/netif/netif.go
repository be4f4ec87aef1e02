// Package netif enumerates network interfaces, their addresses and default
// routes, and groups each interface's addresses into routes: sets of local
// addresses that appear on the internet as the same external address.
//
// An interface is usable for LAN traffic when it is up, is not a loopback
// (unless asked for) and has an address; it is usable for WAN traffic when it
// also has a non-link-local address and holds a default route. IPv6
// link-local addresses always carry their interface as zone, so they can be
// passed straight to a socket.
package netif

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Family is an IP address family.
type Family uint8

// The address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Families lists both families in the order P2PD prefers them.
var Families = []Family{IPv4, IPv6}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// MarshalText encodes f as "IPv4" or "IPv6".
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText accepts "IPv4"/"ipv4"/"4" and the IPv6 equivalents.
func (f *Family) UnmarshalText(b []byte) error {
	switch string(b) {
	case "IPv4", "ipv4", "4":
		*f = IPv4
	case "IPv6", "ipv6", "6":
		*f = IPv6
	default:
		return fmt.Errorf("unknown address family %q (want IPv4 or IPv6)", b)
	}
	return nil
}

// Scope says how far an address reaches.
type Scope uint8

// Address scopes, from narrowest to widest.
const (
	ScopeLoopback  Scope = iota // only this host
	ScopeLinkLocal              // only this link; IPv6 ones need a zone
	ScopePrivate                // RFC 1918, shared (RFC 6598) or unique local (RFC 4193): behind a NAT or firewall
	ScopeGlobal                 // routable on the internet
)

// ScopeOf classifies a.
func ScopeOf(a netip.Addr) Scope {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return ScopeLoopback
	case a.IsLinkLocalUnicast():
		return ScopeLinkLocal
	case a.IsPrivate() || cgnat.Contains(a):
		return ScopePrivate
	}
	return ScopeGlobal
}

// cgnat is the carrier-grade NAT range (RFC 6598): not reachable from the internet.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// String names the scope: "loopback", "link-local", "private" or "global".
func (s Scope) String() string {
	switch s {
	case ScopeLoopback:
		return "loopback"
	case ScopeLinkLocal:
		return "link-local"
	case ScopePrivate:
		return "private"
	case ScopeGlobal:
		return "global"
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// MarshalText encodes s as its name.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Address is one address assigned to an interface.
type Address struct {
	// IP is the address; IPv6 link-local addresses carry the interface name as zone.
	IP netip.Addr
	// Bits is the length of the subnet prefix the address was assigned with.
	Bits int
}

// Prefix returns the subnet the address belongs to.
func (a Address) Prefix() netip.Prefix {
	p, _ := a.IP.WithZone("").Prefix(a.Bits)
	return p
}

// Family returns the address family of the address.
func (a Address) Family() Family { return FamilyOf(a.IP) }

// Scope classifies the address.
func (a Address) Scope() Scope { return ScopeOf(a.IP) }

// String formats the address in CIDR notation, zone included.
func (a Address) String() string { return fmt.Sprintf("%s/%d", a.IP, a.Bits) }

// MarshalJSON encodes the address with its scope, for `p2pd ifs --json`.
func (a Address) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		IP    netip.Addr `json:"ip"`
		Bits  int        `json:"bits"`
		Scope Scope      `json:"scope"`
	}{a.IP, a.Bits, a.Scope()})
}

// Interface is a network interface with its addresses, default routes and
// routes.
type Interface struct {
	Name         string    `json:"name"`
	Index        int       `json:"index"`
	MTU          int       `json:"mtu"`
	HardwareAddr string    `json:"mac,omitempty"`
	Up           bool      `json:"up"`
	Loopback     bool      `json:"loopback"`
	Addrs        []Address `json:"addrs"`
	// Default4 and Default6 say whether the interface holds the default
	// route of that family; Gateway4/6 are the next hops (zero when on-link).
	Default4 bool       `json:"default4"`
	Default6 bool       `json:"default6"`
	Gateway4 netip.Addr `json:"gateway4,omitzero"`
	Gateway6 netip.Addr `json:"gateway6,omitzero"`
	// LAN and WAN say whether the interface is usable for that kind of traffic.
	LAN bool `json:"lan"`
	WAN bool `json:"wan"`
	// Routes groups the addresses by the external address they appear as;
	// see [Routes].
	Routes []Route `json:"routes"`
}

// IsDefault reports whether the interface holds the default route of family f.
func (i *Interface) IsDefault(f Family) bool {
	if f == IPv4 {
		return i.Default4
	}
	return i.Default6
}

// AddrsOf returns the interface's addresses of family f.
func (i *Interface) AddrsOf(f Family) []Address {
	var out []Address
	for _, a := range i.Addrs {
		if a.Family() == f {
			out = append(out, a)
		}
	}
	return out
}

// Options tune [List].
type Options struct {
	// Loopback counts loopback interfaces as usable for LAN traffic
	// (tests and single-machine use).
	Loopback bool
}

// ErrNoDefault is returned by [Default] when no interface holds a default
// route of the requested family.
var ErrNoDefault = errors.New("no interface holds a default route")

// List returns every interface of this host (in the network namespace of the
// calling thread) with its addresses, default-route flags, LAN/WAN usability
// and routes. Routes carry external addresses only where the local address is
// itself global; [Routes] with a prober learns the others.
func List(opt Options) ([]Interface, error) {
	nics, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	defaults, err := defaultRoutes()
	if err != nil {
		return nil, fmt.Errorf("reading default routes: %w", err)
	}
	out := make([]Interface, 0, len(nics))
	for _, n := range nics {
		ifc, err := fromNet(n)
		if err != nil {
			return nil, err
		}
		for _, d := range defaults {
			if d.iface != ifc.Name {
				continue
			}
			if d.family == IPv4 && !ifc.Default4 {
				ifc.Default4, ifc.Gateway4 = true, d.gateway
			}
			if d.family == IPv6 && !ifc.Default6 {
				ifc.Default6, ifc.Gateway6 = true, d.gateway
			}
		}
		ifc.LAN, ifc.WAN = usable(&ifc, opt)
		ifc.Routes = Routes(context.Background(), &ifc, nil)
		out = append(out, ifc)
	}
	return out, nil
}

// Default returns the interface that holds the default route of family f.
func Default(f Family, opt Options) (Interface, error) {
	all, err := List(opt)
	if err != nil {
		return Interface{}, err
	}
	for _, i := range all {
		if i.IsDefault(f) {
			return i, nil
		}
	}
	return Interface{}, fmt.Errorf("%v: %w", f, ErrNoDefault)
}

// ByName returns the interface called name.
func ByName(name string, opt Options) (Interface, error) {
	all, err := List(opt)
	if err != nil {
		return Interface{}, err
	}
	for _, i := range all {
		if i.Name == name {
			return i, nil
		}
	}
	return Interface{}, fmt.Errorf("no network interface named %q", name)
}

func fromNet(n net.Interface) (Interface, error) {
	ifc := Interface{
		Name:         n.Name,
		Index:        n.Index,
		MTU:          n.MTU,
		HardwareAddr: n.HardwareAddr.String(),
		Up:           n.Flags&net.FlagUp != 0,
		Loopback:     n.Flags&net.FlagLoopback != 0,
	}
	addrs, err := n.Addrs()
	if err != nil {
		return ifc, fmt.Errorf("reading addresses of %s: %w", n.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.Is6() && ip.IsLinkLocalUnicast() {
			ip = ip.WithZone(n.Name)
		}
		bits, _ := ipn.Mask.Size()
		ifc.Addrs = append(ifc.Addrs, Address{IP: ip, Bits: bits})
	}
	sortAddrs(ifc.Addrs)
	return ifc, nil
}

// sortAddrs orders addresses IPv4 first, then by scope (widest first), then
// by address, so the best address of a kind comes first.
func sortAddrs(a []Address) {
	slices.SortStableFunc(a, func(a, b Address) int {
		if a.Family() != b.Family() {
			return int(a.Family()) - int(b.Family())
		}
		if a.Scope() != b.Scope() {
			return int(b.Scope()) - int(a.Scope())
		}
		return a.IP.Compare(b.IP)
	})
}

func usable(i *Interface, opt Options) (lan, wan bool) {
	if !i.Up || len(i.Addrs) == 0 || (i.Loopback && !opt.Loopback) {
		return false, false
	}
	if i.Loopback {
		return true, false
	}
	wide := slices.ContainsFunc(i.Addrs, func(a Address) bool { return a.Scope() >= ScopePrivate })
	return true, wide && (i.Default4 || i.Default6)
}
