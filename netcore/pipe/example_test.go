package pipe_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"p2pd/netcore/pipe"
)

// A TCP echo server and a client, with length-prefixed frames.
func ExampleOpen() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// The server answers each message on the pipe it arrived on.
	echo := func(msg []byte, from netip.AddrPort, p *pipe.Pipe) {
		p.Send(ctx, msg, from)
	}
	srv, err := pipe.Listen(ctx, pipe.TCP, netip.MustParseAddrPort("127.0.0.1:0"),
		pipe.WithFraming(pipe.Frames), pipe.WithMsgHandler(echo))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	cli, err := pipe.Open(ctx, pipe.TCP, srv.LocalAddr().String(), pipe.WithFraming(pipe.Frames))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	cli.Send(ctx, []byte("hello"), netip.AddrPort{})
	m, err := cli.Recv(ctx, pipe.SubAll) // a client subscribes to everything by default
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", m.Data)
	// Output: hello
}

// UDP request and response, picking the response out with a subscription.
func Example_udpSubscription() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// A server that answers "PING n" with "PONG n".
	srv, err := pipe.Listen(ctx, pipe.UDP, netip.MustParseAddrPort("127.0.0.1:0"),
		pipe.WithMsgHandler(func(msg []byte, from netip.AddrPort, p *pipe.Pipe) {
			p.Send(ctx, append([]byte("PONG"), msg[len("PING"):]...), from)
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	cli, err := pipe.Open(ctx, pipe.UDP, srv.LocalAddr().String(), pipe.WithoutDefaultSub())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	// Only PONGs from the server's address reach this queue.
	pongs := pipe.MustSub("^PONG ", srv.LocalAddr().String())
	cli.Subscribe(pongs)
	cli.Send(ctx, []byte("PING 42"), netip.AddrPort{})
	m, err := cli.Recv(ctx, pongs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s from the server: %v\n", m.Data, m.From == srv.LocalAddr())
	// Output: PONG 42 from the server: true
}
