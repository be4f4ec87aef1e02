package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
	"p2pd/netcore/netif"
	"p2pd/netcore/session"
	"p2pd/netcore/stun"
)

// Connection strategies.
const (
	// Direct dials the peer's listen port on each plausible address: the
	// LAN address when both sit behind the same NAT, the external address,
	// the IPv6 address.
	Direct = "direct"
	// Reverse asks the peer, over signaling, to dial this node.
	Reverse = "reverse"
	// PunchTCP punches a TCP connection through both NATs: the nodes
	// exchange predicted endpoints over signaling and connect to each
	// other at an agreed instant on their NTP-corrected clocks.
	PunchTCP = "punch-tcp"
	// PunchUDP punches a UDP path the same way, proves it with probes
	// both ways, and runs a QUIC session over it.
	PunchUDP = "punch-udp"
	// PunchBirthday meets a NAT that maps each destination to a random
	// port, from behind one that maps predictably but filters strictly:
	// the hard side opens many ports, the easy side sprays probes at
	// random ports until one lands (birthday paradox).
	PunchBirthday = "punch-birthday"
	// Relay connects through TURN relays: each side allocates a relayed
	// address and they exchange them over signaling; a QUIC session runs
	// from the responder's own socket to the initiator's relayed address
	// (one relay), or from relay to relay where that fails. It is the
	// last resort: it starts after a head start for the others
	// (relayHeadStart), or at once when nothing direct can work.
	Relay = "relay"
)

// Strategies lists every strategy, in the order they start.
var Strategies = []string{Direct, Reverse, PunchTCP, PunchUDP, PunchBirthday, Relay}

// State is where a strategy stands.
type State string

// Strategy states, as reported in events.
const (
	Started   State = "started"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Skipped   State = "skipped"
	Progress  State = "progress"  // a step of a running strategy, in Reason
	Cancelled State = "cancelled" // another strategy won first
)

// Event reports one strategy's progress.
type Event struct {
	Strategy string        `json:"strategy"`
	State    State         `json:"state"`
	Reason   string        `json:"reason,omitempty"` // why it failed or was skipped, or how it succeeded
	Elapsed  time.Duration `json:"elapsed"`          // since Connect started
}

// ConnectOptions tune Connect.
type ConnectOptions struct {
	// Strategies limits the strategies tried (default: all).
	Strategies []string
	// Progress, if set, is called with each event as it happens (one at a
	// time, from the strategies' goroutines).
	Progress func(Event)
}

// Result is a connection made by Connect.
type Result struct {
	Session  *session.Session
	Strategy string  // the one that won
	Events   []Event // every strategy's progress, in order
}

const (
	// reverseDialTimeout bounds answering a reverse request: the peer
	// asked because it waits for us now.
	reverseDialTimeout = 10 * time.Second
	// dialTimeout bounds one direct attempt: a TCP handshake and the TLS
	// handshake after it take a few round trips, and a filtered address
	// that has not answered in 5 s will not.
	dialTimeout = 5 * time.Second
	// handshakeStagger is how long one address's session handshake may
	// take before the next connected address starts its own: a round
	// trip or two on most paths.
	handshakeStagger = 300 * time.Millisecond
)

