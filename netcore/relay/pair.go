package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A TURN server relaying TCP (RFC 6062) joins a peer's connection to a
// client's data connection and copies each way. coturn (4.6.1, and 4.17
// still) stops reading one side while the other's output is backed up,
// and starts again when that output drains, but checks the wrong side's
// output then: with bytes backed up both ways at once, it never reads
// one side again and the connection stalls for good (two friends sending
// each other files at once). A pair of connections that each carry bytes
// one way never backs up both ways: DialPair and Pairs make one
// connection of two.

// pairMagic starts a pair's header; the pair's id and which half follow.
const pairMagic = "P2PDPAIR"

const pairHeaderLen = len(pairMagic) + pairIDLen + 1

const pairIDLen = 16

// The halves of a pair, as the dialer uses them.
const (
	dialerWrites byte = 0
	dialerReads  byte = 1
)

// Dialer opens one connection.
type Dialer func(context.Context) (net.Conn, error)

// DialPair opens a connection with each of writes and reads at once (the
// same dialer twice, or two that reach the far end from different
// addresses) and returns them as one that writes on the first and reads
// from the second. The far end joins them with Pairs.
func DialPair(ctx context.Context, writes, reads Dialer) (net.Conn, error) {
	var id [pairIDLen]byte
	rand.Read(id[:])
	type result struct {
		c   net.Conn
		err error
	}
	var halves [2]result
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx) // one failed: the other is no use
	defer cancel()
	dials := [2]Dialer{dialerWrites: writes, dialerReads: reads}
	for i := range halves {
		wg.Go(func() {
			c, err := dials[i](ctx)
			if err == nil {
				if err = writeHeader(ctx, c, id, byte(i)); err != nil {
					c.Close()
				}
			}
			if err != nil {
				cancel()
			}
			halves[i] = result{c, err}
		})
	}
	wg.Wait()
	if err := errors.Join(halves[0].err, halves[1].err); err != nil {
		for _, h := range halves {
			if h.err == nil {
				h.c.Close()
			}
		}
		return nil, fmt.Errorf("opening a pair of connections: %w", err)
	}
	return &pairConn{r: halves[dialerReads].c, w: halves[dialerWrites].c}, nil
}

func writeHeader(ctx context.Context, c net.Conn, id [pairIDLen]byte, half byte) error {
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
		defer c.SetWriteDeadline(time.Time{})
	}
	_, err := c.Write(append(append([]byte(pairMagic), id[:]...), half))
	return err
}

// Pairs joins the connections a DialPair at the far end opened, as they
// are accepted here. Close it once done, to close halves left alone.
type Pairs struct {
	mu     sync.Mutex
	halves map[[pairIDLen]byte]*[2]net.Conn
	closed bool
}

// errBadHalf says a pair's header named neither half.
var errBadHalf = errors.New("a pair's header names no half")

// Add reads c's header (until ctx ends) and returns the joined
// connection once both halves of its pair have come, or nil while the
// other half has not. A connection that does not start with a pair's
// header (a peer that does not pair) is returned as it is, whole.
func (p *Pairs) Add(ctx context.Context, c net.Conn) (net.Conn, error) {
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	h := make([]byte, pairHeaderLen)
	_, err := io.ReadFull(c, h[:len(pairMagic)])
	if err == nil && bytes.Equal(h[:len(pairMagic)], []byte(pairMagic)) {
		_, err = io.ReadFull(c, h[len(pairMagic):])
		if err == nil && h[pairHeaderLen-1] > dialerReads {
			err = errBadHalf
		}
	} else if err == nil {
		h = h[:len(pairMagic)] // not a pair: these bytes are the peer's own
	}
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading a pair's header: %w", err)
	}
	if len(h) < pairHeaderLen {
		return &primedConn{Conn: c, r: io.MultiReader(bytes.NewReader(h), c)}, nil
	}
	id, half := [pairIDLen]byte(h[len(pairMagic):]), h[pairHeaderLen-1]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	if p.halves == nil {
		p.halves = map[[pairIDLen]byte]*[2]net.Conn{}
	}
	pair := p.halves[id]
	if pair == nil {
		pair = new([2]net.Conn)
		p.halves[id] = pair
	}
	if pair[half] != nil {
		pair[half].Close() // the same half again: the later one counts
	}
	pair[half] = c
	if pair[0] == nil || pair[1] == nil {
		return nil, nil
	}
	delete(p.halves, id)
	// What the dialer writes, this end reads.
	return &pairConn{r: pair[dialerWrites], w: pair[dialerReads]}, nil
}

// Close closes the halves whose other half never came.
func (p *Pairs) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, pair := range p.halves {
		for _, c := range pair {
			if c != nil {
				c.Close()
			}
		}
	}
	p.halves = nil
}

// Paired reports whether c is a pair's two connections joined.
func Paired(c net.Conn) bool {
	_, ok := c.(*pairConn)
	return ok
}

// primedConn is a connection whose first bytes were read already.
type primedConn struct {
	net.Conn
	r io.Reader
}

func (c *primedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// pairConn reads from one connection and writes on the other.
type pairConn struct{ r, w net.Conn }

func (c *pairConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *pairConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c *pairConn) Close() error                { return errors.Join(c.w.Close(), c.r.Close()) }
func (c *pairConn) LocalAddr() net.Addr         { return c.w.LocalAddr() }
func (c *pairConn) RemoteAddr() net.Addr        { return c.w.RemoteAddr() }

func (c *pairConn) SetDeadline(t time.Time) error {
	return errors.Join(c.r.SetReadDeadline(t), c.w.SetWriteDeadline(t))
}
func (c *pairConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *pairConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }
