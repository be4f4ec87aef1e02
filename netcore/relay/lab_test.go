package relay

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
)

func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{
		"pair":      childPair,
		"errors":    childErrors,
		"lifecycle": childLifecycle,
		"quic":      childQUIC,
		"quicbench": childQUICBench,
		"tcp":       childTCP,
		"tcpdial":   childTCPDial,
	})
	goleak.VerifyTestMain(m)
}

// labURL is the lab's TURN server.
const labURL = "turn:203.0.113.1:3478"

func labTURN(url string) config.TURN {
	return config.TURN{URL: url, User: natlab.TURNUser, Pass: natlab.TURNPass, Realm: natlab.TURNRealm}
}

// publish writes value to dir/name for another process, atomically.
func publish(dir, name, value string) error {
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(value), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// await waits for another process to publish dir/name and returns it.
func await(ctx context.Context, dir, name string) (string, error) {
	for {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			return string(b), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// payload is datagram seq from sender: 'd', its number, then bytes
// derived from both, 100 to 1199 bytes long.
func payload(sender string, seq int) []byte {
	p := make([]byte, 100+seq*37%1100)
	p[0] = 'd'
	binary.BigEndian.PutUint32(p[1:], uint32(seq))
	for i := 5; i < len(p); i++ {
		p[i] = byte(i*7 + seq*13 + int(sender[0]))
	}
	return p
}

// window is how many datagrams a side sends ahead of the peer's
// acknowledgements. coturn's relay sockets have 128 KiB receive buffers
// (64 KiB asked for, doubled by Linux): an unpaced burst of 200 datagrams
// overflows them when coturn's relay thread falls behind, which counts as
// UdpRcvbufErrors in the server's namespace, not as a relay defect. A
// window keeps the test to what a congestion-controlled sender (QUIC)
// does, and every datagram must still arrive, none resent.
const window = 16

// exchange sends count datagrams to peer through pc while receiving the
// peer's count, acknowledging every 4th and the last with 'a' and the
// number received.
func exchange(pc net.PacketConn, peer netip.AddrPort, me, peerName string, count int, res *pairResult) error {
	acked := make(chan int, count+1) // the peer's acknowledgements, for the sender
	recvDone := make(chan error, 1)
	to := net.UDPAddrFromAddrPort(peer)
	go func() {
		recvDone <- func() error {
			seen := make([]bool, count)
			buf := make([]byte, 2048)
			pc.SetReadDeadline(time.Now().Add(10 * time.Second))
			last, peerAcked := -1, 0
			for res.Received < count || peerAcked < count {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return fmt.Errorf("after %d of %d datagrams, %d of ours acknowledged: %w", res.Received, count, peerAcked, err)
				}
				if f, _ := netip.ParseAddrPort(from.String()); f.Addr().Unmap() != peer.Addr() || f.Port() != peer.Port() {
					return fmt.Errorf("datagram from %v, want %v", from, peer)
				}
				if n == 5 && buf[0] == 'a' {
					peerAcked = max(peerAcked, int(binary.BigEndian.Uint32(buf[1:])))
					acked <- peerAcked
					continue
				}
				seq := int(binary.BigEndian.Uint32(buf[1:]))
				if n < 5 || seq >= count || !bytes.Equal(buf[:n], payload(peerName, seq)) {
					return fmt.Errorf("datagram %d (%d bytes) differs from what %s sent", seq, n, peerName)
				}
				if seen[seq] {
					res.Dups++
					continue
				}
				if seq < last {
					res.Reordered++
				}
				seen[seq], last = true, seq
				res.Received++
				if res.Received%4 == 0 || res.Received == count {
					ack := []byte{'a', 0, 0, 0, 0}
					binary.BigEndian.PutUint32(ack[1:], uint32(res.Received))
					if _, err := pc.WriteTo(ack, to); err != nil {
						return fmt.Errorf("acknowledging: %w", err)
					}
				}
			}
			return nil
		}()
	}()
	peerAcked := 0
	for i := range count {
		for i-peerAcked >= window {
			select {
			case peerAcked = <-acked:
			case err := <-recvDone:
				return fmt.Errorf("sent %d of %d datagrams: %w", i, count, err)
			}
		}
		p := payload(me, i)
		if n, err := pc.WriteTo(p, to); err != nil || n != len(p) {
			return fmt.Errorf("sending datagram %d: %d bytes, %w", i, n, err)
		}
	}
	return <-recvDone
}

type pairResult struct {
	Server, Relayed  netip.AddrPort
	Allocate, Permit time.Duration
	Exchange, Close  time.Duration
	Received, Dups   int
	Reordered        int
}

// meet allocates on url, publishes the relayed address in dir as me,
// reads peer's, and permits it; both sides have their permission when it
// returns.
func meet(ctx context.Context, dir, me, peer, url string, res *pairResult) (*Allocation, netip.AddrPort, error) {
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	start := time.Now()
	a, err := Allocate(actx, labTURN(url), netip.Addr{})
	acancel()
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	res.Allocate, res.Server, res.Relayed = time.Since(start), a.Server(), a.Relayed()
	peerAddr, err := func() (netip.AddrPort, error) {
		if err := publish(dir, me+".addr", a.Relayed().String()); err != nil {
			return netip.AddrPort{}, err
		}
		s, err := await(ctx, dir, peer+".addr")
		if err != nil {
			return netip.AddrPort{}, err
		}
		peerAddr, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.AddrPort{}, err
		}
		start = time.Now()
		if err := a.Permit(ctx, peerAddr); err != nil {
			return netip.AddrPort{}, err
		}
		res.Permit = time.Since(start)
		if err := publish(dir, me+".permitted", ""); err != nil {
			return netip.AddrPort{}, err
		}
		_, err = await(ctx, dir, peer+".permitted")
		return peerAddr, err
	}()
	if err != nil {
		a.Close()
		return nil, netip.AddrPort{}, err
	}
	return a, peerAddr, nil
}

// childPair allocates on args[3], publishes its relayed address in dir
// args[0] as args[1], permits peer args[2] and exchanges args[4] datagrams
// with it both ways, relay to relay.
func childPair(args []string) error {
	dir, me, peer, url := args[0], args[1], args[2], args[3]
	count, err := strconv.Atoi(args[4])
	if err != nil {
		return err
	}
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res pairResult
	a, peerAddr, err := meet(ctx, dir, me, peer, url, &res)
	if err != nil {
		return err
	}
	defer a.Close()

	pc := a.PacketConn()
	if pc.LocalAddr().String() != a.Relayed().String() {
		return fmt.Errorf("LocalAddr %v, relayed %v", pc.LocalAddr(), a.Relayed())
	}
	start := time.Now()
	if err := exchange(pc, peerAddr, me, peer, count, &res); err != nil {
		return err
	}
	res.Exchange = time.Since(start)
	// Nobody frees a relay the other still receives through.
	if err := publish(dir, me+".done", ""); err != nil {
		return err
	}
	if _, err := await(ctx, dir, peer+".done"); err != nil {
		return err
	}
	start = time.Now()
	if err := a.Close(); err != nil {
		return err
	}
	res.Close = time.Since(start)
	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("after Close: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// runBoth runs child in hA as "a" and in hB as "b" with a rendezvous dir,
// the TURN URLs and extra args, and returns what each printed.
func runBoth(t *testing.T, l *natlab.Lab, child, urlA, urlB string, args ...string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	outs := map[string][]byte{}
	for _, side := range []struct {
		site          *natlab.Site
		me, peer, url string
	}{{l.A, "a", "b", urlA}, {l.B, "b", "a", urlB}} {
		wg.Go(func() {
			out, err := l.Run(ctx, side.site.Host, child, append([]string{dir, side.me, side.peer, side.url}, args...)...)
			if err != nil {
				cancel() // the other side would wait for us
				t.Errorf("%s (%v): %v", side.me, side.site.NAT, err)
				return
			}
			mu.Lock()
			outs[side.me] = out
			mu.Unlock()
		})
	}
	wg.Wait()
	return outs
}

// TestRelayToRelay: hosts behind symmetric NATs with random ports, where
// hole punching fails, exchange datagrams through two allocations on one
// server, each a peer of the other; then run QUIC over them.
func TestRelayToRelay(t *testing.T) {
	sym := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: sym, B: sym, TURN: true})
	const count = 200
	for _, tc := range []struct{ name, urlA, urlB string }{
		{"udp", labURL, labURL},
		{"tcp-to-udp", labURL + "?transport=tcp", labURL},
		// pion asks for no address family: coturn relays from IPv4.
		{"ipv6-server", "turn:[fd00:64::1]:3478", "turn:[fd00:64::1]:3478"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for me, out := range runBoth(t, l, "pair", tc.urlA, tc.urlB, strconv.Itoa(count)) {
				var r pairResult
				if err := json.Unmarshal(out, &r); err != nil {
					t.Fatalf("%s printed %q: %v", me, out, err)
				}
				t.Logf("%s: server %v, relayed %v, allocate %v, permit %v, %d datagrams each way in %v (%d reordered, %d duplicated), close %v",
					me, r.Server, r.Relayed, r.Allocate.Round(time.Millisecond), r.Permit.Round(time.Millisecond), r.Received,
					r.Exchange.Round(time.Millisecond), r.Reordered, r.Dups, r.Close.Round(time.Millisecond))
				if r.Received != count {
					t.Errorf("%s received %d of %d datagrams", me, r.Received, count)
				}
				want := natlab.ServerIP1
				if strings.Contains(map[string]string{"a": tc.urlA, "b": tc.urlB}[me], "fd00:64::1") {
					want = natlab.ServerIP1v6
				}
				if r.Server.Addr() != want || r.Relayed.Addr() != natlab.ServerIP1 {
					t.Errorf("%s reached the server at %v, was relayed from %v; want %v and %v", me, r.Server, r.Relayed, want, natlab.ServerIP1)
				}
			}
		})
	}
	t.Run("quic", func(t *testing.T) {
		for me, out := range runBoth(t, l, "quic", labURL, labURL) {
			var r quicResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%s printed %q: %v", me, out, err)
			}
			t.Logf("%s: relayed %v, QUIC handshake %v, %d MiB in %v (%.0f Mbit/s)", me, r.Relayed, r.Handshake.Round(time.Millisecond),
				quicBytes>>20, r.Transfer.Round(time.Millisecond), float64(quicBytes*8)/r.Transfer.Seconds()/1e6)
		}
	})
}

