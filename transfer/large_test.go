package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"p2pd/netcore/identity"
)

// writeNoise writes size bytes of fast pseudo-random data (crypto/rand
// would take longer than the transfer), none of it runs of zeros.
func writeNoise(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1}), size); err != nil {
		t.Fatal(err)
	}
}

// fileSHA is the SHA-256 of a file (a hash of its own, not the
// protocol's), read as a stream.
func fileSHA(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// TestOneGiB: a 1 GiB file arrives whole, digest for digest.
func TestOneGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1 GiB")
	}
	src, dst := t.TempDir(), t.TempDir()
	const size = 1 << 30
	writeNoise(t, filepath.Join(src, "big.bin"), size)
	sess := pair(t, &Receiver{Dir: dst, Decide: accept})
	res, sent, err := Send(context.Background(), sess, []string{filepath.Join(src, "big.bin")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sent != size || len(res.Saved) != 1 {
		t.Fatalf("sent %d bytes, saved %v", sent, res.Saved)
	}
	if fileSHA(t, filepath.Join(dst, "big.bin")) != fileSHA(t, filepath.Join(src, "big.bin")) {
		t.Error("the received file differs")
	}
}

// TestSparse: a sparse file (three islands of data in 256 MiB of holes)
// arrives equal, and stays sparse: the zeros cross as markers, not data,
// and are not written on the receiver's disk.
func TestSparse(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	const size = 256 << 20
	name := filepath.Join(src, "disk.img")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{0, 100<<20 + 12345, size - 10} {
		if _, err := f.WriteAt(random(min(1<<20, int(size-at))), at); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	sess := pair(t, &Receiver{Dir: dst, Decide: accept})
	if _, _, err := Send(context.Background(), sess, []string{name}, nil); err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(dst, "disk.img")
	fi, err := os.Stat(got)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size || fileSHA(t, got) != fileSHA(t, name) {
		t.Fatalf("the sparse file arrived as %d bytes, or differs", fi.Size())
	}
	used := fi.Sys().(*syscall.Stat_t).Blocks * 512
	t.Logf("%d bytes, %d on disk", fi.Size(), used)
	if used > 8<<20 {
		t.Errorf("the received file takes %d bytes on disk: its holes were written", used)
	}
}

// TestCancelByReceiver: the receiver cancels mid-transfer; the sender
// hears it at once as ErrCancelled, the verified part is kept, and the
// same offer sent again resumes and completes.
func TestCancelByReceiver(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	const size = 24 << 20
	writeNoise(t, filepath.Join(src, "big.bin"), size)
	ended := make(chan Result, 2)
	r := &Receiver{Dir: dst, Decide: accept, Done: func(_ Offer, res Result) { ended <- res }}
	cancelled := false
	r.Progress = func(p Progress) {
		if p.Done >= 5<<20 && !cancelled {
			cancelled = r.Cancel(p.ID)
		}
	}
	sess := pair(t, r)
	_, first, err := Send(context.Background(), sess, []string{filepath.Join(src, "big.bin")}, nil)
	if !errors.Is(err, ErrCancelled) {
		t.Fatalf("the sender heard %v, want ErrCancelled", err)
	}
	if res := <-ended; !res.Cancelled || res.OK {
		t.Errorf("the receiver's result: %+v", res)
	}
	if r.Cancel("no such offer") {
		t.Error("cancelled an offer that is not running")
	}
	r.Progress = nil
	_, second, err := Send(context.Background(), sess, []string{filepath.Join(src, "big.bin")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d before the cancel, %d on resuming", first, second)
	if second >= size || fileSHA(t, filepath.Join(dst, "big.bin")) != fileSHA(t, filepath.Join(src, "big.bin")) {
		t.Errorf("the resumed transfer sent %d of %d bytes, or the file differs", second, size)
	}
}

// smallDisk mounts a tmpfs of size bytes for the test (root only).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("a small disk for the test (root needed under CI): %v", err)
		}
		t.Skipf("no small disk (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestDiskFull: on an 8 MiB disk, an offer bigger than the free space is
// declined before anything is written; a disk that fills up during a
// transfer stops it with a clear error and keeps the verified part, and
// once there is space again the same offer resumes and completes.
func TestDiskFull(t *testing.T) {
	disk := smallDisk(t, 8<<20)
	src := t.TempDir()
	writeNoise(t, filepath.Join(src, "huge.bin"), 16<<20)
	writeNoise(t, filepath.Join(src, "big.bin"), 6<<20)
	filler := filepath.Join(disk, "filler")
	r := &Receiver{Dir: disk, Decide: accept}
	sess := pair(t, r)
	_, _, err := Send(context.Background(), sess, []string{filepath.Join(src, "huge.bin")}, nil)
	if !errors.Is(err, ErrDeclined) || !strings.Contains(err.Error(), "not enough free space") {
		t.Fatalf("an offer bigger than the disk: %v", err)
	}
	// Something else fills the disk once the offer is accepted.
	r.Decide = func(identity.ID, Offer) bool {
		writeNoise(t, filler, 4<<20)
		return true
	}
	_, first, err := Send(context.Background(), sess, []string{filepath.Join(src, "big.bin")}, nil)
	if err == nil || !strings.Contains(err.Error(), "is the disk full?") || !strings.Contains(err.Error(), "verified part is kept") {
		t.Fatalf("a disk filling up: %v", err)
	}
	t.Logf("the full disk: %v (after %d bytes)", err, first)
	b, err := os.ReadFile(filepath.Join(disk, "big.bin"+partState))
	if err != nil {
		t.Fatal(err)
	}
	var p partInfo
	if err := json.Unmarshal(b, &p); err != nil || p.Verified == 0 || p.Verified%ChunkSize != 0 {
		t.Fatalf("the part's state after the disk filled: %q %v", b, err)
	}
	os.Remove(filler)
	r.Decide = accept
	_, second, err := Send(context.Background(), sess, []string{filepath.Join(src, "big.bin")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second != 6<<20-p.Verified || fileSHA(t, filepath.Join(disk, "big.bin")) != fileSHA(t, filepath.Join(src, "big.bin")) {
		t.Errorf("resumed with %d bytes after %d verified, or the file differs", second, p.Verified)
	}
}
