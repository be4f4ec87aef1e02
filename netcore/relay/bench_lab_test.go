package relay

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"p2pd/netcore/natlab"
)

// Paths BenchmarkRelayQUIC compares; "a" sends, "b" receives.
const (
	pathUDP    = "udp"     // both on their own UDP sockets: the baseline
	pathRelay2 = "relay2"  // relay to relay: each side on its allocation
	pathRelayA = "relay-a" // a on its allocation, b on its own socket: p2pd's relay when a connects
	pathRelayB = "relay-b" // b on its allocation, a on its own socket
)

// benchProfileEnv names a directory: each child of BenchmarkRelayQUIC
// writes its CPU profile there as PATH-SIDE.pprof.
const benchProfileEnv = "P2PD_RELAY_PROFILE"

// BenchmarkRelayQUIC moves P2PD_BENCH_MIB MiB (default 64) over one QUIC
// stream from host A (behind a NAT) to host B (a public address) in the
// lab: over plain UDP sockets (the baseline, in the same run), relay to
// relay through coturn, and through one side's relay to the other side's
// own socket. It reports MB/s per path, each relayed path's ratio to the
// baseline, and the CPU time the two hosts and coturn spent per MB
// (utime+stime, which a noisy machine disturbs less than wall time).
// Set P2PD_RELAY_PROFILE to a directory for the children's CPU profiles,
// and P2PD_RELAY_PATHS to run only some paths (comma-separated; the first
// is the baseline).
func BenchmarkRelayQUIC(b *testing.B) {
	size := int64(64 << 20)
	if v, err := strconv.ParseInt(os.Getenv("P2PD_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	for _, link := range []struct{ name, rate string }{{"unlimited", ""}, {"1Gbit", "1gbit"}} {
		b.Run(link.name, func(b *testing.B) {
			l := natlab.New(b, natlab.Config{
				A:    natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF},
				B:    natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF},
				TURN: true,
			})
			if link.rate != "" {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := l.LimitRate(ctx, link.rate)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			paths := []string{pathUDP, pathRelay2, pathRelayA, pathRelayB}
			if only := os.Getenv("P2PD_RELAY_PATHS"); only != "" {
				paths = strings.Split(only, ",") // the first is the baseline
			}
			mbs := map[string][]float64{}
			for b.Loop() {
				for _, path := range paths {
					r := benchPath(b, l, path, size)
					mbs[path] = append(mbs[path], r.mbps)
					b.Logf("%s: %.1f MB/s; CPU per MB: a %.2f ms, b %.2f ms, coturn %.2f ms; a sent %d packets of %d bytes (%d lost), b %d; relays dropped %d",
						path, r.mbps, r.cpuA*1e3/r.mb, r.cpuB*1e3/r.mb, r.cpuTURN*1e3/r.mb, r.a.Sent, r.a.PacketSize, r.a.Lost, r.b.Sent, r.a.Dropped+r.b.Dropped)
				}
			}
			base := median(mbs[paths[0]])
			b.ReportMetric(base, paths[0]+"-MB/s")
			for _, path := range paths[1:] {
				m := median(mbs[path])
				b.ReportMetric(m, path+"-MB/s")
				b.ReportMetric(m/base, path+"/"+paths[0])
			}
		})
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// pathResult is one transfer: throughput and CPU seconds spent.
type pathResult struct {
	mbps, mb            float64
	cpuA, cpuB, cpuTURN float64
	a, b                benchResult
}

// benchResult is what a quicbench child prints.
type benchResult struct {
	Handshake, Transfer time.Duration
	CPU                 time.Duration // user+system of the whole child
	Sent, Lost          uint64        // QUIC packets
	PacketSize          uint64        // mean size of the QUIC packets sent
	Dropped             uint64        // datagrams the allocation dropped for a full queue
}

// benchPath runs one transfer of size bytes over path.
func benchPath(b *testing.B, l *natlab.Lab, path string, size int64) pathResult {
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	turnBefore := nsCPU(b, l, l.Inet, "turnserver")
	drops := map[string]int64{}
	for _, ns := range []string{l.Inet, l.A.Host, l.B.Host} {
		drops[ns] = -udpRcvbufErrors(b, l, ns)
	}
	outs := runPair(ctx, b, l, "quicbench", labURL, labURL, path, strconv.FormatInt(size, 10))
	turnAfter := nsCPU(b, l, l.Inet, "turnserver")
	for _, ns := range []string{l.Inet, l.A.Host, l.B.Host} {
		if drops[ns] += udpRcvbufErrors(b, l, ns); drops[ns] > 0 {
			b.Logf("%s: %d datagrams dropped for full receive buffers in %s", path, drops[ns], ns)
		}
	}
	var ra, rb benchResult
	for me, r := range map[string]*benchResult{"a": &ra, "b": &rb} {
		if err := json.Unmarshal(outs[me], r); err != nil {
			b.Fatalf("%s over %s printed %q: %v", me, path, outs[me], err)
		}
	}
	mb := float64(size) / 1e6
	return pathResult{
		mbps: mb / ra.Transfer.Seconds(), mb: mb,
		cpuA: ra.CPU.Seconds(), cpuB: rb.CPU.Seconds(), cpuTURN: (turnAfter - turnBefore).Seconds(),
		a: ra, b: rb,
	}
}

// nsCPU is the CPU time (user+system) spent so far by the processes in
// namespace ns whose command is name.
func nsCPU(b *testing.B, l *natlab.Lab, ns, name string) time.Duration {
	out, err := l.Exec(b.Context(), ns, "ip", "netns", "pids", ns)
	if err != nil {
		b.Fatalf("listing %s's processes: %v %s", ns, err, out)
	}
	var total time.Duration
	for _, pid := range strings.Fields(string(out)) {
		stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
		if err != nil {
			continue
		}
		// comm is in parentheses and may hold spaces: fields follow the last ')'.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != name {
			continue
		}
		f := strings.Fields(s[end+1:])
		// utime and stime are fields 14 and 15 of stat, 12 and 13 after comm.
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / 100 // USER_HZ
	}
	return total
}

// udpRcvbufErrors is the count of datagrams namespace ns dropped for full
// socket receive buffers.
func udpRcvbufErrors(b *testing.B, l *natlab.Lab, ns string) int64 {
	out, err := l.Exec(b.Context(), ns, "cat", "/proc/net/snmp")
	if err != nil {
		b.Fatalf("reading %s's UDP counters: %v", ns, err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return 0
}

// runPair runs child in hA as "a" and in hB as "b" with a rendezvous dir,
// the TURN URLs and extra args, and returns what each printed.
func runPair(ctx context.Context, tb testing.TB, l *natlab.Lab, child, urlA, urlB string, args ...string) map[string][]byte {
	tb.Helper()
	dir := tb.TempDir()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type out struct {
		me  string
		b   []byte
		err error
	}
	outs := make(chan out, 2)
	for _, side := range []struct {
		site          *natlab.Site
		me, peer, url string
	}{{l.A, "a", "b", urlA}, {l.B, "b", "a", urlB}} {
		go func() {
			b, err := l.Run(ctx, side.site.Host, child, append([]string{dir, side.me, side.peer, side.url}, args...)...)
			if err != nil {
				cancel() // the other side would wait for us
				err = fmt.Errorf("%s (%v): %w", side.me, side.site.NAT, err)
			}
			outs <- out{side.me, b, err}
		}()
	}
	res := map[string][]byte{}
	var errs []error
	for range 2 {
		o := <-outs
		res[o.me] = o.b
		errs = append(errs, o.err)
	}
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	return res
}

// benchQUIC is the QUIC configuration of the benchmark: session's windows.
func benchQUIC() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:       5 * time.Second,
		MaxStreamReceiveWindow:     16 << 20,
		MaxConnectionReceiveWindow: 32 << 20,
	}
}

// childQUICBench runs one side of a BenchmarkRelayQUIC transfer: args are
// dir, me, peer, TURN URL, path and size. The side on its own socket
// publishes its external address (from a STUN Binding with the lab's
// server); the side on an allocation publishes the relayed address and
// permits the peer's. The side on its own socket dials (its NAT must see
// it send first), else a dials; a sends size bytes on a stream, b counts
// them and answers with the count.
func childQUICBench(args []string) (err error) {
	dir, me, peer, url, path := args[0], args[1], args[2], args[3], args[4]
	size, err := strconv.ParseInt(args[5], 10, 64)
	if err != nil {
		return err
	}
	if d := os.Getenv(benchProfileEnv); d != "" {
		f, err := os.Create(filepath.Join(d, path+"-"+me+".pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	relayed := path == pathRelay2 || path == pathRelayA && me == "a" || path == pathRelayB && me == "b"
	var (
		pc     net.PacketConn
		myAddr netip.AddrPort
		a      *Allocation
	)
	if relayed {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		a, err = Allocate(actx, labTURN(url), netip.Addr{})
		acancel()
		if err != nil {
			return err
		}
		defer a.Close()
		pc, myAddr = a.PacketConn(), a.Relayed()
	} else {
		ext, err := externalIP(ctx)
		if err != nil {
			return err
		}
		udp, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer udp.Close()
		// The mapping of this socket differs from the binding's but for
		// a NAT mapping endpoint-independently; only the IP counts for a
		// relay's permission, and only b, which has no NAT, is dialed.
		pc, myAddr = udp, netip.AddrPortFrom(ext, uint16(udp.LocalAddr().(*net.UDPAddr).Port))
	}
	if err := publish(dir, me+".addr", myAddr.String()); err != nil {
		return err
	}
	s, err := await(ctx, dir, peer+".addr")
	if err != nil {
		return err
	}
	peerAddr, err := netip.ParseAddrPort(s)
	if err != nil {
		return err
	}
	if relayed {
		if err := a.Permit(ctx, peerAddr); err != nil {
			return err
		}
	}
	if err := publish(dir, me+".permitted", ""); err != nil {
		return err
	}
	if _, err := await(ctx, dir, peer+".permitted"); err != nil {
		return err
	}

	dials := me == "a"
	if path == pathRelayA || path == pathRelayB {
		dials = !relayed
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	var res benchResult
	start := time.Now()
	var c *quic.Conn
	if dials {
		c, err = tr.Dial(ctx, net.UDPAddrFromAddrPort(peerAddr), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"relay-test"}}, benchQUIC())
	} else {
		var ln *quic.Listener
		if ln, err = tr.Listen(serverTLS(), benchQUIC()); err == nil {
			c, err = ln.Accept(ctx)
			defer ln.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("QUIC handshake: %w", err)
	}
	res.Handshake = time.Since(start)
	defer c.CloseWithError(0, "")
	if me == "a" {
		st, err := c.OpenStreamSync(ctx)
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i * 31 >> 8)
		}
		start = time.Now()
		for left := size; left > 0; left -= int64(len(buf)) {
			if _, err := st.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				return fmt.Errorf("sending: %w", err)
			}
		}
		st.Close()
		var got [8]byte
		if _, err := io.ReadFull(st, got[:]); err != nil {
			return fmt.Errorf("reading b's count: %w", err)
		}
		res.Transfer = time.Since(start)
		if n := int64(binary.BigEndian.Uint64(got[:])); n != size {
			return fmt.Errorf("b received %d bytes of %d", n, size)
		}
		c.CloseWithError(0, "done")
	} else {
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		start = time.Now()
		n, err := io.Copy(io.Discard, st)
		if err != nil {
			return fmt.Errorf("receiving: %w", err)
		}
		res.Transfer = time.Since(start)
		if _, err := st.Write(binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
		st.Close()
		select {
		case <-c.Context().Done():
		case <-ctx.Done():
			return errors.New("a did not close the connection")
		}
	}
	if st := c.ConnectionStats(); st.PacketsSent > 0 {
		res.Sent, res.Lost, res.PacketSize = st.PacketsSent, st.PacketsLost, st.BytesSent/st.PacketsSent
	}
	if a != nil {
		res.Dropped = a.dropped.Load()
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