// quicBytes is what the QUIC test sends over the relay.
const quicBytes = 4 << 20

type quicResult struct {
	pairResult
	Handshake, Transfer time.Duration
}

// childQUIC meets its peer as childPair does; then "a" dials a QUIC
// connection through the relays to "b", which listens, and sends it
// quicBytes on a stream; b answers with their SHA-256.
func childQUIC(args []string) error {
	dir, me, peer, url := args[0], args[1], args[2], args[3]
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res quicResult
	a, peerAddr, err := meet(ctx, dir, me, peer, url, &res.pairResult)
	if err != nil {
		return err
	}
	defer a.Close()
	tr := &quic.Transport{Conn: a.PacketConn()}
	defer tr.Close()
	data := make([]byte, quicBytes)
	for i := range data {
		data[i] = byte(i * 31 >> 8)
	}
	want := sha256.Sum256(data)
	cfg := &quic.Config{HandshakeIdleTimeout: 5 * time.Second}
	start := time.Now()
	if me == "b" {
		ln, err := tr.Listen(serverTLS(), cfg)
		if err != nil {
			return err
		}
		defer ln.Close()
		c, err := ln.Accept(ctx)
		if err != nil {
			return err
		}
		res.Handshake = time.Since(start)
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		start = time.Now()
		h := sha256.New()
		if _, err := io.Copy(h, st); err != nil {
			return fmt.Errorf("receiving: %w", err)
		}
		res.Transfer = time.Since(start)
		if _, err := st.Write(h.Sum(nil)); err != nil {
			return err
		}
		st.Close()
		// a closes the connection once it has the digest.
		select {
		case <-c.Context().Done():
		case <-ctx.Done():
			return errors.New("a did not close the connection")
		}
	} else {
		c, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(peerAddr), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"relay-test"}}, cfg)
		if err != nil {
			return err
		}
		res.Handshake = time.Since(start)
		st, err := c.OpenStreamSync(ctx)
		if err != nil {
			return err
		}
		start = time.Now()
		if _, err := st.Write(data); err != nil {
			return fmt.Errorf("sending: %w", err)
		}
		st.Close()
		got, err := io.ReadAll(st)
		if err != nil {
			return fmt.Errorf("reading the digest: %w", err)
		}
		res.Transfer = time.Since(start)
		if !bytes.Equal(got, want[:]) {
			return fmt.Errorf("b's digest %x, want %x", got, want)
		}
		c.CloseWithError(0, "done")
	}
	if err := tr.Close(); err != nil {
		return err
	}
	if err := a.Close(); err != nil {
		return err
	}
	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("after Close: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// serverTLS is a TLS config with a fresh self-signed certificate.
func serverTLS() *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"relay-test"}}
}

