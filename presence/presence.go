// Package presence keeps a node in touch with its friends. A Keeper knows
// which friends are online — there is a live session with them, either
// way, or they answered over signaling lately — and records when each was
// last seen (and their newest address) in the friends list. Work waiting
// for a friend (chat messages, queued files) goes out as soon as the
// friend can be reached: over a session they open, or over one the Keeper
// connects, trying again with a growing pause while they cannot be
// reached and at once when they come back online.
package presence

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"p2pd/friends"
	"p2pd/netcore/addr"
	"p2pd/netcore/identity"
	"p2pd/netcore/node"
	"p2pd/netcore/session"
)

// Defaults for Options.
const (
	// DefaultPoll is how often each friend is asked over signaling
	// whether it is online: a query a minute costs the brokers little.
	DefaultPoll = time.Minute
	// DefaultCheck is how often the couriers are asked what waits (work
	// another process queued; Nudge is at once).
	DefaultCheck = 5 * time.Second
	// DefaultMinRetry and DefaultMaxRetry bound the pause before trying
	// an unreachable friend again: it doubles from the one to the other.
	DefaultMinRetry = 5 * time.Second
	DefaultMaxRetry = 5 * time.Minute
	// DefaultConnectTimeout bounds one attempt at connecting: every
	// strategy has run by then, the relay included.
	DefaultConnectTimeout = 30 * time.Second
)

// queryTimeout bounds asking a friend over signaling for its address: two
// hops through a broker.
const queryTimeout = 5 * time.Second

// OnlineWithin is how recently a friend must have been seen to count as
// online where no Keeper looks (another process, before the Keeper's
// first look): two of a running Keeper's polls.
const OnlineWithin = 2 * DefaultPoll

// SeenLately reports whether f was seen within OnlineWithin: a running
// Keeper sees an online friend every poll and records it in the list.
func SeenLately(f friends.Friend) bool {
	return !f.LastSeen.IsZero() && time.Since(f.LastSeen) < OnlineWithin
}

// Courier holds one kind of work for friends, and delivers it.
type Courier interface {
	// Waiting returns how many items wait for peer.
	Waiting(peer identity.ID) (int, error)
	// Deliver delivers what waits for the peer of sess and returns how
	// many items it delivered.
	Deliver(ctx context.Context, sess *session.Session) (int, error)
}

// Work is a Courier with the word for one item it carries.
type Work struct {
	Noun    string // one item, singular: "message", "file"
	Courier Courier
}

// Options tune a Keeper.
type Options struct {
	// Work is what may wait for friends.
	Work []Work
	// Poll is how often each friend is asked whether it is online
	// (default DefaultPoll; each friend's turn is jittered).
	Poll time.Duration
	// Check is how often the couriers are asked what waits (default
	// DefaultCheck).
	Check time.Duration
	// MinRetry and MaxRetry bound the pause before trying an
	// unreachable friend again (defaults DefaultMinRetry and
	// DefaultMaxRetry).
	MinRetry, MaxRetry time.Duration
	// ConnectTimeout bounds one attempt at connecting (default
	// DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// Report, if set, hears of each change and delivery, one call at a
	// time.
	Report func(Event)
	// Logger receives the Keeper's log (default slog.Default()).
	Logger *slog.Logger
}

// Kind says what an Event reports.
type Kind string

// Event kinds.
const (
	Online      Kind = "online"      // a friend came online
	Offline     Kind = "offline"     // a friend went offline
	Connecting  Kind = "connecting"  // connecting to a friend, because work waits
	Delivered   Kind = "delivered"   // work reached a friend
	Unreachable Kind = "unreachable" // connecting failed; tried again after Retry
	Undelivered Kind = "undelivered" // delivering over a session failed; tried again after Retry
)

// Event is a change in a friend's state, or what happened to work for
// them.
type Event struct {
	Kind     Kind
	Time     time.Time
	ID       identity.ID
	Friend   string    // the friend's name
	LastSeen time.Time // when the friend was last seen
	What     string    // the work: "2 messages and 1 file"
	Reason   string    // why it failed
	Retry    time.Duration
}

