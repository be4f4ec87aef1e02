package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"p2pd/netcore/natlab"
	"p2pd/netcore/stun"
)

// externalIP is this host's external address, from a STUN Binding with
// the lab's server.
func externalIP(ctx context.Context) (netip.Addr, error) {
	sc, err := stun.Listen(ctx, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	if err != nil {
		return netip.Addr{}, err
	}
	defer sc.Close()
	bind, err := sc.Bind(ctx, netip.AddrPortFrom(natlab.ServerIP1, 3478), stun.ChangeNone, netip.AddrPort{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("learning the external address: %w", err)
	}
	return bind.Mapped.Addr(), nil
}

// tcpResult is what a "tcp" child reports.
type tcpResult struct {
	Relayed       string        // a: the relayed address
	EarlyAccept   time.Duration // a: how long Accept waited with no permitted peer
	EarlyRefused  string        // b: what its connection before the permit got
	Echoed        int           // b: bytes echoed back intact
	AfterClose    string        // b: what its connection got once a freed the allocation
	AfterCloseIn  time.Duration
	AllocateTook  time.Duration
	AcceptedFrom  string        // a: the peer's address as the server reports it
	PermRefreshes uint32        // a: permissions refreshed meanwhile, every 200 ms
	Close         time.Duration // a: Close, after b's later connections
	External      string        // b: its external IP
}

// TestTCPAllocation: host A (behind a port-restricted NAT) allocates a TCP
// relay on coturn; host B connects to it by plain TCP. Before A permits
// B, B's connection is refused and A's Accept ends with its context;
// after it, bytes go both ways intact; when A closes the allocation, B's
// connection ends. Neither child leaks goroutines.
func TestTCPAllocation(t *testing.T) {
	l := natlab.New(t, natlab.Config{
		A:    natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF},
		B:    natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF},
		TURN: true,
	})
	outs := runBoth(t, l, "tcp", labURL, labURL)
	var a, b tcpResult
	for me, r := range map[string]*tcpResult{"a": &a, "b": &b} {
		if err := json.Unmarshal(outs[me], r); err != nil {
			t.Fatalf("%s printed %q: %v", me, outs[me], err)
		}
	}
	t.Logf("a: relayed %s in %v, accepted a connection from %s, %d permission refreshes, Close %v; b: external %s, before the permit %q, echoed %d bytes, after Close %q in %v",
		a.Relayed, a.AllocateTook.Round(time.Millisecond), a.AcceptedFrom, a.PermRefreshes, a.Close.Round(time.Millisecond), b.External, b.EarlyRefused, b.Echoed, b.AfterClose, b.AfterCloseIn.Round(time.Millisecond))
	if !strings.HasPrefix(a.Relayed, natlab.ServerIP1.String()+":") {
		t.Errorf("relayed address %s, want one on %v", a.Relayed, natlab.ServerIP1)
	}
	if a.EarlyAccept < time.Second || a.EarlyAccept > 2*time.Second {
		t.Errorf("Accept with no permitted peer returned after %v, want its context's 1.5 s", a.EarlyAccept)
	}
	if b.EarlyRefused == "" {
		t.Error("a connection before the permit was not refused")
	}
	if b.Echoed != tcpEchoSize {
		t.Errorf("%d of %d bytes came back", b.Echoed, tcpEchoSize)
	}
	if a.Close > time.Second {
		t.Errorf("Close took %v after %d unaccepted connections", a.Close, 2*laterConns)
	}
	if a.PermRefreshes == 0 {
		t.Error("the permission was not refreshed")
	}
	if b.AfterClose == "" || b.AfterCloseIn > 3*time.Second {
		t.Errorf("after the allocation was freed b's connection got %q in %v", b.AfterClose, b.AfterCloseIn)
	}
}

// laterConns is how many connection attempts pion queues for an Accept.
const laterConns = 10

// tcpEchoSize is what b sends through the relay and a echoes back.
const tcpEchoSize = 8 << 20

