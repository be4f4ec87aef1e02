package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"p2pd/netcore/identity"
	"p2pd/netcore/session"
)

// outboxFile is the outbox's file in the data dir.
const outboxFile = "outbox.json"

const (
	// lockWait bounds waiting for another process's change to the
	// outbox: a read, a small write and a sync.
	lockWait = 5 * time.Second
	// lockPoll is how often a waiting change looks again.
	lockPoll = 5 * time.Millisecond
	// staleLock is the age past which a lock file was left by a process
	// that died holding it.
	staleLock = 30 * time.Second
)

// Queued is a send waiting in the outbox until its peer can be reached.
type Queued struct {
	ID        string      // names the entry
	Peer      identity.ID // the receiver
	Paths     []string    // files and folders, absolute
	Added     time.Time
	Tried     time.Time // the last attempt, if any
	LastError string    // why it failed
}

// queuedJSON is Queued on disk, the peer spelled out in hex.
type queuedJSON struct {
	ID        string    `json:"id"`
	Peer      string    `json:"peer"`
	Paths     []string  `json:"paths"`
	Added     time.Time `json:"added"`
	Tried     time.Time `json:"tried,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Outbox holds files queued for peers, to be sent when they can be
// reached: one process queues (p2pd send --queue), another delivers and
// removes (p2pd node). It is one JSON file in the data dir, read again
// before every change and replaced whole (written beside it and renamed),
// so a crash leaves the old outbox or the new one; a lock file beside it
// keeps two processes from changing it at once and losing one's change.
type Outbox struct {
	path string
	mu   sync.Mutex // one change at a time in this process
	// Report, if set, hears how each delivery attempt goes: once as it
	// starts, with each progress, and once as it ends.
	Report func(Attempt)

	runMu   sync.Mutex
	running map[string]*attempt // by entry id, for Cancel
}

// Attempt is news of one attempt at delivering a queued entry.
type Attempt struct {
	Entry    Queued
	Progress Progress // the latest (zero until the receiver accepts)
	// Ended: the attempt is over; Err says how (nil: the receiver saved
	// everything).
	Ended bool
	Err   error
}

// ErrCancelledHere: the entry was cancelled in this process
// (Outbox.Cancel).
var ErrCancelledHere = errors.New("cancelled")

// Cancel takes the entry with id out of the outbox and stops its
// delivery if one is running (the receiver keeps the verified part: the
// same files queued again resume). It reports whether a delivery was
// running.
func (o *Outbox) Cancel(id string) (bool, error) {
	err := o.Remove(id)
	o.runMu.Lock()
	at := o.running[id]
	o.runMu.Unlock()
	if at != nil {
		at.stop(ErrCancelledHere)
	}
	return at != nil, err
}

// attempt is one running delivery, for Cancel.
type attempt struct{ stop context.CancelCauseFunc }

// track registers the running delivery of entry id for Cancel, until
// the returned func (idempotent) is called: that attempt's, not a later
// one's with the same id (an entry queued again keeps its id).
func (o *Outbox) track(ctx context.Context, id string) (context.Context, func()) {
	ctx, stop := context.WithCancelCause(ctx)
	at := &attempt{stop}
	o.runMu.Lock()
	defer o.runMu.Unlock()
	if o.running == nil {
		o.running = map[string]*attempt{}
	}
	o.running[id] = at
	return ctx, func() {
		o.runMu.Lock()
		defer o.runMu.Unlock()
		if o.running[id] == at {
			delete(o.running, id)
		}
		stop(nil)
	}
}

func (o *Outbox) report(a Attempt) {
	if o.Report != nil {
		o.Report(a)
	}
}

// OpenOutbox opens the outbox in the data dir home (a missing file is an
// empty outbox; a damaged one is an error, never silently replaced).
func OpenOutbox(home string) (*Outbox, error) {
	o := &Outbox{path: filepath.Join(home, outboxFile)}
	if _, _, err := o.read(); err != nil {
		return nil, err
	}
	return o, nil
}

// Add queues paths (files or folders, which must exist) for peer and
// returns the entry.
func (o *Outbox) Add(peer identity.ID, paths []string) (Queued, error) {
	return o.AddAs(newEntryID(), peer, paths)
}

// AddAs is Add with the entry's id chosen: the same files queued again
// (after a cancel, say) keep their id. An id already queued is an error.
func (o *Outbox) AddAs(id string, peer identity.ID, paths []string) (Queued, error) {
	if id == "" {
		return Queued{}, errors.New("outbox: an entry needs an id")
	}
	if peer == (identity.ID{}) {
		return Queued{}, errors.New("outbox: no peer to send to")
	}
	if len(paths) == 0 {
		return Queued{}, errors.New("outbox: nothing to send")
	}
	q := Queued{ID: id, Peer: peer, Added: time.Now().UTC()}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return Queued{}, fmt.Errorf("outbox: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return Queued{}, fmt.Errorf("outbox: %w", err)
		}
		q.Paths = append(q.Paths, abs)
	}
	var taken bool
	err := o.change(func(all []Queued) []Queued {
		if taken = slices.ContainsFunc(all, func(e Queued) bool { return e.ID == id }); taken {
			return all
		}
		return append(all, q)
	})
	if err == nil && taken {
		err = fmt.Errorf("outbox: %s is queued already", id)
	}
	return q, err
}

// List returns every entry, oldest first.
func (o *Outbox) List() ([]Queued, error) {
	all, _, err := o.read()
	return all, err
}

// Remove takes the entry with id out of the outbox (gone already is no
// error: another process may have delivered it).
func (o *Outbox) Remove(id string) error {
	return o.change(func(all []Queued) []Queued {
		return slices.DeleteFunc(all, func(q Queued) bool { return q.ID == id })
	})
}

// Waiting returns how many files and folders wait for peer (a folder
// counts as one).
func (o *Outbox) Waiting(peer identity.ID) (int, error) {
	all, _, err := o.read()
	n := 0
	for _, q := range all {
		if q.Peer == peer {
			n += len(q.Paths)
		}
	}
	return n, err
}

// Deliver sends every entry queued for the peer of sess, oldest first,
// and removes each the receiver saved; one that fails stays, with its
// error, for the next session (sent again, it resumes where the receiver
// stopped). It returns how many files and folders were delivered.
func (o *Outbox) Deliver(ctx context.Context, sess *session.Session) (int, error) {
	peer := sess.PeerID()
	delivered := 0
	var errs []error
	tried := map[string]bool{}
	for {
		// Read again before each entry: one cancelled (or delivered by
		// another process) meanwhile is gone.
		all, _, err := o.read()
		if err != nil {
			return delivered, errors.Join(append(errs, err)...)
		}
		i := slices.IndexFunc(all, func(q Queued) bool { return q.Peer == peer && !tried[q.ID] })
		if i < 0 {
			break
		}
		q := all[i]
		tried[q.ID] = true
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		err = o.send(ctx, sess, q)
		if errors.Is(err, ErrCancelledHere) {
			continue // taken out of the outbox by Cancel
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sending %s: %w", names(q.Paths), err))
			if ctx.Err() == nil { // not cut short by shutting down
				if nerr := o.note(q.ID, err); nerr != nil {
					errs = append(errs, nerr)
				}
			}
			continue
		}
		if err := o.Remove(q.ID); err != nil {
			// Still queued, it would go again: say so.
			return delivered, fmt.Errorf("%s was delivered but stays queued: %w", names(q.Paths), err)
		}
		delivered += len(q.Paths)
	}
	return delivered, errors.Join(errs...)
}

// send makes one attempt at entry q, reporting it; an attempt stopped by
// Cancel returns ErrCancelledHere.
func (o *Outbox) send(ctx context.Context, sess *session.Session, q Queued) error {
	ctx, untrack := o.track(ctx, q.ID)
	defer untrack()
	o.report(Attempt{Entry: q})
	_, _, err := Send(ctx, sess, q.Paths, func(p Progress) { o.report(Attempt{Entry: q, Progress: p}) })
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrCancelledHere) {
		err = ErrCancelledHere
	}
	// Over before it is reported: a Cancel after the report finds
	// nothing running, and says so.
	untrack()
	o.report(Attempt{Entry: q, Ended: true, Err: err})
	return err
}

// note records a failed attempt on the entry id.
func (o *Outbox) note(id string, failure error) error {
	return o.change(func(all []Queued) []Queued {
		for i := range all {
			if all[i].ID == id {
				all[i].Tried, all[i].LastError = time.Now().UTC(), failure.Error()
			}
		}
		return all
	})
}

// names words paths for a message: their base names.
func names(paths []string) string {
	base := make([]string, len(paths))
	for i, p := range paths {
		base[i] = filepath.Base(p)
	}
	return strings.Join(base, ", ")
}

func newEntryID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// read returns the entries and the file they came from (nil: none yet).
func (o *Outbox) read() ([]Queued, os.FileInfo, error) {
	f, err := os.Open(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: %w", err)
	}
	var disk []queuedJSON
	if err := json.NewDecoder(f).Decode(&disk); err != nil {
		return nil, nil, fmt.Errorf("outbox: %s is damaged (%v); move it away to start an empty outbox", o.path, err)
	}
	all := make([]Queued, 0, len(disk))
	for _, d := range disk {
		peer, err := identity.ParseHex(d.Peer)
		if err != nil {
			return nil, nil, fmt.Errorf("outbox: %s is damaged (entry %s names no peer); move it away to start an empty outbox", o.path, d.ID)
		}
		all = append(all, Queued{ID: d.ID, Peer: peer, Paths: d.Paths, Added: d.Added, Tried: d.Tried, LastError: d.LastError})
	}
	return all, info, nil
}

// change reads the outbox, applies edit, and replaces the file with the
// result. Other processes are kept out meanwhile by the lock file, which
// is created only if absent (so one process holds it), receives the new
// list, and is renamed over the outbox: the rename both commits the
// change and releases the lock.
func (o *Outbox) change(edit func([]Queued) []Queued) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	lock, err := o.lock()
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			lock.Close()
			os.Remove(lock.Name())
		}
	}()
	all, _, err := o.read()
	if err != nil {
		return err
	}
	disk := []queuedJSON{}
	for _, q := range edit(all) {
		disk = append(disk, queuedJSON{ID: q.ID, Peer: q.Peer.Hex(), Paths: q.Paths, Added: q.Added, Tried: q.Tried, LastError: q.LastError})
	}
	b, err := json.MarshalIndent(disk, "", "  ")
	if err != nil {
		return err
	}
	if _, err := lock.Write(b); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := lock.Sync(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := lock.Close(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := os.Rename(lock.Name(), o.path); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	committed = true
	return nil
}

// lock creates the lock file, waiting (up to lockWait) while another
// process holds it. A lock older than staleLock was left by a process
// that died holding it, and is taken over.
func (o *Outbox) lock() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(o.path), 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	name := o.path + ".lock"
	deadline := time.Now().Add(lockWait)
	for {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		if info, err := os.Stat(name); err == nil && time.Since(info.ModTime()) > staleLock {
			os.Remove(name)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("outbox: another process has held %s for over %v; if none runs, remove it", name, lockWait)
		}
		time.Sleep(lockPoll)
	}
}
