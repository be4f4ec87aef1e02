package pipe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// tcpConns returns a pipe wrapping one end of a loopback TCP connection and
// the raw other end.
func tcpConns(t *testing.T, opts ...Option) (*Pipe, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := Wrap(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, s
}

func TestHandlersRunAgainAfterRecvStops(t *testing.T) {
	seen := make(chan string, 10)
	p, peer := tcpConns(t, WithFraming(Lines), WithMsgHandler(func(msg []byte, _ netip.AddrPort, _ *Pipe) {
		seen <- string(msg)
	}))
	peer.Write([]byte("first\n"))
	if got := recvString(t, p, SubAll); got != "first" || <-seen != "first" {
		t.Fatalf("got %q", got)
	}
	// Nobody is in Recv now: the background reader must take the socket back
	// and keep feeding the handler.
	peer.Write([]byte("second\n"))
	select {
	case got := <-seen:
		if got != "second" {
			t.Errorf("handler got %q", got)
		}
	case <-time.After(testTimeout):
		t.Fatal("handler never saw a message sent after Recv returned")
	}
	// And the peer closing is noticed without a Recv.
	peer.Close()
	select {
	case <-p.Done():
	case <-time.After(testTimeout):
		t.Fatal("the end of the connection went unnoticed")
	}
}

func TestRecvDeadlineKeepsPartialFrame(t *testing.T) {
	p, peer := tcpConns(t, WithFraming(Frames))
	whole := frame("split across a deadline")
	peer.Write(whole[:9])
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Recv(ctx, SubAll); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv of half a frame: %v, want deadline exceeded", err)
	}
	if p.Err() != nil {
		t.Fatalf("a timed-out Recv ended the pipe: %v", p.Err())
	}
	peer.Write(whole[9:])
	if got := recvString(t, p, SubAll); got != "split across a deadline" {
		t.Errorf("got %q after the deadline, want the whole frame", got)
	}
}

func TestRecvCanceled(t *testing.T) {
	p, _ := tcpConns(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := p.Recv(ctx, SubAll); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want canceled", err)
	}
}

func TestConcurrentRecvOnTwoSubscriptions(t *testing.T) {
	p, peer := tcpConns(t, WithFraming(Lines), WithoutDefaultSub())
	odd, even := MustSub("^odd", ""), MustSub("^even", "")
	p.Subscribe(odd)
	p.Subscribe(even)
	const n = 200
	var wg sync.WaitGroup
	for _, s := range []struct {
		sub  Sub
		name string
	}{{odd, "odd"}, {even, "even"}} {
		wg.Go(func() {
			for i := range n {
				want := fmt.Sprintf("%s %d", s.name, i)
				if got := recvString(t, p, s.sub); got != want {
					t.Errorf("got %q, want %q", got, want)
					return
				}
			}
		})
	}
	for i := range n {
		fmt.Fprintf(peer, "odd %d\neven %d\n", i, i)
	}
	wg.Wait()
}

// noDeadlines hides a connection's deadline support, like some wrappers do.
type noDeadlines struct{ net.Conn }

func (noDeadlines) SetReadDeadline(time.Time) error { return errors.ErrUnsupported }

func TestConnWithoutDeadlines(t *testing.T) {
	a, b := net.Pipe()
	p, err := Wrap(noDeadlines{a}, WithFraming(Lines))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer b.Close()
	go b.Write([]byte("still delivered\n"))
	if got := recvString(t, p, SubAll); got != "still delivered" {
		t.Errorf("got %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Recv(ctx, SubAll); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
}

func TestReleaseRecyclesBuffers(t *testing.T) {
	p, peer := tcpConns(t, WithFraming(Frames))
	other := MustSub("^x", "")
	p.Subscribe(other) // the message goes to two queues: one buffer, two references
	peer.Write(frame("xyz"))
	m1 := recvOne(t, p, SubAll)
	m2 := recvOne(t, p, other)
	if m1.buf != m2.buf || m1.buf.refs.Load() != 2 {
		t.Fatalf("queues hold separate buffers or wrong references (%d)", m1.buf.refs.Load())
	}
	m1.Release()
	m1.Release() // a second release of the same Message is a no-op
	if string(m2.Data) != "xyz" || m2.buf.refs.Load() != 1 {
		t.Errorf("releasing one copy disturbed the other: %q, refs %d", m2.Data, m2.buf.refs.Load())
	}
	m2.Release()
	if m1.Data != nil || m2.Data != nil {
		t.Error("released messages still expose their data")
	}
}

func recvOne(t *testing.T, p *Pipe, sub Sub) Message {
	t.Helper()
	m, err := p.Recv(testCtx(t), sub)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