// String words the event for a person, e.g. "could not reach Bob:
// timeout; next try in 40s".
func (e Event) String() string {
	switch e.Kind {
	case Online:
		return e.Friend + " is online"
	case Offline:
		if e.LastSeen.IsZero() {
			return e.Friend + " went offline"
		}
		return fmt.Sprintf("%s went offline (last seen %s)", e.Friend, e.LastSeen.Local().Format(time.TimeOnly))
	case Connecting:
		verb := "wait"
		if strings.HasPrefix(e.What, "1 ") && !strings.Contains(e.What, " and ") {
			verb = "waits"
		}
		return fmt.Sprintf("connecting to %s because %s %s", e.Friend, e.What, verb)
	case Delivered:
		return fmt.Sprintf("delivered %s to %s", e.What, e.Friend)
	case Unreachable:
		return fmt.Sprintf("could not reach %s: %s; next try in %v", e.Friend, oneLine(e.Reason), roughly(e.Retry))
	case Undelivered:
		return fmt.Sprintf("could not deliver to %s: %s; next try in %v", e.Friend, oneLine(e.Reason), roughly(e.Retry))
	}
	return fmt.Sprintf("%s: %s", e.Friend, e.Kind)
}

// roughly rounds d for people: to the second, or to the millisecond
// below one.
func roughly(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// State is where a friend stands.
type State struct {
	ID        identity.ID
	Name      string
	Online    bool
	LastSeen  time.Time
	Sessions  int       // live sessions with them
	Waiting   int       // items waiting for them
	NextTry   time.Time // while work waits: no attempt before this
	LastError string    // why the last attempt failed
}

// Keeper keeps track of friends and gets waiting work to them; see the
// package comment.
type Keeper struct {
	node  *node.Node
	list  *friends.List
	opt   Options
	log   *slog.Logger
	nudge chan struct{}

	reportMu sync.Mutex // one Report call at a time

	mu        sync.Mutex
	ctx       context.Context // Run's, once it started
	closed    bool            // Run is ending: start no goroutines
	wg        sync.WaitGroup
	friends   map[identity.ID]*friend
	sessions  map[identity.ID]map[*session.Session]bool // every peer's, friend or not
	reconnect map[identity.ID]bool                      // Reconnect before sync tended them
}

// friend is the Keeper's record of one friend; the fields below wake are
// guarded by Keeper.mu.
type friend struct {
	id     identity.ID
	cancel context.CancelFunc // ends its tender
	wake   chan struct{}      // cap 1: look again

	name, address string
	lastSeen      time.Time
	answered      bool               // the last query over signaling was answered
	live          bool               // had a live session when last looked
	online        bool               // as last reported
	pollNow       bool               // a session ended: ask at once whether they are still there
	waiting       []int              // by work kind: items waiting, as last counted
	connect       pause              // after failing to connect
	kinds         []pause            // by work kind: after failing to deliver it
	abort         context.CancelFunc // ends a connect under way (a session came)
	carrying      []bool             // by work kind: a delivery is under way
	reconnect     bool               // connect even if nothing waits
}

// pause is the wait before trying again after failures: a kind of work
// that fails (a file that is gone) does not hold up another (a message).
type pause struct {
	retry time.Duration // the next pause after a failure
	next  time.Time     // no attempt before this
	err   string        // why the last attempt failed
}

func (p pause) active(now time.Time) bool { return now.Before(p.next) }

// clearPauses ends every pause: the friend can be reached now; f is
// guarded by Keeper.mu.
func (f *friend) clearPauses() {
	f.connect = pause{}
	for i := range f.kinds {
		f.kinds[i] = pause{}
	}
}

// nextTry is when the earliest pause over work that waits ends (zero: none
// runs), and lastErr why the latest failure happened; f is guarded by
// Keeper.mu.
func (f *friend) nextTry(now time.Time) (next time.Time, lastErr string) {
	total := 0
	for i, n := range f.waiting {
		total += n
		if p := f.kinds[i]; n > 0 && p.active(now) && (next.IsZero() || p.next.Before(next)) {
			next = p.next
		}
		if p := f.kinds[i]; p.err != "" && lastErr == "" {
			lastErr = p.err
		}
	}
	if total > 0 && f.connect.active(now) && (next.IsZero() || f.connect.next.Before(next)) {
		next = f.connect.next
	}
	if f.connect.err != "" {
		lastErr = f.connect.err
	}
	return next, lastErr
}

// New returns a Keeper for the friends in list, on n; Run starts it.
func New(n *node.Node, list *friends.List, opt Options) *Keeper {
	if opt.Poll <= 0 {
		opt.Poll = DefaultPoll
	}
	if opt.Check <= 0 {
		opt.Check = DefaultCheck
	}
	if opt.MinRetry <= 0 {
		opt.MinRetry = DefaultMinRetry
	}
	if opt.MaxRetry < opt.MinRetry {
		opt.MaxRetry = max(DefaultMaxRetry, opt.MinRetry)
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = DefaultConnectTimeout
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Keeper{node: n, list: list, opt: opt, log: log, nudge: make(chan struct{}, 1),
		friends: map[identity.ID]*friend{}, sessions: map[identity.ID]map[*session.Session]bool{},
		reconnect: map[identity.ID]bool{}}
}

// Run keeps track of the friends until ctx ends, then returns nil once
// everything it started has stopped. A Keeper runs once: a second Run is
// an error.
func (k *Keeper) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k.mu.Lock()
	if k.ctx != nil {
		k.mu.Unlock()
		return errors.New("presence: the keeper runs already")
	}
	k.ctx = ctx
	k.mu.Unlock()
	stop := k.node.OnSession(k.onSession)
	stopTold := k.node.OnPeerAddress(k.told)
	stopOwn := k.node.OnAddress(func(*addr.Address) { k.tellFriends() })
	defer func() {
		stop()
		stopTold()
		stopOwn()
		cancel()
		k.mu.Lock()
		k.closed = true // after this no goroutine starts: Wait sees them all
		k.mu.Unlock()
		k.wg.Wait()
	}()
	k.sync()
	tick := time.NewTicker(k.opt.Check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			k.sync()
		case <-k.nudge:
			k.sync()
		}
	}
}