// childTCP runs one side of TestTCPAllocation; args are dir, me, peer, URL.
func childTCP(args []string) error {
	dir, me := args[0], args[1]
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var res tcpResult
	var err error
	if me == "a" {
		err = tcpAllocSide(ctx, dir, args[3], &res)
	} else {
		err = tcpPeerSide(ctx, dir, &res)
	}
	if err != nil {
		return err
	}
	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("after Close: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func tcpAllocSide(ctx context.Context, dir, url string, res *tcpResult) error {
	start := time.Now()
	a, err := AllocateTCP(ctx, labTURN(url))
	if err != nil {
		return err
	}
	defer a.Close()
	res.AllocateTook, res.Relayed = time.Since(start), a.Relayed().String()
	if err := publish(dir, "a.addr", a.Relayed().String()); err != nil {
		return err
	}
	ip, err := await(ctx, dir, "b.ip")
	if err != nil {
		return err
	}
	// b tries before the permit: nothing may reach Accept.
	start = time.Now()
	early, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	c, err := a.Accept(early)
	cancel()
	res.EarlyAccept = time.Since(start)
	if err == nil {
		c.Close()
		return errors.New("accepted a peer that was not permitted")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("Accept with no permitted peer: %w", err)
	}
	peer, err := netip.ParseAddr(ip)
	if err != nil {
		return err
	}
	a.perms.every = 200 * time.Millisecond
	if err := a.Permit(ctx, peer); err != nil {
		return err
	}
	if err := publish(dir, "a.permitted", ""); err != nil {
		return err
	}
	c, err = a.Accept(ctx)
	if err != nil {
		return err
	}
	a.Refuse() // b's later connections
	res.AcceptedFrom = c.RemoteAddr().String()
	if _, err := io.CopyN(c, c, tcpEchoSize); err != nil {
		c.Close()
		return fmt.Errorf("echoing: %w", err)
	}
	if _, err := await(ctx, dir, "b.echoed"); err != nil {
		c.Close()
		return err
	}
	for wait := time.Now(); a.perms.refreshes.Load() == 0 && time.Since(wait) < 2*time.Second; {
		time.Sleep(20 * time.Millisecond)
	}
	res.PermRefreshes = a.perms.refreshes.Load()
	time.Sleep(200 * time.Millisecond) // the server announces b's later connections
	// Freeing the allocation ends the connection through it.
	start = time.Now()
	err = a.Close()
	res.Close = time.Since(start)
	c.Close()
	return err
}

func tcpPeerSide(ctx context.Context, dir string, res *tcpResult) error {
	ext, err := externalIP(ctx)
	if err != nil {
		return err
	}
	res.External = ext.String()
	relayed, err := await(ctx, dir, "a.addr")
	if err != nil {
		return err
	}
	if err := publish(dir, "b.ip", res.External); err != nil {
		return err
	}
	var d net.Dialer
	// Not permitted yet: the server refuses or closes the connection.
	if c, err := d.DialContext(ctx, "tcp4", relayed); err != nil {
		res.EarlyRefused = err.Error()
	} else {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		_, err := c.Read(make([]byte, 1))
		c.Close()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("the connection before the permit stayed open: %v", err)
		}
		res.EarlyRefused = err.Error()
	}
	if _, err := await(ctx, dir, "a.permitted"); err != nil {
		return err
	}
	c, err := d.DialContext(ctx, "tcp4", relayed)
	if err != nil {
		return err
	}
	defer c.Close()
	if res.Echoed, err = echoed(c, 7); err != nil {
		return err
	}
	// More connections than pion queues for an Accept: nobody accepts
	// them, and they must not stall the allocation.
	for range 2 * laterConns {
		if late, err := d.DialContext(ctx, "tcp4", relayed); err == nil {
			defer late.Close()
		}
	}
	if err := publish(dir, "b.echoed", ""); err != nil {
		return err
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	res.AfterCloseIn = time.Since(start)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		res.AfterClose = err.Error()
	}
	return nil
}

