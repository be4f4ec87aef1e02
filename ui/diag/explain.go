package diag

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"p2pd/netcore/netcheck"
	"p2pd/netcore/netif"
	"p2pd/netcore/signal"
	"p2pd/netcore/stun"
)

// Level grades a finding by what it means for connecting with friends;
// the screen shows it as a colour.
type Level uint8

// Levels, from best to worst; Note is neither good nor bad.
const (
	Good Level = iota // nothing stands in the way
	Fair              // works, with P2PD's help or more slowly
	Poor              // stops some connections, or all
	Note              // for information
)

// Finding is one thing the check found, explained in a sentence.
type Finding struct {
	Level Level
	Text  string
}

const (
	// slowRTT marks a server as slow: connecting takes a few round trips
	// to it (signaling, relay allocation), so beyond this a person notices
	// the wait.
	slowRTT = 200 * time.Millisecond
	// clockNoticed is the clock offset worth mentioning as "off": below
	// it, punches timed by the clock alone still meet.
	clockNoticed = time.Second
)

// Findings explains each finding of the report in one sentence: the NAT's
// mapping and filtering, IPv6, port mapping, the clock and the servers.
// It returns nothing for a nil report.
func Findings(r *netcheck.Report) []Finding {
	if r == nil {
		return nil
	}
	var out []Finding
	add := func(l Level, format string, args ...any) {
		out = append(out, Finding{l, fmt.Sprintf(format, args...)})
	}
	v4, v6 := r.Primary(netif.IPv4), r.Primary(netif.IPv6)
	main, other := v4, v6
	if main == nil {
		main, other = v6, nil
	}
	if main != nil {
		out = append(out, natFindings(main)...)
		if main.Profile != nil && main.Profile.NAT {
			if f, ok := mappingFinding(r.PortMapping, main.Profile); ok {
				out = append(out, f)
			}
		}
	}
	switch {
	case other != nil && other.Profile == nil:
		add(Note, "You have IPv6 (%v), but no STUN server answered over it: P2PD uses IPv4.", other.Local)
	case other != nil && !other.Profile.NAT && other.Profile.Filtering == stun.EndpointIndependent:
		add(Good, "You also have IPv6 (%v) with nothing blocking it: friends with IPv6 connect straight to you.", other.Local)
	case other != nil && !other.Profile.NAT:
		add(Good, "You also have IPv6 (%v) behind a firewall that lets in only replies: friends with IPv6 reach you by hole punching, which P2PD does for you.", other.Local)
	case other != nil:
		add(Fair, "Your IPv6 traffic is translated by a NAT too: P2PD treats it like IPv4.")
	case main != nil && main.Family == netif.IPv4:
		add(Note, "You have no IPv6 connection to the internet: P2PD uses IPv4, which works just as well.")
	}
	servers := r.Servers
	if f, ok := clockFinding(r.Clock); ok {
		out = append(out, f)
		if r.Clock.Error != "" {
			// The clock's finding already says no time server answered.
			servers = slices.DeleteFunc(slices.Clone(servers), func(s netcheck.ServerOutcome) bool { return s.Kind == "ntp" })
		}
	}
	return append(out, serverFindings(servers)...)
}

// natFindings explains what the router of one family does: how it maps
// ports and what it lets in.
func natFindings(f *netcheck.Family) []Finding {
	p := f.Profile
	switch {
	case p == nil:
		why := ""
		if f.Error != "" {
			why = " (" + f.Error + ")"
		}
		return []Finding{{Poor, fmt.Sprintf("P2PD could not learn what your router does over %v%s. Check that you are online and that a firewall lets P2PD out, then run the check again.", f.Family, why)}}
	case !p.UDP && !p.TCP:
		return []Finding{{Poor, "No STUN server answered: you seem to be offline, or your network blocks traffic to the outside. Check your connection, then run the check again."}}
	case !p.UDP:
		return []Finding{{Poor, "Your network blocks UDP: P2PD connects over TCP only, so hole punching works less often and a relay is needed more."}}
	}
	var out []Finding
	add := func(l Level, format string, args ...any) {
		out = append(out, Finding{l, fmt.Sprintf(format, args...)})
	}
	if !p.NAT {
		switch p.Filtering {
		case stun.EndpointIndependent:
			add(Good, "Your computer has its own public address (%v) and nothing blocks incoming connections: friends can connect to you directly.", f.Local)
		case stun.AddressDependent, stun.AddressPortDependent:
			add(Fair, "Your computer has its own public address (%v), but a firewall lets in only replies to what you send: connecting needs hole punching, which P2PD does for you.", f.Local)
		default:
			add(Note, "Your computer has its own public address (%v); P2PD could not tell whether a firewall blocks incoming connections.", f.Local)
		}
		return append(out, tcpFinding(p)...)
	}
	switch {
	case p.Mapping == stun.EndpointIndependent:
		add(Good, "Your router keeps the same public port for every destination: friends can usually reach you directly.")
	case p.Mapping == stun.Unknown:
		add(Fair, "P2PD could not tell how your router picks public ports: it tries every way to connect, and a relay server if none works.")
	case p.UDPPorts.Predictable():
		add(Fair, "Your router gives each destination a new public port, but in a predictable order (%v): P2PD guesses the next one when hole punching, which works with most friends.", p.UDPPorts)
	default:
		add(Poor, "Your router gives each destination a new, random public port (a \"symmetric\" NAT): friends with easier routers still connect directly, others only through a relay server.")
	}
	switch p.Filtering {
	case stun.EndpointIndependent:
		add(Good, "Your router lets anyone in once you have sent something out: friends can connect to you without hole punching.")
	case stun.AddressDependent:
		add(Good, "Your router lets in replies only from computers you wrote to: connecting needs hole punching, which P2PD does for you.")
	case stun.AddressPortDependent:
		add(Fair, "Your router lets in replies only from the exact address and port you wrote to: connecting needs hole punching, which P2PD does for you.")
	default:
		add(Note, "P2PD could not tell which incoming traffic your router lets in: it tries every way to connect.")
	}
	if p.Hairpin == stun.No {
		add(Note, "Your router does not loop traffic back to computers behind it: friends on your own network are reached over the local network instead.")
	}
	return append(out, tcpFinding(p)...)
}

