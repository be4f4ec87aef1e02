package portmap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// ssdpPort is where UPnP devices answer M-SEARCH (UPnP Device Architecture §1.3).
const ssdpPort = 1900

// igdSearchTarget asks for Internet Gateway Devices of any version (v2
// devices answer v1 searches too).
const igdSearchTarget = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"

// ssdpSearch asks the router for its IGD's description URL. The search goes
// to the router itself and to the SSDP multicast group; the first answer
// ends it (goupnp's search always waits out its timeout).
func ssdpSearch(ctx context.Context, gw netip.Addr) (*url.URL, error) {
	network, group := "udp4", netip.MustParseAddr("239.255.255.250")
	if gw.Is6() {
		// Over IPv6 the router itself is asked (link-scope multicast needs a
		// zone); its answer gives an IPv6 control URL, so requests come from
		// this host's IPv6 address, as pinholes for it require.
		network, group = "udp6", gw
	}
	c, err := net.ListenUDP(network, &net.UDPAddr{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	req := fmt.Sprintf("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:%d\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: %s\r\n\r\n", ssdpPort, igdSearchTarget)
	for _, dest := range []netip.Addr{gw, group} {
		c.WriteToUDPAddrPort([]byte(req), netip.AddrPortFrom(dest, ssdpPort))
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, fmt.Errorf("no UPnP gateway answered: %w", err)
		}
		if from.Addr().Unmap().WithZone("") != gw.WithZone("") {
			continue // another device on the LAN: only the gateway maps ports
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:n])), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			continue // not an SSDP answer
		}
		resp.Body.Close()
		if !strings.Contains(resp.Header.Get("ST"), "InternetGatewayDevice") {
			continue
		}
		loc, err := url.Parse(resp.Header.Get("LOCATION"))
		if err != nil || loc.Host == "" {
			continue
		}
		return loc, nil
	}
}

// igdConn is what P2PD uses of a WANIPConnection (v1 or v2) or
// WANPPPConnection: they share these actions.
type igdConn interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string, internalPort uint16, internalClient string, enabled bool, description string, leaseDuration uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
}

// igd is a discovered Internet Gateway Device.
type igd struct {
	url      string
	conn     igdConn
	pinholes *internetgateway2.WANIPv6FirewallControl1
}

func discoverIGD(ctx context.Context, gw netip.Addr) (*igd, error) {
	loc, err := ssdpSearch(ctx, gw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	root, err := goupnp.DeviceByURLCtx(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("reading the UPnP gateway's description at %s: %w", loc, err)
	}
	d := &igd{url: loc.String()}
	if c, _ := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc); len(c) > 0 {
		d.conn = c[0]
	} else if c, _ := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc); len(c) > 0 {
		d.conn = c[0]
	} else if c, _ := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc); len(c) > 0 {
		d.conn = c[0]
	}
	if c, _ := internetgateway2.NewWANIPv6FirewallControl1ClientsFromRootDevice(root, loc); len(c) > 0 {
		d.pinholes = c[0]
	}
	if d.conn == nil && d.pinholes == nil {
		return nil, fmt.Errorf("the UPnP gateway at %s offers no port mapping service", loc)
	}
	return d, nil
}

func (d *igd) external(ctx context.Context) (netip.Addr, error) {
	if d.conn == nil {
		return netip.Addr{}, errors.New("no WAN connection service")
	}
	s, err := d.conn.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(s)
}

// mappingAttempts is how many external ports are tried: the local port
// first (many peers' prediction assumes it), then random ones when another
// host holds it.
const mappingAttempts = 3

