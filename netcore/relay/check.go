// Package relay reaches peers through TURN relays (RFC 8656, with the
// github.com/pion/turn/v2 client) when no direct path exists: a UDP
// allocation is a datagram path ([Allocation]), a TCP allocation (RFC
// 6062) a stream per peer ([TCPAllocation]).
package relay

import (
	"context"
	"net/netip"
	"time"

	"p2pd/netcore/config"
)

// allocateTimeout bounds an allocation: two or three exchanges (the first
// is refused for credentials, as RFC 8656 has it), a few round trips to a
// public relay.
const allocateTimeout = 2 * time.Second

// Check allocates a relay address on server with its credentials, then
// frees it: the proof that the relay works for us. It returns how long the
// allocation took and the relayed address.
func Check(ctx context.Context, server config.TURN) (time.Duration, netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, allocateTimeout)
	defer cancel()
	start := time.Now()
	a, err := Allocate(ctx, server, netip.Addr{})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	took := time.Since(start)
	relayed := a.Relayed()
	a.Close()
	return took, relayed, nil
}

// CheckTCP allocates a TCP relay address on server (RFC 6062), then frees
// it, and returns how long the allocation took: whether the server relays
// TCP, the fast way for relayed transfers (and the only one from a
// network that lets no UDP out).
func CheckTCP(ctx context.Context, server config.TURN) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, allocateTimeout)
	defer cancel()
	start := time.Now()
	a, err := AllocateTCP(ctx, server)
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	return took, a.Close()
}
