package transfer

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the pages of f's first size bytes in the page cache.
func resident(t *testing.T, f *os.File, size int) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestFlusherLetsWrittenPagesGo: what the flusher wrote out before the
// latest range leaves the page cache; without it, all of it stays.
func TestFlusherLetsWrittenPagesGo(t *testing.T) {
	const part = flushEvery
	for _, flush := range []bool{false, true} {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		fl := startFlusher(f, 0)
		data := random(part)
		for i := range 3 {
			if _, err := f.WriteAt(data, int64(i*part)); err != nil {
				t.Fatal(err)
			}
			if flush {
				fl.written(int64((i + 1) * part))
				for len(fl.upTo) > 0 { // taken: the next call is not dropped
					time.Sleep(time.Millisecond)
				}
			}
		}
		fl.stop()
		pages := part / os.Getpagesize()
		got := resident(t, f, part)
		f.Close()
		if flush && got > pages/10 {
			t.Errorf("with the flusher, %d of the first range's %d pages stay in memory", got, pages)
		}
		if !flush && got < pages*9/10 {
			t.Errorf("without the flusher only %d of %d pages stayed: the test cannot tell", got, pages)
		}
	}
}
