package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"p2pd/netcore/identity"
)

// Entry is one line of a peer's history file: a message (Out: written
// here), or a receipt for one of ours.
type Entry struct {
	Message
	Out     bool   `json:"out,omitempty"`
	Receipt string `json:"receipt,omitempty"` // set: this line is the receipt for our message with this id
}

// Line is a message in a history, with its state.
type Line struct {
	Message
	Out       bool // written here
	Delivered bool // ours, and its receipt came back
}

// Store keeps each peer's history as a file of JSON lines, appended one
// whole line per write and synced: a crash can cut only the last line,
// which the next open drops, and never touches what came before.
type Store struct {
	dir   string
	mu    sync.Mutex
	peers map[identity.ID]*history
}

type history struct {
	f     *os.File
	read  int64 // bytes of the file applied: whole lines
	lines []Line
	byID  map[string]int
}

// OpenStore opens (creating) the history folder dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("chat history: %w", err)
	}
	return &Store{dir: dir, peers: map[identity.ID]*history{}}, nil
}

// Close closes the history files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, h := range s.peers {
		h.f.Close()
		delete(s.peers, id)
	}
	return nil
}

// History returns the messages exchanged with peer, oldest first.
func (s *Store) History(peer identity.ID) ([]Line, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.load(peer)
	if err != nil {
		return nil, err
	}
	return append([]Line(nil), h.lines...), nil
}

// Pending returns our messages to peer still waiting for their receipt:
// the outbox.
func (s *Store) Pending(peer identity.ID) ([]Message, error) {
	lines, err := s.History(peer)
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, l := range lines {
		if l.Out && !l.Delivered {
			out = append(out, l.Message)
		}
	}
	return out, nil
}

// Waiting counts our messages to peer still waiting for their receipt;
// a peer never written to has no history file, and gets none.
func (s *Store) Waiting(peer identity.ID) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers[peer] == nil {
		if _, err := os.Stat(s.path(peer)); errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
	}
	h, err := s.load(peer)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range h.lines {
		if l.Out && !l.Delivered {
			n++
		}
	}
	return n, nil
}

func (s *Store) path(peer identity.ID) string {
	return filepath.Join(s.dir, peer.String()+".jsonl")
}

// load reads peer's history, once, and after that only the lines other
// processes appended since (p2pd chat writes while p2pd node delivers);
// the caller holds s.mu.
func (s *Store) load(peer identity.ID) (*history, error) {
	if h := s.peers[peer]; h != nil {
		return h, h.catchUp()
	}
	name := s.path(peer)
	// O_APPEND: another process on the same data dir (p2pd node and
	// p2pd chat) appends its own whole lines.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("chat history: %w", err)
	}
	data, err := io.ReadAll(f) // from the start: O_APPEND moves only writes
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("chat history: %w", err)
	}
	// A last line without its newline was cut by a crash: drop it.
	whole := bytes.LastIndexByte(data, '\n') + 1
	if whole < len(data) {
		if err := f.Truncate(int64(whole)); err != nil {
			f.Close()
			return nil, fmt.Errorf("chat history: %w", err)
		}
	}
	h := &history{f: f, byID: map[string]int{}}
	h.applyLines(data[:whole])
	s.peers[peer] = h
	return h, nil
}

// applyLines applies whole lines read from the file.
func (h *history) applyLines(data []byte) {
	for line := range bytes.Lines(data) {
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			continue // not ours to judge: keep going
		}
		h.apply(e)
	}
	h.read += int64(len(data))
}

// catchUp applies the whole lines appended since the last read. Lines
// this process wrote come back too; applying an entry twice changes
// nothing.
func (h *history) catchUp() error {
	fi, err := h.f.Stat()
	if err != nil {
		return fmt.Errorf("chat history: %w", err)
	}
	if fi.Size() <= h.read {
		return nil
	}
	data := make([]byte, fi.Size()-h.read)
	n, err := h.f.ReadAt(data, h.read)
	if err != nil && err != io.EOF {
		return fmt.Errorf("chat history: %w", err)
	}
	// A line still being written waits for its newline.
	h.applyLines(data[:bytes.LastIndexByte(data[:n], '\n')+1])
	return nil
}

// apply adds an entry to the in-memory history.
func (h *history) apply(e Entry) {
	if e.Receipt != "" {
		if i, ok := h.byID[e.Receipt]; ok && h.lines[i].Out {
			h.lines[i].Delivered = true
		}
		return
	}
	if e.ID == "" {
		return
	}
	if _, dup := h.byID[e.ID]; dup {
		return
	}
	h.byID[e.ID] = len(h.lines)
	h.lines = append(h.lines, Line{Message: e.Message, Out: e.Out})
}

// append writes an entry to peer's history.
func (s *Store) append(peer identity.ID, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.load(peer)
	if err != nil {
		return err
	}
	return h.write(e)
}

func (h *history) write(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := h.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("chat history: %w", err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("chat history: %w", err)
	}
	h.apply(e)
	return nil
}

// receive stores an incoming message unless it was seen before; it
// reports whether it was new.
func (s *Store) receive(peer identity.ID, m Message) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.load(peer)
	if err != nil {
		return false, err
	}
	if _, seen := h.byID[m.ID]; seen {
		return false, nil
	}
	return true, h.write(Entry{Message: m})
}
