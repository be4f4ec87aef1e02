package stun

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"

	"p2pd/netcore/pipe"
)

const (
	// initialRTO is the first retransmission timeout. RFC 8489 suggests
	// 500 ms for unknown paths; STUN servers answer in one round trip, so
	// 100 ms (doubling each time) recovers a lost packet on any path
	// shorter than that well inside the short budgets P2PD gives discovery.
	initialRTO = 100 * time.Millisecond
	// maxRTO caps the doubling so a long budget still retransmits.
	maxRTO = 800 * time.Millisecond
)

// Binding is the answer to one Binding request.
type Binding struct {
	Local  netip.AddrPort `json:"local"`  // the socket the request left from
	Server netip.AddrPort `json:"server"` // where it was sent
	From   netip.AddrPort `json:"from"`   // where the answer came from
	Mapped netip.AddrPort `json:"mapped"` // the external address the server saw
	// Other is the server's OTHER-ADDRESS: zero unless it does RFC 5780.
	Other netip.AddrPort `json:"other,omitzero"`
	RTT   time.Duration  `json:"rtt"`
}

// Conn runs STUN transactions over one UDP socket (a pipe). Answers are
// matched to requests by transaction id and, for requests that name where
// the answer must come from, by source address; everything else is ignored
// and counted.
type Conn struct {
	p       *pipe.Pipe
	mu      sync.Mutex
	pending map[txID]*txn
	// requests received: ids of Binding requests that reached this
	// socket, as one of ours does when the NAT hairpins.
	requests chan txID
	ignored  atomic.Int64
}

type txn struct {
	from  func(netip.AddrPort) bool // whether a reply from there is acceptable
	ch    chan reply
	wrong atomic.Bool // a reply came from elsewhere (a server ignoring CHANGE-REQUEST)
}

// ErrChangeIgnored: the server answered a change request, but from the
// address it was sent to, so it does not honour CHANGE-REQUEST.
var ErrChangeIgnored = errors.New("the server ignores CHANGE-REQUEST")

type reply struct {
	a    answer
	from netip.AddrPort
	err  error
}

// Listen opens a UDP socket on local (port 0: any) for STUN transactions.
func Listen(ctx context.Context, local netip.AddrPort) (*Conn, error) {
	c := &Conn{pending: make(map[txID]*txn), requests: make(chan txID, 8)}
	p, err := pipe.Listen(ctx, pipe.UDP, local, pipe.WithoutDefaultSub(), pipe.WithMsgHandler(c.handle))
	if err != nil {
		return nil, err
	}
	c.p = p
	return c, nil
}

// LocalAddr returns the socket's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.p.LocalAddr() }

// Ignored counts replies that were not believed (wrong transaction, wrong
// source, malformed).
func (c *Conn) Ignored() int64 { return c.ignored.Load() }

// Close closes the socket.
func (c *Conn) Close() error { return c.p.Close() }

// handle runs on the pipe's reader for every datagram.
func (c *Conn) handle(msg []byte, from netip.AddrPort, _ *pipe.Pipe) {
	typ, id, ok := kind(msg)
	if !ok {
		c.ignored.Add(1)
		return
	}
	if typ == stun.BindingRequest {
		select {
		case c.requests <- id:
		default:
		}
		return
	}
	c.mu.Lock()
	t := c.pending[id]
	c.mu.Unlock()
	if t == nil {
		c.ignored.Add(1)
		return
	}
	if !t.from(from) {
		c.ignored.Add(1)
		t.wrong.Store(true)
		return
	}
	// Only a whole answer, or a server's well-formed refusal, ends the
	// transaction: a broken reply may be corrupted or forged.
	a, err := parseResponse(msg, id)
	var refused *RefusedError
	if err != nil && !errors.As(err, &refused) {
		c.ignored.Add(1)
		return
	}
	select {
	case t.ch <- reply{a: a, from: from, err: err}:
	default: // a retransmission's duplicate answer
	}
}

// Bind sends a Binding request to server, retransmitting until an answer
// comes or ctx ends. With a change request, only an answer from the address
// RFC 5780 says it must come from (other, for the server's alternate IP or
// port) counts.
func (c *Conn) Bind(ctx context.Context, server netip.AddrPort, change Change, other netip.AddrPort) (Binding, error) {
	want := server
	switch change {
	case ChangeIP | ChangePort:
		want = other
	case ChangePort:
		want = netip.AddrPortFrom(server.Addr(), other.Port())
	case ChangeIP:
		want = netip.AddrPortFrom(other.Addr(), server.Port())
	}
	if change != ChangeNone && !other.IsValid() {
		return Binding{}, errors.New("a change request needs the server's OTHER-ADDRESS")
	}
	return c.transact(ctx, server, change, func(from netip.AddrPort) bool { return from == want })
}

// transact sends one request (with retransmissions) and waits for the
// first acceptable answer.
func (c *Conn) transact(ctx context.Context, dest netip.AddrPort, change Change, accept func(netip.AddrPort) bool) (Binding, error) {
	id := newTxID()
	req, err := request(id, change)
	if err != nil {
		return Binding{}, err
	}
	t := &txn{from: accept, ch: make(chan reply, 1)}
	c.mu.Lock()
	c.pending[id] = t
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	start := time.Now()
	rto := initialRTO
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case r := <-t.ch:
			if r.err != nil {
				return Binding{}, fmt.Errorf("STUN server %s: %w", dest, r.err)
			}
			return Binding{Local: c.LocalAddr(), Server: dest, From: r.from, Mapped: r.a.mapped, Other: r.a.other, RTT: time.Since(start)}, nil
		case <-timer.C:
			// A send cut short by ctx ends the transaction as "no answer", below.
			err := c.p.Send(ctx, req, dest)
			if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				return Binding{}, fmt.Errorf("sending to STUN server %s: %w", dest, err)
			}
			timer.Reset(rto)
			rto = min(rto*2, maxRTO)
		case <-ctx.Done():
			if change != ChangeNone && t.wrong.Load() {
				return Binding{}, fmt.Errorf("STUN server %s: %w", dest, ErrChangeIgnored)
			}
			return Binding{}, fmt.Errorf("no answer from STUN server %s within %v: %w", dest, time.Since(start).Round(time.Millisecond), ctx.Err())
		}
	}
}

// sendRequest sends one Binding request to dest without waiting, and
// returns its transaction id (to spot it arriving elsewhere: hairpinning).
func (c *Conn) sendRequest(ctx context.Context, dest netip.AddrPort) (txID, error) {
	id := newTxID()
	req, err := request(id, ChangeNone)
	if err != nil {
		return id, err
	}
	return id, c.p.Send(ctx, req, dest)
}
