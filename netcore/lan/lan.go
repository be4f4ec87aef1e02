// Package lan finds P2PD nodes on the same local network without any
// server: each node multicasts a small beacon with its address every few
// seconds on every LAN interface, over IPv4 and over link-local IPv6, and
// listens for the others'. Two friends on one Wi-Fi, or on a network with
// no internet at all, find each other this way and connect over their LAN
// addresses. A network with only one of the two families still works.
package lan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"p2pd/netcore/addr"
)

const (
	// Port is the beacons' UDP port, the same for both families.
	Port = 41234
	// Every spaces a node's beacons: a newcomer is found within it, and a
	// LAN carries one small datagram per node, interface and family per
	// interval.
	Every = 2 * time.Second
	// maxBeacon bounds a beacon (an address is a few hundred bytes).
	maxBeacon = 2048
	// perSenderEvery rate-limits how often one sender's beacons are read
	// into a report: a flood of one beacon costs nothing downstream.
	perSenderEvery = 500 * time.Millisecond
	// maxSenders bounds the rate limiter's memory: a LAN has far fewer
	// nodes than this beaconing in one interval.
	maxSenders = 1024
)

// Group is the IPv4 multicast group of the beacons (administratively
// scoped: it stays on the local network).
var Group = netip.AddrFrom4([4]byte{239, 255, 112, 112})

// Group6 is the IPv6 multicast group of the beacons: link-local scope, so
// it never leaves the link and needs the interface to send on, and the
// transient flag, as IANA has not assigned it. The group ID spells "p2pd".
var Group6 = netip.MustParseAddr("ff12::7032:7064")

// magic starts every beacon.
var magic = []byte("P2PD-LAN1 ")

// Peer is a node found on the LAN.
type Peer struct {
	Address *addr.Address
	// From is where its beacon came from, for people to read: connecting
	// uses Address. An IPv6 link-local source keeps its zone (this host's
	// interface it was heard on), without which it could not be reached.
	From netip.Addr
	Seen time.Time
}

// Run announces self() (its text form; read again for each round of
// beacons, so an address that grows, say with a signaling broker reached
// late, is announced as it is now) on every multicast-capable interface,
// over IPv4 and IPv6, and reports every other node heard until ctx ends.
// A node is reported at most once per perSenderEvery however many
// interfaces and families carry its beacons. Beacons from self's key are
// ignored, as are ones that are not whole addresses. found may be called
// from several goroutines at once.
//
// Run fails only when it can listen on neither family; a host with IPv4
// only, or IPv6 only, beacons over what it has.
func Run(ctx context.Context, self func() *addr.Address, found func(Peer)) error {
	me := self()
	text, err := me.Encode()
	if err != nil {
		return fmt.Errorf("lan: this node's address: %w", err)
	}
	var own atomic.Pointer[string] // the text announced now
	own.Store(&text)
	ifs4, ifs6, err := multicastInterfaces()
	if err != nil {
		return fmt.Errorf("lan: listing network interfaces: %w", err)
	}
	var listeners []*net.UDPConn
	c4, err4 := listen("udp4", Group, ifs4, func(c net.PacketConn, ifi *net.Interface, g net.Addr) error {
		return ipv4.NewPacketConn(c).JoinGroup(ifi, g)
	})
	if err4 == nil {
		listeners = append(listeners, c4)
	}
	c6, err6 := listen("udp6", Group6, ifs6, func(c net.PacketConn, ifi *net.Interface, g net.Addr) error {
		return ipv6.NewPacketConn(c).JoinGroup(ifi, g)
	})
	if err6 == nil {
		listeners = append(listeners, c6)
	}
	if len(listeners) == 0 {
		return fmt.Errorf("lan: cannot listen for beacons over IPv4 (%w) or over IPv6 (%w)", err4, err6)
	}
	if err4 != nil {
		slog.Debug("lan: no IPv4 beacons", "err", err4)
	}
	if err6 != nil {
		slog.Debug("lan: no IPv6 beacons", "err", err6)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() {
		for _, c := range listeners {
			c.Close()
		}
	})
	lim := &limiter{every: perSenderEvery, last: map[string]time.Time{}}
	for _, c := range listeners {
		wg.Go(func() {
			buf := make([]byte, maxBeacon)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					if ctx.Err() == nil {
						slog.Debug("lan: stopped hearing beacons", "on", c.LocalAddr(), "err", err)
					}
					return
				}
				rest, ok := bytes.CutPrefix(buf[:n], magic)
				// One node's beacons arrive over every family and interface
				// it shares with this one, from as many source addresses,
				// all with the same text: that text is the sender.
				if !ok || string(rest) == *own.Load() || !lim.allow(rest, time.Now()) {
					continue
				}
				a, err := addr.Parse(string(rest))
				if err != nil || a.Key.Equal(me.Key) {
					continue
				}
				found(Peer{Address: a, From: from.Addr().Unmap(), Seen: time.Now()})
			}
		})
	}

	var senders []*sender
	for _, ifi := range ifs4 {
		senders = appendSender(senders, ifi, newSender4)
	}
	for _, ifi := range ifs6 {
		senders = appendSender(senders, ifi, newSender6)
	}
	defer func() {
		for _, s := range senders {
			s.c.Close()
		}
	}()
	send := func() {
		if now, err := self().Encode(); err == nil && now != *own.Load() {
			own.Store(&now)
		}
		beacon := append(append([]byte(nil), magic...), *own.Load()...)
		for _, s := range senders {
			s.send(beacon) // a failed beacon is followed by the next
		}
	}
	send()
	t := time.NewTicker(Every)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			lim.prune(now)
			send()
		case <-ctx.Done():
			return nil
		}
	}
}

