package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/identity"
	"p2pd/netcore/natlab"
	"p2pd/netcore/node"
	"p2pd/netcore/session"
	"p2pd/transfer"
)

// duplexSize is what each side of TestTwoWayRelayedTransfer sends.
const duplexSize = 48 << 20

// duplexLine is what the "duplex" child prints: its address (listen
// side), then how its two transfers went.
type duplexLine struct {
	Address  string  `json:"address,omitempty"`
	Strategy string  `json:"strategy,omitempty"`
	Detail   string  `json:"detail,omitempty"`
	Sent     int64   `json:"sent,omitempty"`
	Saved    string  `json:"saved,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// TestTwoWayRelayedTransfer: two friends behind symmetric NATs send each
// other a file at once over their one relayed session (TLS over TCP
// through coturn), which would fill a relayed connection both ways: over
// one connection, coturn stopped forwarding one way for good (relay.Pairs)
// and the session ended after writePatience. Over a pair of connections,
// one each way, both files arrive whole: through one relay, and relay to
// relay (B's router lets out no TCP to A's relayed ports, and no UDP but
// to the TURN server and NTP). QUIC through the relay (no TCP to A's
// relayed ports) carries both too.
func TestTwoWayRelayedTransfer(t *testing.T) {
	for _, c := range []struct {
		name, want string
		rules      []string
	}{
		{"one relay", "a connection each way (TLS over TCP, one relay)", nil},
		{"QUIC", "(QUIC, one relay)", []string{`iifname "lan" oifname "wan" tcp dport 49152-49999 drop`}},
		{"relay to relay", "a connection each way (TLS over TCP, relay to relay)", []string{
			`iifname "lan" oifname "wan" tcp dport 49152-49999 drop`,
			`iifname "lan" oifname "wan" udp dport != { 123, 3478, 3479 } drop`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			twoWayRelayed(t, c.want, c.rules)
		})
	}
}

// twoWayRelayed runs TestTwoWayRelayedTransfer with B's router
// firewalled by rules, and wants the session's detail to say want.
func twoWayRelayed(t *testing.T, want string, rules []string) {
	hard := natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}
	l := natlab.New(t, natlab.Config{A: hard, B: hard, TURN: true, MQTT: true, NTP: true})
	for _, rule := range rules {
		firewall(t, l, l.B.Router, rule)
	}
	files := map[string][]byte{}
	type child struct {
		out    *bufio.Reader
		stderr *bytes.Buffer
		cmd    *exec.Cmd
	}
	start := func(ns, role string, args ...string) child {
		dir := t.TempDir()
		data := make([]byte, duplexSize)
		rand.Read(data)
		src := filepath.Join(dir, role+".bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files[role] = data
		path, err := l.WriteNodeConfig(role, l.NodeConfig())
		if err != nil {
			t.Fatal(err)
		}
		into := filepath.Join(dir, "in")
		os.Mkdir(into, 0o755)
		cmd := l.ChildCommand(t.Context(), ns, "duplex", append([]string{role, path, src, into}, args...)...)
		cmd.Env = append(cmd.Env, "P2PD_HOME="+t.TempDir()) // each its own identity
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		})
		return child{bufio.NewReader(out), &stderr, cmd}
	}
	read := func(c child) duplexLine {
		var line duplexLine
		b, err := c.out.ReadBytes('\n')
		if err := errors.Join(err, json.Unmarshal(b, &line)); err != nil {
			werr := c.cmd.Wait()
			t.Fatalf("a duplex child printed %q: %v (%v)\n%s", b, err, werr, c.stderr.String())
		}
		return line
	}
	b := start(l.B.Host, "listen")
	first := read(b)
	a := start(l.A.Host, "dial", v4Only(t, first.Address))
	began := time.Now()
	for _, side := range []struct {
		name, from string
		child
	}{{"A", "listen", a}, {"B", "dial", b}} {
		got := read(side.child)
		if got.Error != "" {
			t.Fatalf("%s: %s (after %v)", side.name, got.Error, time.Since(began).Round(time.Millisecond))
		}
		if side.name == "A" && (got.Strategy != node.Relay || !strings.Contains(got.Detail, want)) {
			t.Errorf("connected by %s %q, want %q", got.Strategy, got.Detail, want)
		}
		b, err := os.ReadFile(got.Saved)
		if err != nil || !bytes.Equal(b, files[side.from]) {
			t.Fatalf("%s: the file from the other side did not arrive whole: %v", side.name, err)
		}
		t.Logf("%s sent %d MiB while receiving as much in %.1f s", side.name, got.Sent>>20, got.Seconds)
	}
}

// childDuplex runs in a lab host for TestTwoWayRelayedTransfer: args are
// the role (listen or dial), the node's config, the file to send, the
// folder to receive into and, to dial, the peer's address. Over the one
// session the two make, it sends its file while receiving the other's,
// then prints a duplexLine and waits to be stopped.
func childDuplex(args []string) error {
	role, cfgPath, src, into := args[0], args[1], args[2], args[3]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	n, err := node.Start(ctx, node.Options{Config: cfg, Logger: envLogger()})
	if err != nil {
		return err
	}
	defer n.Close()
	got := make(chan transfer.Result, 1)
	recv := &transfer.Receiver{
		Dir:    into,
		Decide: func(identity.ID, transfer.Offer) bool { return true },
		Done:   func(_ transfer.Offer, r transfer.Result) { got <- r },
	}
	// The listener sends over the session the dialer's file comes on:
	// where two relay paths got through, the dialer keeps one.
	offered := make(chan *session.Session, 1)
	n.Handle(transfer.Proto, func(ctx context.Context, s *session.Session, st net.Conn) {
		select {
		case offered <- s:
		default:
		}
		recv.Handle(ctx, s, st)
	})
	enc := json.NewEncoder(os.Stdout)
	var line duplexLine
	var s *session.Session
	if role == "listen" {
		a, err := n.Address().Encode()
		if err != nil {
			return err
		}
		enc.Encode(duplexLine{Address: a})
		select {
		case s = <-offered:
		case <-ctx.Done():
			return errors.New("no file offered by the peer")
		}
	} else {
		peer, err := addr.Parse(args[4])
		if err != nil {
			return err
		}
		res, err := n.Connect(ctx, peer, node.ConnectOptions{Strategies: []string{node.Relay}})
		if err != nil {
			return err
		}
		s, line.Strategy = res.Session, res.Strategy
		for _, e := range res.Events {
			if e.State == node.Succeeded {
				line.Detail = e.Reason
			}
		}
	}
	began := time.Now()
	var failed []error
	_, sent, err := transfer.Send(ctx, s, []string{src}, nil)
	line.Sent = sent
	if err != nil {
		failed = append(failed, fmt.Errorf("sending: %w", err))
	}
	select {
	case r := <-got:
		if !r.OK || len(r.Saved) != 1 {
			failed = append(failed, fmt.Errorf("receiving: %s", r.Error))
		} else {
			line.Saved = filepath.Join(into, r.Saved[0])
		}
	case <-ctx.Done():
		failed = append(failed, errors.New("nothing received"))
	}
	line.Seconds = time.Since(began).Seconds()
	if err := errors.Join(failed...); err != nil {
		line.Error = err.Error()
	}
	if err := enc.Encode(line); err != nil {
		return err
	}
	<-ctx.Done() // the peer may still wait for this side's last words
	return nil
}