// Nudge makes the Keeper read the friends list again and look for
// waiting work now (call it after adding a friend or queueing work in
// this process; what other processes do is found within Options.Check).
func (k *Keeper) Nudge() {
	select {
	case k.nudge <- struct{}{}:
	default:
	}
}

// States returns every friend's state, by name.
func (k *Keeper) States() []State {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]State, 0, len(k.friends))
	now := time.Now()
	for _, f := range k.friends {
		next, lastErr := f.nextTry(now)
		waiting := 0
		for _, n := range f.waiting {
			waiting += n
		}
		out = append(out, State{ID: f.id, Name: f.name, Online: f.online, LastSeen: f.lastSeen,
			Sessions: len(k.sessions[f.id]), Waiting: waiting, NextTry: next, LastError: lastErr})
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out
}

// sync reads the friends list again (another process may have changed
// it), starts tending new friends, stops tending removed ones, and wakes
// every tender to look for work.
func (k *Keeper) sync() {
	if err := k.list.Reload(); err != nil {
		k.log.Warn("presence: cannot read the friends list", "err", err)
	}
	all := k.list.All()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	seen := map[identity.ID]bool{}
	for _, fr := range all {
		id := fr.ID()
		if id == (identity.ID{}) {
			continue // an address that does not parse: nothing to reach
		}
		seen[id] = true
		f := k.friends[id]
		if f == nil {
			ctx, cancel := context.WithCancel(k.ctx)
			f = &friend{id: id, cancel: cancel, wake: make(chan struct{}, 1),
				carrying: make([]bool, len(k.opt.Work)), waiting: make([]int, len(k.opt.Work)),
				kinds: make([]pause, len(k.opt.Work)), reconnect: k.reconnect[id]}
			delete(k.reconnect, id)
			k.friends[id] = f
			k.wg.Go(func() { k.tend(ctx, f) })
		}
		f.name, f.address = fr.Name, fr.Address
		if fr.LastSeen.After(f.lastSeen) {
			f.lastSeen = fr.LastSeen
		}
	}
	for id, f := range k.friends {
		if !seen[id] {
			f.cancel()
			delete(k.friends, id)
		}
	}
	for _, f := range k.friends {
		f.poke()
	}
}