// listen opens one socket for network's beacon group, bound to Port and
// joined on every interface in ifs where joining works: it fails only
// if no interface joined.
func listen(network string, group netip.Addr, ifs []net.Interface, join func(net.PacketConn, *net.Interface, net.Addr) error) (*net.UDPConn, error) {
	if len(ifs) == 0 {
		family := "IPv6"
		if group.Is4() {
			family = "IPv4"
		}
		return nil, fmt.Errorf("no interface that is up and can multicast has an %s address", family)
	}
	g := &net.UDPAddr{IP: group.AsSlice(), Port: Port}
	var c *net.UDPConn
	var errs []error
	for _, ifi := range ifs {
		var err error
		if c == nil {
			// It binds the port for sharing with other programs, as on
			// one host both p2pd node and p2pd nearby listen.
			c, err = net.ListenMulticastUDP(network, &ifi, g)
		} else {
			err = join(c, &ifi, g)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("joining %s on %s: %w", group, ifi.Name, err))
		}
	}
	if c == nil {
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		slog.Debug("lan: no beacons on an interface", "err", err)
	}
	return c, nil
}

// limiter lets one sender's beacons through at most once per every.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	last  map[string]time.Time // by beacon text
}

// allow reports whether a beacon with text key, heard at now, is read.
func (l *limiter) allow(key []byte, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.last[string(key)]
	if ok && now.Sub(t) < l.every {
		return false
	}
	if !ok && len(l.last) >= maxSenders {
		return false // a flood of distinct beacons; prune makes room
	}
	l.last[string(key)] = now
	return true
}

// prune forgets the senders whose next beacon would be let through anyway.
func (l *limiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, t := range l.last {
		if now.Sub(t) >= l.every {
			delete(l.last, k)
		}
	}
}

// sender multicasts beacons out of one interface over one family.
type sender struct {
	c    net.PacketConn
	send func(beacon []byte) error
}

func appendSender(senders []*sender, ifi net.Interface, open func(net.Interface) (*sender, error)) []*sender {
	s, err := open(ifi)
	if err != nil {
		slog.Debug("lan: cannot send beacons", "err", err)
		return senders
	}
	return append(senders, s)
}

func newSender4(ifi net.Interface) (*sender, error) {
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("IPv4 beacons on %s: %w", ifi.Name, err)
	}
	pc := ipv4.NewPacketConn(c)
	// Out of this interface, and no further than this network.
	if err := errors.Join(pc.SetMulticastInterface(&ifi), pc.SetMulticastTTL(1)); err != nil {
		c.Close()
		return nil, fmt.Errorf("IPv4 beacons on %s: %w", ifi.Name, err)
	}
	dst := &net.UDPAddr{IP: Group.AsSlice(), Port: Port}
	return &sender{c, func(b []byte) error {
		_, err := pc.WriteTo(b, nil, dst)
		return err
	}}, nil
}

func newSender6(ifi net.Interface) (*sender, error) {
	c, err := net.ListenPacket("udp6", "[::]:0")
	if err != nil {
		return nil, fmt.Errorf("IPv6 beacons on %s: %w", ifi.Name, err)
	}
	pc := ipv6.NewPacketConn(c)
	// A link-local group exists per link: the interface says which one.
	if err := errors.Join(pc.SetMulticastInterface(&ifi), pc.SetMulticastHopLimit(1)); err != nil {
		c.Close()
		return nil, fmt.Errorf("IPv6 beacons on %s: %w", ifi.Name, err)
	}
	dst := &net.UDPAddr{IP: Group6.AsSlice(), Port: Port}
	return &sender{c, func(b []byte) error {
		_, err := pc.WriteTo(b, nil, dst)
		return err
	}}, nil
}

// multicastInterfaces lists the up, multicast-capable, non-loopback
// interfaces with an IPv4 address, and those with an IPv6 one.
func multicastInterfaces() (v4, v6 []net.Interface, err error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		has4, has6 := false, false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ipn.IP.To4() != nil {
					has4 = true
				} else {
					has6 = true
				}
			}
		}
		if has4 {
			v4 = append(v4, ifi)
		}
		if has6 {
			v6 = append(v6, ifi)
		}
	}
	return v4, v6, nil
}
