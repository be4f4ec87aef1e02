package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// A pump moves data from a pipe's socket to its handlers and queues. Who
// reads depends on who is waiting:
//
//   - While someone is in Recv with an empty queue, that caller reads the
//     socket itself and dispatches what arrives, like a plain blocking read.
//     Handing each message from a reader goroutine to the caller instead
//     costs a thread wake-up per message, which halves request/response rates.
//   - Otherwise a background goroutine reads, so handlers run, subscription
//     queues fill and the end of the connection is noticed with nobody in Recv.
//
// One read token guarantees a single reader at a time, and message order.
// A caller arriving while the background goroutine is blocked in a read
// cuts that read short with a deadline in the past (as net/http does to
// abort a background read); decoders keep partial messages, so nothing is
// lost. The background goroutine takes over again once no caller has
// wanted the socket for handback.
type pump struct {
	read        func() error // one read from the socket, dispatching what it completes
	setDeadline func(time.Time) error
	direct      bool // the socket supports deadlines, so callers may read

	token  chan struct{} // holds the read token while nobody reads
	resume chan struct{} // wakes the background reader

	mu        sync.Mutex
	active    int  // callers in Recv wanting the socket
	bgReading bool // the background reader holds the token
	timer     *time.Timer
}

// handback is how long the socket stays with Recv callers after the last one
// returns: a request/response loop calls again within microseconds, and a
// caller arriving after the background reader took over pays two extra
// wake-ups. Handlers see messages at most this late while a loop of Recv
// calls pauses.
const handback = 2 * time.Millisecond

// aLongTimeAgo is a deadline that has passed: it aborts a pending read.
var aLongTimeAgo = time.Unix(1, 0)

func newPump(read func() error, setDeadline func(time.Time) error) *pump {
	pm := &pump{
		read:        read,
		setDeadline: setDeadline,
		direct:      setDeadline(time.Time{}) == nil,
		token:       make(chan struct{}, 1),
		resume:      make(chan struct{}, 1),
	}
	pm.token <- struct{}{}
	pm.resume <- struct{}{}
	pm.timer = time.AfterFunc(time.Hour, pm.wake)
	pm.timer.Stop()
	return pm
}

// wake resumes the background reader if no caller wants the socket.
func (pm *pump) wake() {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.active == 0 {
		select {
		case pm.resume <- struct{}{}:
		default:
		}
	}
}

// enter registers a caller that wants to read, aborting a background read.
func (pm *pump) enter() {
	pm.mu.Lock()
	pm.active++
	if pm.bgReading {
		pm.setDeadline(aLongTimeAgo)
	}
	pm.mu.Unlock()
}

// leave unregisters a caller; the last one starts the handback timer.
func (pm *pump) leave() {
	pm.mu.Lock()
	pm.active--
	if pm.active == 0 {
		pm.timer.Reset(handback)
	}
	pm.mu.Unlock()
}

// background reads whenever no Recv caller wants the socket, until the pipe
// ends.
func (p *Pipe) background() {
	defer p.wg.Done()
	pm := p.pump
	for {
		select {
		case <-pm.resume:
		case <-p.ctx.Done():
			return
		}
		select {
		case <-pm.token:
		case <-p.ctx.Done():
			return
		}
		if err := pm.readWhileIdle(); err != nil {
			p.end(p.finalErr(err))
			pm.token <- struct{}{}
			return
		}
		pm.token <- struct{}{}
	}
}

// readWhileIdle reads until a Recv caller wants the socket (nil) or the
// socket fails (the error).
func (pm *pump) readWhileIdle() error {
	for {
		pm.mu.Lock()
		if pm.active > 0 {
			pm.mu.Unlock()
			return nil
		}
		pm.bgReading = true
		pm.setDeadline(time.Time{})
		pm.mu.Unlock()

		err := pm.read()

		pm.mu.Lock()
		pm.bgReading = false
		pm.mu.Unlock()
		if err != nil && !isTimeout(err) {
			return err
		}
	}
}

// pumpOnce reads once on behalf of a Recv caller, obeying ctx.
func (p *Pipe) pumpOnce(ctx context.Context) error {
	pm := p.pump
	dl, _ := ctx.Deadline()
	pm.setDeadline(dl)
	if ctx.Done() == nil {
		return pm.read()
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		pm.setDeadline(aLongTimeAgo)
		close(fired)
	})
	err := pm.read()
	if !stop() {
		<-fired // its deadline must not reach the next reader
	}
	return err
}

// finalErr turns a socket's last error into the reason the pipe ended:
// at the end of a stream, the decoder says whether it stopped cleanly.
func (p *Pipe) finalErr(err error) error {
	if p.dec != nil && errors.Is(err, io.EOF) {
		return p.dec.eof(p.deliver)
	}
	return err
}

// isTimeout reports a read cut short by a deadline, as net.Conn and
// net.PacketConn implementations report it (some, like pion's TURN
// connections, with their own net.Error rather than os.ErrDeadlineExceeded).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
