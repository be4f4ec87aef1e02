// Package relay reaches peers through TURN relays (RFC 8656, with the
// github.com/pion/turn/v2 client) when no direct path exists.
package relay

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v2"

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
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, allocateTimeout)
	defer cancel()
	ep, err := server.Endpoint()
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	// Resolve here, within ctx: pion resolves without a deadline.
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", ep.Host)
	if err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("TURN server %s: %w", ep, err)
	}
	serverAddr := netip.AddrPortFrom(ips[0].Unmap(), ep.Port)
	var conn net.PacketConn
	switch ep.Proto {
	case "tcp":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", serverAddr.String())
		if err != nil {
			return 0, netip.AddrPort{}, fmt.Errorf("TURN server %s: %w", ep, err)
		}
		conn = turn.NewSTUNConn(c)
	default:
		network := "udp4"
		if serverAddr.Addr().Is6() {
			network = "udp6"
		}
		if conn, err = net.ListenPacket(network, ":0"); err != nil {
			return 0, netip.AddrPort{}, err
		}
	}
	defer conn.Close()
	addr := serverAddr.String()
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Conn:           conn,
		Username:       server.User,
		Password:       server.Pass,
		Realm:          server.Realm,
		LoggerFactory:  quiet(),
	})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		return 0, netip.AddrPort{}, err
	}
	type result struct {
		c   net.PacketConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := client.Allocate()
		done <- result{c, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		// Closing the client ends the allocation's transactions.
		client.Close()
		conn.Close()
		<-done
		return 0, netip.AddrPort{}, fmt.Errorf("TURN server %s: no allocation within %v: %w", ep, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	if r.err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("TURN server %s: %w", ep, r.err)
	}
	took := time.Since(start)
	relayed, _ := netip.ParseAddrPort(r.c.LocalAddr().String())
	r.c.Close() // frees the allocation (a Refresh with lifetime 0)
	return took, relayed, nil
}

// quiet is a pion logger factory that logs nothing: P2PD reports errors
// itself.
func quiet() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}
