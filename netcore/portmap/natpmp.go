package portmap

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// pmpExternal asks the router for its external address over NAT-PMP.
func pmpExternal(ctx context.Context, gw netip.Addr) (netip.Addr, error) {
	c := natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), budget(ctx, probeTimeout))
	r, err := c.GetExternalAddress()
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom4(r.ExternalIPAddress), nil
}

// pmpMapping is a NAT-PMP port mapping.
type pmpMapping struct {
	gw    netip.Addr
	proto string
	local netip.AddrPort

	lease time.Duration
	leaseEnd

	mu  sync.Mutex
	ext netip.AddrPort
}

func pmpMap(ctx context.Context, gw netip.Addr, local netip.AddrPort, proto string, lease time.Duration) (*pmpMapping, error) {
	ext, err := pmpExternal(ctx, gw)
	if err != nil {
		return nil, err
	}
	m := &pmpMapping{gw: gw, proto: proto, local: local, ext: netip.AddrPortFrom(ext, local.Port()), lease: lease}
	return m, m.Renew(ctx)
}

func (m *pmpMapping) Method() Method        { return NATPMP }
func (m *pmpMapping) Proto() string         { return m.proto }
func (m *pmpMapping) Local() netip.AddrPort { return m.local }

func (m *pmpMapping) External() netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ext
}

// Renew asks for the mapping again, for the port the router gave last time.
func (m *pmpMapping) Renew(ctx context.Context) error {
	m.mu.Lock()
	want := m.ext.Port()
	m.mu.Unlock()
	c := natpmp.NewClientWithTimeout(net.IP(m.gw.AsSlice()), budget(ctx, requestTimeout))
	r, err := c.AddPortMapping(m.proto, int(m.local.Port()), int(want), int(m.lease.Seconds()))
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.ext = netip.AddrPortFrom(m.ext.Addr(), r.MappedExternalPort)
	m.mu.Unlock()
	m.set(time.Now().Add(time.Duration(r.PortMappingLifetimeInSeconds) * time.Second))
	return nil
}

// Release removes the mapping: a request with lifetime 0 (RFC 6886 §3.4).
func (m *pmpMapping) Release(ctx context.Context) error {
	c := natpmp.NewClientWithTimeout(net.IP(m.gw.AsSlice()), budget(ctx, requestTimeout))
	_, err := c.AddPortMapping(m.proto, int(m.local.Port()), 0, 0)
	return err
}
