package pipe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Each benchmark runs the same work through a raw socket and through a pipe,
// alternating in rounds so that both see the same machine conditions, and
// reports both rates and their ratio ("pipe/raw": 1.0 means no overhead).

const benchRounds = 4

// compare times raw(n) and viaPipe(n) for b.N operations in alternating
// rounds and reports ops/s for each and their ratio.
func compare(b *testing.B, unit string, perOp float64, raw, viaPipe func(n int)) {
	b.Helper()
	var rawT, pipeT time.Duration
	// Warm both paths (connection slow start, goroutine stacks).
	raw(min(b.N, 100))
	viaPipe(min(b.N, 100))
	b.ResetTimer()
	for r := range benchRounds {
		n := b.N / benchRounds
		if r == benchRounds-1 {
			n = b.N - n*(benchRounds-1)
		}
		if n == 0 {
			continue
		}
		start := time.Now()
		raw(n)
		rawT += time.Since(start)
		start = time.Now()
		viaPipe(n)
		pipeT += time.Since(start)
	}
	rate := func(d time.Duration) float64 { return float64(b.N) * perOp / d.Seconds() }
	b.ReportMetric(rate(rawT), "raw-"+unit)
	b.ReportMetric(rate(pipeT), "pipe-"+unit)
	b.ReportMetric(rawT.Seconds()/pipeT.Seconds(), "pipe/raw")
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(b *testing.B) (client, server net.Conn) {
	b.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp4", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func wrap(b *testing.B, c net.Conn, opts ...Option) *Pipe {
	b.Helper()
	p, err := Wrap(c, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// BenchmarkTCPBulk moves 64 KiB chunks one way: raw Write/Read versus pipe
// Send/Recv (raw framing).
func BenchmarkTCPBulk(b *testing.B) {
	const chunk = 64 << 10
	data := make([]byte, chunk)

	rc, rs := tcpPair(b)
	buf := make([]byte, chunk)
	raw := func(n int) {
		go func() {
			for range n {
				rc.Write(data)
			}
		}()
		for left := n * chunk; left > 0; {
			k, err := rs.Read(buf[:min(len(buf), left)])
			if err != nil {
				b.Fatal(err)
			}
			left -= k
		}
	}

	pc, ps := tcpPair(b)
	sender, receiver := wrap(b, pc), wrap(b, ps)
	viaPipe := func(n int) {
		go func() {
			for range n {
				sender.Send(context.Background(), data, netip.AddrPort{})
			}
		}()
		for left := n * chunk; left > 0; {
			m, err := receiver.Recv(context.Background(), SubAll)
			if err != nil {
				b.Fatal(err)
			}
			left -= len(m.Data)
			m.Release()
		}
	}
	b.SetBytes(chunk)
	compare(b, "MB/s", chunk/1e6, raw, viaPipe)
}

// BenchmarkTCPRequestResponse sends a 64-byte request and waits for the
// echo: raw Write/ReadFull on both ends versus pipes with frames and an
// echo handler.
func BenchmarkTCPRequestResponse(b *testing.B) {
	req := make([]byte, 64)

	rc, rs := tcpPair(b)
	go func() {
		buf := make([]byte, len(req))
		for {
			if _, err := io.ReadFull(rs, buf); err != nil {
				return
			}
			if _, err := rs.Write(buf); err != nil {
				return
			}
		}
	}()
	resp := make([]byte, len(req))
	raw := func(n int) {
		for range n {
			rc.Write(req)
			if _, err := io.ReadFull(rc, resp); err != nil {
				b.Fatal(err)
			}
		}
	}

	pc, ps := tcpPair(b)
	wrap(b, ps, WithFraming(Frames), WithMsgHandler(echo), WithoutDefaultSub())
	cli := wrap(b, pc, WithFraming(Frames))
	ctx := context.Background()
	viaPipe := func(n int) {
		for range n {
			cli.Send(ctx, req, netip.AddrPort{})
			m, err := cli.Recv(ctx, SubAll)
			if err != nil {
				b.Fatal(err)
			}
			m.Release()
		}
	}
	compare(b, "req/s", 1, raw, viaPipe)
}

// BenchmarkUDPSubscriptions receives 64-byte datagrams: a raw UDP socket
// versus a pipe sorting them into 10 subscriptions (every datagram is
// checked against all 10 and matches the last). A window of datagrams in
// flight keeps the sender from overrunning the receiver, so nothing is lost
// and both measure delivery, not drops.
func BenchmarkUDPSubscriptions(b *testing.B) {
	const window = 32
	msg := []byte("topic-9: " + string(make([]byte, 55)))

	// run returns a round of n datagrams sent to dest and taken by recv,
	// which gets a deadline for the whole round.
	run := func(recv func(deadline time.Time) error, dest netip.AddrPort) func(n int) {
		tx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tx.Close() })
		return func(n int) {
			credit := make(chan struct{}, window)
			for range window {
				credit <- struct{}{}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range n {
					<-credit
					tx.WriteToUDPAddrPort(msg, dest)
				}
			}()
			deadline := time.Now().Add(testTimeout)
			for range n {
				if err := recv(deadline); err != nil {
					b.Fatal(err)
				}
				credit <- struct{}{}
			}
			<-done
		}
	}

	rx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rx.Close() })
	buf := make([]byte, 2048)
	var rxDeadline time.Time
	raw := run(func(deadline time.Time) error {
		if deadline != rxDeadline {
			rx.SetReadDeadline(deadline)
			rxDeadline = deadline
		}
		_, _, err := rx.ReadFromUDPAddrPort(buf)
		return err
	}, rx.LocalAddr().(*net.UDPAddr).AddrPort())

	srv, err := Listen(context.Background(), UDP, lo4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	var last Sub
	for i := range 10 {
		last = MustSub(fmt.Sprintf("^topic-%d: ", i), "127.0.0.1")
		srv.Subscribe(last)
	}
	var (
		ctx         context.Context
		cancel      context.CancelFunc
		ctxDeadline time.Time
	)
	b.Cleanup(func() {
		if cancel != nil {
			cancel()
		}
	})
	viaPipe := run(func(deadline time.Time) error {
		if deadline != ctxDeadline {
			if cancel != nil {
				cancel()
			}
			ctx, cancel = context.WithDeadline(context.Background(), deadline)
			ctxDeadline = deadline
		}
		m, err := srv.Recv(ctx, last)
		m.Release()
		return err
	}, srv.LocalAddr())

	compare(b, "msg/s", 1, raw, viaPipe)
}
