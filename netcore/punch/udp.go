package punch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"p2pd/netcore/pipe"
	"p2pd/netcore/stun"
)

// UDP punching sends probes from one socket to every candidate endpoint of
// the peer and answers the peer's probes. A probe that arrives opens
// nothing by itself; an answer to one of ours proves the path works both
// ways, and the address it came from (peer-reflexive: where the peer's NAT
// really maps it) is where the session goes. The socket carries a QUIC
// transport from the start, so the session's handshake can arrive while
// the probes still fly; probes start with a byte QUIC never uses, and
// quic-go hands them over through ReadNonQUICPacket.

const (
	// probeEvery spaces probes to each candidate: cheap datagrams, and a
	// lost one is replaced before a round trip is over.
	probeEvery = 20 * time.Millisecond
	probeType  = 0x01
	answerType = 0x02
	maxToken   = 64
)

// probeMagic follows the type octet in every probe and answer.
var probeMagic = []byte("P2PDPNCH")

// UDPSocket is a UDP punching port and its external endpoint, with a QUIC
// transport on it for the session that follows.
type UDPSocket struct {
	tr       *quic.Transport
	local    netip.AddrPort
	external netip.AddrPort
}

// ListenUDP opens a UDP punching port on local (port 0: one the system
// picks) and learns its external endpoint with a STUN Binding from that
// port to server. An invalid server skips the binding: the external
// endpoint is then the local one (no NAT).
func ListenUDP(ctx context.Context, local, server netip.AddrPort) (*UDPSocket, error) {
	// Another socket may take the port between the binding's socket
	// closing and the punching socket opening: then again on another.
	for try := 1; ; try++ {
		s, err := listenUDP(ctx, local, server)
		if err == nil || !server.IsValid() || !errors.Is(err, syscall.EADDRINUSE) || try == 3 {
			return s, err
		}
	}
}

func listenUDP(ctx context.Context, local, server netip.AddrPort) (*UDPSocket, error) {
	external := netip.AddrPort{}
	if server.IsValid() {
		// The binding runs on its own socket, closed before the punching
		// socket takes the same port: the router's mapping outlives it.
		sc, err := stun.Listen(ctx, local)
		if err != nil {
			return nil, fmt.Errorf("punching port on %v: %w", local.Addr(), err)
		}
		b, err := sc.Bind(ctx, server, stun.ChangeNone, netip.AddrPort{})
		sc.Close()
		if err != nil {
			return nil, fmt.Errorf("learning the punching port's external endpoint: %w", err)
		}
		local, external = b.Local, b.Mapped
	}
	lc := net.ListenConfig{Control: pipe.ReuseControl}
	network := "udp4"
	if local.Addr().Is6() {
		network = "udp6"
	}
	pc, err := lc.ListenPacket(ctx, network, local.String())
	if err != nil {
		return nil, fmt.Errorf("punching port on %v: %w", local, err)
	}
	s := &UDPSocket{tr: &quic.Transport{Conn: pc}, local: pc.LocalAddr().(*net.UDPAddr).AddrPort()}
	s.external = s.local
	if external.IsValid() {
		s.external = external
	}
	return s, nil
}

// Local returns the punching port's local address.
func (s *UDPSocket) Local() netip.AddrPort { return s.local }

// External returns the punching port's endpoint as the STUN server saw it.
func (s *UDPSocket) External() netip.AddrPort { return s.external }

// Transport returns the QUIC transport on the socket. A session made on it
// (netcore/session.ClientQUIC or ServerQUIC) takes it over, socket
// included; until then Close frees both.
func (s *UDPSocket) Transport() *quic.Transport { return s.tr }

// Close closes the transport and the socket.
func (s *UDPSocket) Close() error {
	s.tr.Close()
	return s.tr.Conn.Close()
}

// Probing tunes RunUDP.
type Probing struct {
	// Token tells this punch's probes from others (1 to 64 bytes).
	Token []byte
	// Start is when probing starts (local time; zero: at once).
	Start time.Time
	// Every spaces the probes to each candidate (0: every 20 ms).
	Every time.Duration
}

// RunUDP punches from s to the peer's candidate endpoints until ctx ends.
// It answers every probe of the peer, and probes the address it came from
// at once (a triggered check, as ICE does: the answer is the proof this
// side needs), and calls found, once, with the first address whose
// answer proves the path both ways. With no candidates it only answers
// and checks back: the side a peer sprays (see Spray). It keeps answering until ctx ends,
// as the peer may still wait for its proof, so end ctx once the session
// is made. It does not close s.
func RunUDP(ctx context.Context, s *UDPSocket, peer []netip.AddrPort, p Probing, found func(netip.AddrPort)) error {
	token := p.Token
	if len(token) == 0 || len(token) > maxToken {
		return fmt.Errorf("punch: token of %d bytes, want 1 to %d", len(token), maxToken)
	}
	every := p.Every
	if every <= 0 {
		every = probeEvery
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		cands   = append([]netip.AddrPort(nil), peer...)
		proven  netip.AddrPort
		probes  int
		lastErr error
		heard   bool // a probe of the peer arrived
	)
	probe, answer := packet(probeType, token), packet(answerType, token)

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := s.tr.ReadNonQUICPacket(ctx, buf)
			if err != nil {
				return
			}
			typ, ok := parse(buf[:n], token)
			ua, isUDP := from.(*net.UDPAddr)
			if !ok || !isUDP {
				continue
			}
			src := ua.AddrPort()
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			switch typ {
			case probeType:
				to := net.UDPAddrFromAddrPort(src)
				s.tr.WriteTo(answer, to)
				mu.Lock()
				heard = true
				fresh := !slices.Contains(cands, src)
				if fresh {
					cands = append(cands, src)
				}
				mu.Unlock()
				if fresh {
					s.tr.WriteTo(probe, to)
				}
			case answerType:
				mu.Lock()
				first := !proven.IsValid()
				if first {
					proven = src
				}
				mu.Unlock()
				if first {
					found(src)
				}
			}
		}
	})

	select {
	case <-time.After(time.Until(p.Start)):
	case <-ctx.Done():
		return fmt.Errorf("punch to %v: %w", peer, ctx.Err())
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		mu.Lock()
		done := proven.IsValid()
		targets := append([]netip.AddrPort(nil), cands...)
		mu.Unlock()
		if !done {
			for _, c := range targets {
				if _, err := s.tr.WriteTo(probe, net.UDPAddrFromAddrPort(c)); err != nil {
					mu.Lock()
					lastErr = err
					mu.Unlock()
				}
				probes++
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			switch {
			case proven.IsValid():
				return nil
			case lastErr != nil:
				return fmt.Errorf("punch to %v: %w", peer, lastErr)
			case heard:
				return fmt.Errorf("punch to %v: the peer's probes arrived, but no answer to %d of ours", peer, probes)
			}
			return fmt.Errorf("punch to %v: nothing came back from %d probes", peer, probes)
		}
	}
}

func packet(typ byte, token []byte) []byte {
	return append(append([]byte{typ}, probeMagic...), token...)
}

// parse returns a punching packet's type if it carries token.
func parse(b, token []byte) (byte, bool) {
	if len(b) < 1+len(probeMagic) || (b[0] != probeType && b[0] != answerType) {
		return 0, false
	}
	rest, ok := bytes.CutPrefix(b[1:], probeMagic)
	return b[0], ok && bytes.Equal(rest, token)
}
