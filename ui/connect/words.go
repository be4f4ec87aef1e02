package connect

import (
	"fmt"
	"strings"
	"time"

	"p2pd/netcore/node"
	"p2pd/ui/wording"
)

// strategyNames names each strategy for someone who does not know the
// jargon. The birthday punch keeps its own row: it races beside plain UDP
// punching with its own start, failure and reason, and folding the two
// would hide which one connected or why one was skipped.
var strategyNames = map[string]string{
	node.Direct:        "Direct connection",
	node.Reverse:       "Friend connects back",
	node.PunchTCP:      "TCP hole punching",
	node.PunchUDP:      "UDP hole punching",
	node.PunchBirthday: "UDP hole punching, many ports",
	node.Relay:         "Relay server",
}

// strategyName returns the row title of a strategy; one this screen does
// not know (from a newer engine) keeps the engine's name.
func strategyName(s string) string {
	if n, ok := strategyNames[s]; ok {
		return n
	}
	return s
}

// plainReasons turns the engine's common reasons into sentences. The
// first entry whose fragment the reason holds wins, so more telling
// causes come first: a direct attempt lists every address it dialed, and
// a timeout on the external address says more than a refusal from some
// other machine at the same private address.
var plainReasons = []struct{ fragment, plain string }{
	// Failures.
	{"different key", "The address led to a different computer than your friend's, so P2PD hung up."},
	{"did not connect back", "Your friend's computer did not connect back in time."},
	{"did not answer", "Your friend's computer did not answer: it may be off, or P2PD is not running there."},
	{"sprayed", "The holes punched on both sides did not meet."},
	{"cannot punch", "Your friend's computer could not take part in hole punching."},
	{"cannot relay", "Your friend's computer could not use a relay server."},
	{"refused the credentials", "The relay server refused P2PD's user name or password."},
	{"no allocation within", "The relay server did not answer."},
	{"no stun server", "No STUN server answered, so P2PD could not learn which port to punch through."},
	{"could be opened", "This computer could not open a port to punch through."},
	{"shutting down", "P2PD is shutting down."},
	{"i/o timeout", "No answer in time: a router or firewall on the way drops the connection."},
	{"deadline exceeded", "No answer in time: a router or firewall on the way drops the connection."},
	{"no route to host", "Your friend's address cannot be reached from this network."},
	{"network is unreachable", "Your friend's address cannot be reached from this network."},
	{"connection refused", "Your friend's computer turned the connection down: P2PD may not be running there."},
	{"context canceled", "Stopped."},
	// Reasons to skip.
	{"connecting to itself", "This is your own address."},
	{"reached no signaling broker", "This computer is not connected to a signaling server, which this way needs."},
	{"lists no signaling broker", "Your friend's address names no signaling server, which this way needs."},
	{"no turn server", "No relay server is set up."},
	{"no address of a family", "Your friend's address has only IPv4 or only IPv6, and this computer has the other kind."},
	{"cannot be reached either", "Your router lets nothing in either, so your friend could not connect back."},
	{"cannot predict", "One router picks ports at random and the other filters strictly, so the holes cannot be aimed."},
	{"not needed", "Not needed: ordinary hole punching can work."},
	{"cannot meet", "Both routers pick a new port for every destination, so even this cannot meet."},
	{"one punch at a time", "One punch at a time, because a router hands out ports in sequence: UDP hole punching goes first."},
	{"another strategy won", "Another way connected first."},
	// How the relay starts.
	{"for the direct strategies first", "Gives the direct ways a head start."},
	{"relaying at once", "Nothing direct can work between your routers, so relaying at once."},
}

// plainReason returns reason in plain words, and whether it differs from
// the raw reason (so the raw one is worth showing as detail).
func plainReason(reason string) (string, bool) {
	lower := strings.ToLower(reason)
	for _, p := range plainReasons {
		if strings.Contains(lower, p.fragment) {
			return p.plain, true
		}
	}
	return wording.Sentence(reason), false
}

// seconds formats an elapsed time the way a person reads a stopwatch.
func seconds(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
}
