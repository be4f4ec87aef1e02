package pipe

import (
	"context"
	"sync"
)

// queue is a bounded FIFO that never blocks the producer: when full, the
// oldest item is dropped and counted. Consumers wait with a context.
type queue[T any] struct {
	mu      sync.Mutex
	items   []T // ring buffer of len == capacity
	head, n int
	dropped uint64
	// ready holds a token while items may be waiting; it wakes one consumer,
	// who passes the token on if items remain.
	ready chan struct{}
	// drop, if set, is given each item dropped for room (to free it).
	drop func(*T)
}

func newQueue[T any](capacity int) *queue[T] {
	return &queue[T]{items: make([]T, capacity), ready: make(chan struct{}, 1)}
}

// push appends v, dropping the oldest item if the queue is full.
func (q *queue[T]) push(v T) {
	q.mu.Lock()
	if q.n == len(q.items) {
		var zero T
		if q.drop != nil {
			q.drop(&q.items[q.head])
		}
		q.items[q.head] = zero
		q.head = (q.head + 1) % len(q.items)
		q.n--
		q.dropped++
	}
	q.items[(q.head+q.n)%len(q.items)] = v
	q.n++
	q.mu.Unlock()
	q.wake()
}

func (q *queue[T]) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// tryPop removes the oldest item, if any.
func (q *queue[T]) tryPop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if q.n == 0 {
		return zero, false
	}
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head = (q.head + 1) % len(q.items)
	q.n--
	if q.n > 0 {
		q.wake()
	}
	return v, true
}

// pop waits for an item until ctx is done or ended is closed; after ended is
// closed it still returns the items already queued (nothing is lost), then
// ok=false with a nil error.
func (q *queue[T]) pop(ctx context.Context, ended <-chan struct{}) (v T, ok bool, err error) {
	for {
		if v, ok := q.tryPop(); ok {
			return v, true, nil
		}
		select {
		case <-q.ready:
		case <-ended:
			v, ok := q.tryPop()
			return v, ok, nil
		case <-ctx.Done():
			return v, false, ctx.Err()
		}
	}
}

func (q *queue[T]) stats() (queued int, dropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.dropped
}
