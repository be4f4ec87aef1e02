package session

import (
	"errors"
	"sync"

	"github.com/libp2p/go-yamux/v5"
)

// errOverBudget refuses a stream's window more memory: the stream keeps
// the window it has.
var errOverBudget = errors.New("the session's receive windows are at their limit")

// windowBudget bounds the memory a TCP session's streams may ask the
// peer to fill. Each stream starts with an initialWindow (maxStreams of
// them at most from the peer), and go-yamux's auto-tuning doubles a
// window that the reader keeps emptying within a few round trips, up to
// streamWindow. The doubling is what the budget caps, at growthLimit over
// all streams together, as QUIC's connection window caps a QUIC session.
// Without it, a peer could have each of its streams grow to streamWindow
// and then fill them while nothing reads (a transfer offer waiting for
// the user, say).
type windowBudget struct {
	mu    sync.Mutex
	grown int
}

// growthLimit is the most all of a session's windows may grow together:
// two streams from initialWindow to streamWindow, or many sharing it.
const growthLimit = 2 * (streamWindow - initialWindow)

// span is the memory manager go-yamux gives each new stream.
func (b *windowBudget) span() (yamux.MemoryManager, error) { return &windowSpan{b: b}, nil }

// windowSpan is one stream's share of a windowBudget.
type windowSpan struct {
	b     *windowBudget
	grown int
	done  bool // the stream ended: what it grew by is given back
}

// ReserveMemory grants a new stream's first window (priority 255, which
// maxStreams bounds) and grows a window while the budget allows.
func (s *windowSpan) ReserveMemory(size int, prio uint8) error {
	if prio == 255 {
		return nil
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	// A stream ended but still read (its buffered bytes) may ask to grow:
	// go-yamux would never give that back.
	if s.done || s.b.grown+size > growthLimit {
		return errOverBudget
	}
	s.b.grown += size
	s.grown += size
	return nil
}

// ReleaseMemory gives back part of what the stream grew by.
func (s *windowSpan) ReleaseMemory(size int) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	size = min(size, s.grown)
	s.grown -= size
	s.b.grown -= size
}

// Done gives back all the stream grew by; go-yamux calls it when the
// stream ends.
func (s *windowSpan) Done() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.grown -= s.grown
	s.grown, s.done = 0, true
}
