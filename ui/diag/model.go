package diag

import (
	"fmt"
	"strings"

	"p2pd/netcore/addr"
	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
	"p2pd/netcore/node"
	"p2pd/netcore/stun"
)

// box is one thing in the picture of the path: a title, up to a few
// short lines under it, and a colour.
type box struct {
	title string
	lines []string
	level Level
}

// picture is the path from this computer to the servers, left to right.
type picture struct {
	computer box
	ifaces   []ifaceBoxes
	internet box
	servers  []box
}

// ifaceBoxes is an interface and the router (or firewall) behind it for
// each of its families.
type ifaceBoxes struct {
	box
	gateways []box
}

// maxServersPerKind keeps the picture short: the rest of a kind are
// counted in one box.
const maxServersPerKind = 3

// pictureOf draws the report as boxes. A nil report shows only this
// computer and the internet, in grey.
func pictureOf(r *netcheck.Report) picture {
	p := picture{
		computer: box{title: "This computer", level: Note},
		internet: box{title: "Internet", level: Note},
	}
	if r == nil {
		return p
	}
	anyOK := false
	for _, s := range r.Servers {
		anyOK = anyOK || s.OK
	}
	if len(r.Servers) > 0 && !anyOK {
		p.internet.level = Poor
		p.internet.lines = []string{"not reached"}
	}
	for _, ifc := range r.Interfaces {
		ib := ifaceBoxes{box: box{title: ifc.Name, level: Note}}
		if ifc.Default {
			ib.lines = append(ib.lines, "default route")
		}
		for _, f := range ifc.Families {
			ib.lines = append(ib.lines, f.Local.String())
			ib.gateways = append(ib.gateways, gatewayBox(f, r.PortMapping))
		}
		p.ifaces = append(p.ifaces, ib)
	}
	for _, k := range serverKinds {
		var of []netcheck.ServerOutcome
		for _, s := range r.Servers {
			if s.Kind == k.kind {
				of = append(of, s)
			}
		}
		for i, s := range of {
			if i == maxServersPerKind-1 && len(of) > maxServersPerKind {
				p.servers = append(p.servers, box{title: fmt.Sprintf("%d more %s", len(of)-i, k.many), level: Note})
				break
			}
			p.servers = append(p.servers, serverBox(s))
		}
	}
	return p
}

// gatewayBox shows what stands between an interface and the internet on
// one family, coloured by how it maps ports: the same port for everyone
// (or no NAT) green, a predictable new port amber, a random one red.
func gatewayBox(f netcheck.Family, pm *netcheck.PortMapping) box {
	b := box{title: "Router (" + f.Family.String() + ")"}
	p := f.Profile
	switch {
	case p == nil:
		b.level, b.lines = Poor, []string{"no STUN answer"}
		return b
	case !p.UDP && !p.TCP:
		b.level, b.lines = Poor, []string{"nothing gets out"}
		return b
	case !p.NAT:
		b.title = f.Family.String() + ": no NAT"
		b.level = Good
		switch p.Filtering {
		case stun.EndpointIndependent:
			b.lines = []string{"public address, open"}
		case stun.AddressDependent, stun.AddressPortDependent:
			b.lines = []string{"firewall: replies only"}
		default:
			b.lines = []string{"public address"}
		}
		if !p.UDP {
			b.lines = append(b.lines, "UDP blocked")
			b.level = Fair
		}
		return b
	}
	b.lines = []string{natName(p)}
	switch {
	case p.Mapping == stun.EndpointIndependent:
		b.level = Good
	case p.Mapping == stun.Unknown || p.UDPPorts.Predictable():
		b.level = Fair
	default:
		b.level = Poor
	}
	b.lines = append(b.lines, p.Mapping.Short("M")+" · "+p.Filtering.Short("F")+" · ports "+p.UDPPorts.String())
	if p.External.IsValid() {
		b.lines = append(b.lines, "public "+p.External.Addr().String())
	}
	if f.Family == netif.IPv4 && pm.Reaches(p) {
		b.lines = append(b.lines, fmt.Sprintf("%s port %d open", pm.Method, pm.External.Port()))
	}
	if !p.UDP {
		b.lines = append(b.lines, "UDP blocked")
		b.level = Poor
	}
	return b
}

