package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"p2pd/netcore/identity"
	"p2pd/transfer"
)

// offerWait is how long an incoming offer waits for the user's answer
// before it is declined.
const offerWait = 10 * time.Minute

// Offers waiting for the user's answer: at most maxPeerAsks from one
// peer and maxAsks in all. More are declined at once, unseen: a peer
// cannot fill the screen with questions.
const (
	maxPeerAsks = 4
	maxAsks     = 32
)

// asked is an offer waiting for the user: who made it, and how to answer.
type asked struct {
	from   identity.ID
	answer func(ok bool, dir string)
}

// TransferState is where a transfer stands.
type TransferState string

// Transfer states.
const (
	Waiting   TransferState = "waiting" // queued until the friend can be reached, or offered and not answered yet
	Running   TransferState = "running"
	Done      TransferState = "done"
	Failed    TransferState = "failed"
	Cancelled TransferState = "cancelled"
	Declined  TransferState = "declined"
)

// Transfer is one transfer, either way.
type Transfer struct {
	// ID names it: an outgoing one keeps its ID when resumed.
	ID       string
	Peer     Peer
	Incoming bool
	Files    []string // what moves: names (outgoing) or the offer's paths (incoming)
	Progress transfer.Progress
	State    TransferState
	// Note says more, in words: why it failed, or that it waits for the
	// friend to be reachable.
	Note string
	// Dir is where an incoming transfer is saved.
	Dir string
	// Resumable: a cancelled or declined outgoing transfer, or one whose
	// file changed as it was sent, can be sent again (Resume), from what
	// the receiver verified.
	Resumable bool
	// Started is when it was queued or offered; Ended when it was over
	// (done, cancelled, declined; zero until then).
	Started, Ended time.Time

	paths []string  // outgoing: what to send again
	told  time.Time // when the app last heard of it
}

// Offer is an incoming offer the user answers (Hooks.Offer).
type Offer struct {
	ID    string
	From  Peer
	Files []string // relative paths, as offered
	Total int64
	Dir   string // the download folder, where it goes unless another is chosen
}

// update changes the transfer id under the lock and tells the app.
func (e *Engine) update(id string, f func(t *Transfer)) {
	e.mu.Lock()
	t := e.transfers[id]
	if t == nil {
		e.mu.Unlock()
		return
	}
	state, note, wasOver := t.State, t.Note, t.over()
	f(t)
	over := t.over()
	if over && !wasOver {
		t.Ended = time.Now()
	}
	if over != wasOver {
		defer e.remember() // after the lock is let go
	}
	// Progress comes per chunk (a hundred a second on a LAN): the app
	// hears it at most every progressEvery; every change of state at once.
	now := time.Now()
	if t.State == state && t.Note == note && !t.told.IsZero() && now.Sub(t.told) < progressEvery {
		e.mu.Unlock()
		return
	}
	t.told = now
	c := *t
	h := e.hooks.Transfer
	e.mu.Unlock()
	if h != nil {
		h(c)
	}
}

// progressEvery spaces the progress a transfer reports to the app.
const progressEvery = 100 * time.Millisecond

// add registers a new transfer and tells the app.
func (e *Engine) add(t *Transfer) {
	if t.Started.IsZero() {
		t.Started = time.Now()
	}
	e.mu.Lock()
	old := e.transfers[t.ID]
	e.transfers[t.ID] = t
	e.mu.Unlock()
	if old != nil && old.over() { // resumed: no longer in the history
		e.remember()
	}
	e.update(t.ID, func(*Transfer) {})
}

// SendFiles sends files and folders to the friend called name: they wait
// in the outbox (which survives a restart) and the Keeper sends them now
// if the friend can be reached, else as soon as they can. It returns the
// transfer's ID; Transfer hooks follow it.
func (e *Engine) SendFiles(name string, paths []string) (string, error) {
	id, err := e.friendID(name)
	if err != nil {
		return "", err
	}
	return e.queue(id, paths, "")
}

