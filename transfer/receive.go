package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"p2pd/netcore/identity"
	"p2pd/netcore/session"
)

const (
	// partSuffix marks a file being received; partState is its sidecar
	// (offer id, size, verified bytes) that makes resuming possible.
	partSuffix = ".p2pd-part"
	partState  = ".p2pd-part.json"
	// saveEvery spaces the saves of a part's state.
	saveEvery = 250 * time.Millisecond
	// flushEvery spaces the requests to write a file out as it arrives.
	flushEvery = 8 << 20
	// offerTimeout bounds reading the offer once the stream is open.
	offerTimeout = 10 * time.Second
)

// Receiver saves offered files into a folder.
type Receiver struct {
	// Dir is the download folder; it is created if missing.
	Dir string
	// Decide is asked about each offer that passed the checks (names,
	// sizes, free space); nil declines every offer.
	Decide func(peer identity.ID, o Offer) bool
	// Choose, if set, is asked instead of Decide, and names the folder
	// to save the offer into ("" for Dir); the checks are made again for
	// another folder. Its ctx ends when the sender goes away, withdraws
	// the offer (its cause is then ErrWithdrawn) or breaks the protocol,
	// or the node stops: the answer is moot then.
	Choose func(ctx context.Context, peer identity.ID, o Offer) (dir string, accept bool)
	// Progress, if set, hears how each accepted transfer goes.
	Progress func(Progress)
	// Done, if set, hears how each accepted transfer ended.
	Done func(o Offer, r Result)

	mu      sync.Mutex
	running map[string]*stopper // by offer id, for Cancel
}

// SetDir changes the download folder (Dir) while offers may be coming in.
func (r *Receiver) SetDir(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Dir = dir
}

func (r *Receiver) folder() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Dir
}

// Cancel stops the running transfer of the offer with id (Progress.ID):
// the sender hears that the receiver cancelled, and the verified part is
// kept, so the same offer sent again resumes. It reports whether such a
// transfer was running.
func (r *Receiver) Cancel(id string) bool {
	r.mu.Lock()
	s := r.running[id]
	r.mu.Unlock()
	if s == nil {
		return false
	}
	s.stop()
	return true
}

// track registers a running transfer for Cancel; the returned func ends
// that.
func (r *Receiver) track(id string, s *stopper) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		r.running = map[string]*stopper{}
	}
	if r.running[id] != nil {
		return func() {} // the same offer twice at once: cancel finds the first
	}
	r.running[id] = s
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.running, id)
	}
}

// stopper extends a stream's read deadline chunk by chunk until stopped;
// stopping moves the deadline to the past, so a read waiting for the
// next chunk returns at once. One lock keeps a late extension from
// undoing a stop.
type stopper struct {
	mu      sync.Mutex
	st      net.Conn
	stopped bool
}

// extend allows the next chunk chunkTimeout to arrive, unless stopped.
func (s *stopper) extend() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.st.SetReadDeadline(time.Now().Add(chunkTimeout))
	return true
}

func (s *stopper) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.st.SetReadDeadline(time.Unix(1, 0))
}

func (s *stopper) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// receiving holds the names being received in each folder: two offers of
// one name at once would write the same part file.
var receiving = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

// claim marks names in dir as being received, or says which is busy; the
// returned func releases them.
func claim(dir string, names []string) (func(), string) {
	receiving.Lock()
	defer receiving.Unlock()
	for _, n := range names {
		if receiving.names[dir+"\x00"+n] {
			return nil, n
		}
	}
	for _, n := range names {
		receiving.names[dir+"\x00"+n] = true
	}
	return func() {
		receiving.Lock()
		defer receiving.Unlock()
		for _, n := range names {
			delete(receiving.names, dir+"\x00"+n)
		}
	}, ""
}

// Why a question about an offer ended before its answer.
var (
	// ErrWithdrawn: the sender ended the offer's stream in order, as Send
	// does when its user cancels (ErrCancelledHere); a sender that stops
	// for another reason drops the stream instead.
	ErrWithdrawn = errors.New("the sender withdrew the offer")
	// errEarlyData: the sender sent more before the answer, which it must
	// not: those bytes would wait in the stream's window (megabytes for
	// each offer the user has not answered yet).
	errEarlyData = errors.New("the sender sent data before its offer was answered")
)

