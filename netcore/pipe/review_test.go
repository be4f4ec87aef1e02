package pipe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Regression tests for defects found in review.

func TestEndHandlerMayClose(t *testing.T) {
	// Ended by the peer, then by Close, then through a server's handler.
	for _, how := range []string{"peer", "close", "server"} {
		t.Run(how, func(t *testing.T) {
			ran := make(chan struct{})
			srv := mustListen(t, TCP, lo4)
			if how == "server" {
				srv.AddEndHandler(func(p *Pipe, err error) {
					if !p.IsServer() {
						srv.Close()
						close(ran)
					}
				})
			}
			cli := mustOpen(t, TCP, srv.LocalAddr())
			peer, err := srv.Accept(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			switch how {
			case "peer":
				cli.AddEndHandler(func(p *Pipe, err error) { p.Close(); close(ran) })
				peer.Close()
			case "close":
				cli.AddEndHandler(func(p *Pipe, err error) { p.Close(); close(ran) })
				go cli.Close()
			case "server":
				cli.Close()
			}
			select {
			case <-ran:
			case <-time.After(testTimeout):
				t.Fatal("an end handler calling Close deadlocked")
			}
		})
	}
}

// foreignTimeouts reports deadlines with its own net.Error, as pion's TURN
// connections do.
type foreignTimeouts struct{ net.PacketConn }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read: i/o timeout (foreign)" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c foreignTimeouts) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, a, timeoutErr{}
	}
	return n, a, err
}

func TestForeignTimeoutIsNotFatal(t *testing.T) {
	uc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4))
	if err != nil {
		t.Fatal(err)
	}
	p, err := WrapPacket(foreignTimeouts{uc}, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Subscribe(SubAll)
	time.Sleep(20 * time.Millisecond) // the background reader is reading
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Recv(ctx, SubAll); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("recv: %v, want deadline exceeded", err)
	}
	if err := p.Err(); err != nil {
		t.Errorf("a foreign timeout ended the pipe: %v", err)
	}
}

func TestEndHandlerRunsOnce(t *testing.T) {
	for range 300 {
		a, b := net.Pipe()
		p, err := Wrap(a)
		if err != nil {
			t.Fatal(err)
		}
		var n atomic.Int32
		go b.Close()
		p.AddEndHandler(func(*Pipe, error) { n.Add(1) })
		<-p.Done()
		p.Close()
		// End handlers run after Done closes: wait for the one run, then
		// make sure no second one follows.
		waitFor(t, func() bool { return n.Load() > 0 })
		time.Sleep(time.Millisecond)
		if got := n.Load(); got != 1 {
			t.Fatalf("end handler ran %d times", got)
		}
	}
}

func TestNoHandlerAfterClose(t *testing.T) {
	var calls atomic.Int32
	srv := mustListen(t, TCP, lo4, WithFraming(Lines), WithMsgHandler(func(_ []byte, _ netip.AddrPort, p *Pipe) {
		calls.Add(1)
		p.Close()
	}))
	c, err := net.Dial("tcp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("a\nb\nc\n")) // one read, three lines
	waitFor(t, func() bool { return calls.Load() > 0 })
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times on a pipe it closed at once", n)
	}
}

func TestLastLineFollowsTheRules(t *testing.T) {
	got := make(chan string, 4)
	ended := make(chan error, 1)
	srv := mustListen(t, TCP, lo4, WithFraming(Lines), WithMaxFrame(4),
		WithMsgHandler(func(msg []byte, _ netip.AddrPort, _ *Pipe) { got <- string(msg) }),
		WithEndHandler(func(p *Pipe, err error) {
			if !p.IsServer() {
				ended <- err
			}
		}))
	c, err := net.Dial("tcp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ab\r\ncd\r\nxxxxxxxxxx"))
	c.(*net.TCPConn).CloseWrite()
	defer c.Close()
	if err := <-ended; !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("end = %v, want ErrFrameTooLarge for the oversize last line", err)
	}
	close(got)
	var lines []string
	for l := range got {
		lines = append(lines, l)
	}
	if strings.Join(lines, "|") != "ab|cd" {
		t.Errorf("lines %q", lines)
	}
}

func TestEmptySubIsSubAll(t *testing.T) {
	s, err := NewSub("", "")
	if err != nil {
		t.Fatal(err)
	}
	cli := mustOpen(t, UDP, mustListen(t, UDP, lo4, WithMsgHandler(echo)).LocalAddr())
	cli.Send(testCtx(t), []byte("x"), netip.AddrPort{})
	if got := recvString(t, cli, s); got != "x" {
		t.Errorf("got %q", got)
	}
}

func TestDNSTimeoutWraps(t *testing.T) {
	r := startDNS(t, true, nil)
	_, err := Open(testCtx(t), TCP, "slow.p2pd.test:80", WithResolver(r), WithDNSTimeout(100*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
}