// tcpDialResult is what a "tcpdial" child reports.
type tcpDialResult struct {
	Relayed      string // its relayed address
	AcceptedFrom string // a: where the accepted connection came from
	EarlyErr     string // b: what Dial got before a permitted b's relay
	EarlyIn      time.Duration
	Echoed       int           // b: bytes echoed back intact
	CancelIn     time.Duration // b: how long a Dial took to return once its context ended
}

// TestTCPAllocationDial: relay to relay over TCP. B's router lets out
// nothing but TCP to the TURN server's port; B allocates a TCP relay over
// it and dials A's relayed TCP address through it (RFC 6062 Connect).
// Before A permits B's relayed IP the dial fails, quickly; after, A
// accepts a connection from B's relayed address and bytes go both ways
// intact; a Dial whose context ends returns at once. Neither child leaks
// goroutines.
func TestTCPAllocationDial(t *testing.T) {
	l := natlab.New(t, natlab.Config{
		A:    natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF},
		B:    natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF},
		TURN: true,
	})
	for _, rule := range []string{
		`iifname "lan" oifname "wan" meta l4proto udp drop`,
		`iifname "lan" oifname "wan" tcp dport != 3478 drop`,
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		out, err := l.Exec(ctx, l.B.Router, "nft", "insert", "rule", "inet", "fw", "forward", rule)
		cancel()
		if err != nil {
			t.Fatalf("firewalling B: %v %s", err, out)
		}
	}
	outs := runBoth(t, l, "tcpdial", labURL, labURL)
	var a, b tcpDialResult
	for me, r := range map[string]*tcpDialResult{"a": &a, "b": &b} {
		if err := json.Unmarshal(outs[me], r); err != nil {
			t.Fatalf("%s printed %q: %v", me, outs[me], err)
		}
	}
	t.Logf("a: relayed %s, accepted from %s; b: relayed %s, before the permit %q in %v, echoed %d bytes, a cancelled Dial returned in %v",
		a.Relayed, a.AcceptedFrom, b.Relayed, b.EarlyErr, b.EarlyIn.Round(time.Millisecond), b.Echoed, b.CancelIn.Round(time.Millisecond))
	if a.AcceptedFrom != b.Relayed {
		t.Errorf("a accepted a connection from %s, want b's relayed address %s", a.AcceptedFrom, b.Relayed)
	}
	if b.EarlyErr == "" || b.EarlyIn > 5*time.Second {
		t.Errorf("a Dial before the permit got %q in %v", b.EarlyErr, b.EarlyIn)
	}
	if b.Echoed != tcpEchoSize {
		t.Errorf("%d of %d bytes came back", b.Echoed, tcpEchoSize)
	}
	if b.CancelIn < 0 || b.CancelIn > time.Second {
		t.Errorf("a Dial returned %v after its context ended", b.CancelIn)
	}
}