// natName is the human name of a NAT, e.g. "port-restricted NAT".
func natName(p *stun.Profile) string {
	switch t := p.Type(); t {
	case stun.TypeSymmetric:
		if p.UDPPorts.Predictable() {
			return "symmetric NAT, predictable"
		}
		return "symmetric NAT, random"
	case stun.TypeFullCone:
		return "full-cone NAT"
	case stun.TypeRestricted:
		return "restricted NAT"
	case stun.TypePortRestricted:
		return "port-restricted NAT"
	case stun.TypeUnknown:
		return "NAT of unknown kind"
	default:
		return t.String()
	}
}

// serverBox shows a server: reachable and fast green, slow amber,
// unreachable red.
func serverBox(s netcheck.ServerOutcome) box {
	b := box{title: strings.ToUpper(s.Kind), lines: []string{shorten(ServerName(s.Server), 24)}}
	switch {
	case !s.OK:
		b.level = Poor
		b.title += " · no answer"
	case s.RTT >= slowRTT:
		b.level = Fair
		b.title += " · " + rttText(s.RTT) + ", slow"
	default:
		b.level = Good
		b.title += " · " + rttText(s.RTT)
	}
	return b
}

// shorten cuts s to n characters, marking the cut.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// friendKind is a row of the "who can I reach directly" chart: a kind of
// router a friend may sit behind.
type friendKind struct {
	name    string
	profile addr.NATProfile
}

// friendKinds are the chart's rows, from easiest to hardest.
var friendKinds = []friendKind{
	{"no NAT / open", addr.NATProfile{Mapping: stun.EndpointIndependent, Filtering: stun.EndpointIndependent, Ports: stun.DeltaEqual}},
	{"full cone (EIM+EIF)", addr.NATProfile{Translated: true, Mapping: stun.EndpointIndependent, Filtering: stun.EndpointIndependent, Ports: stun.DeltaEqual}},
	{"restricted (EIM+ADF)", addr.NATProfile{Translated: true, Mapping: stun.EndpointIndependent, Filtering: stun.AddressDependent, Ports: stun.DeltaEqual}},
	{"port-restricted (EIM+APDF)", addr.NATProfile{Translated: true, Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent, Ports: stun.DeltaEqual}},
	{"symmetric, predictable (APDM +1)", addr.NATProfile{Translated: true, Mapping: stun.AddressPortDependent, Filtering: stun.AddressPortDependent, Ports: stun.DeltaIndependent, Step: 1}},
	{"symmetric, random (APDM)", addr.NATProfile{Translated: true, Mapping: stun.AddressPortDependent, Filtering: stun.AddressPortDependent, Ports: stun.DeltaRandom}},
}

// chartColumn is one of this computer's families, as a column of the chart.
type chartColumn struct {
	title string
	me    addr.NATProfile
}

// chartColumns lists the families of the report's default interface whose
// NAT was profiled. A router that opened a port on request makes this
// computer reachable, as in the address P2PD publishes.
func chartColumns(r *netcheck.Report) []chartColumn {
	if r == nil {
		return nil
	}
	var out []chartColumn
	for _, fam := range netif.Families {
		f := r.Primary(fam)
		if f == nil || f.Profile == nil || !f.Profile.UDP {
			continue
		}
		p := f.Profile
		pm := r.PortMapping
		mapped := fam == netif.IPv4 && p.NAT && pm.Reaches(p)
		title := "You, " + fam.String()
		switch {
		case mapped:
			title += " (port mapped)"
		case p.NAT:
			title += " (" + natName(p) + ")"
		default:
			title += " (no NAT)"
		}
		out = append(out, chartColumn{title: title, me: node.NATProfileOf(p, mapped)})
	}
	return out
}

// pathLevel colours a chart cell: a direct connection or a punched one is
// good, birthday probing takes longer and may need the relay, the relay
// is slowest.
func pathLevel(p node.Path) Level {
	switch p {
	case node.PathDirect, node.PathPunch:
		return Good
	case node.PathBirthday:
		return Fair
	}
	return Poor
}

// pathText names a chart cell's path for people.
func pathText(p node.Path) string {
	switch p {
	case node.PathDirect:
		return "direct"
	case node.PathPunch:
		return "punch"
	case node.PathBirthday:
		return "punch (guessing)"
	}
	return "relay"
}