// watchQuiet reads st while an offer waits for its answer, when the
// sender sends nothing. The sender closing the stream (ErrWithdrawn),
// the stream breaking (its session ending too), or a byte arriving
// (errEarlyData) cancels the
// question with that cause. The returned stop ends the watch and says
// which of them happened, if one did; the stream is as before otherwise.
func watchQuiet(st net.Conn, cancel context.CancelCauseFunc) (stop func() error) {
	done := make(chan error, 1)
	go func() {
		var (
			b   [1]byte
			n   int
			err error
		)
		for n == 0 && err == nil {
			n, err = st.Read(b[:])
		}
		var timeout net.Error
		switch {
		case n > 0:
			err = errEarlyData
		case errors.As(err, &timeout) && timeout.Timeout():
			err = nil // stopped
		case err == io.EOF:
			// The stream's own end, not errors.Is: a yamux session whose
			// connection closed (the sender's process killed) wraps
			// io.EOF in the reset it gives each stream.
			err = ErrWithdrawn
		default: // reset, or the session ended
			err = fmt.Errorf("the offer's stream broke: %w", err)
		}
		if err != nil {
			cancel(err)
		}
		done <- err
	}()
	return func() error {
		st.SetReadDeadline(time.Unix(1, 0)) // in the past: ends the Read
		err := <-done
		st.SetReadDeadline(time.Time{})
		return err
	}
}

// partName reports whether a part of name ends as a partial file's or
// its state's name does, whatever the case.
func partName(name string) bool {
	for p := range strings.SplitSeq(strings.ToLower(name), "/") {
		if strings.HasSuffix(p, partSuffix) || strings.HasSuffix(p, partState) {
			return true
		}
	}
	return false
}

// partInfo is a partial file's sidecar.
type partInfo struct {
	ID       string `json:"id"`
	Size     int64  `json:"size"`
	Verified int64  `json:"verified"`
}

// Handle serves one transfer/1 stream; register it on the node for
// Proto.
func (r *Receiver) Handle(ctx context.Context, sess *session.Session, st net.Conn) {
	defer st.Close()
	defer context.AfterFunc(ctx, func() { st.Close() })()
	st.SetReadDeadline(time.Now().Add(offerTimeout))
	var offer Offer
	if err := readJSON(st, &offer); err != nil {
		return
	}
	st.SetReadDeadline(time.Time{})
	dir := r.folder()
	root, names, have, release, why, busy := r.prepare(dir, offer)
	accepted := false
	if why == "" {
		chosen := ""
		// The question ends with the offer's stream, and so with the
		// sender's session.
		cctx, cancel := context.WithCancelCause(ctx)
		stopWatch := watchQuiet(st, cancel)
		switch {
		case r.Choose != nil:
			chosen, accepted = r.Choose(cctx, sess.PeerID(), offer)
		case r.Decide != nil:
			accepted = r.Decide(sess.PeerID(), offer)
		}
		broken := stopWatch()
		cancel(nil)
		switch {
		case broken != nil:
			why = broken.Error()
		case !accepted:
			why = "declined"
		case chosen != "" && chosen != dir:
			release()
			root.Close()
			dir = chosen
			root, names, have, release, why, busy = r.prepare(dir, offer)
		}
	}
	if root != nil {
		defer root.Close()
	}
	defer release()
	// An offer accepted here always ends with Done, so the one who
	// accepted hears how it went.
	fail := func(why string) {
		if accepted && r.Done != nil {
			r.Done(offer, Result{Error: why})
		}
	}
	if why != "" {
		writeJSON(st, Answer{Reason: why, Busy: busy})
		fail(why)
		return
	}
	if err := writeJSON(st, Answer{Accept: true, Have: have}); err != nil {
		fail("the sender went away before the files came")
		return
	}
	m := &meter{id: offer.ID, total: offer.Total, start: time.Now(), report: r.Progress}
	for _, h := range have {
		m.done += h
	}
	m.base = m.done
	stop := &stopper{st: st}
	untrack := r.track(offer.ID, stop)
	res := Result{OK: true}
	buf := make([]byte, ChunkSize)
	for i, f := range offer.Files {
		saved, err := receiveFile(st, root, offer.ID, names[i], f.Size, have[i], buf, m, stop.extend)
		if err != nil {
			res = Result{Error: err.Error(), Saved: res.Saved}
			if stop.isStopped() {
				res.Error, res.Cancelled = "cancelled by the receiver; the verified part is kept", true
			}
			break
		}
		res.Saved = append(res.Saved, saved)
	}
	untrack()
	release()
	st.SetWriteDeadline(time.Now().Add(offerTimeout))
	writeJSON(st, res)
	if r.Done != nil {
		r.Done(offer, res)
	}
}

