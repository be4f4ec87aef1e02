package natlab

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"p2pd/netcore/netns"
)

// startSkewedNTP answers NTP client requests on addr (in the inet
// namespace) with a clock running offset ahead. All namespaces share the
// machine's one clock, so this is how a lab node meets a wrong clock.
func (l *Lab) startSkewedNTP(addr netip.AddrPort, offset time.Duration) error {
	var pc net.PacketConn
	err := netns.Do(l.Inet, func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr.String())
		return err
	})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveNTP(pc, offset)
	}()
	l.mu.Lock()
	l.stops = append(l.stops, func() { pc.Close(); <-done })
	l.mu.Unlock()
	return nil
}

// ntpEpoch is 1900-01-01, where NTP timestamps start.
var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

func ntpTime(t time.Time) uint64 {
	d := t.Sub(ntpEpoch)
	secs := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// serveNTP answers NTPv3/v4 client packets (RFC 5905) until pc is closed.
func serveNTP(pc net.PacketConn, offset time.Duration) {
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		recv := time.Now().Add(offset)
		if n < 48 || buf[0]&7 != 3 { // mode 3: client
			continue
		}
		version := buf[0] >> 3 & 7
		var resp [48]byte
		resp[0] = version<<3 | 4                         // leap 0, mode 4: server
		resp[1] = 2                                      // stratum: synchronised to a stratum-1 clock
		resp[2] = buf[2]                                 // poll
		resp[3] = 0xec                                   // precision: 2^-20 s
		binary.BigEndian.PutUint32(resp[4:], 1<<16/1000) // root delay 1 ms
		binary.BigEndian.PutUint32(resp[8:], 1<<16/1000) // root dispersion 1 ms
		copy(resp[12:16], []byte{203, 0, 113, 2})        // reference id: its "upstream"
		binary.BigEndian.PutUint64(resp[16:], ntpTime(recv.Add(-time.Second)))
		copy(resp[24:32], buf[40:48]) // originate = the client's transmit time
		binary.BigEndian.PutUint64(resp[32:], ntpTime(recv))
		binary.BigEndian.PutUint64(resp[40:], ntpTime(time.Now().Add(offset)))
		pc.WriteTo(resp[:], from)
	}
}
