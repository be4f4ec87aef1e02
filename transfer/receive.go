package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
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
	// Progress, if set, hears how each accepted transfer goes.
	Progress func(Progress)
	// Done, if set, hears how each accepted transfer ended.
	Done func(o Offer, r Result)
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
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	st.SetReadDeadline(time.Now().Add(offerTimeout))
	var offer Offer
	if err := readJSON(st, &offer); err != nil {
		return
	}
	st.SetReadDeadline(time.Time{})
	root, names, have, why := r.prepare(offer)
	if root != nil {
		defer root.Close()
	}
	if why == "" {
		release, busy := claim(r.Dir, names)
		if busy != "" {
			why = fmt.Sprintf("%s is being received already; try again when that ends", busy)
		} else {
			defer release()
		}
	}
	if why == "" && (r.Decide == nil || !r.Decide(sess.PeerID(), offer)) {
		why = "declined"
	}
	if why != "" {
		writeJSON(st, Answer{Reason: why})
		return
	}
	if err := writeJSON(st, Answer{Accept: true, Have: have}); err != nil {
		return
	}
	m := &meter{id: offer.ID, total: offer.Total, start: time.Now(), report: r.Progress}
	for _, h := range have {
		m.done += h
	}
	m.base = m.done
	res := Result{OK: true}
	buf := make([]byte, ChunkSize)
	for i, f := range offer.Files {
		saved, err := receiveFile(st, root, offer.ID, names[i], f.Size, have[i], buf, m)
		if err != nil {
			res = Result{Error: err.Error(), Saved: res.Saved}
			break
		}
		res.Saved = append(res.Saved, saved)
	}
	writeJSON(st, res)
	if r.Done != nil {
		r.Done(offer, res)
	}
}

// prepare checks an offer and finds what earlier attempts left: the
// folder, each file's clean name and verified bytes, or why not.
func (r *Receiver) prepare(o Offer) (*os.Root, []string, []int64, string) {
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
		seen[strings.ToLower(name)] = true
		names[i] = name
		if total += f.Size; total > maxSize {
			return nil, nil, nil, "the offer is larger than any disk"
		}
	}
	if total != o.Total {
		return nil, nil, nil, "the offer's total does not add up"
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return nil, nil, nil, fmt.Sprintf("the download folder: %v", err)
	}
	root, err := os.OpenRoot(r.Dir)
	if err != nil {
		return nil, nil, nil, fmt.Sprintf("the download folder: %v", err)
	}
	have := make([]int64, len(o.Files))
	var need int64
	for i, f := range o.Files {
		have[i] = resumable(root, o.ID, names[i], f.Size)
		need += f.Size - have[i]
	}
	if free, ok := freeSpace(r.Dir); ok && free < uint64(need) {
		return root, nil, nil, fmt.Sprintf("not enough free space in %s: %s needed, %s free", r.Dir, FormatSize(need), FormatSize(int64(free)))
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
// checks the whole file's hash, and gives it its name (another one if
// that is taken), which it returns.
func receiveFile(r io.Reader, root *os.Root, id, name string, size, have int64, buf []byte, m *meter) (string, error) {
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
	if err := f.Truncate(have); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	whole := sha256.New()
	if _, err := io.CopyN(whole, f, have); err != nil {
		return "", fmt.Errorf("reading back %s: %w", part, err)
	}
	state := partInfo{ID: id, Size: size, Verified: have}
	for {
		if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
			d.SetReadDeadline(time.Now().Add(chunkTimeout))
		}
		n, sum, err := readChunk(r, buf)
		if err != nil {
			return "", fmt.Errorf("receiving %s: %w", name, err)
		}
		if n == 0 {
			return finish(root, f, whole, sum, name, state)
		}
		if state.Verified+int64(n) > size {
			return "", fmt.Errorf("%s: the sender sent more than the %d bytes it offered", name, size)
		}
		if sha256.Sum256(buf[:n]) != sum {
			return "", fmt.Errorf("%s: a chunk at %d arrived damaged", name, state.Verified)
		}
		if _, err := f.WriteAt(buf[:n], state.Verified); err != nil {
			return "", fmt.Errorf("writing %s (is the disk full?): %w; the verified part is kept", name, err)
		}
		whole.Write(buf[:n])
		state.Verified += int64(n)
		if b, err := json.Marshal(state); err == nil {
			root.WriteFile(name+partState, b, 0o644)
		}
		m.add(name, int64(n))
	}
}

// finish checks the whole file and names it.
func finish(root *os.Root, f *os.File, whole hash.Hash, sum [sha256.Size]byte, name string, state partInfo) (string, error) {
	if state.Verified != state.Size {
		return "", fmt.Errorf("%s: %d of %d bytes arrived", name, state.Verified, state.Size)
	}
	if !bytes.Equal(whole.Sum(nil), sum[:]) {
		// A bad part from an earlier attempt: start over next time.
		f.Close()
		root.Remove(name + partSuffix)
		root.Remove(name + partState)
		return "", fmt.Errorf("%s: the whole file's hash does not match; it will be sent again from the start", name)
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
