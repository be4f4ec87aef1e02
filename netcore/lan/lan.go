// Package lan finds P2PD nodes on the same local network without any
// server: each node multicasts a small beacon with its address every few
// seconds on every IPv4 LAN interface, and listens for the others'. Two
// friends on one Wi-Fi, or on a network with no internet at all, find
// each other this way and connect over their LAN addresses.
package lan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"

	"p2pd/netcore/addr"
)

const (
	// Port is the beacons' UDP port.
	Port = 41234
	// Every spaces a node's beacons: a newcomer is found within it, and a
	// LAN carries one small datagram per node per interval.
	Every = 2 * time.Second
	// maxBeacon bounds a beacon (an address is a few hundred bytes).
	maxBeacon = 2048
	// perSenderEvery rate-limits how often one sender's beacons are read
	// into a report: a flood from one host costs nothing downstream.
	perSenderEvery = 500 * time.Millisecond
)

// Group is the IPv4 multicast group of the beacons (administratively
// scoped: it stays on the local network).
var Group = netip.AddrFrom4([4]byte{239, 255, 112, 112})

// magic starts every beacon.
var magic = []byte("P2PD-LAN1 ")

// Peer is a node found on the LAN.
type Peer struct {
	Address *addr.Address
	From    netip.Addr // where its beacon came from
	Seen    time.Time
}

// Run announces self (its text form) on every multicast-capable IPv4
// interface and reports every other node heard, at most once per
// sender per perSenderEvery, until ctx ends. Beacons from self's key are
// ignored, as are ones that are not whole addresses.
func Run(ctx context.Context, self *addr.Address, found func(Peer)) error {
	text, err := self.Encode()
	if err != nil {
		return err
	}
	beacon := append(append([]byte(nil), magic...), text...)
	ifs, err := multicastInterfaces()
	if err != nil {
		return err
	}
	if len(ifs) == 0 {
		return errors.New("lan: no interface that can multicast")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listeners []*net.UDPConn
	for _, ifi := range ifs {
		c, err := net.ListenMulticastUDP("udp4", &ifi, &net.UDPAddr{IP: Group.AsSlice(), Port: Port})
		if err != nil {
			continue
		}
		listeners = append(listeners, c)
	}
	if len(listeners) == 0 {
		return errors.New("lan: could not join the beacon group on any interface")
	}
	context.AfterFunc(ctx, func() {
		for _, c := range listeners {
			c.Close()
		}
	})
	var mu sync.Mutex
	last := map[netip.Addr]time.Time{}
	for _, c := range listeners {
		wg.Go(func() {
			buf := make([]byte, maxBeacon)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				rest, ok := bytes.CutPrefix(buf[:n], magic)
				src := from.Addr().Unmap()
				if !ok {
					continue
				}
				mu.Lock()
				if time.Since(last[src]) < perSenderEvery {
					mu.Unlock()
					continue
				}
				last[src] = time.Now()
				mu.Unlock()
				a, err := addr.Parse(string(rest))
				if err != nil || a.Key.Equal(self.Key) {
					continue
				}
				found(Peer{Address: a, From: src, Seen: time.Now()})
			}
		})
	}
	var senders []*sender
	for _, ifi := range ifs {
		if snd, err := newSender(ifi); err == nil {
			senders = append(senders, snd)
			defer snd.c.Close()
		}
	}
	send := func() {
		for _, snd := range senders {
			snd.send(beacon) // a failed beacon is followed by the next
		}
	}
	send()
	t := time.NewTicker(Every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			send()
		case <-ctx.Done():
			return nil
		}
	}
}

// sender multicasts beacons out of one interface.
type sender struct {
	pc *ipv4.PacketConn
	c  net.PacketConn
}

func newSender(ifi net.Interface) (*sender, error) {
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	pc := ipv4.NewPacketConn(c)
	// Out of this interface, and no further than this network.
	if err := errors.Join(pc.SetMulticastInterface(&ifi), pc.SetMulticastTTL(1)); err != nil {
		c.Close()
		return nil, fmt.Errorf("lan: beacons on %s: %w", ifi.Name, err)
	}
	return &sender{pc, c}, nil
}

func (s *sender) send(beacon []byte) error {
	_, err := s.pc.WriteTo(beacon, nil, &net.UDPAddr{IP: Group.AsSlice(), Port: Port})
	return err
}

// multicastInterfaces lists the up, multicast-capable, non-loopback
// interfaces with an IPv4 address.
func multicastInterfaces() ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				out = append(out, ifi)
				break
			}
		}
	}
	return out, nil
}
