package transfer

import (
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
)

// TestChunkSumIsBLAKE3: the serial tree walk gives the library's digest
// at every size around the places the tree changes shape (a block, a
// 1 KiB chunk, 16 chunks, powers of two) and at random sizes.
func TestChunkSumIsBLAKE3(t *testing.T) {
	buf := make([]byte, ChunkSize+5000)
	rand.NewChaCha8([32]byte{1}).Read(buf)
	sizes := []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 16383, 16384, 16385, 32768, 32769,
		49152, 65536, 65537, 100000, 1 << 19, ChunkSize - 1, ChunkSize, ChunkSize + 1, len(buf)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		sizes = append(sizes, r.IntN(len(buf)))
	}
	for _, n := range sizes {
		if got, want := chunkSum(buf[:n]), blake3.Sum256(buf[:n]); got != want {
			t.Fatalf("%d bytes: %x, want %x", n, got, want)
		}
	}
}

// BenchmarkChunkSum hashes a full chunk serially (chunkSum) and with the
// library's Sum256, which spreads it over goroutines: compare MB/s, with
// -cpu 1,2 (when both cores are busy, the goroutines only cost).
func BenchmarkChunkSum(b *testing.B) {
	buf := make([]byte, ChunkSize)
	rand.NewChaCha8([32]byte{2}).Read(buf)
	b.Run("serial", func(b *testing.B) {
		b.SetBytes(ChunkSize)
		for b.Loop() {
			chunkSum(buf)
		}
	})
	b.Run("library", func(b *testing.B) {
		b.SetBytes(ChunkSize)
		for b.Loop() {
			blake3.Sum256(buf)
		}
	})
}
