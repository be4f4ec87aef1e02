package stun

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"time"
)

const (
	// portSamples is how many fresh mappings each port test makes: enough
	// for a pattern to show with one sample disturbed by other traffic
	// through the same NAT.
	portSamples = 5
	// maxStep bounds the +n of a predictable allocator: a bigger step is
	// indistinguishable from a random one over a few samples.
	maxStep = 64
	// seqPortLow and seqPortHigh bound the block of consecutive local ports
	// the dependent-delta test binds: above the usual service ports, below
	// Linux's ephemeral range so the block is rarely taken.
	seqPortLow  = 20000
	seqPortHigh = 32000
)

// minPatternSamples is the least number of samples a preserving or +n
// verdict rests on: with fewer, chance alone produces a "pattern".
const minPatternSamples = 4

// analyzePorts finds the allocation pattern in samples of (local,
// external) ports taken one after another; sequential says whether the
// local ports were consecutive. Other hosts' traffic through the same NAT
// disturbs samples, so a pattern may miss one sample (left out) and one
// step (a counter bumped by someone else between two of ours).
func analyzePorts(samples [][2]uint16, sequential bool) PortPattern {
	p := PortPattern{Kind: DeltaRandom, Samples: samples}
	if len(samples) < 3 {
		p.Kind = DeltaUnknown
		return p
	}
	equal := 0
	for _, s := range samples {
		if s[0] == s[1] {
			equal++
		}
	}
	if equal >= len(samples)-1 {
		p.Kind = DeltaEqual
		return p
	}
	if len(samples) < minPatternSamples {
		p.Kind = DeltaUnknown
		return p
	}
	// The whole run first, then the run without each sample in turn.
	sets := [][][2]uint16{samples}
	if len(samples) > minPatternSamples {
		for i := range samples {
			sets = append(sets, append(append([][2]uint16{}, samples[:i]...), samples[i+1:]...))
		}
	}
	for _, set := range sets {
		diffs := len(set) - 1
		preserving := 0
		steps := map[int]int{}
		for i := 1; i < len(set); i++ {
			dl := int(int16(set[i][0] - set[i-1][0]))
			de := int(int16(set[i][1] - set[i-1][1]))
			if de == dl && set[i][0] != set[i][1] {
				preserving++
			}
			steps[de]++
		}
		if preserving >= diffs-1 && !sequential {
			p.Kind = DeltaPreserving
			return p
		}
		// Smallest step first, so a tie always resolves the same way.
		for step := -maxStep; step <= maxStep; step++ {
			if step != 0 && steps[step] >= diffs-1 {
				p.Kind, p.Step = DeltaIndependent, step
				if sequential {
					p.Kind = DeltaDependent
				}
				return p
			}
		}
	}
	return p
}

// portPattern measures a protocol's port allocation: first with local
// ports the system picks (equal, preserving and independent patterns show
// there), then, if no pattern showed, with consecutive local ports (where a
// dependent pattern shows). bind makes one fresh mapping from local port
// (0: any) and returns the (local, external) ports; each gets at most wait,
// and one that fails is skipped (a NAT can drop a new flow whose port
// collides with an old one).
func portPattern(ctx context.Context, wait time.Duration, bind func(ctx context.Context, port uint16) ([2]uint16, error)) PortPattern {
	sample := func(port uint16) ([2]uint16, error) {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return bind(ctx, port)
	}
	samples := make([][2]uint16, 0, portSamples)
	for range portSamples + maxFailedSamples {
		if s, err := sample(0); err == nil {
			samples = append(samples, s)
		}
		if len(samples) == portSamples || ctx.Err() != nil {
			break
		}
	}
	p := analyzePorts(samples, false)
	if p.Kind != DeltaRandom || ctx.Err() != nil {
		return p
	}
	for range 3 {
		base := uint16(seqPortLow + rand.IntN(seqPortHigh-seqPortLow-portSamples))
		seq := make([][2]uint16, 0, portSamples)
		for i := range portSamples {
			s, err := sample(base + uint16(i))
			if err != nil {
				break // taken, or dropped: try another block
			}
			seq = append(seq, s)
		}
		if len(seq) == portSamples {
			if q := analyzePorts(seq, true); q.Kind == DeltaDependent {
				return q
			}
			return p
		}
		if ctx.Err() != nil {
			break
		}
	}
	return p
}

// maxFailedSamples is how many failed mappings a port test tolerates
// before judging from fewer samples.
const maxFailedSamples = 3

// udpSample makes a fresh UDP mapping to server from local:port.
func udpSample(local netip.Addr, server netip.AddrPort) func(context.Context, uint16) ([2]uint16, error) {
	return func(ctx context.Context, port uint16) ([2]uint16, error) {
		c, err := Listen(ctx, netip.AddrPortFrom(local, port))
		if err != nil {
			return [2]uint16{}, err
		}
		defer c.Close()
		b, err := c.Bind(ctx, server, ChangeNone, netip.AddrPort{})
		if err != nil {
			return [2]uint16{}, err
		}
		return [2]uint16{c.LocalAddr().Port(), b.Mapped.Port()}, nil
	}
}

// tcpSample makes a fresh TCP mapping to server from local:port.
func tcpSample(local netip.Addr, server netip.AddrPort) func(context.Context, uint16) ([2]uint16, error) {
	return func(ctx context.Context, port uint16) ([2]uint16, error) {
		b, err := BindTCP(ctx, netip.AddrPortFrom(local, port), server)
		if err != nil {
			return [2]uint16{}, err
		}
		return [2]uint16{b.Local.Port(), b.Mapped.Port()}, nil
	}
}