// Connect connects to the node at to, racing the strategies: every
// strategy that can start starts at once, the first to complete a secure
// handshake with the peer's key wins, and the others are cancelled (their
// sockets closed). It fails, with each strategy's reason, if none works
// before ctx ends. Connecting to this node's own address works.
func (n *Node) Connect(ctx context.Context, to *addr.Address, opt ConnectOptions) (*Result, error) {
	if len(to.Key) == 0 {
		return nil, errors.New("connect: the address has no key")
	}
	start := time.Now()
	wanted := opt.Strategies
	if len(wanted) == 0 {
		wanted = Strategies
	}
	for _, s := range wanted {
		if !slices.Contains(Strategies, s) {
			return nil, fmt.Errorf("connect: unknown strategy %q (known: %s)", s, strings.Join(Strategies, ", "))
		}
	}

	var (
		mu     sync.Mutex
		events []Event
	)
	emit := func(strategy string, state State, reason string) {
		mu.Lock()
		defer mu.Unlock()
		e := Event{Strategy: strategy, State: state, Reason: reason, Elapsed: time.Since(start)}
		events = append(events, e)
		if opt.Progress != nil {
			opt.Progress(e)
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		strategy string
		s        *session.Session
		detail   string
		err      error
	}
	results := make(chan outcome, len(Strategies))
	running := 0
	relayWait, relayWhy := time.Duration(0), "nothing direct can work between these NATs: relaying at once"
	if n.directHope(to, wanted) {
		relayWait, relayWhy = relayHeadStart, fmt.Sprintf("waits %v for the direct strategies first", relayHeadStart)
	}
	for _, strategy := range Strategies {
		if !slices.Contains(wanted, strategy) {
			continue
		}
		run, why := n.plan(strategy, to, relayWait)
		if run != nil && strategy == PunchTCP && slices.Contains(wanted, PunchUDP) && n.sequentialPair(to) {
			// Each punch's flows would move the other's predictions.
			run, why = nil, "a router hands out ports in sequence, so one punch at a time: UDP punching goes"
		}
		if run == nil {
			emit(strategy, Skipped, why)
			continue
		}
		running++
		if strategy != Relay {
			why = ""
		} else {
			why = relayWhy
		}
		emit(strategy, Started, why)
		go func() {
			s, detail, err := run(rctx, func(msg string) {
				if rctx.Err() == nil {
					emit(strategy, Progress, msg)
				}
			})
			results <- outcome{strategy, s, detail, err}
		}()
	}
	if running == 0 {
		return &Result{Events: events}, errors.New("connect: no strategy could start: " + reasons(events))
	}

	var won *outcome
	for range running {
		o := <-results
		switch {
		case o.err == nil && won == nil:
			won = &o
			emit(o.strategy, Succeeded, o.detail)
			cancel() // the others stop; their late sessions are closed below
		case o.err == nil:
			o.s.Close()
			emit(o.strategy, Cancelled, "another strategy won first")
		case won != nil || errors.Is(o.err, context.Canceled) && ctx.Err() == nil:
			emit(o.strategy, Cancelled, "another strategy won first")
		default:
			emit(o.strategy, Failed, o.err.Error())
		}
	}
	mu.Lock()
	res := &Result{Events: slices.Clone(events)}
	mu.Unlock()
	if won == nil {
		return res, fmt.Errorf("connect: every strategy failed: %s", reasons(res.Events))
	}
	res.Session, res.Strategy = won.s, won.strategy
	if won.strategy != Reverse { // an inbound session is already served
		n.spawnOr(func() { won.s.Close() }, func() { n.serve(won.s, false) })
	}
	return res, nil
}

func reasons(events []Event) string {
	var parts []string
	for _, e := range events {
		if e.State == Failed || e.State == Skipped {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", e.Strategy, e.State, e.Reason))
		}
	}
	return strings.Join(parts, "; ")
}

// directHope reports whether any of the wanted strategies other than the
// relay can work towards to, as far as both NAT profiles tell.
func (n *Node) directHope(to *addr.Address, wanted []string) bool {
	for _, s := range wanted {
		switch s {
		case Direct:
			if n.peerReachable(to) {
				return true
			}
		case Reverse:
			if run, _ := n.plan(Reverse, to, 0); run != nil {
				return true
			}
		case PunchTCP, PunchUDP:
			if n.planPunch(to) == "" {
				return true
			}
		case PunchBirthday:
			if n.planBirthday(to) == "" {
				return true
			}
		}
	}
	return false
}

// peerReachable reports whether this node may open a connection to the
// peer unasked: an endpoint of a family this node has that is mapped by
// its router, not filtered, of unknown behaviour, or on this node's LAN.
func (n *Node) peerReachable(to *addr.Address) bool {
	mine := n.Address()
	for _, ifc := range to.Interfaces {
		for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if ep == nil || !n.hasFamily(netif.FamilyOf(ep.Internal)) {
				continue
			}
			if ep.ExternalPort != 0 || ep.NAT.Filtering == stun.EndpointIndependent || ep.NAT.Filtering == stun.Unknown || sameNAT(mine, ep) {
				return true
			}
		}
	}
	return false
}

// noter reports a step of a running strategy; nil reports nothing.
type noter func(string)

func (f noter) say(format string, args ...any) {
	if f != nil {
		f(fmt.Sprintf(format, args...))
	}
}

// strategyFunc runs one strategy: the session it made and how, or why it
// failed.
type strategyFunc func(ctx context.Context, note noter) (*session.Session, string, error)

