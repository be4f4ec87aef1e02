package transfer

import (
	"bytes"
	"sync"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// digestSize is the length of every digest on the wire.
const digestSize = 32

// digest is a chunk's BLAKE3-256: over twice as fast as SHA-256 here
// (lukechampine.com/blake3 uses AVX-512 where the CPU has it: about 4.1
// GB/s on one core of the lab machine, against 3.4 for AVX2 alone), so
// hashing both ends costs a transfer little.
type digest = [digestSize]byte

// chunkSum is blake3.Sum256(b), hashed on the calling goroutine. The
// library's Sum256 hashes a 1 MiB chunk in 64 goroutines, whose starts
// and stack growth cost more than they gain when both ends of a transfer
// keep every core busy (BenchmarkChunkSum, -cpu 1,2: 3.2 GB/s against the
// library's 1.9 to 2.8 on a busy machine; on an idle one 4.2 to 4.5
// against 3.1 to 4.5). It walks BLAKE3's tree with the library's
// own compression: 16 KiB pieces of 16 chunks, each pair of equal
// subtrees merged once a later piece shows the left one complete, the
// rest merged right to left.
func chunkSum(b []byte) digest {
	const piece = guts.MaxSIMD * guts.ChunkSize
	if len(b) <= guts.ChunkSize {
		return blake3.Sum256(b)
	}
	var (
		stack [][8]uint32 // complete subtrees, largest first
		last  guts.Node
	)
	for i := 0; ; i++ {
		off := i * piece
		if rest := b[off:]; len(rest) <= piece {
			// A full last piece is hashed in place; a short one from a
			// zero-padded copy, as CompressBuffer takes a whole piece.
			full := (*[piece]byte)(nil)
			if len(rest) == piece {
				full = (*[piece]byte)(rest)
			} else {
				full = new([piece]byte)
				copy(full[:], rest)
			}
			last = guts.CompressBuffer(full, len(rest), &guts.IV, uint64(i*guts.MaxSIMD), 0)
			break
		}
		cv := guts.ChainingValue(guts.CompressBuffer((*[piece]byte)(b[off:off+piece]), piece, &guts.IV, uint64(i*guts.MaxSIMD), 0))
		// After i+1 pieces, each trailing zero bit of i+1 is a pair of
		// equal subtrees to merge.
		for total := i + 1; total&1 == 0; total >>= 1 {
			cv = guts.ChainingValue(guts.ParentNode(stack[len(stack)-1], cv, &guts.IV, 0))
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, cv)
	}
	for j := len(stack) - 1; j >= 0; j-- {
		last = guts.ParentNode(stack[j], guts.ChainingValue(last), &guts.IV, 0)
	}
	last.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(last))
	return digest(out[:digestSize])
}

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

func newFileSum() fileSum { return fileSum{blake3.New(digestSize, nil)} }

func (f fileSum) add(d digest) { f.h.Write(d[:]) }

func (f fileSum) sum() digest {
	var d digest
	copy(d[:], f.h.Sum(nil))
	return d
}
