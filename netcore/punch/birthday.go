package punch

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// Birthday probing meets a NAT that maps every destination to a new random
// port ("hard") when the other side's NAT maps predictably but filters
// per address and port ("easy"): neither side can name the other's
// endpoint, and the easy side drops whatever it did not send to first.
// The hard side opens many ports, each sending to the easy side's known
// endpoint (which opens a mapping towards it); the easy side sprays probes
// at random ports of the hard side's address. A probe that lands on one of
// the open mappings gets through, is answered, and proves the path: with
// BirthdayPorts mappings among the 64 512 ports above 1023, each probe hits
// with odds of 1 in 252, so SprayProbes probes miss with odds of about
// 1 in 10^7 (Tailscale's approach for hard NATs).
const (
	// BirthdayPorts is how many ports the hard side opens.
	BirthdayPorts = 256
	// SprayProbes caps the probes the easy side sprays.
	SprayProbes = 4096
	// sprayBatch probes leave every sprayEvery: 2 000 a second, gentle
	// on a home router's NAT table and done in 2 s.
	sprayBatch = 10
	sprayEvery = 5 * time.Millisecond
	// lowestPort is the lowest port a NAT hands out.
	lowestPort = 1024
)

// Spray sends up to SprayProbes probes with token from s to random ports
// of ip (each port once), paced, from start until ctx ends. Run RunUDP on
// s at the same time: it answers the hard side's probes and reports the
// path. It returns how many probes left.
func Spray(ctx context.Context, s *UDPSocket, ip netip.Addr, p Probing) int {
	select {
	case <-time.After(time.Until(p.Start)):
	case <-ctx.Done():
		return 0
	}
	probe := packet(probeType, p.Token)
	ports := rand.Perm(65536 - lowestPort)[:SprayProbes]
	t := time.NewTicker(sprayEvery)
	defer t.Stop()
	sent := 0
	for sent < len(ports) {
		for _, port := range ports[sent:min(sent+sprayBatch, len(ports))] {
			s.tr.WriteTo(probe, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+lowestPort))))
			sent++
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return sent
		}
	}
	return sent
}
