// Package friends keeps the people this node talks to: a name, their
// address (which carries their key), and when they were last seen. The
// list lives in the data dir as one JSON file, replaced whole on every
// change (written beside it and renamed), so a crash leaves the old list
// or the new one, never half of either.
package friends

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
)

// fileName is the list's file in the data dir.
const fileName = "friends.json"

// maxName bounds a friend's name.
const maxName = 64

// Friend is one entry of the list.
type Friend struct {
	Name     string    `json:"name"`
	Address  string    `json:"address"` // the latest known, in text form
	Added    time.Time `json:"added"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// ID returns the friend's node id, from the address's key.
func (f Friend) ID() identity.ID {
	a, err := addr.Parse(f.Address)
	if err != nil {
		return identity.ID{}
	}
	return identity.IDOf(a.Key)
}

// Errors from the list, each a different mistake.
var (
	ErrNotFound  = errors.New("no friend by that name")
	ErrNameTaken = errors.New("a friend already has that name")
	ErrKnown     = errors.New("that address is already a friend's")
	ErrBadName   = fmt.Errorf("a name is 1 to %d printable characters", maxName)
)

// List is the friends list of one data dir.
type List struct {
	path string
	mu   sync.Mutex
	all  []Friend
	seen os.FileInfo // the file as last read or written: unchanged, it is not read again
}

// Open reads the list in home (an absent file is an empty list; a
// damaged one is an error, never silently replaced).
func Open(home string) (*List, error) {
	l := &List{path: filepath.Join(home, fileName)}
	if err := l.reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reload reads the list again: a process that runs for long (p2pd node)
// sees the friends another process added, renamed or removed.
func (l *List) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reload()
}

// All returns the friends, by name.
func (l *List) All() []Friend {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.all)
	slices.SortFunc(out, func(a, b Friend) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out
}

// Get returns the friend called name (case does not matter).
func (l *List) Get(name string) (Friend, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := l.find(name); i >= 0 {
		return l.all[i], nil
	}
	return Friend{}, fmt.Errorf("%w: %q", ErrNotFound, name)
}

func (l *List) find(name string) int {
	return slices.IndexFunc(l.all, func(f Friend) bool { return strings.EqualFold(f.Name, name) })
}

func checkName(name string) error {
	if name == "" || len(name) > maxName || strings.TrimSpace(name) != name ||
		strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return ErrBadName
	}
	return nil
}

// Add adds a friend by name and address.
func (l *List) Add(name, address string) (Friend, error) {
	if err := checkName(name); err != nil {
		return Friend{}, err
	}
	a, err := addr.Parse(address)
	if err != nil {
		return Friend{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reload(); err != nil {
		return Friend{}, err
	}
	if l.find(name) >= 0 {
		return Friend{}, fmt.Errorf("%w: %q", ErrNameTaken, name)
	}
	id := identity.IDOf(a.Key)
	if i := slices.IndexFunc(l.all, func(f Friend) bool { return f.ID() == id }); i >= 0 {
		return Friend{}, fmt.Errorf("%w (%s)", ErrKnown, l.all[i].Name)
	}
	f := Friend{Name: name, Address: address, Added: time.Now().UTC()}
	return f, l.save(append(slices.Clone(l.all), f))
}

// Remove removes the friend called name.
func (l *List) Remove(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reload(); err != nil {
		return err
	}
	i := l.find(name)
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return l.save(slices.Delete(slices.Clone(l.all), i, i+1))
}

// Rename gives a friend another name.
func (l *List) Rename(name, to string) error {
	if err := checkName(to); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reload(); err != nil {
		return err
	}
	i := l.find(name)
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if j := l.find(to); j >= 0 && j != i {
		return fmt.Errorf("%w: %q", ErrNameTaken, to)
	}
	all := slices.Clone(l.all)
	all[i].Name = to
	return l.save(all)
}

// Update records what was learned of the friend with id: a newer
// address (if not empty) and a sighting now. Unknown ids are ignored.
func (l *List) Update(id identity.ID, address string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reload(); err != nil {
		return err
	}
	i := slices.IndexFunc(l.all, func(f Friend) bool { return f.ID() == id })
	if i < 0 {
		return nil
	}
	all := slices.Clone(l.all)
	if address != "" {
		a, err := addr.Parse(address)
		if err != nil || identity.IDOf(a.Key) != id {
			return fmt.Errorf("friends: an address for %s that is not theirs", all[i].Name)
		}
		all[i].Address = address
	}
	all[i].LastSeen = time.Now().UTC()
	return l.save(all)
}

// reload reads the file (again, before a change, so one made by another
// process meanwhile is kept); the caller holds l.mu.
func (l *List) reload() error {
	fi, err := os.Stat(l.path)
	if err == nil && l.unchanged(fi) {
		return nil // the app asks every 2 s; the file rarely changes
	}
	b, err := os.ReadFile(l.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("friends: %w", err)
	}
	var all []Friend
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("friends: %s is damaged (%v); move it away to start a new list", l.path, err)
	}
	l.all, l.seen = all, fi
	return nil
}

// unchanged reports whether fi is the file as last read or written: the
// same file (a save replaces it), size and modification time.
func (l *List) unchanged(fi os.FileInfo) bool {
	return l.seen != nil && os.SameFile(fi, l.seen) && fi.Size() == l.seen.Size() && fi.ModTime().Equal(l.seen.ModTime())
}

// save writes all and makes it the list; the caller holds l.mu.
func (l *List) save(all []Friend) error {
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("friends: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.path), fileName+".*")
	if err != nil {
		return fmt.Errorf("friends: %w", err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("friends: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("friends: %w", err)
	}
	l.all = all
	l.seen, _ = os.Stat(l.path)
	return nil
}
