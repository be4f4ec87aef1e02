package signal

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/netcore/config"
	"p2pd/netcore/natlab"
)

func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{"signal": childSignal, "reconnect": childReconnect, "lateack": childLateAck})
	os.Exit(m.Run())
}

type signalResult struct {
	Received     int           // copies of one message sent through two brokers
	Healthy      time.Duration // send to delivery, both of the peer's brokers up
	OneDown      time.Duration // the same with the first broker silent
	StrangerSeen bool          // a message from a refused sender reached the handler
	Dropped      int64
	Brokers      []netip.AddrPort
}

// childSignal runs alice, bob and eve in one lab host against the lab's
// brokers (args: live broker 1, live broker 2, silent broker).
func childSignal(args []string) error {
	live1, live2, silent := netip.MustParseAddrPort(args[0]), netip.MustParseAddrPort(args[1]), netip.MustParseAddrPort(args[2])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys := func() (ed25519.PublicKey, ed25519.PrivateKey) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		return pub, priv
	}
	apub, apriv := keys()
	bpub, bpriv := keys()
	epub, epriv := keys()
	eps := func(aps ...netip.AddrPort) []config.Endpoint {
		var out []config.Endpoint
		for _, ap := range aps {
			out = append(out, config.Endpoint{Proto: "tcp", Host: ap.Addr().String(), Port: ap.Port()})
		}
		return out
	}

	got := make(chan Message, 16)
	var strangers atomic.Bool
	bob, err := Listen(ctx, NewSealer(bpub, bpriv, time.Now), eps(live1, live2), func(m Message) {
		if m.From.Equal(epub) {
			strangers.Store(true)
		}
		got <- m
	}, WithAccept(func(from ed25519.PublicKey, _ byte) bool { return from.Equal(apub) }))
	if err != nil {
		return err
	}
	defer bob.Close()
	// Bob's address lists both brokers once both subscriptions are up.
	for len(bob.Brokers()) < 2 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("bob subscribed on %v only", bob.Brokers())
		case <-time.After(10 * time.Millisecond):
		}
	}
	alice, err := Listen(ctx, NewSealer(apub, apriv, time.Now), eps(live1), nil)
	if err != nil {
		return err
	}
	defer alice.Close()
	eve, err := Listen(ctx, NewSealer(epub, epriv, time.Now), eps(live2), nil)
	if err != nil {
		return err
	}
	defer eve.Close()

	res := signalResult{Brokers: bob.Brokers()}
	deliver := func(via []netip.AddrPort) (time.Duration, error) {
		start := time.Now()
		if err := alice.Send(ctx, bpub, via, 1, []byte("hello bob")); err != nil {
			return 0, err
		}
		select {
		case <-got:
			return time.Since(start), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	// Warm the connections, then measure.
	if _, err := deliver([]netip.AddrPort{live1, live2}); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	for len(got) > 0 {
		<-got
	}
	if res.Healthy, err = deliver([]netip.AddrPort{live1, live2}); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond) // the second broker's copy, if any got through
	res.Received = 1 + len(got)
	for len(got) > 0 {
		<-got
	}
	if res.OneDown, err = deliver([]netip.AddrPort{silent, live2}); err != nil {
		return err
	}
	if err := eve.Send(ctx, bpub, []netip.AddrPort{live2}, 1, []byte("hi, it's eve")); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	res.StrangerSeen = strangers.Load()
	res.Dropped = bob.Dropped()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func TestSignalingThroughBrokers(t *testing.T) {
	l := natlab.New(t, natlab.Config{MQTT: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := l.Run(ctx, l.A.Host, "signal", "203.0.113.1:1883", "203.0.113.2:1883", netip.AddrPortFrom(natlab.SilentIP, 1883).String())
	if err != nil {
		t.Fatal(err)
	}
	var r signalResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	t.Logf("%+v", r)
	if r.Received != 1 {
		t.Errorf("a message sent through two brokers arrived %d times", r.Received)
	}
	if r.OneDown-r.Healthy > time.Second {
		t.Errorf("one broker down: delivery took %v, healthy %v", r.OneDown, r.Healthy)
	}
	if r.StrangerSeen || r.Dropped < 2 { // eve's message and the duplicate copy
		t.Errorf("stranger seen %v, dropped %d", r.StrangerSeen, r.Dropped)
	}
	if len(r.Brokers) != 2 {
		t.Errorf("bob listens on %v, want both brokers", r.Brokers)
	}
}

// childReconnect listens on one broker (args[0]), prints "ready", and
// after a line on stdin (the broker has restarted meanwhile) waits to be
// subscribed again and checks a message gets through.
func childReconnect(args []string) error {
	broker := netip.MustParseAddrPort(args[0])
	ep := []config.Endpoint{{Proto: "tcp", Host: broker.Addr().String(), Port: broker.Port()}}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	bpub, bpriv, _ := ed25519.GenerateKey(rand.Reader)
	apub, apriv, _ := ed25519.GenerateKey(rand.Reader)
	got := make(chan Message, 4)
	bob, err := Listen(ctx, NewSealer(bpub, bpriv, time.Now), ep, func(m Message) { got <- m })
	if err != nil {
		return err
	}
	defer bob.Close()
	alice, err := Listen(ctx, NewSealer(apub, apriv, time.Now), ep, nil)
	if err != nil {
		return err
	}
	defer alice.Close()
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	start := time.Now()
	for len(bob.Brokers()) == 0 || time.Since(start) < 100*time.Millisecond {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not subscribed again after the broker came back")
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Retry until the message arrives: the subscription may be a moment
	// behind what Brokers reports.
	for {
		if err := alice.Send(ctx, bpub, []netip.AddrPort{broker}, 1, []byte("after the restart")); err != nil {
			return err
		}
		select {
		case m := <-got:
			fmt.Printf("received %q %v after the restart\n", m.Body, time.Since(start).Round(time.Millisecond))
			return nil
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("nothing received after the broker came back")
		}
	}
}

func TestReconnectAfterBrokerRestart(t *testing.T) {
	l := natlab.New(t, natlab.Config{MQTT: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := l.Command(ctx, l.A.Host, os.Args[0], "--", "203.0.113.1:1883")
	cmd.Env = append(cmd.Env, "NATLAB_CHILD=reconnect")
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(outPipe)
	if line, err := out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q, %v (%s)", line, err, stderr.String())
	}
	if err := l.RestartBroker(ctx, 1); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	line, _ := out.ReadString('\n')
	if err := cmd.Wait(); err != nil || !strings.HasPrefix(line, "received") {
		t.Fatalf("after a broker restart: %q, %v (%s)", line, err, stderr.String())
	}
	t.Log(strings.TrimSpace(line))
}

// TestSubscribeAcknowledgedLate: the broker's answers (CONNACK, SUBACK)
// come 3 s late, as TCP's retransmissions make them on a lossy path;
// Listen, given 8 s, still ends subscribed. (The connection and the
// subscription were once given up on after 2 s, and a node that started
// on such a path had no signaling.)
func TestSubscribeAcknowledgedLate(t *testing.T) {
	l := natlab.New(t, natlab.Config{MQTT: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := l.Run(ctx, l.A.Host, "lateack", "203.0.113.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	took, err := time.ParseDuration(strings.TrimSpace(string(out)))
	if err != nil || took < lateBy {
		t.Fatalf("child printed %q (%v)", out, err)
	}
	t.Logf("subscribed after %v", took)
}

// lateBy is how long the proxy in childLateAck holds the broker's bytes.
const lateBy = 3 * time.Second

// childLateAck listens through a proxy to the broker (args: its address)
// that holds what the broker sends for lateBy, and prints how long Listen
// took.
func childLateAck(args []string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go lateProxy(c, args[0])
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ap := netip.MustParseAddrPort(ln.Addr().String())
	start := time.Now()
	c, err := Listen(ctx, NewSealer(pub, priv, time.Now), []config.Endpoint{{Proto: "tcp", Host: ap.Addr().String(), Port: ap.Port()}}, nil)
	if err != nil {
		return err
	}
	took := time.Since(start)
	c.Close()
	_, err = fmt.Println(took)
	return err
}

// lateProxy joins c to the broker at to, holding the broker's bytes for
// lateBy: its CONNACK, and the SUBACK that follows when the client sent
// its SUBSCRIBE meanwhile.
func lateProxy(c net.Conn, to string) {
	defer c.Close()
	b, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer b.Close()
	go func() {
		io.Copy(b, c)
		b.Close()
	}()
	time.Sleep(lateBy)
	io.Copy(c, b)
}