type errorsResult struct {
	WrongPass, Silent, SilentNoDeadline       string
	WrongPassTook, SilentTook, NoDeadlineTook time.Duration
}

// childErrors allocates with a wrong password and on a port where no TURN
// server answers.
func childErrors([]string) error {
	ignore := goleak.IgnoreCurrent()
	var res errorsResult
	try := func(ctx context.Context, server config.TURN) (string, time.Duration) {
		start := time.Now()
		a, err := Allocate(ctx, server, netip.Addr{})
		if err == nil {
			a.Close()
			return "allocated " + a.Relayed().String(), time.Since(start)
		}
		return err.Error(), time.Since(start)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wrong := labTURN(labURL)
	wrong.Pass = "wrong"
	res.WrongPass, res.WrongPassTook = try(ctx, wrong)
	sctx, scancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer scancel()
	res.Silent, res.SilentTook = try(sctx, labTURN("turn:203.0.113.1:3999"))
	res.SilentNoDeadline, res.NoDeadlineTook = try(context.Background(), labTURN("turn:203.0.113.1:3999"))
	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("after failed allocations: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func TestAllocateErrors(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := l.Run(ctx, l.A.Host, "errors")
	if err != nil {
		t.Fatal(err)
	}
	var r errorsResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	t.Logf("wrong password, after %v: %s", r.WrongPassTook.Round(time.Millisecond), r.WrongPass)
	t.Logf("silent server, after %v: %s", r.SilentTook.Round(time.Millisecond), r.Silent)
	t.Logf("silent server, ctx without deadline, after %v: %s", r.NoDeadlineTook.Round(time.Millisecond), r.SilentNoDeadline)
	if !strings.Contains(r.WrongPass, labURL+" refused the credentials") || !strings.Contains(r.WrongPass, "401") {
		t.Errorf("wrong password: %s", r.WrongPass)
	}
	if r.WrongPassTook > time.Second {
		t.Errorf("wrong password: refused after %v", r.WrongPassTook)
	}
	for _, c := range []struct {
		msg        string
		took, want time.Duration
	}{{r.Silent, r.SilentTook, 1500 * time.Millisecond}, {r.SilentNoDeadline, r.NoDeadlineTook, allocateTimeout}} {
		if !strings.Contains(c.msg, "turn:203.0.113.1:3999: no allocation within") || !strings.Contains(c.msg, context.DeadlineExceeded.Error()) {
			t.Errorf("silent server: %s", c.msg)
		}
		if c.took < c.want || c.took > c.want+300*time.Millisecond {
			t.Errorf("silent server: failed after %v, want %v", c.took, c.want)
		}
	}
}

type lifecycleResult struct {
	AllocateUDP, AllocateTCP time.Duration
	PermRefreshes            uint32
	ChanRefreshes            uint32 // of x's channel to y, in 500 ms
	Close                    time.Duration
}

// lifecycleRelays are the relayed addresses childLifecycle publishes: y
// is closed, z's socket is closed without freeing it (a crash).
type lifecycleRelays struct{ Y, Z netip.AddrPort }

// childLifecycle runs in one host: allocation x over TCP and y over UDP
// permit each other, x's permissions are refreshed every 200 ms, deadlines
// and datagrams are checked. It publishes the relayed addresses of y and
// of a third allocation z in dir args[0] ("relayed"), waits for the test
// to see the relays' ports (dir/checked), closes y (twice, concurrently),
// closes z's socket without freeing z, and publishes dir/closed.
func childLifecycle(args []string) error {
	dir := args[0]
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res lifecycleResult
	start := time.Now()
	x, err := Allocate(ctx, labTURN(labURL+"?transport=tcp"), netip.Addr{})
	if err != nil {
		return err
	}
	defer x.Close()
	res.AllocateTCP = time.Since(start)
	start = time.Now()
	y, err := Allocate(ctx, labTURN(labURL), netip.Addr{})
	if err != nil {
		return err
	}
	defer y.Close()
	res.AllocateUDP = time.Since(start)
	z, err := Allocate(ctx, labTURN(labURL), netip.Addr{})
	if err != nil {
		return err
	}
	defer z.Close()

	x.perms.every = 200 * time.Millisecond
	if err := x.Permit(ctx, y.Relayed()); err != nil {
		return err
	}
	if err := y.Permit(ctx, x.Relayed()); err != nil {
		return err
	}
	time.Sleep(time.Second)
	res.PermRefreshes = x.perms.refreshes.Load()

	xc, yc := x.PacketConn(), y.PacketConn()
	buf := make([]byte, 1500)
	exchange := func(from, to net.PacketConn, msg string) error {
		if _, err := from.WriteTo([]byte(msg), to.LocalAddr()); err != nil {
			return err
		}
		to.SetReadDeadline(time.Now().Add(2 * time.Second))
		defer to.SetReadDeadline(time.Time{})
		n, addr, err := to.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("%q: %w", msg, err)
		}
		if string(buf[:n]) != msg || addr.String() != from.LocalAddr().String() {
			return fmt.Errorf("got %q from %v, want %q from %v", buf[:n], addr, msg, from.LocalAddr())
		}
		return nil
	}
	if err := exchange(xc, yc, "ping"); err != nil {
		return err
	}
	if err := exchange(yc, xc, "pong"); err != nil {
		return err
	}
	// x bound a channel to y for "ping": it is refreshed with the
	// permissions, and still carries datagrams.
	bound := x.chanRefreshes.Load()
	time.Sleep(500 * time.Millisecond)
	res.ChanRefreshes = x.chanRefreshes.Load() - bound
	if err := exchange(xc, yc, "ping after refreshes"); err != nil {
		return err
	}

	// z permitted nobody: the server drops what x sends it.
	if _, err := xc.WriteTo([]byte("unpermitted"), z.PacketConn().LocalAddr()); err != nil {
		return err
	}
	z.PacketConn().SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := z.PacketConn().ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("z, without permissions, got %q from %v (%v)", buf[:n], from, err)
	}

	// Deadlines: every read after one has passed times out.
	yc.SetReadDeadline(time.Now().Add(-time.Second))
	for range 2 {
		var ne net.Error
		if _, _, err := yc.ReadFrom(buf); !errors.As(err, &ne) || !ne.Timeout() {
			return fmt.Errorf("read after the deadline: %v", err)
		}
	}
	start = time.Now()
	yc.SetReadDeadline(start.Add(100 * time.Millisecond))
	if _, _, err := yc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 100*time.Millisecond {
		return fmt.Errorf("read with a deadline: %v after %v", err, time.Since(start))
	}
	yc.SetReadDeadline(time.Time{})
	if err := exchange(xc, yc, "after deadlines"); err != nil {
		return err
	}

	// Close: a blocked reader returns, concurrent and repeated Close calls
	// agree, nothing works afterwards.
	relays, err := json.Marshal(lifecycleRelays{y.Relayed(), z.Relayed()})
	if err != nil {
		return err
	}
	if err := publish(dir, "relayed", string(relays)); err != nil {
		return err
	}
	if _, err := await(ctx, dir, "checked"); err != nil {
		return err
	}
	readErr := make(chan error, 1)
	go func() {
		_, _, err := yc.ReadFrom(buf)
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start = time.Now()
	closeErrs := make(chan error, 2)
	go func() { closeErrs <- y.Close() }()
	go func() { closeErrs <- yc.Close() }()
	for range 2 {
		if err := <-closeErrs; err != nil {
			return fmt.Errorf("close: %w", err)
		}
	}
	res.Close = time.Since(start)
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("read blocked at Close: %v", err)
	}
	if err := y.Close(); err != nil {
		return fmt.Errorf("second close: %w", err)
	}
	if _, err := yc.WriteTo([]byte("x"), xc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("write after Close: %v", err)
	}
	if err := y.Permit(ctx, x.Relayed()); !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("permit after Close: %v", err)
	}
	// Sending to the freed address is not an error: the relay drops it.
	if _, err := xc.WriteTo([]byte("into the void"), yc.LocalAddr()); err != nil {
		return fmt.Errorf("sending to a freed relay: %w", err)
	}
	z.sock.Close() // z's process "crashes": the server keeps the allocation
	if err := publish(dir, "closed", ""); err != nil {
		return err
	}
	if err := x.Close(); err != nil {
		return err
	}
	z.Close() // fails: nothing left to free with

	if err := goleak.Find(ignore); err != nil {
		return fmt.Errorf("after Close: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// relayPortsOpen reports whether coturn has sockets on relays.
func relayPortsOpen(ctx context.Context, l *natlab.Lab, relays lifecycleRelays) (y, z bool, err error) {
	out, err := l.Exec(ctx, l.Inet, "ss", "-Huan")
	if err != nil {
		return false, false, err
	}
	open := func(a netip.AddrPort) bool { return strings.Contains(string(out), " "+a.String()+" ") }
	return open(relays.Y), open(relays.Z), nil
}

// TestAllocationLifecycle checks permissions' refresh, PacketConn's
// deadlines and Close: afterwards the server has freed the relayed port,
// while it keeps that of an allocation whose owner vanished.
func TestAllocationLifecycle(t *testing.T) {
	l := natlab.New(t, natlab.Config{TURN: true})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out []byte
	childErr := make(chan error, 1)
	go func() {
		var err error
		out, err = l.Run(ctx, l.A.Host, "lifecycle", dir)
		if err != nil {
			cancel()
		}
		childErr <- err
	}()
	gone, err := checkPorts(ctx, l, dir)
	if cerr := <-childErr; cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	var r lifecycleResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	t.Logf("allocate over UDP %v, over TCP %v; %d permission refreshes in 1 s, %d channel refreshes in 500 ms; close %v, relayed port closed by coturn %v later",
		r.AllocateUDP.Round(time.Millisecond), r.AllocateTCP.Round(time.Millisecond), r.PermRefreshes, r.ChanRefreshes, r.Close.Round(time.Millisecond), gone.Round(time.Millisecond))
	if r.Close >= freeWait/2 {
		t.Errorf("Close took %v: it did not see the server confirm the freeing", r.Close)
	}
	if r.PermRefreshes < 3 {
		t.Errorf("%d permission refreshes in 1 s every 200 ms", r.PermRefreshes)
	}
	if r.ChanRefreshes < 1 {
		t.Errorf("%d channel refreshes in 500 ms every 200 ms", r.ChanRefreshes)
	}
}

// checkPorts follows childLifecycle: both relays' ports are open, then
// y's closes and z's stays. It returns how long y's port stayed open after
// Close.
func checkPorts(ctx context.Context, l *natlab.Lab, dir string) (time.Duration, error) {
	s, err := await(ctx, dir, "relayed")
	if err != nil {
		return 0, err
	}
	var relays lifecycleRelays
	if err := json.Unmarshal([]byte(s), &relays); err != nil {
		return 0, err
	}
	y, z, err := relayPortsOpen(ctx, l, relays)
	if err != nil {
		return 0, err
	}
	if !y || !z {
		return 0, fmt.Errorf("coturn has no socket on a relayed address (%v: %v, %v: %v)", relays.Y, y, relays.Z, z)
	}
	if err := publish(dir, "checked", ""); err != nil {
		return 0, err
	}
	if _, err := await(ctx, dir, "closed"); err != nil {
		return 0, err
	}
	// coturn answers the freeing Refresh at once (Close waited for that)
	// but closes the relay's socket up to a second later, on a timer.
	start := time.Now()
	for y {
		if time.Since(start) > 2500*time.Millisecond {
			return 0, fmt.Errorf("coturn still has a socket on %v %v after Close", relays.Y, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
		if y, _, err = relayPortsOpen(ctx, l, relays); err != nil {
			return 0, err
		}
	}
	gone := time.Since(start)
	time.Sleep(1200 * time.Millisecond)
	if _, z, err = relayPortsOpen(ctx, l, relays); err != nil {
		return 0, err
	}
	if !z {
		return 0, fmt.Errorf("coturn freed %v, whose owner did not free it: the test cannot tell freeing from forgetting", relays.Z)
	}
	return gone, nil
}
