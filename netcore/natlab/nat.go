package natlab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Mapping is how a router picks the external port for an internal
// endpoint's traffic (RFC 4787 §4.1), with its port allocation.
type Mapping uint8

// Mapping behaviours. The router's rules that produce each are in rules().
const (
	// MapEIM keeps one mapping per internal endpoint and preserves the port
	// when it is free (Linux masquerade: most home routers).
	MapEIM Mapping = iota
	// MapEIMRandom keeps one mapping per internal endpoint on a port unrelated
	// to the internal one.
	MapEIMRandom
	// MapADM maps per internal endpoint and remote address.
	MapADM
	// MapAPDM maps per internal endpoint and remote address and port, on
	// random ports ("symmetric").
	MapAPDM
	// MapAPDMSequential is APDM on ports taken in sequence, +1 per new flow.
	MapAPDMSequential
	// MapNone routes the LAN without translation: the host has a public address.
	MapNone
)

var mappingNames = [...]string{"EIM", "EIM-random-port", "ADM", "APDM", "APDM-sequential", "no-NAT"}

func (m Mapping) String() string {
	if int(m) < len(mappingNames) {
		return mappingNames[m]
	}
	return fmt.Sprintf("Mapping(%d)", uint8(m))
}

// Filtering is which inbound packets a router lets through to a mapping
// (RFC 4787 §5).
type Filtering uint8

// Filtering behaviours.
const (
	// FilterAPDF admits only the remote address and port the host sent to.
	FilterAPDF Filtering = iota
	// FilterADF admits any port of a remote address the host sent to.
	FilterADF
	// FilterEIF admits anyone.
	FilterEIF
)

var filteringNames = [...]string{"APDF", "ADF", "EIF"}

func (f Filtering) String() string {
	if int(f) < len(filteringNames) {
		return filteringNames[f]
	}
	return fmt.Sprintf("Filtering(%d)", uint8(f))
}

// Unsolicited is what a router does with inbound traffic that matches no
// mapping.
type Unsolicited uint8

// Answers to unsolicited inbound traffic.
const (
	// Drop ignores it silently (most home routers).
	Drop Unsolicited = iota
	// Reject answers TCP with RST and UDP with ICMP port unreachable: hard
	// for TCP hole punching, whose early SYNs get reset.
	Reject
	// Accept lets it reach the router itself (a router "open" to the
	// internet; miniupnpd only forwards ports when it sees this).
	Accept
)

// NAT describes one home router.
type NAT struct {
	Mapping     Mapping
	Filtering   Filtering
	Unsolicited Unsolicited
	// IPv6Open turns the IPv6 stateful firewall off: the host is reachable.
	IPv6Open bool
	// UDPTimeout shortens conntrack's UDP timeouts (and the filtering
	// maps'), so mappings expire quickly; 0 keeps the kernel's 30 s / 120 s.
	UDPTimeout time.Duration
	// Loss drops this percentage of forwarded packets, both ways.
	Loss int
}

// String names the behaviour, e.g. "EIM+APDF" or "APDM-sequential+APDF/reject".
func (n NAT) String() string {
	s := n.Mapping.String() + "+" + n.Filtering.String()
	switch n.Unsolicited {
	case Reject:
		s += "/reject"
	case Accept:
		s += "/accept"
	}
	if n.IPv6Open {
		s += "/v6-open"
	}
	if n.UDPTimeout > 0 {
		s += fmt.Sprintf("/udp-timeout-%s", n.UDPTimeout)
	}
	if n.Loss > 0 {
		s += fmt.Sprintf("/loss-%d%%", n.Loss)
	}
	return s
}

func (n NAT) validate() error {
	switch {
	case n.Mapping > MapNone || n.Filtering > FilterEIF || n.Unsolicited > Accept:
		return fmt.Errorf("natlab: unknown NAT behaviour %v", n)
	case n.Mapping == MapNone && n.Filtering == FilterADF:
		return fmt.Errorf("natlab: %v: a router without NAT filters either per address and port or not at all", n)
	case n.Loss < 0 || n.Loss >= 100:
		return fmt.Errorf("natlab: loss %d%%: want 0 to 99", n.Loss)
	}
	return nil
}

// Matrix returns every mapping × filtering combination of RFC 4787 the
// lab produces, plus the port-allocation variants and a router that
// rejects unsolicited traffic.
func Matrix() []NAT {
	var out []NAT
	for _, m := range []Mapping{MapEIM, MapADM, MapAPDM} {
		for _, f := range []Filtering{FilterEIF, FilterADF, FilterAPDF} {
			out = append(out, NAT{Mapping: m, Filtering: f})
		}
	}
	return append(out,
		NAT{Mapping: MapEIMRandom, Filtering: FilterAPDF},
		NAT{Mapping: MapAPDMSequential, Filtering: FilterAPDF},
		NAT{Mapping: MapEIM, Filtering: FilterAPDF, Unsolicited: Reject},
		NAT{Mapping: MapNone, Filtering: FilterEIF},
		NAT{Mapping: MapNone, Filtering: FilterAPDF},
	)
}

// portMapBase is where translated ports start for the mappings that choose
// ports themselves; mapPorts of them are used. Hashed mappings (ADM, EIM
// with random ports) drop a new flow whose port collides with an existing
// flow's to the same server; a wide port space keeps that rare.
const (
	portMapBase = 40000
	mapPorts    = 16384
)

