package diag

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
	"p2pd/netcore/portmap"
	"p2pd/netcore/stun"
)

// homeProfile is a NAT's profile as discovery reports it, with ports
// kept (or for the +1 and random patterns, as named).
func homeProfile(m, f stun.Behaviour, ports stun.Delta) *stun.Profile {
	pp := stun.PortPattern{Kind: ports}
	if ports == stun.DeltaIndependent {
		pp.Step = 1
	}
	return &stun.Profile{
		NAT: true, Mapping: m, Filtering: f, TCPMapping: m, Hairpin: stun.Yes,
		UDPPorts: pp, TCPPorts: pp, UDP: true, TCP: true,
		External:    netip.MustParseAddrPort("203.0.113.7:41000"),
		TCPExternal: netip.MustParseAddrPort("203.0.113.7:41001"),
	}
}

// reportWith is a report of one default interface whose IPv4 has profile p.
func reportWith(p *stun.Profile) *netcheck.Report {
	f := netcheck.Family{Family: netif.IPv4, Local: netip.MustParseAddr("192.168.1.20"), Profile: p}
	if p != nil {
		f.NATType, f.Ext = p.Type(), p.External
	}
	return &netcheck.Report{Interfaces: []netcheck.Interface{{Name: "eth0", Default: true, Families: []netcheck.Family{f}}}}
}

// typicalReport is a home router's: port-restricted NAT on IPv4 that
// keeps ports, UPnP, a firewalled IPv6 address, a clock 2.3 s off, and
// one of two MQTT brokers down.
func typicalReport() *netcheck.Report {
	p := homeProfile(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual)
	v6 := netip.MustParseAddr("2001:db8:1::20")
	return &netcheck.Report{
		Started: time.Date(2025, 5, 4, 14, 2, 0, 0, time.Local),
		Took:    2300 * time.Millisecond,
		Interfaces: []netcheck.Interface{{
			Name: "wlan0", Default: true,
			Families: []netcheck.Family{
				{Family: netif.IPv4, Local: netip.MustParseAddr("192.168.1.20"), Profile: p, NATType: p.Type(), Ext: p.External},
				{Family: netif.IPv6, Local: v6, NATType: stun.TypeFirewall, Ext: netip.AddrPortFrom(v6, 41000), Profile: &stun.Profile{
					External: netip.AddrPortFrom(v6, 41000), Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent,
					UDPPorts: stun.PortPattern{Kind: stun.DeltaEqual}, UDP: true, TCP: true,
				}},
			},
			Routes: []netif.Route{
				{Family: netif.IPv4, Interface: "wlan0", NIC: []netip.Addr{netip.MustParseAddr("192.168.1.20")}, External: []netip.Addr{netip.MustParseAddr("203.0.113.7")}},
				{Family: netif.IPv6, Interface: "wlan0", NIC: []netip.Addr{v6}, External: []netip.Addr{v6}, LinkLocal: []netip.Addr{netip.MustParseAddr("fe80::20").WithZone("wlan0")}},
			},
		}},
		PortMapping: &netcheck.PortMapping{
			Gateway: portmap.Gateway{Addr: netip.MustParseAddr("192.168.1.1"), UPnP: true, UPnPExternal: netip.MustParseAddr("203.0.113.7")},
			Tried:   true, Worked: true, Method: portmap.UPnP, External: netip.MustParseAddrPort("203.0.113.7:41000"),
		},
		Clock: &netcheck.Clock{Offset: 2300 * time.Millisecond},
		Servers: []netcheck.ServerOutcome{
			{Kind: "stun", Server: "udp://stun.example.net:3478", OK: true, RTT: 23 * time.Millisecond},
			{Kind: "stun", Server: "tcp://stun.example.net:3478", OK: true, RTT: 31 * time.Millisecond},
			{Kind: "turn", Server: "turn:relay.example.net:3478", OK: true, RTT: 260 * time.Millisecond},
			{Kind: "mqtt", Server: "tcp://broker.example.org:1883", OK: true, RTT: 48 * time.Millisecond},
			{Kind: "mqtt", Server: "tcp://mqtt.example.com:1883", Error: "dial tcp: i/o timeout"},
			{Kind: "ntp", Server: "time.example.org:123", OK: true, RTT: 15 * time.Millisecond},
		},
		Verdict: "Your router lets in only replies from exactly where you sent (a \"port-restricted cone\" NAT), the most common kind: friends connect to you directly by hole punching. Your router also opens ports on request (UPnP), so friends can reach you directly.",
	}
}

