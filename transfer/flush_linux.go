package transfer

import (
	"os"

	"golang.org/x/sys/unix"
)

// flusher has the disk write a file while it arrives, and lets go of
// the memory written out. Left alone, Linux keeps a received file in
// memory (up to a tenth of RAM before it starts writing on its own): the
// fsync that ends a transfer then waited for all of it (about 4 s for
// 1 GiB here), and every page taken was fresh memory, whose first touch
// cost the receiver more CPU than the rest of the transfer. Written out
// as the data comes, the disk's work overlaps the network's, the fsync
// finds little left, and the receiver writes into the same few MiB of
// memory over and over (BenchmarkTransfer: 200 to about 390 MB/s).
type flusher struct {
	upTo chan int64 // the end of what was written; a busy flusher takes the latest
	done chan struct{}
}

// startFlusher starts writing f out from offset from on.
func startFlusher(f *os.File, from int64) *flusher {
	fl := &flusher{upTo: make(chan int64, 1), done: make(chan struct{})}
	rc, err := f.SyscallConn()
	if err != nil {
		close(fl.done)
		fl.upTo = nil
		return fl
	}
	go func() {
		defer close(fl.done)
		prev := from // [prev, from) is being written out
		for end := range fl.upTo {
			if end <= from {
				continue
			}
			rc.Control(func(fd uintptr) {
				// Start on the new range; SYNC_FILE_RANGE_WRITE only
				// starts, though a full disk queue may block it, which
				// is why it runs here and not in the receive loop.
				unix.SyncFileRange(int(fd), from, end-from, unix.SYNC_FILE_RANGE_WRITE)
				// Wait for the one before, and let its pages go: the
				// next ones reuse them instead of taking fresh memory
				// (which costs far more than the copy into it on a
				// virtual machine), and a large download does not push
				// everything else out of the page cache.
				if from > prev {
					unix.SyncFileRange(int(fd), prev, from-prev, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
					unix.Fadvise(int(fd), prev, from-prev, unix.FADV_DONTNEED)
				}
			})
			prev, from = from, end
		}
	}()
	return fl
}

// written says the file is written up to end.
func (fl *flusher) written(end int64) {
	if fl.upTo == nil {
		return
	}
	select {
	case fl.upTo <- end:
	default: // still busy with an earlier range: a later call covers this one
	}
}

// stop waits for the flusher to finish; call it before closing the file.
func (fl *flusher) stop() {
	if fl.upTo != nil {
		close(fl.upTo)
	}
	<-fl.done
}