func (f *friend) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// onSession tracks a session the node serves until it ends, and wakes
// its friend's tender.
func (k *Keeper) onSession(s *session.Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := s.PeerID()
	if k.closed || k.sessions[id][s] {
		return
	}
	if k.sessions[id] == nil {
		k.sessions[id] = map[*session.Session]bool{}
	}
	k.sessions[id][s] = true
	ctx := k.ctx
	if f := k.friends[id]; f != nil {
		if f.abort != nil {
			f.abort() // no need to connect: they did
		}
		f.clearPauses() // a new session is a new chance
		f.poke()
		k.wg.Go(func() { k.learnAddress(ctx, f, s) })
	}
	k.wg.Go(func() {
		select {
		case <-s.Done():
		case <-ctx.Done():
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		delete(k.sessions[id], s)
		if len(k.sessions[id]) == 0 {
			delete(k.sessions, id)
			if f := k.friends[id]; f != nil {
				f.pollNow = true
				f.poke()
			}
		}
	})
}

// learnAddress tells f over s this node's current address and keeps f's
// (addr/1), so friends' saved addresses are right whenever the two have
// been connected, with or without signaling. (A peer without addr/1
// refuses the stream, and the address stays as it was.)
func (k *Keeper) learnAddress(ctx context.Context, f *friend, s *session.Session) {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	fresh, err := k.node.PeerAddress(qctx, s)
	if err != nil {
		k.log.Debug("presence: no address over the session", "friend", f.id, "err", err)
		return
	}
	k.keepAddress(f, fresh, false)
}

// told keeps the address a peer told over addr/1, if it is a friend.
func (k *Keeper) told(peer ed25519.PublicKey, a *addr.Address) {
	k.mu.Lock()
	f := k.friends[identity.IDOf(peer)]
	k.mu.Unlock()
	if f != nil {
		k.keepAddress(f, a, false)
	}
}

// keepAddress records a as f's current address, and that f answered
// over signaling if answered. An address told over a session that is
// the one kept already is not written again (both ends of a session
// exchange theirs; being seen is recorded as the session starts).
func (k *Keeper) keepAddress(f *friend, a *addr.Address, answered bool) {
	text, err := a.Encode()
	if err != nil {
		return
	}
	k.mu.Lock()
	same := f.address == text
	f.address = text
	if answered {
		f.answered = true
	}
	k.mu.Unlock()
	if !same || answered {
		k.seen(f, text)
	}
}

// tellFriends tells each friend with a live session this node's new
// address (and hears theirs).
func (k *Keeper) tellFriends() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	ctx := k.ctx
	for id, ss := range k.sessions {
		f := k.friends[id]
		if f == nil {
			continue
		}
		for s := range ss {
			k.wg.Go(func() { k.learnAddress(ctx, f, s) })
			break // one session is enough
		}
	}
}

// session returns a live session with id, or nil.
func (k *Keeper) session(id identity.ID) *session.Session {
	k.mu.Lock()
	defer k.mu.Unlock()
	for s := range k.sessions[id] {
		select {
		case <-s.Done():
		default:
			return s
		}
	}
	return nil
}

// tend looks after one friend until ctx ends: asks whether they are
// online every Poll, reports changes, and delivers what waits.
func (k *Keeper) tend(ctx context.Context, f *friend) {
	// The first query comes soon, so a node that starts learns who is
	// online; after that each friend's turn drifts apart.
	pollAt := time.Now().Add(rand.N(min(k.opt.Poll, DefaultCheck)))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		k.mu.Lock()
		pollNow := f.pollNow
		f.pollNow = false
		k.mu.Unlock()
		if pollNow || !time.Now().Before(pollAt) {
			k.poll(ctx, f)
			pollAt = time.Now().Add(jitter(k.opt.Poll))
		}
		if ctx.Err() != nil {
			return
		}
		k.notice(f)
		k.deliver(ctx, f)
		wait := time.Until(pollAt)
		k.mu.Lock()
		if next, _ := f.nextTry(time.Now()); !next.IsZero() {
			wait = min(wait, time.Until(next))
		}
		k.mu.Unlock()
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-timer.C:
		}
	}
}