// finds reports whether a finding at level says want.
func finds(fs []Finding, level Level, want string) bool {
	for _, f := range fs {
		if f.Level == level && strings.Contains(f.Text, want) {
			return true
		}
	}
	return false
}

func TestFindingsExplainNATKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *stun.Profile
		want []Finding // each a level and a part of the sentence
	}{
		{"full cone", homeProfile(stun.EndpointIndependent, stun.EndpointIndependent, stun.DeltaEqual), []Finding{
			{Good, "Your router keeps the same public port for every destination: friends can usually reach you directly."},
			{Good, "lets anyone in once you have sent something out"},
		}},
		{"restricted cone", homeProfile(stun.EndpointIndependent, stun.AddressDependent, stun.DeltaEqual), []Finding{
			{Good, "same public port for every destination"},
			{Good, "lets in replies only from computers you wrote to: connecting needs hole punching, which P2PD does for you."},
		}},
		{"port-restricted cone", homeProfile(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual), []Finding{
			{Good, "same public port for every destination"},
			{Fair, "Your router lets in replies only from the exact address and port you wrote to: connecting needs hole punching, which P2PD does for you."},
		}},
		{"symmetric, sequential ports", homeProfile(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaIndependent), []Finding{
			{Fair, "a new public port, but in a predictable order (independent +1): P2PD guesses the next one"},
			{Fair, "exact address and port"},
		}},
		{"symmetric, random ports", homeProfile(stun.AddressPortDependent, stun.AddressPortDependent, stun.DeltaRandom), []Finding{
			{Poor, "a new, random public port (a \"symmetric\" NAT): friends with easier routers still connect directly, others only through a relay server."},
		}},
		{"no hairpinning", func() *stun.Profile {
			p := homeProfile(stun.EndpointIndependent, stun.AddressDependent, stun.DeltaEqual)
			p.Hairpin = stun.No
			return p
		}(), []Finding{{Note, "does not loop traffic back"}}},
		{"open internet", &stun.Profile{Mapping: stun.EndpointIndependent, Filtering: stun.EndpointIndependent, UDP: true, TCP: true}, []Finding{
			{Good, "Your computer has its own public address (192.168.1.20) and nothing blocks incoming connections"},
		}},
		{"firewall", &stun.Profile{Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent, UDP: true, TCP: true}, []Finding{
			{Fair, "a firewall lets in only replies to what you send: connecting needs hole punching"},
		}},
		{"UDP blocked", &stun.Profile{NAT: true, TCP: true}, []Finding{{Poor, "Your network blocks UDP: P2PD connects over TCP only"}}},
		{"TCP not answered", func() *stun.Profile {
			p := homeProfile(stun.EndpointIndependent, stun.AddressDependent, stun.DeltaEqual)
			p.TCP = false
			return p
		}(), []Finding{{Note, "No STUN server answered over TCP"}}},
		{"no answer", nil, []Finding{{Poor, "P2PD could not learn what your router does over IPv4. Check that you are online"}}},
	} {
		got := Findings(reportWith(tc.p))
		for _, w := range tc.want {
			if !finds(got, w.Level, w.Text) {
				t.Errorf("%s: no %v finding %q in %q", tc.name, w.Level, w.Text, got)
			}
		}
		if !finds(got, Note, "You have no IPv6 connection") {
			t.Errorf("%s: IPv6's absence not told: %q", tc.name, got)
		}
	}
}

