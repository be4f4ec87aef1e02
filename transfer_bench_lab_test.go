package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
	"p2pd/netcore/relay"
)

// benchFileSize is the file BenchmarkTransfer moves.
const benchFileSize = 1 << 30

// BenchmarkTransfer moves a 1 GiB file from host A (behind a NAT) to host
// B (a public address) in the lab, and in the same run on the same hosts:
// a raw TCP copy (socat, then fsync, as p2pd's receiver syncs the file
// before naming it), the same raw copy through the TURN server (coturn in
// the lab's internet, B connecting to A's relayed TCP address), p2pd over
// its direct path (TLS over TCP), over a punched UDP path (QUIC), through
// the TURN relay, and croc through its own relay run in the lab's
// internet. Each is reported in MB/s with the ratios the goals are about:
// p2pd/raw, p2pd/croc, relay/raw and relay/raw-turn (the relay against
// raw bytes through the same server); and the CPU time both ends of the
// raw copy and of p2pd's direct and QUIC paths use per GiB. Once with the links as
// fast as the machine (the CPU is then the limit, shared by both ends and
// the routers), once with the internet links at 1 Gbit/s (tbf), as a fast
// home connection. Run it with `make bench` (-benchtime 3x: each round
// moves 7 GiB per link speed, after an untimed raw copy); P2PD_BENCH_MIB
// sets a smaller file and P2PD_BENCH_PATHS runs only some of
// raw,raw-turn,direct,quic,relay,croc.
func BenchmarkTransfer(b *testing.B) {
	croc := crocBinary(b)
	size := int64(benchFileSize)
	if v, err := strconv.ParseInt(os.Getenv("P2PD_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20 // a quicker look while working on it
	}
	for _, link := range []struct{ name, rate string }{{"unlimited", ""}, {"1Gbit", "1gbit"}} {
		b.Run(link.name, func(b *testing.B) {
			l := natlab.New(b, natlab.Config{
				A:    natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF},
				B:    natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF},
				TURN: true, MQTT: true, NTP: true,
			})
			if link.rate != "" {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := l.LimitRate(ctx, link.rate)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			src := filepath.Join(b.TempDir(), "big.bin")
			writeNoiseFile(b, src, size)
			dst := b.TempDir()
			recv := startReceiver(b, l, dst)
			relay := startCrocRelay(b, l, croc)
			run := benchPaths()
			// Untimed: the first copy into memory the VM has not touched
			// yet ran at a third of the speed of the later ones.
			rawCopy(b, l, src, dst, size)
			var raw, rawTURN, direct, quic, relayed, viaCroc, crocPlain, rawCPU, directCPU, quicCPU []float64
			// Each copy starts with nothing left for the disk to write
			// from the one before (croc does not sync what it saves).
			// The CPU both ends use per GiB (into cpu, where kept) is
			// steadier than MB/s, which the disk swings: it shows what
			// p2pd costs.
			measure := func(into, cpu *[]float64, copy func() (float64, time.Duration)) {
				syscall.Sync()
				mb, used := copy()
				*into = append(*into, mb)
				if cpu != nil {
					*cpu = append(*cpu, used.Seconds()/(float64(size)/(1<<30)))
				}
			}
			p2pd := func(strategies string) func() (float64, time.Duration) {
				return func() (float64, time.Duration) { return p2pdSend(b, l, recv, src, dst, strategies, size) }
			}
			// noCPU is a copy whose CPU time is not kept.
			noCPU := func(copy func() float64) func() (float64, time.Duration) {
				return func() (float64, time.Duration) { return copy(), 0 }
			}
			for b.Loop() {
				if run["raw"] {
					measure(&raw, &rawCPU, func() (float64, time.Duration) { return rawCopy(b, l, src, dst, size) })
				}
				if run["raw-turn"] {
					measure(&rawTURN, nil, noCPU(func() float64 { return rawTURNCopy(b, l, src, dst, size) }))
				}
				if run["direct"] {
					measure(&direct, &directCPU, p2pd("direct"))
				}
				if run["quic"] {
					measure(&quic, &quicCPU, p2pd("punch-udp"))
				}
				if run["relay"] {
					measure(&relayed, nil, p2pd("relay"))
				}
				if run["croc"] {
					measure(&viaCroc, nil, noCPU(func() float64 { return crocCopy(b, l, croc, relay, src, dst, size) }))
					measure(&crocPlain, nil, noCPU(func() float64 { return crocCopy(b, l, croc, relay, src, dst, size, "--no-compress") }))
				}
			}
			// croc compresses by default, which costs it dearly on data
			// that does not compress; the goal is against its better run
			// (croc-MB/s), and both runs are reported. So is the spread
			// of the raw copy, which the disk cache makes wide.
			r, rt, d, rel := medianOf(raw), medianOf(rawTURN), medianOf(direct), medianOf(relayed)
			cd, cp := medianOf(viaCroc), medianOf(crocPlain)
			c := max(cd, cp)
			for _, m := range []struct {
				v    float64
				unit string
			}{
				{r, "raw-MB/s"}, {rt, "raw-turn-MB/s"}, {d, "p2pd-MB/s"}, {medianOf(quic), "p2pd-quic-MB/s"}, {rel, "relay-MB/s"}, {c, "croc-MB/s"},
				{cd, "croc-default-MB/s"}, {cp, "croc-no-compress-MB/s"},
				{slices.Min(append(raw, math.Inf(1))), "raw-min-MB/s"}, {slices.Max(append(raw, 0)), "raw-max-MB/s"},
				{slices.Min(append(direct, math.Inf(1))), "p2pd-min-MB/s"}, {slices.Max(append(direct, 0)), "p2pd-max-MB/s"},
				{medianOf(rawCPU), "raw-cpu-s/GiB"}, {medianOf(directCPU), "p2pd-cpu-s/GiB"}, {medianOf(quicCPU), "p2pd-quic-cpu-s/GiB"},
				{d / r, "p2pd/raw"}, {d / c, "p2pd/croc"}, {rel / r, "relay/raw"}, {rel / rt, "relay/raw-turn"},
			} {
				if m.v > 0 && !math.IsInf(m.v, 0) {
					b.ReportMetric(m.v, m.unit)
				}
			}
		})
	}
}