func tcpFinding(p *stun.Profile) []Finding {
	if p.TCP {
		return nil
	}
	return []Finding{{Note, "No STUN server answered over TCP, so TCP was not checked: P2PD connects over UDP."}}
}

// mappingFinding explains whether the router opens ports on request.
func mappingFinding(pm *netcheck.PortMapping, p *stun.Profile) (Finding, bool) {
	switch {
	case pm == nil:
		return Finding{}, false
	case !pm.Tried:
		return Finding{Note, "Your router does not offer to open ports (UPnP or NAT-PMP): P2PD uses hole punching instead."}, true
	case pm.Reaches(p):
		return Finding{Good, fmt.Sprintf("%s mapped port %d: friends can reach you directly.", pm.Method, pm.External.Port())}, true
	case pm.Worked:
		return Finding{Fair, fmt.Sprintf("Your router opened port %d with %s, but it sits behind another NAT (it calls itself %v, the internet sees %v): that does not help friends reach you.",
			pm.External.Port(), pm.Method, pm.External.Addr(), p.External.Addr())}, true
	}
	why := ""
	if pm.Error != "" {
		why = " (" + pm.Error + ")"
	}
	return Finding{Fair, fmt.Sprintf("Your router answers %s but refused to open a port%s: turn on UPnP or NAT-PMP in its settings and friends can reach you directly.", pm.Offered(), why)}, true
}

// clockFinding explains the clock offset; nothing when no time server
// was configured.
func clockFinding(c *netcheck.Clock) (Finding, bool) {
	if c == nil {
		return Finding{}, false
	}
	switch d := c.Offset.Abs(); {
	case c.Error != "":
		return Finding{Fair, "P2PD could not ask a time server (" + c.Error + "): it times hole punches by this computer's clock, which works when the clock is set automatically."}, true
	case d < clockNoticed:
		return Finding{Good, "Your clock is right (" + offsetText(d) + " off): hole punches are timed well."}, true
	case d < signal.Window:
		return Finding{Fair, "Your clock is " + offsetText(d) + " off: P2PD corrects for it when timing hole punches."}, true
	default:
		return Finding{Fair, "Your clock is " + offsetText(d) + " off: P2PD corrects for it, but set it right (turn on automatic time in your system settings) so other programs work too."}, true
	}
}

// offsetText says how far off a clock is, e.g. "12 ms", "2.3 s", "5 min".
func offsetText(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	case d < 2*time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < 2*time.Hour:
		return fmt.Sprintf("%d min", int(math.Round(d.Minutes())))
	}
	return fmt.Sprintf("%d h", int(math.Round(d.Hours())))
}

// serverKinds names the kinds of servers, in the order they are told.
var serverKinds = []struct{ kind, one, many, noneMeans string }{
	{"stun", "STUN server", "STUN servers",
		"P2PD cannot learn your public address, so friends cannot find you. Check that you are online and that a firewall lets P2PD out, then run the check again."},
	{"turn", "relay (TURN) server", "relay (TURN) servers",
		"friends behind hard routers cannot be reached through a relay. Check that a firewall lets P2PD out, or try again later."},
	{"mqtt", "signaling (MQTT) server", "signaling (MQTT) servers",
		"friends cannot ask your computer to connect, so only direct connections work. Check that a firewall lets P2PD out, or try again later."},
	{"ntp", "time (NTP) server", "time (NTP) servers",
		"P2PD times hole punches by this computer's clock."},
}