func TestFindingsExplainTheRest(t *testing.T) {
	nat := homeProfile(stun.EndpointIndependent, stun.AddressPortDependent, stun.DeltaEqual)
	gw := portmap.Gateway{Addr: netip.MustParseAddr("192.168.1.1"), UPnP: true}
	for _, tc := range []struct {
		name  string
		edit  func(r *netcheck.Report)
		level Level
		want  string
	}{
		{"UPnP", func(r *netcheck.Report) {
			r.PortMapping = &netcheck.PortMapping{Gateway: gw, Tried: true, Worked: true, Method: portmap.UPnP, External: netip.MustParseAddrPort("203.0.113.7:41000")}
		}, Good, "UPnP mapped port 41000: friends can reach you directly."},
		{"double NAT", func(r *netcheck.Report) {
			r.PortMapping = &netcheck.PortMapping{Gateway: gw, Tried: true, Worked: true, Method: portmap.NATPMP, External: netip.MustParseAddrPort("100.64.0.9:41000")}
		}, Fair, "it sits behind another NAT (it calls itself 100.64.0.9, the internet sees 203.0.113.7)"},
		{"mapping refused", func(r *netcheck.Report) {
			r.PortMapping = &netcheck.PortMapping{Gateway: gw, Tried: true, Error: "UPnP: 718 ConflictInMappingEntry"}
		}, Fair, "Your router answers UPnP but refused to open a port (UPnP: 718 ConflictInMappingEntry): turn on UPnP"},
		{"no mapping offered", func(r *netcheck.Report) {
			r.PortMapping = &netcheck.PortMapping{Gateway: portmap.Gateway{Addr: gw.Addr}}
		}, Note, "does not offer to open ports (UPnP or NAT-PMP)"},
		{"clock right", func(r *netcheck.Report) { r.Clock = &netcheck.Clock{Offset: -12 * time.Millisecond} }, Good, "Your clock is right (12 ms off)"},
		{"clock off", func(r *netcheck.Report) { r.Clock = &netcheck.Clock{Offset: 2300 * time.Millisecond} }, Fair, "Your clock is 2.3 s off: P2PD corrects for it when timing hole punches."},
		{"clock far off", func(r *netcheck.Report) { r.Clock = &netcheck.Clock{Offset: -5 * time.Minute} }, Fair, "Your clock is 5 min off: P2PD corrects for it, but set it right"},
		{"no time server", func(r *netcheck.Report) {
			r.Clock = &netcheck.Clock{Error: "no NTP server answered"}
			r.Servers = []netcheck.ServerOutcome{{Kind: "ntp", Server: "time.example.org:123", Error: "timeout"}}
		}, Fair, "could not ask a time server (no NTP server answered)"},
		{"IPv6 firewall", func(r *netcheck.Report) {
			v6 := netip.MustParseAddr("2001:db8::20")
			r.Interfaces[0].Families = append(r.Interfaces[0].Families, netcheck.Family{Family: netif.IPv6, Local: v6,
				Profile: &stun.Profile{Mapping: stun.EndpointIndependent, Filtering: stun.AddressPortDependent, UDP: true}})
		}, Good, "You also have IPv6 (2001:db8::20) behind a firewall"},
		{"servers fine", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "stun", Server: "udp://a:3478", OK: true, RTT: 40 * time.Millisecond}, {Kind: "stun", Server: "udp://b:3478", OK: true, RTT: 23 * time.Millisecond}}
		}, Good, "All 2 STUN servers answered, the fastest in 23 ms."},
		{"slow relay", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "turn", Server: "turn:relay.example.net:3478", OK: true, RTT: 420 * time.Millisecond}}
		}, Fair, "The relay (TURN) server answered, but slowly (420 ms at best)"},
		{"relay without TCP", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "turn", Server: "turn:relay.example.net:3478", OK: true, RTT: 30 * time.Millisecond}}
		}, Fair, "The relay (TURN) server answered in 30 ms, but relays no TCP: relayed files go datagram by datagram, a few times slower."},
		{"relay with TCP", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "turn", Server: "turn:relay.example.net:3478", OK: true, RTT: 30 * time.Millisecond, TCPRelay: true}}
		}, Good, "The relay (TURN) server answered in 30 ms."},
		{"relay over TCP only", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "turn", Server: "turn:relay.example.net:3478", OK: true, RTT: 30 * time.Millisecond, TCPRelay: true, NoUDP: "timeout"}}
		}, Fair, "The relay (TURN) server answered in 30 ms, over TCP only (timeout): your network lets no UDP through to it, and P2PD relays over TCP instead."},
		{"one broker down", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "mqtt", Server: "tcp://a.example:1883", OK: true, RTT: time.Millisecond}, {Kind: "mqtt", Server: "tcp://b.example:1883", Error: "timeout"}}
		}, Fair, "1 of 2 signaling (MQTT) servers did not answer (b.example:1883: timeout): P2PD uses the others."},
		{"relay down", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "turn", Server: "turn:relay.example.net:3478", Error: "timeout"}}
		}, Poor, "The relay (TURN) server relay.example.net:3478 did not answer (timeout): friends behind hard routers cannot be reached through a relay."},
		{"no STUN server", func(r *netcheck.Report) {
			r.Servers = []netcheck.ServerOutcome{{Kind: "stun", Server: "udp://a:3478", Error: "timeout"}, {Kind: "stun", Server: "udp://b:3478", Error: "timeout"}}
		}, Poor, "None of the 2 STUN servers answered: P2PD cannot learn your public address"},
	} {
		r := reportWith(nat)
		tc.edit(r)
		if got := Findings(r); !finds(got, tc.level, tc.want) {
			t.Errorf("%s: no %v finding %q in %q", tc.name, tc.level, tc.want, got)
		}
	}
	r := reportWith(nat)
	r.Clock = &netcheck.Clock{Error: "no NTP server answered"}
	r.Servers = []netcheck.ServerOutcome{{Kind: "ntp", Server: "time.example.org:123", Error: "timeout"}}
	if got := Findings(r); finds(got, Poor, "NTP") {
		t.Errorf("the time server's silence is told twice: %q", got)
	}
	if got := Findings(nil); got != nil {
		t.Errorf("a nil report has findings: %q", got)
	}
}