// prepare checks an offer for saving into dir and claims its names
// there: it returns the folder, each file's clean name and what earlier
// attempts verified, and the release of the names (which runs once; they
// are released before the result is written, since a sender that hears
// it may offer the same files again at once); or why not, and whether
// only for now (busy).
func (r *Receiver) prepare(dir string, o Offer) (root *os.Root, names []string, have []int64, release func(), why string, busy bool) {
	release = func() {}
	root, names, have, why = check(dir, o)
	if why != "" {
		return root, names, have, release, why, false
	}
	rel, taken := claim(dir, names)
	if taken != "" {
		return root, names, have, release, fmt.Sprintf("%s is being received already; try again when that ends", taken), true
	}
	return root, names, have, sync.OnceFunc(rel), "", false
}

// check checks an offer and finds what earlier attempts left in dir: the
// folder, each file's clean name and verified bytes, or why not.
func check(dir string, o Offer) (*os.Root, []string, []int64, string) {
	if len(o.Files) == 0 || len(o.Files) > maxFiles {
		return nil, nil, nil, fmt.Sprintf("an offer holds 1 to %d files", maxFiles)
	}
	names := make([]string, len(o.Files))
	seen := map[string]bool{}
	var total int64
	for i, f := range o.Files {
		name, err := CleanName(f.Path)
		if err != nil {
			return nil, nil, nil, err.Error()
		}
		if f.Size < 0 || f.Size > maxSize || seen[strings.ToLower(name)] {
			return nil, nil, nil, fmt.Sprintf("file %q: a size out of range, or listed twice", f.Path)
		}
		// Such a name would be another file's part, and be overwritten
		// by it (or overwrite it), or be in the part's way.
		if partName(name) {
			return nil, nil, nil, fmt.Sprintf("file %q: names ending in %s are kept for files being received", f.Path, partSuffix)
		}
		seen[strings.ToLower(name)] = true
		names[i] = name
		if total += f.Size; total > maxSize {
			return nil, nil, nil, "the offer is larger than any disk"
		}
	}
	// A name that is a file and a folder of the offer at once ("x" and
	// "x/y") would fail halfway, after the first was saved.
	for _, name := range names {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if seen[strings.ToLower(dir)] {
				return nil, nil, nil, fmt.Sprintf("%q is a file and a folder in the offer", dir)
			}
		}
	}
	if total != o.Total {
		return nil, nil, nil, "the offer's total does not add up"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, fmt.Sprintf("the download folder: %v", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, nil, fmt.Sprintf("the download folder: %v", err)
	}
	have := make([]int64, len(o.Files))
	var need int64
	for i, f := range o.Files {
		have[i] = resumable(root, o.ID, names[i], f.Size)
		need += f.Size - have[i]
	}
	if free, ok := freeSpace(dir); ok && free < uint64(need) {
		return root, nil, nil, fmt.Sprintf("not enough free space in %s: %s needed, %s free", dir, FormatSize(need), FormatSize(int64(free)))
	}
	return root, names, have, ""
}

// resumable returns how much of name an earlier attempt at offer id
// verified (0 if none, or if it was another offer).
func resumable(root *os.Root, id, name string, size int64) int64 {
	b, err := root.ReadFile(name + partState)
	if err != nil {
		return 0
	}
	var p partInfo
	if json.Unmarshal(b, &p) != nil || p.ID != id || p.Size != size || p.Verified < 0 || p.Verified > size {
		return 0
	}
	fi, err := root.Stat(name + partSuffix)
	if err != nil || fi.Size() < p.Verified {
		return 0
	}
	return p.Verified
}

