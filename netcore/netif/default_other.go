//go:build !linux

package netif

import (
	"net"
	"net/netip"
)

// defaultRoutes asks the system which local address it would use to reach a
// far-away address: connecting a UDP socket picks a route without sending
// anything. The interface holding that address holds the default route.
func defaultRoutes() ([]defaultRoute, error) {
	var out []defaultRoute
	for _, probe := range []struct {
		f    Family
		addr string
	}{{IPv4, "192.0.2.1:9"}, {IPv6, "[2001:db8::1]:9"}} { // documentation addresses (RFC 5737, RFC 3849)
		c, err := net.Dial("udp", probe.addr)
		if err != nil {
			continue // no route for this family
		}
		local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
		nics, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, n := range nics {
			addrs, _ := n.Addrs()
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == local {
						out = append(out, defaultRoute{family: probe.f, iface: n.Name})
					}
				}
			}
		}
	}
	return out, nil
}
