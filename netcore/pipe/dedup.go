package pipe

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// dedup remembers the last n message ids (each scoped to its sender's IP)
// and spots repeats.
type dedup struct {
	mu   sync.Mutex
	seen map[uint64]struct{}
	ring []uint64 // insertion order, to forget the oldest id
	next int
	seed maphash.Seed
}

func newDedup(n int, seed maphash.Seed) *dedup {
	return &dedup{seen: make(map[uint64]struct{}, n), ring: make([]uint64, 0, n), seed: seed}
}

// duplicate records id from sender and reports whether it was seen before.
func (d *dedup) duplicate(from netip.AddrPort, id []byte) bool {
	var h maphash.Hash
	h.SetSeed(d.seed)
	ip := from.Addr().Unmap().As16()
	h.Write(ip[:])
	h.Write(id)
	k := h.Sum64()

	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.seen[k]; ok {
		return true
	}
	if len(d.ring) < cap(d.ring) {
		d.ring = append(d.ring, k)
	} else {
		delete(d.seen, d.ring[d.next])
		d.ring[d.next] = k
		d.next = (d.next + 1) % len(d.ring)
	}
	d.seen[k] = struct{}{}
	return false
}