// benchPaths is what BenchmarkTransfer runs: raw, raw-turn, direct, quic,
// relay and croc, or those P2PD_BENCH_PATHS lists (comma-separated), for
// a quicker look.
func benchPaths() map[string]bool {
	list := os.Getenv("P2PD_BENCH_PATHS")
	if list == "" {
		list = "raw,raw-turn,direct,quic,relay,croc"
	}
	run := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		run[strings.TrimSpace(p)] = true
	}
	return run
}

// medianOf is the median of v, 0 for none.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}

func mbps(size int64, d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }

// writeNoiseFile writes size pseudo-random bytes (no runs of zeros for
// p2pd to skip, nothing for croc to compress).
func writeNoiseFile(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{7}), size); err != nil {
		b.Fatal(err)
	}
}

// rawCopy copies src to B over one TCP connection and syncs it there,
// returning MB/s and the CPU time both ends used.
func rawCopy(b *testing.B, l *natlab.Lab, src, dst string, size int64) (float64, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(dst, "raw.bin")
	defer os.Remove(out)
	recv := l.Command(ctx, l.B.Host, "sh", "-c", fmt.Sprintf("socat -u -b 262144 TCP-LISTEN:5001,reuseaddr OPEN:%s,creat,trunc && sync %s", out, out))
	var rerr strings.Builder
	recv.Stderr = &rerr
	if err := recv.Start(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	send := l.Command(ctx, l.A.Host, "socat", "-u", "-b", "262144", "OPEN:"+src, fmt.Sprintf("TCP:%s:5001,retry=50,interval=0.05", l.B.Host4))
	if out, err := send.CombinedOutput(); err != nil {
		recv.Process.Kill()
		recv.Wait()
		b.Fatalf("raw copy: %v %s", err, out)
	}
	if err := recv.Wait(); err != nil {
		b.Fatalf("raw receive: %v %s", err, rerr.String())
	}
	took := time.Since(start)
	if fi, err := os.Stat(out); err != nil || fi.Size() != size {
		b.Fatalf("the raw copy arrived short: %v", err)
	}
	used := cpuTime(send.ProcessState) + cpuTime(recv.ProcessState)
	b.Logf("raw TCP: %.1f MB/s, %.2f CPU-s", mbps(size, took), used.Seconds())
	return mbps(size, took), used
}

// cpuTime is the CPU time a finished command used, with that of the
// children it waited for (the receiver's socat under sh).
func cpuTime(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

// runningCPU is the CPU time a running process has used so far.
func runningCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// After the command's name: state is the first field, utime the
	// 12th and stime the 13th, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// rawTURNCopy copies src to B over a raw TCP connection through the
// lab's TURN server (RFC 6062: B connects by TCP to a relayed address A
// holds, as p2pd's relay does) and syncs it there, returning MB/s: the
// baseline of the relay path. Both ends are plain read/write loops with
// 256 KiB buffers, as socat's; B reads exactly the file's size and
// closes, as coturn may cut the rest of a half-closed connection.
func rawTURNCopy(b *testing.B, l *natlab.Lab, src, dst string, size int64) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := b.TempDir()
	send := l.ChildCommand(ctx, l.A.Host, "turnsend", dir, src, l.B.Host4.String())
	var serr strings.Builder
	send.Stderr = &serr
	if err := send.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		send.Process.Kill()
		send.Wait()
	}()
	out := filepath.Join(dst, "raw-turn.bin")
	defer os.Remove(out)
	took, err := l.Run(ctx, l.B.Host, "turnrecv", dir, out, strconv.FormatInt(size, 10))
	if err != nil {
		b.Fatalf("raw copy through TURN: %v; sender: %s", err, serr.String())
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(took)), 64)
	if err != nil {
		b.Fatalf("turnrecv printed %q", took)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != size {
		b.Fatalf("the raw copy through TURN arrived short: %v", err)
	}
	mb := float64(size) / 1e6 / secs
	b.Logf("raw TCP through TURN: %.1f MB/s", mb)
	return mb
}

