package transfer

import (
	"bytes"
	"sync"

	"github.com/zeebo/blake3"
)

// digestSize is the length of every digest on the wire.
const digestSize = 32

// digest is a chunk's BLAKE3-256: fast enough (about twice SHA-256 with
// the CPU's SHA instructions) that hashing does not limit a transfer.
type digest = [digestSize]byte

func chunkSum(b []byte) digest { return blake3.Sum256(b) }

// zeroChunk is a full chunk of zeros, and its digest.
var (
	zeroChunk   = make([]byte, ChunkSize)
	zeroFullSum = sync.OnceValue(func() digest { return chunkSum(zeroChunk) })
)

// zeroSum is the digest of n zeros.
func zeroSum(n int) digest {
	if n == ChunkSize {
		return zeroFullSum()
	}
	return chunkSum(zeroChunk[:n])
}

// isZero reports whether chunk b (at most ChunkSize) holds only zeros.
func isZero(b []byte) bool { return bytes.Equal(b, zeroChunk[:len(b)]) }

// fileSum is a file's digest: BLAKE3 over its chunks' digests in order.
// Both sides cut a file into chunks the same way (ChunkSize each, the
// last one shorter), so each data byte is hashed once per side, and a
// resumed transfer rehashes only the part already held.
type fileSum struct{ h *blake3.Hasher }

func newFileSum() fileSum { return fileSum{blake3.New()} }

func (f fileSum) add(d digest) { f.h.Write(d[:]) }

func (f fileSum) sum() digest {
	var d digest
	copy(d[:], f.h.Sum(nil))
	return d
}
