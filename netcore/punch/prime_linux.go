package punch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// primeDial connects from local to remote with a first SYN that dies on
// the way (TTL primeTTL): it opens this side's NAT and filter for remote
// without reaching the peer's router, which would answer it with a reset.
// Later segments leave with the normal TTL. The connection completes when
// the peer's own SYN arrives (simultaneous open); primeDial returns then,
// or when ctx ends. The ICMP time-exceeded error the priming SYN provokes
// would abort the connect: IgnoreTimeExceeded must be in force.
func primeDial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	domain, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TTL
	if local.Addr().Is6() {
		domain, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, fmt.Errorf("priming socket: %w", err)
	}
	owned := true
	defer func() {
		if owned {
			unix.Close(fd)
		}
	}()
	for _, o := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			return nil, fmt.Errorf("priming socket: %w", err)
		}
	}
	if err := unix.Bind(fd, sockaddr(local)); err != nil {
		return nil, fmt.Errorf("priming socket on %v: %w", local, err)
	}
	if err := unix.SetsockoptInt(fd, level, opt, primeTTL); err != nil {
		return nil, fmt.Errorf("priming socket: %w", err)
	}
	if err := unix.Connect(fd, sockaddr(remote)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return nil, fmt.Errorf("priming %v: %w", remote, err)
	}
	// -1: the system's default TTL, for everything after the first SYN.
	if err := unix.SetsockoptInt(fd, level, opt, -1); err != nil {
		return nil, fmt.Errorf("priming socket: %w", err)
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int(pollEvery/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("priming %v: %w", remote, err)
		}
		if n > 0 {
			soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soErr != 0 {
				err = unix.Errno(soErr)
			}
			if err != nil {
				return nil, fmt.Errorf("priming %v: %w", remote, err)
			}
			f := os.NewFile(uintptr(fd), "primed")
			owned = false
			defer f.Close() // FileConn holds its own copy
			return net.FileConn(f)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// pollEvery is how often a pending priming connect checks ctx.
const pollEvery = 20 * time.Millisecond

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// IgnoreTimeExceeded asks the host's firewall (nftables: needs the nft
// command and CAP_NET_ADMIN) to drop ICMP time-exceeded errors about TCP
// segments from local port port: the errors priming SYNs provoke, which
// would otherwise abort the connect. The returned func removes the rule.
func IgnoreTimeExceeded(ctx context.Context, port uint16) (func(), error) {
	table := fmt.Sprintf("p2pd_punch_%d_%d", os.Getpid(), port)
	// The error quotes the segment after the ICMP header (8 octets) and
	// its IP header (20 octets for IPv4, 40 for IPv6): the TCP source port
	// comes first.
	script := fmt.Sprintf(`table inet %s {
	chain input {
		type filter hook input priority -300; policy accept;
		icmp type time-exceeded @th,224,16 %d drop
		icmpv6 type time-exceeded @th,384,16 %d drop
	}
}
`, table, port, port)
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = bytes.NewBufferString(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the host firewall would not ignore ICMP time-exceeded for port %d (needs nft and root): %w: %s", port, err, bytes.TrimSpace(out))
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "nft", "delete", "table", "inet", table).Run()
	}, nil
}
