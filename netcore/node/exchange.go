package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"p2pd/netcore/addr"
	"p2pd/netcore/signal"
)

// answers holds the offers sent over signaling that wait for their
// answer, by offer id.
type answers[T any] struct {
	mu      sync.Mutex
	waiting map[string]chan T
}

// exchange sends an offer of kind to the peer (offer builds its body from
// a fresh id) and waits up to timeout for the answer with that id.
func exchange[T any](ctx context.Context, n *Node, w *answers[T], to *addr.Address, kind byte, what string, timeout time.Duration, offer func(id string) any) (T, error) {
	var zero T
	var nonce [8]byte
	rand.Read(nonce[:])
	id := hex.EncodeToString(nonce[:])
	ch := make(chan T, 1)
	w.mu.Lock()
	if w.waiting == nil {
		w.waiting = map[string]chan T{}
	}
	w.waiting[id] = ch
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.waiting, id)
		w.mu.Unlock()
	}()
	body, err := json.Marshal(offer(id))
	if err != nil {
		return zero, err
	}
	if err := n.sig.Send(ctx, to.Key, brokersOf(to), kind, body); err != nil {
		return zero, err
	}
	select {
	case ans := <-ch:
		return ans, nil
	case <-time.After(timeout):
		return zero, fmt.Errorf("the peer did not answer the %s offer within %v", what, timeout)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// deliver hands an answer message to the offer waiting for it; id reads
// the offer id from the decoded answer.
func (w *answers[T]) deliver(n *Node, m signal.Message, id func(T) string) {
	var ans T
	if err := json.Unmarshal(m.Body, &ans); err != nil {
		n.log.Debug("node: malformed answer", "kind", m.Kind, "err", err)
		return
	}
	w.mu.Lock()
	ch := w.waiting[id(ans)]
	w.mu.Unlock()
	if ch != nil {
		select {
		case ch <- ans:
		default:
		}
	}
}
