package pipe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// addrFamily restricts name resolution: 0 any, else the family of a bound
// local address.
type addrFamily uint8

const (
	familyAny addrFamily = iota
	family4
	family6
)

func familyOf(a netip.Addr) addrFamily {
	if a.Unmap().Is4() {
		return family4
	}
	return family6
}

func unspecified(f addrFamily) netip.Addr {
	if f == family6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// resolve turns host (an IP literal, zone allowed, or a name) into
// addresses of family f, within the pipe's DNS timeout.
func resolve(ctx context.Context, o *options, host string, f addrFamily) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if f != familyAny && familyOf(ip) != f {
			return nil, fmt.Errorf("destination %s is not of the local address's family", host)
		}
		return []netip.Addr{ip}, nil
	}
	network := map[addrFamily]string{familyAny: "ip", family4: "ip4", family6: "ip6"}[f]
	lctx, cancel := context.WithTimeout(ctx, o.dnsTimeout)
	defer cancel()
	ips, err := o.resolver.LookupNetIP(lctx, network, host)
	if err != nil {
		if ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("cannot resolve %q: no DNS answer within %v: %w", host, o.dnsTimeout, context.DeadlineExceeded)
		}
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, fmt.Errorf("cannot resolve %q: no such host: %w", host, err)
		}
		return nil, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	out := ips[:0]
	for _, ip := range ips {
		ip = ip.Unmap()
		if f == familyAny || familyOf(ip) == f {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cannot resolve %q: no address of the local address's family", host)
	}
	return out, nil
}
