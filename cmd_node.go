package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"p2pd/chat"
	"p2pd/netcore/identity"
	"p2pd/netcore/lan"
	"p2pd/presence"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/config"
	"p2pd/netcore/node"
	"p2pd/netcore/pipe"
)

// nodeFlags are the flags every node-running command takes.
type nodeFlags struct {
	config *string
	port   *uint
}

func addNodeFlags(fs interface {
	String(string, string, string) *string
	Uint(string, uint, string) *uint
}) nodeFlags {
	return nodeFlags{
		config: fs.String("config", "", "config file (default: $P2PD_CONFIG, else the public servers)"),
		port:   fs.Uint("port", 0, "listen port (default: any free port)"),
	}
}

// envLogger is the log of a command or the app: debug lines on stderr
// when P2PD_LOG is set, nothing otherwise (stdout is for the command's
// output).
func envLogger() *slog.Logger {
	if os.Getenv("P2PD_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startNode starts a node with the flags' settings; its log goes to
// stderr only when P2PD_LOG is set (envLogger).
func startNode(ctx context.Context, f nodeFlags) (*node.Node, error) {
	if *f.port > 65535 {
		return nil, usageError{"--port must be 0 to 65535"}
	}
	cfg, err := config.Resolve(*f.config)
	if err != nil {
		return nil, err
	}
	log := envLogger()
	return node.Start(ctx, node.Options{Config: cfg, Port: uint16(*f.port), Logger: log})
}

// startNodeUntilSignal starts a node for a command that runs until
// Ctrl-C or SIGTERM: the context ends with the signal; call stop when done.
func startNodeUntilSignal(nf nodeFlags) (context.Context, context.CancelFunc, *node.Node, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	n, err := startNode(ctx, nf)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return ctx, stop, n, nil
}

func cmdAddr(args []string, stdout io.Writer) error {
	fs := newFlags("addr", stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	nf := addNodeFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	n, err := startNode(context.Background(), nf)
	if err != nil {
		return err
	}
	defer n.Close()
	return printAddress(stdout, n, *asJSON)
}

func printAddress(w io.Writer, n *node.Node, asJSON bool) error {
	a := n.Address()
	text, err := a.Encode()
	if err != nil {
		return err
	}
	if !asJSON {
		_, err := fmt.Fprintln(w, text)
		return err
	}
	uri, _ := a.URI()
	return writeJSON(w, struct {
		Address string          `json:"address"`
		URI     string          `json:"uri"`
		ID      string          `json:"id"`
		Detail  *addressSummary `json:"detail"`
	}{text, uri, n.ID().String(), summarize(a)})
}

// addressSummary is an address spelled out for people and scripts.
type addressSummary struct {
	Interfaces []addr.Interface `json:"interfaces"`
	Brokers    []netip.AddrPort `json:"brokers"`
	Relays     []netip.AddrPort `json:"relays"`
}

func summarize(a *addr.Address) *addressSummary {
	s := &addressSummary{Interfaces: a.Interfaces}
	for _, b := range a.Brokers {
		s.Brokers = append(s.Brokers, b.Addr)
	}
	for _, r := range a.Relays {
		s.Relays = append(s.Relays, r.Addr)
	}
	return s
}

func cmdNode(args []string, stdout io.Writer) error {
	fs := newFlags("node", stdout)
	asJSON := fs.Bool("json", false, "print the address (again whenever it changes) and each friend's change as JSON")
	poll := fs.Duration("poll", presence.DefaultPoll, "ask each friend this often whether it is online")
	nf := addNodeFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop, n, err := startNodeUntilSignal(nf)
	if err != nil {
		return err
	}
	defer stop()
	// A running node takes chat messages into the history, for
	// `p2pd chat` (and the app) to show.
	home, err := config.Home()
	if err != nil {
		n.Close()
		return err
	}
	store, err := chat.OpenStore(filepath.Join(home, "chat"))
	if err != nil {
		n.Close()
		return err
	}
	defer store.Close()
	var out sync.Mutex
	c := chat.New(store, func(from identity.ID, m chat.Message) {
		if !*asJSON {
			out.Lock()
			fmt.Fprintf(stdout, "%s  message from %s: %s\n", m.Time.Local().Format("15:04"), from, chat.Printable(m.Text))
			out.Unlock()
		}
	})
	n.Handle(chat.Proto, c.Handle)
	// The address grows when a signaling broker is reached after the
	// start: friends need the new one to signal this node. Watched
	// before the first address is printed (and printed after it), so
	// no change falls between the two.
	out.Lock()
	defer n.OnAddress(func(*addr.Address) {
		out.Lock()
		defer out.Unlock()
		if !*asJSON {
			fmt.Fprint(stdout, "signaling reached, the address is now: ")
		}
		printAddress(stdout, n, *asJSON)
	})()
	err = printAddress(stdout, n, *asJSON)
	out.Unlock()
	if err != nil {
		n.Close()
		return err
	}
	// Friends: who is online, and what waits for them goes when they can
	// be reached.
	keeper, err := runPresence(ctx, n, c, home, *poll, *asJSON, &out, stdout)
	if err != nil {
		n.Close()
		return err
	}
	// Nodes on this LAN find this one with no server (p2pd nearby).
	beacons := make(chan struct{})
	go func() {
		defer close(beacons)
		if err := lan.Run(ctx, n.Address, func(lan.Peer) {}); err != nil {
			slog.Debug("no LAN beacons", "err", err)
		}
	}()
	defer func() { <-beacons }()
	<-ctx.Done()
	keeper() // it uses the node until it stops
	// Clean shutdown: mappings removed, brokers disconnected.
	return n.Close()
}

func cmdConnect(args []string, stdout io.Writer) error {
	fs := newFlags("connect", stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	strategies := fs.String("strategies", strings.Join(node.Strategies, ","), "strategies to race, comma-separated")
	noRelay := fs.Bool("no-relay", false, "never relay through a TURN server (direct paths only)")
	timeout := fs.Duration("timeout", 20*time.Second, "give up connecting after this long")
	hold := fs.Duration("hold", 0, "after the echo, keep the connection idle this long and echo again (reports a connection that dies)")
	nf := addNodeFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"want one address: p2pd connect ADDR"}
	}
	to, err := resolvePeer(fs.Arg(0))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	n, err := startNode(ctx, nf)
	if err != nil {
		return err
	}
	defer n.Close()

	wanted := strings.Split(*strategies, ",")
	if *noRelay {
		wanted = slices.DeleteFunc(wanted, func(s string) bool { return s == node.Relay })
		if len(wanted) == 0 {
			return usageError{"--no-relay leaves no strategy to try"}
		}
	}
	to = freshen(ctx, n, to)
	start := time.Now()
	res, cerr := n.Connect(ctx, to, node.ConnectOptions{Strategies: wanted})
	out := connectReport{Events: resultEvents(res)}
	var echoErr error
	if cerr == nil {
		out.Strategy = res.Strategy
		out.ConnectTime = time.Since(start)
		out.EchoTime, echoErr = echo(ctx, res)
		out.Echo = echoErr == nil
		if echoErr != nil {
			out.EchoError = echoErr.Error()
		}
		if echoErr == nil && *hold > 0 {
			echoErr = holdAndEcho(res, *hold, &out)
		}
		res.Session.Close()
	}
	if *asJSON {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		printConnect(stdout, out)
	}
	switch {
	case cerr != nil:
		return cerr
	case echoErr != nil:
		return fmt.Errorf("connected by %s, but the echo failed: %w", res.Strategy, echoErr)
	}
	return nil
}

// holdEchoTimeout bounds the echo after holding: the session is up, so
// one round trip, or the keepalive noticing the peer gone.
const holdEchoTimeout = 10 * time.Second

// holdAndEcho keeps the session idle for hold, then echoes again; a
// session that ends meanwhile is reported with when it ended.
func holdAndEcho(res *node.Result, hold time.Duration, out *connectReport) error {
	start := time.Now()
	select {
	case <-time.After(hold):
	case <-res.Session.Done():
		out.Ended = fmt.Sprintf("the connection ended %v into the hold: the peer closed it or went silent", time.Since(start).Round(time.Millisecond))
		return errors.New(out.Ended)
	}
	ctx, cancel := context.WithTimeout(context.Background(), holdEchoTimeout)
	defer cancel()
	if _, err := echo(ctx, res); err != nil {
		out.Ended = fmt.Sprintf("after %v idle the echo failed: %v", hold, err)
		return errors.New(out.Ended)
	}
	out.Held = true
	return nil
}

// connectReport is what `p2pd connect` prints.
type connectReport struct {
	Strategy    string        `json:"strategy,omitempty"` // the winner
	ConnectTime time.Duration `json:"connect_time,omitempty"`
	Echo        bool          `json:"echo"` // the ECHO came back
	EchoTime    time.Duration `json:"echo_time,omitempty"`
	EchoError   string        `json:"echo_error,omitempty"` // why the echo did not come back
	Held        bool          `json:"held,omitempty"`       // --hold: the echo came back after the idle time
	Ended       string        `json:"ended,omitempty"`      // --hold: how the connection died
	Events      []node.Event  `json:"events"`
}

func resultEvents(res *node.Result) []node.Event {
	if res == nil {
		return nil
	}
	return res.Events
}

// echo sends "ECHO <random>" over a msg/1 pipe and waits for it to come
// back, returning the round trip.
func echo(ctx context.Context, res *node.Result) (time.Duration, error) {
	p, err := node.OpenPipe(ctx, res.Session)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	var token [8]byte
	rand.Read(token[:])
	want := hex.EncodeToString(token[:])
	start := time.Now()
	if err := p.Send(ctx, []byte("ECHO "+want), netip.AddrPort{}); err != nil {
		return 0, err
	}
	m, err := p.Recv(ctx, pipe.SubAll)
	if err != nil {
		return 0, err
	}
	if string(m.Data) != want {
		return 0, fmt.Errorf("the echo came back as %q, want %q", m.Data, want)
	}
	return time.Since(start), nil
}

func printConnect(w io.Writer, r connectReport) {
	if r.Strategy != "" {
		if r.Echo {
			fmt.Fprintf(w, "Connected by %s in %v; echo came back in %v.\n\n", r.Strategy, r.ConnectTime.Round(time.Millisecond), r.EchoTime.Round(time.Microsecond*100))
		} else {
			fmt.Fprintf(w, "Connected by %s in %v; echo FAILED: %s.\n\n", r.Strategy, r.ConnectTime.Round(time.Millisecond), r.EchoError)
		}
		switch {
		case r.Held:
			fmt.Fprintf(w, "Still up after the hold: echo came back.\n\n")
		case r.Ended != "":
			fmt.Fprintf(w, "Connection lost: %s.\n\n", r.Ended)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range r.Events {
		fmt.Fprintf(tw, "  %v\t%s\t%s\t%s\n", e.Elapsed.Round(time.Millisecond), e.Strategy, e.State, e.Reason)
	}
	tw.Flush()
}