// queue puts paths in the outbox for peer, as the transfer id (new if
// ""): a transfer's outbox entry has its id.
func (e *Engine) queue(peer identity.ID, paths []string, id string) (string, error) {
	var q transfer.Queued
	var err error
	if id == "" {
		q, err = e.outbox.Add(peer, paths)
	} else {
		q, err = e.outbox.AddAs(id, peer, paths)
	}
	if err != nil {
		return "", fmt.Errorf("cannot send: %w", err)
	}
	e.add(e.waiting(q))
	if k := e.keeper(); k != nil {
		k.Nudge()
	}
	return q.ID, nil
}

// waiting is the row of outbox entry q before it is tried.
func (e *Engine) waiting(q transfer.Queued) *Transfer {
	p := e.peer(q.Peer)
	return &Transfer{ID: q.ID, Peer: p, Files: baseNames(q.Paths), State: Waiting, paths: q.Paths,
		Note: "waiting until " + p.Name + " can be reached"}
}

// baseNames are the last elements of paths: what a transfer shows.
func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// onAttempt follows the outbox's delivery attempts.
func (e *Engine) onAttempt(a transfer.Attempt) {
	key := a.Entry.ID
	e.mu.Lock()
	_, ok := e.transfers[key]
	e.mu.Unlock()
	if !ok { // queued by another process (the command line): show it too
		e.add(e.waiting(a.Entry))
	}
	e.update(key, func(t *Transfer) {
		switch {
		case !a.Ended && a.Progress.Total == 0:
			t.State, t.Note = Waiting, "offered; waiting for "+t.Peer.Name+" to accept"
		case !a.Ended:
			t.State, t.Note, t.Progress = Running, "", a.Progress
		case a.Err == nil:
			t.State, t.Note = Done, ""
			t.Progress.Done = t.Progress.Total
		case errors.Is(a.Err, transfer.ErrCancelledHere):
			t.State, t.Note, t.Resumable = Cancelled, "", true
		case errors.Is(a.Err, context.Canceled):
			// P2PD started again (a changed network, new settings): the
			// entry stays queued and resumes.
			t.State, t.Note = Waiting, "P2PD started again; it resumes when "+t.Peer.Name+" can be reached"
		case errors.Is(a.Err, transfer.ErrDeclined), errors.Is(a.Err, transfer.ErrCancelled):
			// The friend said no: not tried again on its own.
			e.outbox.Remove(a.Entry.ID)
			t.State, t.Note, t.Resumable = Declined, a.Err.Error(), true
			if errors.Is(a.Err, transfer.ErrCancelled) {
				t.State = Cancelled
			}
		case errors.Is(a.Err, transfer.ErrChanged):
			// Still being written, most likely: tried again on its own,
			// it would only ask the friend again and again.
			e.outbox.Remove(a.Entry.ID)
			t.State, t.Note, t.Resumable = Failed, a.Err.Error()+"; send it again once it is finished", true
		default:
			t.State, t.Note = Failed, a.Err.Error()+"; trying again when "+t.Peer.Name+" can be reached"
		}
	})
}