// childTURNSend runs in host A for rawTURNCopy: args are dir, the file
// and the receiver's IP. It allocates a TCP relay on the lab's TURN
// server, permits the receiver, publishes the relayed address as
// dir/relayed, copies the file to the first connection and waits for the
// receiver to close it.
func childTURNSend(args []string) error {
	dir, src, peer := args[0], args[1], args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	a, err := relay.AllocateTCP(ctx, config.TURN{URL: "turn:" + natlab.ServerIP1.String() + ":3478", User: natlab.TURNUser, Pass: natlab.TURNPass, Realm: natlab.TURNRealm})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Permit(ctx, netip.MustParseAddr(peer)); err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".relayed")
	if err := os.WriteFile(tmp, []byte(a.Relayed().String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "relayed")); err != nil {
		return err
	}
	c, err := a.Accept(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{f}, make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	io.Copy(io.Discard, c) // until the receiver has it all and closes
	return nil
}

// childTURNRecv runs in host B for rawTURNCopy: args are dir, the output
// file and the size. It connects to the relayed address A publishes in
// dir, reads size bytes into the file, syncs it, and prints the seconds
// from the connect to the sync.
func childTURNRecv(args []string) error {
	dir, out := args[0], args[1]
	size, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var relayed []byte
	for {
		if relayed, err = os.ReadFile(filepath.Join(dir, "relayed")); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("no relayed address from the sender")
		case <-time.After(5 * time.Millisecond):
		}
	}
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", string(relayed))
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, io.LimitReader(c, size), make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("receiving: %w", err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	fmt.Println(time.Since(start).Seconds())
	return nil
}

// receiver is `p2pd receive --yes` running in host B.
type receiver struct {
	addr    string
	pid     int
	results *json.Decoder
}

