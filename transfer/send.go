package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"p2pd/netcore/session"
)

// source is a file to send: where it is here, and its offered name.
type source struct {
	local string
	mtime time.Time // part of the offer's id
	File
}

// collect lists the regular files under paths (a folder is sent whole,
// under its own name); symbolic links and special files are skipped.
func collect(paths []string) ([]source, error) {
	var out []source
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if !info.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a regular file", p)
			}
			out = append(out, source{p, info.ModTime(), File{Path: filepath.Base(p), Size: info.Size()}})
			continue
		}
		base := filepath.Base(filepath.Clean(p))
		err = filepath.WalkDir(p, func(local string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(p, local)
			if err != nil {
				return err
			}
			out = append(out, source{local, fi.ModTime(), File{Path: filepath.ToSlash(filepath.Join(base, rel)), Size: fi.Size()}})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("nothing to send: no regular files")
	}
	for _, s := range out {
		if _, err := CleanName(s.Path); err != nil {
			return nil, fmt.Errorf("cannot send %s: %w", s.local, err)
		}
	}
	return out, nil
}

// offerID names an offer by its files, sizes and modification times, so
// that sending the same files again resumes.
func offerID(files []source) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", f.Path, f.Size, f.mtime.UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Send offers paths (files or folders) to the peer of sess and, if it
// accepts, sends what it does not hold yet. It returns the receiver's
// result and the bytes sent in this attempt. Ending ctx ends the
// transfer; the receiver keeps what it verified, for the next attempt.
// ctx ending with cause ErrCancelledHere withdraws the offer (a receiver
// still asking its user hears ErrWithdrawn); any other end before the
// answer drops the stream, as if the sender went away.
func Send(ctx context.Context, sess *session.Session, paths []string, progress func(Progress)) (Result, int64, error) {
	files, err := collect(paths)
	if err != nil {
		return Result{}, 0, err
	}
	offer := Offer{ID: offerID(files)}
	for _, f := range files {
		offer.Files = append(offer.Files, f.File)
		offer.Total += f.Size
	}
	st, err := sess.Open(ctx, Proto)
	if err != nil {
		return Result{}, 0, err
	}
	defer st.Close()
	var answered atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		// While the receiver asks its user, an orderly end says the offer
		// was withdrawn: only a cancel here (Outbox.Cancel) means that.
		// Any other end then (P2PD stopping or restarting, when the offer
		// comes again) drops the stream. Once the files move, an orderly
		// end lets the receiver verify the chunks already on their way,
		// where a dropped stream would lose them.
		if answered.Load() || errors.Is(context.Cause(ctx), ErrCancelledHere) {
			st.Close()
			return
		}
		session.Reset(st)
	})
	defer stop()
	// An ended ctx is why the stream broke: say that, not the broken read.
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}

	if err := writeJSON(st, offer); err != nil {
		return Result{}, 0, fail(fmt.Errorf("sending the offer: %w", err))
	}
	var ans Answer
	if err := readJSON(st, &ans); err != nil {
		return Result{}, 0, fail(fmt.Errorf("waiting for the answer: %w", err))
	}
	answered.Store(true)
	if !ans.Accept && ans.Busy {
		return Result{}, 0, fmt.Errorf("%w: %s", ErrBusy, ans.Reason)
	}
	if !ans.Accept {
		return Result{}, 0, fmt.Errorf("%w: %s", ErrDeclined, ans.Reason)
	}
	if len(ans.Have) != len(files) {
		return Result{}, 0, errors.New("the receiver's answer does not fit the offer")
	}
	m := &meter{id: offer.ID, total: offer.Total, start: time.Now(), report: progress}
	for _, h := range ans.Have {
		m.done += h
	}
	m.base = m.done
	// The receiver's result is read as the files go: one that fails or
	// cancels says so at once, and the files stop.
	type outcome struct {
		res Result
		err error
	}
	got := make(chan outcome, 1)
	go func() {
		var res Result
		err := readJSON(st, &res)
		if err != nil || !res.OK {
			st.Close()
		}
		got <- outcome{res, err}
	}()
	var sent int64
	var sendErr error
	bufs := newBufPool()
	for i, f := range files {
		n, err := sendFile(st, f, ans.Have[i], bufs, m)
		sent += n
		if err != nil {
			sendErr = err
			st.Close()
			break
		}
	}
	o := <-got
	switch {
	case o.err == nil && o.res.Cancelled:
		return o.res, sent, fmt.Errorf("%w by the receiver", ErrCancelled)
	case o.err == nil && !o.res.OK:
		return o.res, sent, fmt.Errorf("the receiver failed: %s", o.res.Error)
	case sendErr != nil:
		return Result{}, sent, fail(sendErr)
	case o.err != nil:
		return Result{}, sent, fail(fmt.Errorf("waiting for the receiver's result: %w", o.err))
	}
	return o.res, sent, nil
}

