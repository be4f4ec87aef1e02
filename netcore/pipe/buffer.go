package pipe

import (
	"sync"
	"sync/atomic"
)

// Message buffers are recycled by size class: a pipe moving bulk data would
// otherwise allocate its whole throughput, and the garbage collector, run
// every few megabytes, would cost more than the copying. Recycling needs
// [Message.Release]; a message never released is simply collected.

// bufClasses are the pooled sizes, growing 4x: waste is at most 4x for tiny
// messages and under 2x on average.
var bufClasses = [...]int{256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}

var bufPools [len(bufClasses)]sync.Pool

// buffer is a pooled byte slice shared by every queue a message went to.
type buffer struct {
	b     []byte
	class int // index in bufClasses, or -1 when not pooled
	refs  atomic.Int32
}

// getBuffer returns a buffer of at least n bytes, b[:n], with one
// reference: its getter's.
func getBuffer(n int) *buffer {
	for c, size := range bufClasses {
		if n <= size {
			b, _ := bufPools[c].Get().(*buffer)
			if b == nil {
				b = &buffer{b: make([]byte, n, size), class: c}
			}
			b.b = b.b[:n]
			b.refs.Store(1)
			return b
		}
	}
	b := &buffer{b: make([]byte, n), class: -1}
	b.refs.Store(1)
	return b
}

// release drops one reference; the last returns the buffer to its pool.
func (b *buffer) release() {
	if b.refs.Add(-1) == 0 && b.class >= 0 {
		b.b = b.b[:0]
		bufPools[b.class].Put(b)
	}
}