// serverFindings sums up each kind of server: all answered (and how
// fast), some did not, or none did and what that stops.
func serverFindings(servers []netcheck.ServerOutcome) []Finding {
	var out []Finding
	for _, k := range serverKinds {
		var ok, failed []netcheck.ServerOutcome
		for _, s := range servers {
			switch {
			case s.Kind != k.kind:
			case s.OK:
				ok = append(ok, s)
			default:
				failed = append(failed, s)
			}
		}
		name := k.one
		if len(ok)+len(failed) > 1 {
			name = k.many
		}
		switch {
		case len(ok)+len(failed) == 0:
		case len(ok) == 0 && len(failed) == 1:
			out = append(out, Finding{Poor, fmt.Sprintf("The %s %s did not answer (%s): %s", name, ServerName(failed[0].Server), failed[0].Error, k.noneMeans)})
		case len(ok) == 0:
			out = append(out, Finding{Poor, fmt.Sprintf("None of the %d %s answered: %s", len(failed), name, k.noneMeans)})
		case len(failed) > 0:
			out = append(out, Finding{Fair, fmt.Sprintf("%d of %d %s did not answer (%s: %s): P2PD uses the others.",
				len(failed), len(ok)+len(failed), name, ServerName(failed[0].Server), failed[0].Error)})
		default:
			fastest := ok[0]
			for _, s := range ok {
				if s.RTT < fastest.RTT {
					fastest = s
				}
			}
			if fastest.RTT >= slowRTT {
				out = append(out, Finding{Fair, fmt.Sprintf("The %s answered, but slowly (%v at best): connecting through it takes longer.", name, rttText(fastest.RTT))})
				continue
			}
			if k.kind == "turn" && !slices.ContainsFunc(ok, func(s netcheck.ServerOutcome) bool { return s.NoUDP == "" }) {
				out = append(out, Finding{Fair, fmt.Sprintf("The %s answered in %v, over TCP only (%s): your network lets no UDP through to it, and P2PD relays over TCP instead.", name, rttText(fastest.RTT), ok[0].NoUDP)})
				continue
			}
			if k.kind == "turn" && !slices.ContainsFunc(ok, func(s netcheck.ServerOutcome) bool { return s.TCPRelay }) {
				out = append(out, Finding{Fair, fmt.Sprintf("The %s answered in %v, but relays no TCP: relayed files go datagram by datagram, a few times slower.", name, rttText(fastest.RTT))})
				continue
			}
			if len(ok) == 1 {
				out = append(out, Finding{Good, fmt.Sprintf("The %s answered in %v.", name, rttText(fastest.RTT))})
				continue
			}
			out = append(out, Finding{Good, fmt.Sprintf("All %d %s answered, the fastest in %v.", len(ok), name, rttText(fastest.RTT))})
		}
	}
	return out
}

// Trouble says in plain words what went wrong with the check as a whole,
// and what the user can do; "" when nothing did. A nil report is a check
// that did not finish.
func Trouble(r *netcheck.Report) (Level, string) {
	if r == nil {
		return Poor, "The check did not finish, so there is nothing to show. Make sure this computer is connected to a network, then press Run again."
	}
	if len(r.Interfaces) == 0 {
		return Poor, r.Verdict + " Connect to a network (Wi-Fi or cable), then press Run again."
	}
	var failed []string
	for _, s := range r.Servers {
		if !s.OK {
			failed = append(failed, ServerName(s.Server))
		}
	}
	if len(failed) == 0 {
		return Good, ""
	}
	list := strings.Join(failed, ", ")
	if len(failed) == len(r.Servers) {
		return Poor, fmt.Sprintf("None of the %d servers answered (%s): you seem to be offline, or a firewall blocks P2PD. Check your connection, then press Run again.", len(failed), list)
	}
	return Fair, fmt.Sprintf("%d of %d servers did not answer (%s), so the results below may be incomplete. If it happens again, check that no firewall blocks P2PD.",
		len(failed), len(r.Servers), list)
}

// ServerName shortens a server as configured ("udp://stun.example.org:3478",
// "turn:203.0.113.1:3478?transport=tcp") to its host and port.
func ServerName(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	for _, scheme := range []string{"turn:", "turns:", "stun:", "stuns:"} {
		s = strings.TrimPrefix(s, scheme)
	}
	if i := strings.IndexAny(s, "?/"); i >= 0 {
		s = s[:i]
	}
	return s
}

// rttText rounds a round trip for people: "23 ms", "1.2 s".
func rttText(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", max(1, d.Round(time.Millisecond).Milliseconds()))
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
