package netif

import (
	"cmp"
	"net/netip"
	"slices"
)

// defaultRoute is one default route as the kernel's table holds it.
type defaultRoute struct {
	family  Family
	iface   string
	gateway netip.Addr
	metric  uint32
}

// sortDefaults orders routes by family, then by metric, so that the first
// route of a family per interface is the one the kernel prefers.
func sortDefaults(rs []defaultRoute) {
	slices.SortStableFunc(rs, func(a, b defaultRoute) int {
		if c := cmp.Compare(a.family, b.family); c != 0 {
			return c
		}
		return cmp.Compare(a.metric, b.metric)
	})
}