// readAhead is how many chunks are read and hashed ahead of the
// network: the connection is fed the moment it can take more, so disk
// reads and hashing never leave it idle (at 1 Gbit/s a 1 ms pause is
// 125 KB the socket no longer has queued).
const readAhead = 4

// bufPool holds a transfer's chunk buffers, reused file after file.
type bufPool chan []byte

func newBufPool() bufPool {
	p := make(bufPool, readAhead)
	for range readAhead {
		p <- make([]byte, ChunkSize)
	}
	return p
}

// chunk is one read and hashed piece of a file.
type chunk struct {
	buf  []byte // from the pool; data is buf[:n]
	n    int
	sum  digest
	zero bool
	err  error
}

// sendFile sends f from have on (chunks of zeros without their data),
// then the file's digest.
func sendFile(w io.Writer, f source, have int64, bufs bufPool, m *meter) (int64, error) {
	in, err := os.Open(f.local)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	if err := unchanged(in, f, "since it was offered"); err != nil {
		return 0, err
	}
	if have < 0 || have > f.Size || (have%ChunkSize != 0 && have != f.Size) {
		return 0, fmt.Errorf("the receiver holds %d bytes of %s, which has %d", have, f.Path, f.Size)
	}
	whole := newFileSum()
	// The part the receiver holds counts in the file's digest.
	buf := <-bufs
	for done := int64(0); done < have; {
		n, err := io.ReadFull(in, buf[:min(int64(len(buf)), have-done)])
		if err != nil {
			bufs <- buf
			return 0, readError(f, err)
		}
		whole.add(chunkSum(buf[:n]))
		done += int64(n)
	}
	bufs <- buf

	// A reader goroutine reads and hashes ahead; it never blocks on
	// ready (as many slots as buffers), and stops when told.
	ready := make(chan chunk, readAhead)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ready)
		for left := f.Size - have; left > 0; {
			select {
			case <-stop:
				return
			default:
			}
			var buf []byte
			select {
			case buf = <-bufs:
			case <-stop:
				return
			}
			n, err := io.ReadFull(in, buf[:min(int64(len(buf)), left)])
			if err != nil {
				ready <- chunk{buf: buf, err: readError(f, err)}
				return
			}
			c := chunk{buf: buf, n: n, zero: isZero(buf[:n])}
			if c.zero {
				c.sum = zeroSum(n)
			} else {
				c.sum = chunkSum(buf[:n])
			}
			ready <- c
			left -= int64(n)
		}
	})
	defer func() {
		close(stop)
		for c := range ready {
			bufs <- c.buf
		}
		wg.Wait()
	}()
	var sent int64
	for c := range ready {
		if c.err != nil {
			bufs <- c.buf
			return sent, c.err
		}
		whole.add(c.sum)
		err := writeChunk(w, c.buf[:c.n], c.sum, c.zero)
		bufs <- c.buf
		if err != nil {
			return sent, fmt.Errorf("sending %s: %w", f.Path, err)
		}
		sent += int64(c.n)
		m.add(f.Path, int64(c.n))
	}
	// Written to while it was read, the file would arrive torn, though
	// every chunk checks out: without its digest, the receiver never
	// names it, and the next offer (a new id) sends it whole.
	if err := unchanged(in, f, "while it was being sent"); err != nil {
		return sent, err
	}
	if err := writeChunk(w, nil, whole.sum(), false); err != nil {
		return sent, fmt.Errorf("sending %s: %w", f.Path, err)
	}
	return sent, nil
}

// unchanged checks that in is still the file f offered: the same size
// and modification time. A file that grew (a log being written) is sent
// as it was offered, its first f.Size bytes; one rewritten in place
// would arrive torn, and one cut short cannot be sent.
func unchanged(in *os.File, f source, when string) error {
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("reading %s: %w", f.local, err)
	}
	if fi.Size() < f.Size || (fi.Size() == f.Size && !fi.ModTime().Equal(f.mtime)) {
		return changedError{f.local, when}
	}
	return nil
}

// readError words a failed read of f: one cut short by the file's end
// means it shrank as it was read (ErrChanged).
func readError(f source, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return changedError{f.local, "while it was being sent"}
	}
	return fmt.Errorf("reading %s: %w", f.local, err)
}

// changedError says which file changed, and when; it is ErrChanged.
type changedError struct{ path, when string }

func (e changedError) Error() string        { return e.path + " changed " + e.when }
func (e changedError) Is(target error) bool { return target == ErrChanged }

// FormatSize words a byte count for people: "512 B", "1.5 MiB".
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