// plan returns how to run a strategy towards to, or why it cannot start;
// the relay starts after relayWait.
func (n *Node) plan(strategy string, to *addr.Address, relayWait time.Duration) (strategyFunc, string) {
	switch strategy {
	case Direct:
		if len(n.candidates(to)) == 0 {
			return nil, "the peer has no address of a family this node has"
		}
		return func(ctx context.Context, note noter) (*session.Session, string, error) {
			return n.dialDirect(ctx, to, note)
		}, ""
	case Reverse:
		if why := n.signalable(to); why != "" {
			return nil, why
		}
		if !n.reachableBy(to) {
			return nil, "this node cannot be reached either (its router filters and maps no port), so the peer could not connect back"
		}
		return func(ctx context.Context, note noter) (*session.Session, string, error) {
			return n.reverse(ctx, to, note)
		}, ""
	case PunchTCP:
		if why := n.planPunch(to); why != "" {
			return nil, why
		}
		return func(ctx context.Context, note noter) (*session.Session, string, error) {
			return n.punchTCP(ctx, to, note)
		}, ""
	case PunchUDP:
		if why := n.planPunch(to); why != "" {
			return nil, why
		}
		return func(ctx context.Context, note noter) (*session.Session, string, error) {
			return n.punchUDP(ctx, to, note)
		}, ""
	case PunchBirthday:
		if why := n.planBirthday(to); why != "" {
			return nil, why
		}
		return func(ctx context.Context, note noter) (*session.Session, string, error) {
			return n.punchBirthday(ctx, to, note)
		}, ""
	case Relay:
		if why := n.planRelay(to); why != "" {
			return nil, why
		}
		return func(ctx context.Context, note noter) (*session.Session, string, error) {
			return n.relayTo(ctx, to, relayWait, note)
		}, ""
	}
	return nil, "unknown strategy"
}

// candidate is an address to dial, with why it is worth a try.
type candidate struct {
	addr netip.AddrPort
	why  string
}

// candidates lists the addresses of to that this node can try, best first.
func (n *Node) candidates(to *addr.Address) []candidate {
	mine := n.Address()
	var out []candidate
	add := func(ap netip.AddrPort, why string) {
		if ap.Addr().IsValid() && ap.Port() != 0 && !slices.ContainsFunc(out, func(c candidate) bool { return c.addr == ap }) {
			out = append(out, candidate{ap, why})
		}
	}
	for _, ifc := range to.Interfaces {
		for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if ep == nil || !n.hasFamily(netif.FamilyOf(ep.Internal)) {
				continue
			}
			// Behind the same NAT the internal address is the way (the
			// router seldom hairpins); elsewhere it is a cheap long shot.
			if ep.Internal != ep.External && sameNAT(mine, ep) {
				add(netip.AddrPortFrom(ep.Internal, ep.Port), "LAN")
			}
			if ep.External.IsValid() {
				why := "external"
				if ep.External.Is6() {
					why = "IPv6"
				}
				add(netip.AddrPortFrom(ep.External, ep.PublicPort()), why)
			}
			if ep.Internal != ep.External {
				add(netip.AddrPortFrom(ep.Internal, ep.Port), "internal")
			}
		}
	}
	return out
}

func (n *Node) hasFamily(f netif.Family) bool {
	return slices.ContainsFunc(n.endpoints, func(ep endpoint) bool { return ep.family == f })
}

// sameNAT reports whether the peer's endpoint has the external address of
// one of this node's.
func sameNAT(mine *addr.Address, theirs *addr.Endpoint) bool {
	if mine == nil || !theirs.External.IsValid() {
		return false
	}
	for _, ifc := range mine.Interfaces {
		for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if ep != nil && ep.External == theirs.External {
				return true
			}
		}
	}
	return false
}

// reachableBy reports whether the peer at to can open a connection to
// this node: a port mapping, an open NAT that maps endpoint-independently
// or an open firewall, or a shared LAN.
func (n *Node) reachableBy(to *addr.Address) bool {
	mine := n.Address()
	for _, ep := range n.endpoints {
		// An open filter helps only where the peer knows the port: the
		// router maps endpoint-independently, or does not translate.
		if ep.mapped.IsValid() || (ep.profile != nil && reachableProfile(natProfile(ep.profile))) {
			return true
		}
	}
	for _, ifc := range to.Interfaces {
		for _, ep := range []*addr.Endpoint{ifc.V4, ifc.V6} {
			if ep != nil && sameNAT(mine, ep) {
				return true
			}
		}
	}
	return false
}