// childTCPDial runs one side of TestTCPAllocationDial; args are dir, me,
// peer, URL.
func childTCPDial(args []string) error {
	dir, me, url := args[0], args[1], args[3]
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var res tcpDialResult
	err := func() error {
		ta, err := AllocateTCP(ctx, labTURN(url))
		if err != nil {
			return err
		}
		defer ta.Close()
		res.Relayed = ta.Relayed().String()
		if err := publish(dir, me+".addr", res.Relayed); err != nil {
			return err
		}
		peer, err := await(ctx, dir, map[string]string{"a": "b", "b": "a"}[me]+".addr")
		if err != nil {
			return err
		}
		to, err := netip.ParseAddrPort(peer)
		if err != nil {
			return err
		}
		if me == "a" {
			return tcpDialAccept(ctx, dir, ta, to, &res)
		}
		return tcpDialPeer(ctx, dir, ta, to, &res)
	}()
	if err != nil {
		return err
	}
	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("after Close: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// tcpDialAccept tells its external IP, permits b's relay once b tried
// without, accepts its connection and echoes it.
func tcpDialAccept(ctx context.Context, dir string, ta *TCPAllocation, peer netip.AddrPort, res *tcpDialResult) error {
	ext, err := externalIP(ctx)
	if err != nil {
		return err
	}
	if err := publish(dir, "a.ext", ext.String()); err != nil {
		return err
	}
	if _, err := await(ctx, dir, "b.tried"); err != nil {
		return err
	}
	if err := ta.Permit(ctx, peer.Addr()); err != nil {
		return err
	}
	if err := publish(dir, "a.permitted", ""); err != nil {
		return err
	}
	c, err := ta.Accept(ctx)
	if err != nil {
		return err
	}
	ta.Refuse()
	defer c.Close()
	res.AcceptedFrom = c.RemoteAddr().String()
	if _, err := io.CopyN(c, c, tcpEchoSize); err != nil {
		return fmt.Errorf("echoing: %w", err)
	}
	_, err = await(ctx, dir, "b.echoed")
	return err
}

// closedAtOnce returns why c ended if it ends within 3 s without data,
// or nil if it stays open or carries data.
func closedAtOnce(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// tcpDialPeer dials a's relayed address through its own relay: once
// before a permits it, then for the echo, then with a context that ends
// while the dial waits.
func tcpDialPeer(ctx context.Context, dir string, ta *TCPAllocation, to netip.AddrPort, res *tcpDialResult) error {
	start := time.Now()
	early, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := ta.Dial(early, to)
	cancel()
	res.EarlyIn = time.Since(start)
	if err == nil {
		// coturn's connect to a's relayed port completes in the kernel
		// before a's side checks the permission, so the Connect may
		// succeed; the relay then closes the connection at once.
		err = closedAtOnce(c)
		c.Close()
		if err == nil {
			return errors.New("a dial before the permit got through")
		}
		err = fmt.Errorf("connected, then closed by the relay: %w", err)
	}
	res.EarlyErr = err.Error()
	if err := publish(dir, "b.tried", ""); err != nil {
		return err
	}
	if _, err := await(ctx, dir, "a.permitted"); err != nil {
		return err
	}
	c, err = ta.Dial(ctx, to)
	if err != nil {
		return err
	}
	defer c.Close()
	if res.Echoed, err = echoed(c, 13); err != nil {
		return err
	}
	if err := publish(dir, "b.echoed", ""); err != nil {
		return err
	}
	// A context that ends during the dial (to a port a's router drops
	// connections to: coturn waits for its connect) ends the dial at once.
	ext, err := await(ctx, dir, "a.ext")
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(ext)
	if err != nil {
		return err
	}
	short, cancel := context.WithCancel(ctx)
	start = time.Now() // before the timer starts: it cannot end ctx sooner
	time.AfterFunc(100*time.Millisecond, cancel)
	if c, err := ta.Dial(short, netip.AddrPortFrom(ip, 9)); err == nil {
		c.Close()
		return errors.New("a dial to nowhere got through")
	}
	res.CancelIn = time.Since(start) - 100*time.Millisecond
	cancel()
	return nil
}

// echoBlock is what echoed sends before it reads the echo back.
const echoBlock = 256 << 10

// echoed sends tcpEchoSize bytes (a pattern made with seed) over c, a
// block at a time, reading each block's echo before the next, and returns
// how many came back intact: all, or 0. Block by block, because coturn
// (4.6.1) stalls a relayed TCP connection that is full both ways at once:
// with 8 MiB in flight each way and a slow (race-checked) peer it stopped
// forwarding either way in 3 runs of 4.
func echoed(c net.Conn, seed int) (int, error) {
	data := make([]byte, tcpEchoSize)
	for i := range data {
		data[i] = byte(i * seed >> 5)
	}
	got := make([]byte, tcpEchoSize)
	for off := 0; off < len(data); off += echoBlock {
		if _, err := c.Write(data[off : off+echoBlock]); err != nil {
			return 0, fmt.Errorf("sending: %w", err)
		}
		if _, err := io.ReadFull(c, got[off:off+echoBlock]); err != nil {
			return 0, fmt.Errorf("reading the echo: %w", err)
		}
	}
	if !bytes.Equal(got, data) {
		return 0, nil
	}
	return len(got), nil
}