func startReceiver(b *testing.B, l *natlab.Lab, dst string) *receiver {
	path, err := l.WriteNodeConfig("b-recv", l.NodeConfig())
	if err != nil {
		b.Fatal(err)
	}
	cmd := p2pdIn(context.Background(), l, l.B.Host, b.TempDir(), "receive", "--yes", "--json", "--dir", dst, "--config", path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	r := &receiver{pid: cmd.Process.Pid, results: json.NewDecoder(bufio.NewReader(out))}
	var first struct{ Address string }
	if err := r.results.Decode(&first); err != nil {
		b.Fatalf("receive printed no address: %v", err)
	}
	r.addr = v4Only(b, first.Address)
	return r
}

// p2pdSend sends src to the receiver with the strategies given and
// returns MB/s over the transfer (the connection set up before it is not
// counted; BenchmarkConnect measures that) and the CPU time both ends
// used (the sender's start and connect included).
func p2pdSend(b *testing.B, l *natlab.Lab, r *receiver, src, dst, strategies string, size int64) (float64, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path, _ := l.WriteNodeConfig("a-send", l.NodeConfig())
	recvBefore := runningCPU(b, r.pid)
	send := p2pdIn(ctx, l, l.A.Host, b.TempDir(), "send", src, "--to", r.addr, "--json", "--strategies", strategies, "--config", path)
	out, err := send.Output()
	var res struct {
		Strategy string
		Sent     int64
		Seconds  float64
		Error    string
	}
	json.Unmarshal(out, &res)
	if err != nil || res.Sent != size {
		b.Fatalf("p2pd send over %s: %v %s", strategies, err, out)
	}
	var done struct {
		OK    bool
		Saved []string
	}
	if err := r.results.Decode(&done); err != nil || !done.OK || len(done.Saved) != 1 {
		b.Fatalf("p2pd receive: %+v %v", done, err)
	}
	used := cpuTime(send.ProcessState) + runningCPU(b, r.pid) - recvBefore
	os.Remove(filepath.Join(dst, done.Saved[0]))
	mb := mbps(res.Sent, time.Duration(res.Seconds*float64(time.Second)))
	b.Logf("p2pd over %s: %.1f MB/s, %.2f CPU-s", res.Strategy, mb, used.Seconds())
	return mb, used
}

// crocBinary is croc, built from the Go module proxy by `make bench`
// (packaging/gotool.sh) into .tools, or the one P2PD_CROC names.
func crocBinary(b *testing.B) string {
	path := os.Getenv("P2PD_CROC")
	if path == "" {
		path, _ = filepath.Abs(filepath.Join(".tools", "croc"))
	}
	if _, err := os.Stat(path); err != nil {
		b.Fatalf("croc is not built (make bench builds it): %v", err)
	}
	return path
}

// crocPorts are the croc relay's ports (its default: one to meet, four
// to carry the file).
const crocPorts = "9009,9010,9011,9012,9013"

// startCrocRelay runs croc's relay on the lab's first server address and
// returns host:port for --relay.
func startCrocRelay(b *testing.B, l *natlab.Lab, croc string) string {
	// croc looks up its public relay's name at every start, whatever the
	// flags; the lab has no DNS, so point the lookups at each namespace's
	// own loopback, where they fail at once instead of timing out
	// (`ip netns exec` reads /etc/netns/NS/resolv.conf).
	for _, ns := range []string{l.Inet, l.A.Host, l.B.Host} {
		dir := filepath.Join("/etc/netns", ns)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	host := natlab.ServerIP1.String()
	cmd := l.Command(context.Background(), l.Inet, croc, "--ignore-stdin", "relay", "--host", host, "--ports", crocPorts)
	cmd.Env = append(cmd.Env, "HOME="+b.TempDir())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if o, _ := l.Exec(ctx, l.Inet, "ss", "-Hltn", "sport = :9013"); len(strings.TrimSpace(string(o))) > 0 {
			return host + ":9009"
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("croc relay did not start: %s", out.String())
	return ""
}

// crocCopy sends src from A to B with croc through its relay, as croc's
// users do (a code phrase, the receiver accepting with --yes), and
// returns MB/s from the receiver's start to its end (croc's key exchange
// and its check of the file included: about 0.1 s).
func crocCopy(b *testing.B, l *natlab.Lab, croc, relay, src, dst string, size int64, flags ...string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := fmt.Sprintf("p2pd-bench-%d", rand.Uint64())
	env := []string{"CROC_SECRET=" + code, "HOME=" + b.TempDir()}
	send := l.Command(ctx, l.A.Host, croc, append(flags, "--relay", relay, "--yes", "--ignore-stdin", "send", "--no-local", src)...)
	send.Env = append(send.Env, env...)
	var sendOut syncBuffer
	send.Stdout, send.Stderr = &sendOut, &sendOut
	if err := send.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		send.Process.Kill()
		send.Wait()
	}()
	for !strings.Contains(sendOut.String(), "Code is") {
		if ctx.Err() != nil {
			b.Fatalf("croc send did not get ready: %s", tail([]byte(sendOut.String())))
		}
		time.Sleep(10 * time.Millisecond)
	}
	into := filepath.Join(dst, "croc")
	if err := os.MkdirAll(into, 0o755); err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(into)
	recv := l.Command(ctx, l.B.Host, croc, append(flags, "--relay", relay, "--ip", relay, "--yes", "--overwrite", "--ignore-stdin", "--out", into)...)
	recv.Env = append(recv.Env, env...)
	start := time.Now()
	if out, err := recv.CombinedOutput(); err != nil {
		b.Fatalf("croc receive: %v\n%s\nsender: %s", err, tail(out), tail([]byte(sendOut.String())))
	}
	took := time.Since(start)
	if fi, err := os.Stat(filepath.Join(into, filepath.Base(src))); err != nil || fi.Size() != size {
		b.Fatalf("croc's copy arrived short: %v", err)
	}
	b.Logf("croc %s: %.1f MB/s", strings.Join(flags, " "), mbps(size, took))
	return mbps(size, took)
}

// tail is the end of a progress-bar-filled output.
func tail(b []byte) []byte {
	return b[max(0, len(b)-600):]
}