// dialDirect dials every candidate of to at once and keeps the first that
// completes the secure handshake with to's key; the handshakes take turns,
// so the peer seldom serves a session this side then drops.
func (n *Node) dialDirect(ctx context.Context, to *addr.Address, note noter) (*session.Session, string, error) {
	cands := n.candidates(to)
	if len(cands) == 0 {
		return nil, "", errors.New("no address to dial")
	}
	var names []string
	for _, c := range cands {
		names = append(names, fmt.Sprintf("%v (%s)", c.addr, c.why))
	}
	note.say("dialing %s", strings.Join(names, ", "))
	// Each attempt gets dialTimeout at most: a filtered address never
	// answers, and must not hold the strategy to the caller's deadline.
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	type attempt struct {
		c   candidate
		s   *session.Session
		err error
	}
	results := make(chan attempt, len(cands))
	// The TCP connects race, but the handshakes take turns: the peer
	// serves every session whose handshake ends, and one this side then
	// closes as a loser could be the one the peer took, say as the answer
	// to a reverse connect.
	turn := newTurns(len(cands), handshakeStagger)
	for _, c := range cands {
		go func() {
			var d net.Dialer
			conn, err := d.DialContext(dctx, "tcp", c.addr.String())
			if err != nil {
				results <- attempt{c: c, err: err}
				return
			}
			var s *session.Session
			err = turn.take(dctx, func() (err error) {
				s, err = session.Client(dctx, conn, n.id, to.Key)
				return err
			})
			if err != nil {
				conn.Close()
			}
			results <- attempt{c, s, err}
		}()
	}
	var winner *attempt
	var errs []string
	var wrongPeer error
	for range cands {
		a := <-results
		switch {
		case a.err == nil && winner == nil:
			winner = &a
			cancel()
		case a.err == nil:
			a.s.Close()
		case winner == nil:
			if errors.Is(a.err, identity.ErrWrongPeer) && a.c.why != "internal" {
				wrongPeer = a.err
			}
			errs = append(errs, fmt.Sprintf("%v (%s): %v", a.c.addr, a.c.why, shortErr(a.err)))
		}
	}
	if winner != nil {
		return winner.s, fmt.Sprintf("%v (%s)", winner.c.addr, winner.c.why), nil
	}
	if wrongPeer != nil {
		return nil, "", fmt.Errorf("the peer's address leads to a different key: %w", wrongPeer)
	}
	if ctx.Err() != nil && len(errs) == 0 {
		return nil, "", ctx.Err()
	}
	return nil, "", errors.New(strings.Join(errs, "; "))
}

// turns lets one handshake run at a time: the next may start when the
// one under way fails, or once it has run for stagger (a path that slow,
// or an address that takes the connection and never answers, must not
// hold up the others).
type turns struct {
	next    chan struct{}
	stagger time.Duration
}

// newTurns returns turns for at most n handshakes.
func newTurns(n int, stagger time.Duration) *turns {
	t := &turns{next: make(chan struct{}, n+1), stagger: stagger}
	t.next <- struct{}{}
	return t
}

// take waits for a turn (within ctx), then runs f: a handshake that
// succeeds keeps the turn, so none after it starts unless it was slow.
func (t *turns) take(ctx context.Context, f func() error) error {
	select {
	case <-t.next:
	case <-ctx.Done():
		return fmt.Errorf("waiting for another address's handshake: %w", ctx.Err())
	}
	var once sync.Once
	pass := func() { once.Do(func() { t.next <- struct{}{} }) }
	slow := time.AfterFunc(t.stagger, pass)
	err := f()
	slow.Stop()
	if err != nil {
		pass()
	}
	return err
}

// shortErr drops the operation prefix net errors carry ("dial tcp ...: ").
func shortErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// reverse asks the peer over signaling to connect to this node, and waits
// for its session to arrive.
func (n *Node) reverse(ctx context.Context, to *addr.Address, note noter) (*session.Session, string, error) {
	ch := make(chan *session.Session, 1)
	id := identity.IDOf(to.Key)
	n.mu.Lock()
	n.waiting[id] = append(n.waiting[id], ch)
	mine := n.address
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.waiting[id] = slices.DeleteFunc(n.waiting[id], func(c chan *session.Session) bool { return c == ch })
		if len(n.waiting[id]) == 0 {
			delete(n.waiting, id)
		}
		n.mu.Unlock()
	}()
	text, err := mine.Encode()
	if err != nil {
		return nil, "", err
	}
	body, _ := json.Marshal(reverseRequest{Address: text})
	if err := n.sig.Send(ctx, to.Key, brokersOf(to), kindReverse, body); err != nil {
		return nil, "", err
	}
	note.say("asked the peer over signaling to connect back; waiting")
	select {
	case s := <-ch:
		return s, fmt.Sprintf("the peer connected from %v", s.RemoteAddr()), nil
	case <-ctx.Done():
		return nil, "", fmt.Errorf("the peer did not connect back: %w", ctx.Err())
	}
}