// receiveFile receives one file into name's part file from have on,
// checks the file's digest, and gives it its name (another one if that is
// taken), which it returns. extend allows the next chunk to arrive, or
// says the transfer was cancelled.
func receiveFile(r io.Reader, root *os.Root, id, name string, size, have int64, buf []byte, m *meter, extend func() bool) (string, error) {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("making %s: %w", dir, err)
		}
	}
	part := name + partSuffix
	f, err := root.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	defer f.Close()
	side, err := openSidecar(root, name)
	if err != nil {
		return "", fmt.Errorf("writing %s (is the disk full?): %w", name, err)
	}
	defer side.Close()
	if err := f.Truncate(have); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	// The part held counts in the file's digest, chunk by chunk as sent.
	whole := newFileSum()
	for done := int64(0); done < have; {
		n, err := io.ReadFull(f, buf[:min(ChunkSize, have-done)])
		if err != nil {
			return "", fmt.Errorf("reading back %s: %w", part, err)
		}
		whole.add(chunkSum(buf[:n]))
		done += int64(n)
	}
	state := partInfo{ID: id, Size: size, Verified: have}
	// The state is saved every saveEvery, and when the transfer stops:
	// a crash loses at most that much, and the disk is not asked for a
	// write per chunk.
	saved, lastSave := have, time.Now()
	flush, flushed := startFlusher(f, have), have
	defer flush.stop()
	defer func() {
		if state.Verified > saved {
			side.save(state)
		}
	}()
	for {
		if !extend() {
			return "", fmt.Errorf("receiving %s: cancelled", name)
		}
		n, sum, zero, err := readChunk(r, buf)
		if err != nil {
			return "", fmt.Errorf("receiving %s: %w (the sender stopped or the connection broke; the verified part is kept)", name, err)
		}
		if n == 0 {
			return finish(root, f, whole, sum, name, state)
		}
		if state.Verified+int64(n) > size {
			return "", fmt.Errorf("%s: the sender sent more than the %d bytes it offered", name, size)
		}
		var got digest
		if zero {
			got = zeroSum(n)
		} else {
			got = chunkSum(buf[:n])
		}
		if got != sum {
			return "", fmt.Errorf("%s: a chunk at %d arrived damaged", name, state.Verified)
		}
		// Zeros become a hole: the file grows without writing them.
		if zero {
			err = f.Truncate(state.Verified + int64(n))
		} else {
			_, err = f.WriteAt(buf[:n], state.Verified)
		}
		if err != nil {
			return "", fmt.Errorf("writing %s (is the disk full?): %w; the verified part is kept", name, bare(err))
		}
		whole.add(sum)
		state.Verified += int64(n)
		if state.Verified-flushed >= flushEvery {
			flush.written(state.Verified)
			flushed = state.Verified
		}
		if time.Since(lastSave) >= saveEvery {
			if err := side.save(state); err != nil {
				return "", fmt.Errorf("writing %s (is the disk full?): %w; the verified part is kept", name, bare(err))
			}
			saved, lastSave = state.Verified, time.Now()
		}
		m.add(name, int64(n))
	}
}

// bare drops the local path from a file error: the message goes to the
// sender, who has no business knowing where the download folder is.
func bare(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// sidecar is a part file's state file, rewritten in place after every
// chunk: padded to a fixed size, so a rewrite needs no new disk space
// and a full disk never leaves it half written.
type sidecar struct{ *os.File }

const sidecarSize = 256

func openSidecar(root *os.Root, name string) (sidecar, error) {
	f, err := root.OpenFile(name+partState, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return sidecar{}, err
	}
	// Take the space now, while writing it cannot lose anything.
	if _, err := f.WriteAt(bytes.Repeat([]byte(" "), sidecarSize), 0); err != nil {
		f.Close()
		return sidecar{}, err
	}
	return sidecar{f}, nil
}

func (s sidecar) save(p partInfo) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if len(b) > sidecarSize {
		return fmt.Errorf("a part state of %d bytes", len(b))
	}
	b = append(b, bytes.Repeat([]byte(" "), sidecarSize-len(b))...)
	_, err = s.WriteAt(b, 0)
	return err
}

// finish checks the whole file and names it.
func finish(root *os.Root, f *os.File, whole fileSum, sum digest, name string, state partInfo) (string, error) {
	if state.Verified != state.Size {
		return "", fmt.Errorf("%s: %d of %d bytes arrived", name, state.Verified, state.Size)
	}
	if whole.sum() != sum {
		// A bad part from an earlier attempt: start over next time.
		f.Close()
		root.Remove(name + partSuffix)
		root.Remove(name + partState)
		return "", fmt.Errorf("%s: the whole file's digest does not match; it will be sent again from the start", name)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	f.Close()
	final, err := linkFree(root, name+partSuffix, name)
	if err != nil {
		return "", err
	}
	root.Remove(name + partSuffix)
	root.Remove(name + partState)
	return final, nil
}

// linkFree gives the file at part the name name, or "name (1).ext",
// "name (2).ext" ... where that is taken. A hard link is made only where
// no file exists, so an existing file is never replaced, even one that
// appears meanwhile.
func linkFree(root *os.Root, part, name string) (string, error) {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		cand := name
		if i > 0 {
			cand = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		err := root.Link(part, cand)
		if err == nil {
			return cand, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("naming %s: %w", cand, err)
		}
	}
	return "", fmt.Errorf("%s: too many files by that name", name)
}