// choose asks the app about an incoming offer and waits for the answer.
func (e *Engine) choose(ctx context.Context, from identity.ID, o transfer.Offer) (string, bool) {
	h := e.hook().Offer
	if h == nil {
		return "", false
	}
	type answer struct {
		ok  bool
		dir string
	}
	got := make(chan answer, 1)
	once := func(ok bool, dir string) {
		select {
		case got <- answer{ok, dir}:
		default:
		}
	}
	e.mu.Lock()
	fromPeer := 0
	for _, a := range e.asking {
		if a.from == from {
			fromPeer++
		}
	}
	if fromPeer >= maxPeerAsks || len(e.asking) >= maxAsks {
		e.mu.Unlock()
		e.opt.Logger.Info("engine: declined an offer unseen: too many wait for an answer", "peer", from, "files", len(o.Files))
		return "", false
	}
	e.asking[o.ID] = asked{from, once}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.asking, o.ID)
		e.mu.Unlock()
	}()
	dir := e.Settings().DownloadDir
	files := make([]string, len(o.Files))
	for i, f := range o.Files {
		files[i] = f.Path
	}
	p := e.peer(from)
	e.add(&Transfer{ID: o.ID, Peer: p, Incoming: true, Files: files, State: Waiting,
		Progress: transfer.Progress{ID: o.ID, Total: o.Total}, Note: "waiting for your answer"})
	life := e.life()
	h(Offer{ID: o.ID, From: p, Files: files, Total: o.Total, Dir: dir}, once)
	timer := time.NewTimer(offerWait)
	defer timer.Stop()
	var a answer
	gone, withdrawn := "", false
	select {
	case a = <-got:
	case <-timer.C:
		gone = "not answered in time"
	case <-ctx.Done():
		gone = p.Name + " went away before you answered"
		withdrawn = errors.Is(context.Cause(ctx), transfer.ErrWithdrawn)
	case <-life.Done():
		gone = "P2PD stopped"
	}
	if a.dir == "" {
		a.dir = dir
	}
	e.update(o.ID, func(t *Transfer) {
		switch {
		case withdrawn:
			t.State, t.Note = Cancelled, p.Name+" withdrew the offer"
		case gone != "":
			t.State, t.Note = Failed, gone
		case a.ok:
			t.State, t.Note, t.Dir = Running, "", a.dir
		default:
			t.State, t.Note = Declined, "declined"
		}
	})
	return a.dir, a.ok
}

func (e *Engine) onIncoming(p transfer.Progress) {
	e.update(p.ID, func(t *Transfer) { t.Progress = p })
}

func (e *Engine) onReceived(o transfer.Offer, r transfer.Result) {
	e.update(o.ID, func(t *Transfer) {
		switch {
		case r.OK:
			t.State, t.Note = Done, ""
			t.Progress.Done = t.Progress.Total
		case r.Cancelled:
			t.State, t.Note = Cancelled, "the verified part is kept: if "+t.Peer.Name+" sends it again, it resumes"
		default:
			t.State, t.Note = Failed, r.Error
		}
	})
}

// Cancel stops the transfer id: an outgoing one leaves the outbox (the
// receiver keeps what it verified, so Resume continues from there), an
// incoming one ends (its verified part is kept) or, still being asked
// about, is declined.
func (e *Engine) Cancel(id string) error {
	e.mu.Lock()
	t, ok := e.transfers[id]
	incoming := ok && t.Incoming
	ask, asking := e.asking[id]
	e.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("no transfer %s", id)
	case asking:
		ask.answer(false, "")
	case incoming:
		if !e.recv.Cancel(id) {
			return errors.New("that transfer is not running")
		}
	default:
		running, err := e.outbox.Cancel(id)
		if err != nil {
			return err
		}
		if !running { // not under way: no attempt will report the end
			e.update(id, func(t *Transfer) {
				if t.State == Waiting || t.State == Failed { // not done meanwhile
					t.State, t.Note, t.Resumable = Cancelled, "", true
				}
			})
		}
	}
	return nil
}

// Resume sends a cancelled or declined outgoing transfer again (or one
// whose file changed); the receiver keeps what it verified, so only the
// rest moves.
func (e *Engine) Resume(id string) error {
	e.mu.Lock()
	t, ok := e.transfers[id]
	var c Transfer
	if ok {
		c = *t
	}
	e.mu.Unlock()
	if !ok || c.Incoming || !c.Resumable {
		return errors.New("only a transfer you sent that was cancelled, declined or stopped by a changed file can be sent again")
	}
	_, err := e.queue(c.Peer.ID, c.paths, id)
	return err
}

// declineAll answers every open question with no (the engine closes).
func (e *Engine) declineAll() {
	e.mu.Lock()
	asks := make([]asked, 0, len(e.asking))
	for _, a := range e.asking {
		asks = append(asks, a)
	}
	e.mu.Unlock()
	for _, a := range asks {
		a.answer(false, "")
	}
}