func TestTrouble(t *testing.T) {
	for _, tc := range []struct {
		name  string
		r     *netcheck.Report
		level Level
		want  string
	}{
		{"did not finish", nil, Poor, "The check did not finish, so there is nothing to show. Make sure this computer is connected to a network, then press Run again."},
		{"offline", &netcheck.Report{Verdict: "This computer has no connection to the internet, so friends cannot reach it."}, Poor,
			"This computer has no connection to the internet, so friends cannot reach it. Connect to a network (Wi-Fi or cable), then press Run again."},
		{"partial", typicalReport(), Fair, "1 of 6 servers did not answer (mqtt.example.com:1883), so the results below may be incomplete. If it happens again, check that no firewall blocks P2PD."},
		{"no server", offlineReport(), Poor, "None of the 3 servers answered (stun.example.net:3478, broker.example.org:1883, time.example.org:123): you seem to be offline, or a firewall blocks P2PD. Check your connection, then press Run again."},
		{"all fine", reportWith(homeProfile(stun.EndpointIndependent, stun.AddressDependent, stun.DeltaEqual)), Good, ""},
	} {
		level, got := Trouble(tc.r)
		if level != tc.level || !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%s: %v %q, want %v %q", tc.name, level, got, tc.level, tc.want)
		}
	}
}

func TestServerName(t *testing.T) {
	for in, want := range map[string]string{
		"udp://stun.example.net:3478":           "stun.example.net:3478",
		"turn:203.0.113.1:3478?transport=tcp":   "203.0.113.1:3478",
		"turns:relay.example.net:5349":          "relay.example.net:5349",
		"tcp://[2001:db8::1]:1883":              "[2001:db8::1]:1883",
		"time.example.org:123":                  "time.example.org:123",
		"203.0.113.1":                           "203.0.113.1",
		"stun:stun.l.google.com:19302":          "stun.l.google.com:19302",
		"mqtt://broker.example.org:1883/ignore": "broker.example.org:1883",
	} {
		if got := ServerName(in); got != want {
			t.Errorf("ServerName(%q) = %q, want %q", in, got, want)
		}
	}
}
