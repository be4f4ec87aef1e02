//go:build !linux

package punch

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

var errNoPrime = errors.New("priming SYNs with a low TTL needs Linux")

func primeDial(context.Context, netip.AddrPort, netip.AddrPort) (net.Conn, error) {
	return nil, errNoPrime
}

// IgnoreTimeExceeded is Linux only.
func IgnoreTimeExceeded(context.Context, uint16) (func(), error) { return nil, errNoPrime }