// jitter spreads d over ±20%, so friends' queries do not bunch up.
func jitter(d time.Duration) time.Duration {
	return d*8/10 + rand.N(d*4/10+1)
}

// poll learns whether f is online: a live session says so (and that they
// are seen now); otherwise they are asked over signaling for their
// current address, which is kept when they answer.
func (k *Keeper) poll(ctx context.Context, f *friend) {
	if k.session(f.id) != nil {
		k.seen(f, "")
		return
	}
	k.mu.Lock()
	text := f.address
	k.mu.Unlock()
	old, err := addr.Parse(text)
	if err != nil {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	fresh, err := k.node.FreshAddress(qctx, old)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		k.log.Debug("presence: no answer", "friend", f.id, "err", err)
		k.mu.Lock()
		f.answered = false
		k.mu.Unlock()
		return
	}
	k.keepAddress(f, fresh, true)
}

// seen records that f was seen now, and a newer address if not empty.
func (k *Keeper) seen(f *friend, address string) {
	now := time.Now()
	k.mu.Lock()
	f.lastSeen = now
	k.mu.Unlock()
	if err := k.list.Update(f.id, address); err != nil {
		k.log.Warn("presence: cannot update the friends list", "err", err)
	}
}

// notice reports f coming online or going offline. Coming online ends
// any pause before the next try: they can be reached now.
func (k *Keeper) notice(f *friend) {
	k.mu.Lock()
	live := len(k.sessions[f.id]) > 0
	wasLive := f.live
	f.live = live
	online := live || f.answered
	changed := online != f.online
	f.online = online
	if changed && online {
		f.clearPauses()
	}
	k.mu.Unlock()
	if live != wasLive {
		k.seen(f, "") // a session came, or ended just now
	}
	if changed {
		kind := Offline
		if online {
			kind = Online
		}
		k.report(f, Event{Kind: kind})
	}
}

// deliver gets what waits for f to them, connecting if no session is up
// (or if Reconnect asked for it), unless the pause after a failure still
// runs. Each kind of work goes over the session on its own, so a file
// the friend has yet to accept does not hold up a message.
func (k *Keeper) deliver(ctx context.Context, f *friend) {
	counts := make([]int, len(k.opt.Work))
	for i, w := range k.opt.Work {
		n, err := w.Courier.Waiting(f.id)
		if err != nil {
			k.log.Warn("presence: cannot tell what waits", "friend", f.id, "work", w.Noun, "err", err)
		}
		counts[i] = n
	}
	sess := k.session(f.id)
	now := time.Now()
	k.mu.Lock()
	copy(f.waiting, counts)
	// What waits, is not on its way and not pausing after a failure.
	idle := make([]int, len(counts))
	for i, n := range counts {
		if !f.carrying[i] && !f.kinds[i].active(now) {
			idle[i] = n
		}
	}
	connecting := sess == nil && !f.connect.active(now)
	reconnect := f.reconnect && connecting
	if reconnect || sess != nil { // connected already: asked once, done
		f.reconnect = false
	}
	k.mu.Unlock()
	work := slices.ContainsFunc(idle, func(n int) bool { return n > 0 })
	if !work && !reconnect || sess == nil && !connecting {
		return
	}
	if sess == nil {
		if work {
			k.report(f, Event{Kind: Connecting, What: k.what(idle)})
		}
		var err error
		if sess, err = k.connect(ctx, f); err != nil {
			switch {
			case ctx.Err() != nil:
			case work:
				k.fail(f, -1, err)
			default:
				k.log.Info("presence: could not connect again", "friend", f.id, "err", err)
			}
			return
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	for i, n := range idle {
		if n > 0 && !f.carrying[i] {
			f.carrying[i] = true
			k.wg.Go(func() { k.carry(ctx, f, i, sess) })
		}
	}
}

// carry delivers what waits of the work kind i over sess, reports it, and
// has f's tender look again: more may have come meanwhile.
func (k *Keeper) carry(ctx context.Context, f *friend, i int, sess *session.Session) {
	n, err := k.opt.Work[i].Courier.Deliver(ctx, sess)
	if n > 0 {
		counts := make([]int, len(k.opt.Work))
		counts[i] = n
		k.report(f, Event{Kind: Delivered, What: k.what(counts)})
	}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		k.fail(f, i, err)
	default:
		k.mu.Lock()
		f.kinds[i], f.connect = pause{}, pause{} // they were reached, too
		k.mu.Unlock()
	}
	k.mu.Lock()
	f.carrying[i] = false
	k.mu.Unlock()
	f.poke()
}

// Reconnect has the Keeper connect to the friend id soon, whether work
// waits or not (once: as after the node started again, when the
// sessions it had ended). The friend's newest address is asked for
// first, and kept.
func (k *Keeper) Reconnect(id identity.ID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f := k.friends[id]; f != nil {
		f.reconnect = true
		f.poke()
		return
	}
	k.reconnect[id] = true // sync starts tending them
}

// connect connects to f at its newest address (asked for over signaling
// first: their network may have changed). A session f opens meanwhile
// ends the attempt, and is the one used.
func (k *Keeper) connect(ctx context.Context, f *friend) (*session.Session, error) {
	k.mu.Lock()
	text := f.address
	cctx, cancel := context.WithTimeout(ctx, k.opt.ConnectTimeout)
	f.abort = cancel
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		f.abort = nil
		k.mu.Unlock()
		cancel()
	}()
	to, err := addr.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("their address in the friends list: %w", err)
	}
	qctx, qcancel := context.WithTimeout(cctx, queryTimeout)
	fresh, err := k.node.FreshAddress(qctx, to)
	qcancel()
	if err == nil {
		k.keepAddress(f, fresh, true)
		to = fresh
	}
	res, err := k.node.Connect(cctx, to, node.ConnectOptions{})
	if s := k.session(f.id); s != nil && err != nil {
		return s, nil // they connected first
	}
	if err != nil {
		return nil, failures(res, err)
	}
	k.onSession(res.Session)
	return res.Session, nil
}

