package stun

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"p2pd/netcore/pipe"
)

// maxTCPMessage bounds a STUN message read from a TCP stream: a Binding
// response is under 200 bytes, and a server announcing more is broken.
const maxTCPMessage = 2048

// BindTCP sends a Binding request over a new TCP connection from local
// (port 0: any; the port may be shared with other sockets, as mapping
// discovery needs) to server, and returns the answer. The connection is
// closed afterwards.
func BindTCP(ctx context.Context, local, server netip.AddrPort) (Binding, error) {
	start := time.Now()
	d := net.Dialer{Control: pipe.ReuseControl}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(local)
	}
	c, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return Binding{}, fmt.Errorf("STUN over TCP to %s: %w", server, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	id := newTxID()
	req, err := request(id, ChangeNone)
	if err != nil {
		return Binding{}, err
	}
	if _, err := c.Write(req); err != nil {
		return Binding{}, fmt.Errorf("STUN over TCP to %s: %w", server, err)
	}
	msg, err := readTCPMessage(c)
	if err != nil {
		return Binding{}, fmt.Errorf("STUN over TCP from %s: %w", server, err)
	}
	a, err := parseResponse(msg, id)
	if err != nil {
		return Binding{}, fmt.Errorf("STUN over TCP from %s: %w", server, err)
	}
	return Binding{
		Local:  addrPortOf(c.LocalAddr()),
		Server: server,
		From:   server,
		Mapped: a.mapped,
		Other:  a.other,
		RTT:    time.Since(start),
	}, nil
}

// readTCPMessage reads one STUN message: a 20-byte header whose bytes 2-3
// give the length of the attributes that follow.
func readTCPMessage(r io.Reader) ([]byte, error) {
	var hdr [20]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:4]))
	if n+len(hdr) > maxTCPMessage || n%4 != 0 {
		return nil, fmt.Errorf("STUN message of %d bytes is malformed", n+len(hdr))
	}
	msg := make([]byte, len(hdr)+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[len(hdr):]); err != nil {
		return nil, err
	}
	return msg, nil
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