func (d *igd) portMapping(ctx context.Context, local netip.AddrPort, proto string, lease time.Duration) (*upnpMapping, error) {
	if d.conn == nil {
		return nil, errors.New("the gateway offers no IPv4 port mapping service")
	}
	ext, err := d.external(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the external address: %w", err)
	}
	m := &upnpMapping{d: d, proto: proto, local: local, lease: lease}
	var errs []error
	for i := range mappingAttempts {
		port := local.Port()
		if i > 0 {
			port = uint16(1024 + rand.IntN(65535-1024))
		}
		m.ext = netip.AddrPortFrom(ext, port)
		if err := m.Renew(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		return m, nil
	}
	return nil, errors.Join(errs...)
}

// upnpMapping is a UPnP IGD port mapping.
type upnpMapping struct {
	d     *igd
	proto string
	local netip.AddrPort
	ext   netip.AddrPort
	lease time.Duration
	leaseEnd
}

func (m *upnpMapping) Method() Method           { return UPnP }
func (m *upnpMapping) Proto() string            { return m.proto }
func (m *upnpMapping) Local() netip.AddrPort    { return m.local }
func (m *upnpMapping) External() netip.AddrPort { return m.ext }

// Renew adds the mapping again (IGD replaces an existing entry of the
// same client and port).
func (m *upnpMapping) Renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	add := func() error {
		return m.d.conn.AddPortMappingCtx(ctx, "", m.ext.Port(), strings.ToUpper(m.proto), m.local.Port(),
			m.local.Addr().String(), true, "p2pd", uint32(m.lease.Seconds()))
	}
	err := add()
	if upnpErrorCode(err) == errOnlyPermanentLeases && m.lease != 0 {
		// Old IGDv1 routers only take permanent mappings; Release still
		// removes it, and renewals keep checking it is there.
		m.lease = 0
		err = add()
	}
	if err != nil {
		return err
	}
	lease := m.lease
	if lease == 0 {
		lease = DefaultLease
	}
	m.set(time.Now().Add(lease))
	return nil
}

// errOnlyPermanentLeases is UPnP IGD error 725, OnlyPermanentLeasesSupported.
const errOnlyPermanentLeases = 725

func upnpErrorCode(err error) int {
	var fault *soap.SOAPFaultError
	if errors.As(err, &fault) {
		return fault.Detail.UPnPError.Errorcode
	}
	return 0
}

func (m *upnpMapping) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return m.d.conn.DeletePortMappingCtx(ctx, "", m.ext.Port(), strings.ToUpper(m.proto))
}

// pinhole opens the IPv6 firewall for local (WANIPv6FirewallControl:1).
func (d *igd) pinhole(ctx context.Context, local netip.AddrPort, proto string, lease time.Duration) (*pinholeMapping, error) {
	if d.pinholes == nil {
		return nil, errors.New("the UPnP gateway offers no IPv6 firewall control")
	}
	p := &pinholeMapping{d: d, proto: proto, local: local, lease: lease}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	id, err := d.pinholes.AddPinholeCtx(ctx, "", 0, local.Addr().String(), local.Port(), ianaProto(proto), uint32(lease.Seconds()))
	if err != nil {
		return nil, err
	}
	p.id = id
	p.set(time.Now().Add(lease))
	return p, nil
}

func ianaProto(proto string) uint16 {
	if proto == "tcp" {
		return 6
	}
	return 17
}

// pinholeMapping is an IPv6 firewall pinhole.
type pinholeMapping struct {
	d     *igd
	proto string
	local netip.AddrPort
	lease time.Duration
	id    uint16
	leaseEnd
}

func (p *pinholeMapping) Method() Method           { return UPnP }
func (p *pinholeMapping) Proto() string            { return p.proto }
func (p *pinholeMapping) Local() netip.AddrPort    { return p.local }
func (p *pinholeMapping) External() netip.AddrPort { return p.local }

func (p *pinholeMapping) Renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := p.d.pinholes.UpdatePinholeCtx(ctx, p.id, uint32(p.lease.Seconds())); err != nil {
		return err
	}
	p.set(time.Now().Add(p.lease))
	return nil
}

func (p *pinholeMapping) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return p.d.pinholes.DeletePinholeCtx(ctx, p.id)
}