// failures words why Connect failed: the strategies that ran and failed
// (those skipped say the same every time), else its error.
func failures(res *node.Result, err error) error {
	var parts []string
	if res != nil {
		for _, e := range res.Events {
			if e.State == node.Failed {
				parts = append(parts, e.Strategy+": "+e.Reason)
			}
		}
	}
	if len(parts) == 0 {
		return err
	}
	return errors.New(strings.Join(parts, "; "))
}

// fail records a failed attempt at delivering the work kind i (-1: at
// connecting) and when the next comes: the pause doubles from MinRetry to
// MaxRetry.
func (k *Keeper) fail(f *friend, i int, err error) {
	kind, p := Undelivered, &f.connect
	k.mu.Lock()
	if i < 0 {
		kind = Unreachable
	} else {
		p = &f.kinds[i]
	}
	wait := p.retry
	if wait == 0 {
		wait = k.opt.MinRetry
	}
	*p = pause{retry: backoff(wait, k.opt.MinRetry, k.opt.MaxRetry), next: time.Now().Add(wait), err: err.Error()}
	k.mu.Unlock()
	k.report(f, Event{Kind: kind, Reason: err.Error(), Retry: wait})
}

// backoff returns the pause after pause: twice as long, within lo and hi.
func backoff(pause, lo, hi time.Duration) time.Duration {
	return min(max(2*pause, lo), hi)
}

// what words counts of each work's items: "2 messages and 1 file".
func (k *Keeper) what(counts []int) string {
	var parts []string
	for i, n := range counts {
		if n == 0 {
			continue
		}
		noun := k.opt.Work[i].Noun
		if n != 1 {
			noun += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, noun))
	}
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// report fills in the friend and time and hands e to Options.Report.
func (k *Keeper) report(f *friend, e Event) {
	k.mu.Lock()
	e.ID, e.Friend, e.LastSeen = f.id, f.name, f.lastSeen
	k.mu.Unlock()
	e.Time = time.Now()
	k.log.Info("presence: "+e.String(), "friend", e.ID)
	if k.opt.Report == nil {
		return
	}
	k.reportMu.Lock()
	defer k.reportMu.Unlock()
	k.opt.Report(e)
}
