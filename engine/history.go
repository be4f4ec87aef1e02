package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"p2pd/netcore/identity"
	"p2pd/transfer"
)

// historyFile keeps the transfers that ended, so the next launch lists
// them too.
const historyFile = "transfers.json"

// keepEnded bounds the history: the newest ended transfers are kept.
const keepEnded = 100

// over reports whether nothing more happens to t unless the user acts
// (Resume): it is done, cancelled or declined, or an incoming one failed,
// or an outgoing one that waits to be sent again (its file changed). An
// outgoing one that failed otherwise stays queued and is tried again.
func (t *Transfer) over() bool {
	switch t.State {
	case Done, Cancelled, Declined:
		return true
	case Failed:
		return t.Incoming || t.Resumable
	}
	return false
}

// storedTransfer is an ended Transfer in the history file.
type storedTransfer struct {
	ID        string        `json:"id"`
	Peer      string        `json:"peer"` // the peer's id, in hex
	Incoming  bool          `json:"incoming,omitempty"`
	Files     []string      `json:"files"`
	Done      int64         `json:"done"`
	Total     int64         `json:"total"`
	State     TransferState `json:"state"`
	Note      string        `json:"note,omitempty"`
	Dir       string        `json:"dir,omitempty"`
	Resumable bool          `json:"resumable,omitempty"`
	Paths     []string      `json:"paths,omitempty"` // outgoing: what Resume sends
	Started   time.Time     `json:"started"`
	Ended     time.Time     `json:"ended"`
}

// loadHistory reads the transfers that ended in earlier runs, oldest
// first. A missing file is an empty history; a damaged one is an error,
// and is moved aside (to historyFile.damaged) rather than overwritten.
func loadHistory(home string) ([]storedTransfer, error) {
	path := filepath.Join(home, historyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the transfers' history: %w", err)
	}
	var list []storedTransfer
	if err := json.Unmarshal(b, &list); err != nil {
		aside := path + ".damaged"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("the transfers' history %s is damaged (%w), and cannot be moved aside: %w", path, err, rerr)
		}
		return nil, fmt.Errorf("the transfers' history was damaged (%w); it is kept as %s and a new one begins", err, aside)
	}
	return list, nil
}

// restore lists the transfers of earlier runs: those that ended (from the
// history) and those still queued in the outbox.
func (e *Engine) restore() error {
	list, err := loadHistory(e.home)
	if err != nil {
		return err
	}
	for _, s := range list {
		id, err := identity.ParseHex(s.Peer)
		if err != nil {
			continue // no peer to show it with
		}
		t := &Transfer{ID: s.ID, Peer: e.peer(id), Incoming: s.Incoming, Files: s.Files,
			Progress: transfer.Progress{ID: s.ID, Done: s.Done, Total: s.Total},
			State:    s.State, Note: s.Note, Dir: s.Dir, Resumable: s.Resumable,
			Started: s.Started, Ended: s.Ended, paths: s.Paths}
		e.transfers[t.ID] = t
	}
	queued, err := e.outbox.List()
	if err != nil {
		return err
	}
	for _, q := range queued {
		t := e.waiting(q)
		t.Started = q.Added
		if q.LastError != "" {
			t.Note = q.LastError + "; trying again when " + t.Peer.Name + " can be reached"
		}
		e.transfers[q.ID] = t
	}
	return nil
}

// saveHistory writes the transfers that are over, the newest keepEnded;
// histMu is held.
func (e *Engine) saveHistory() error {
	e.mu.Lock()
	var list []storedTransfer
	for _, t := range e.transfers {
		if !t.over() {
			continue
		}
		list = append(list, storedTransfer{ID: t.ID, Peer: t.Peer.ID.Hex(), Incoming: t.Incoming,
			Files: t.Files, Done: t.Progress.Done, Total: t.Progress.Total, State: t.State, Note: t.Note,
			Dir: t.Dir, Resumable: t.Resumable, Paths: t.paths, Started: t.Started, Ended: t.Ended})
	}
	e.mu.Unlock()
	slices.SortFunc(list, func(a, b storedTransfer) int { return a.Ended.Compare(b.Ended) })
	if len(list) > keepEnded {
		list = list[len(list)-keepEnded:]
	}
	if err := saveJSON(filepath.Join(e.home, historyFile), list); err != nil {
		return fmt.Errorf("saving the transfers' history: %w", err)
	}
	return nil
}

// remember saves the history after a transfer ended (or was resumed).
func (e *Engine) remember() {
	e.histMu.Lock()
	defer e.histMu.Unlock()
	if err := e.saveHistory(); err != nil {
		e.opt.Logger.Warn("engine: the transfer will not be listed after a restart", "err", err)
	}
}

// Transfers lists every transfer, those of earlier runs included, oldest
// first (as they started).
func (e *Engine) Transfers() []Transfer {
	e.mu.Lock()
	out := make([]Transfer, 0, len(e.transfers))
	for _, t := range e.transfers {
		out = append(out, *t)
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b Transfer) int { return a.Started.Compare(b.Started) })
	return out
}

// ClearEnded takes the transfers that are over off the list (and out of
// the history), and returns their IDs. Files stay where they are.
func (e *Engine) ClearEnded() ([]string, error) {
	e.histMu.Lock()
	defer e.histMu.Unlock()
	e.mu.Lock()
	var gone []string
	for id, t := range e.transfers {
		if t.over() {
			gone = append(gone, id)
			delete(e.transfers, id)
		}
	}
	e.mu.Unlock()
	if len(gone) == 0 {
		return nil, nil
	}
	slices.Sort(gone)
	return gone, e.saveHistory()
}