// rules returns the router's nftables ruleset: a stateful firewall for both
// families, the IPv4 NAT, and packet loss.
func (s *Site) rules() string {
	n := s.NAT
	var b strings.Builder

	// Firewall. Unsolicited IPv4 reaches the router itself (INPUT), IPv6
	// is routed to the host (FORWARD): both get the same treatment.
	var input, forward []string
	switch n.Unsolicited {
	case Drop:
		input = append(input, `iifname "wan" drop`)
	case Reject:
		input = append(input, `iifname "wan" meta l4proto tcp reject with tcp reset`, `iifname "wan" reject with icmpx type port-unreachable`)
		forward = append(forward, `iifname "wan" oifname "lan" meta l4proto tcp reject with tcp reset`, `iifname "wan" oifname "lan" reject with icmpx type port-unreachable`)
	}
	if n.IPv6Open || s.upnp {
		// With miniupnpd the IPv6 firewall lives in ip6tables, where it
		// opens pinholes (see startMiniupnpd).
		forward = append([]string{`iifname "wan" oifname "lan" meta nfproto ipv6 accept`}, forward...)
	}
	if n.Mapping == MapNone && n.Filtering == FilterEIF {
		forward = append([]string{`iifname "wan" oifname "lan" meta nfproto ipv4 accept`}, forward...)
	}
	fmt.Fprintf(&b, `table inet fw {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" meta l4proto { icmp, ipv6-icmp } accept
		%s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		meta l4proto ipv6-icmp icmpv6 type { packet-too-big, destination-unreachable, time-exceeded } accept
		iifname "lan" oifname "wan" accept
		iifname "wan" oifname "lan" ct status dnat accept
		%s
	}
}
`, strings.Join(input, "\n\t\t"), strings.Join(forward, "\n\t\t"))

	if n.Mapping != MapNone {
		b.WriteString(s.natRules())
	}
	if n.Loss > 0 {
		fmt.Fprintf(&b, `table inet loss {
	chain lossy {
		type filter hook forward priority -10; policy accept;
		numgen random mod 100 < %d drop
	}
}
`, n.Loss)
	}
	return b.String()
}

// natRules translates the LAN to the WAN address. Mappings that pick their
// own ports use a map from a hash or counter to ports (nft's "mod N offset"
// yields byte-swapped ports in nft 1.0.6). EIF and ADF filtering are nft
// dynamic maps, filled by outgoing packets after translation and used to
// forward inbound ones.
func (s *Site) natRules() string {
	n := s.NAT
	var b strings.Builder
	b.WriteString("table ip nat {\n")
	timeout := 120 * time.Second
	if n.UDPTimeout > 0 {
		timeout = n.UDPTimeout
	}
	var key, out, in string
	switch n.Filtering {
	case FilterEIF:
		key, out, in = "inet_service", "th sport", "th dport"
	case FilterADF:
		key, out, in = "inet_service . ipv4_addr", "th sport . ip daddr", "th dport . ip saddr"
	}
	if key != "" {
		for _, proto := range []string{"udp", "tcp"} {
			fmt.Fprintf(&b, "\tmap %s_in { type %s : ipv4_addr . inet_service; flags dynamic,timeout; timeout %ds; }\n", proto, key, int(timeout.Seconds()))
		}
		b.WriteString("\tchain postrec {\n\t\ttype filter hook postrouting priority srcnat + 10; policy accept;\n")
		for _, proto := range []string{"udp", "tcp"} {
			fmt.Fprintf(&b, "\t\toifname \"wan\" ct direction original meta l4proto %s update @%s_in { %s : ct original ip saddr . ct original proto-src }\n", proto, proto, out)
		}
		b.WriteString("\t}\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
		for _, proto := range []string{"udp", "tcp"} {
			fmt.Fprintf(&b, "\t\tiifname \"wan\" meta l4proto %s dnat ip to %s map @%s_in\n", proto, in, proto)
		}
		b.WriteString("\t}\n")
	}

	b.WriteString("\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	var selector string
	switch n.Mapping {
	case MapEIM:
		b.WriteString("\t\toifname \"wan\" masquerade\n")
	case MapAPDM:
		b.WriteString("\t\toifname \"wan\" masquerade fully-random\n")
	case MapEIMRandom:
		selector = fmt.Sprintf("jhash ip saddr . th sport mod %d", mapPorts)
	case MapADM:
		selector = fmt.Sprintf("jhash ip daddr . th sport mod %d", mapPorts)
	case MapAPDMSequential:
		selector = fmt.Sprintf("numgen inc mod %d", mapPorts)
	}
	if selector != "" {
		ports := make([]string, mapPorts)
		for i := range ports {
			ports[i] = fmt.Sprintf("%d : %d", i, portMapBase+i)
		}
		fmt.Fprintf(&b, "\t\toifname \"wan\" meta l4proto { tcp, udp } snat ip to %s : %s map { %s }\n", s.WAN4, selector, strings.Join(ports, ", "))
		b.WriteString("\t\toifname \"wan\" masquerade\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// addresses of the lab (NATLAB.md).
var (
	// ServerIP1 hosts coturn's primary address, mosquitto and chrony.
	ServerIP1 = netip.MustParseAddr("203.0.113.1")
	// ServerIP2 is coturn's alternate address (RFC 5780) and the skewed NTP responder.
	ServerIP2 = netip.MustParseAddr("203.0.113.2")
	// ServerIP1v6 and ServerIP2v6 are their IPv6 twins.
	ServerIP1v6 = netip.MustParseAddr("fd00:64::1")
	ServerIP2v6 = netip.MustParseAddr("fd00:64::2")
	// SilentIP is an internet address where packets vanish without an
	// answer: a server that is down behind a firewall.
	SilentIP = netip.MustParseAddr("203.0.113.9")
)
