package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/netcore/identity"
	"p2pd/netcore/node/nodetest"
	"p2pd/netcore/session"
)

// queueSession connects a loopback node to another that receives with r.
func queueSession(t *testing.T, r *Receiver) *session.Session {
	t.Helper()
	a, b := nodetest.Loopback(t), nodetest.Loopback(t)
	b.Handle(Proto, r.Handle)
	return nodetest.Connect(t, a, b)
}

// queueFile writes size random bytes to dir/name and returns its path
// and content.
func queueFile(t *testing.T, dir, name string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func openOutbox(t *testing.T, home string) *Outbox {
	t.Helper()
	o, err := OpenOutbox(home)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestOutboxAcrossProcesses: what one process queues, another sees and
// removes; paths are kept absolute; a path that does not exist is
// refused, and nothing is queued.
func TestOutboxAcrossProcesses(t *testing.T) {
	home, src := t.TempDir(), t.TempDir()
	cli, node := openOutbox(t, home), openOutbox(t, home)
	queueFile(t, src, "a.txt", 10)
	t.Chdir(src)
	peer := identity.ID{7}
	q, err := cli.Add(peer, []string{"a.txt", "."})
	if err != nil {
		t.Fatal(err)
	}
	if q.Paths[0] != filepath.Join(src, "a.txt") || q.Paths[1] != src {
		t.Errorf("queued paths %q, want them absolute", q.Paths)
	}
	if _, err := cli.Add(peer, []string{"a.txt", "missing.txt"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("queueing a missing file: %v", err)
	}
	if _, err := cli.Add(peer, nil); err == nil {
		t.Error("queued nothing")
	}
	if n, err := node.Waiting(peer); n != 2 || err != nil {
		t.Errorf("the node sees %d waiting (%v), want 2", n, err)
	}
	if n, _ := node.Waiting(identity.ID{8}); n != 0 {
		t.Errorf("%d wait for another peer", n)
	}
	if err := node.Remove(q.ID); err != nil {
		t.Fatal(err)
	}
	if all, err := cli.List(); len(all) != 0 || err != nil {
		t.Errorf("after the node removed it, the CLI lists %+v (%v)", all, err)
	}

	os.WriteFile(filepath.Join(home, outboxFile), []byte("[{"), 0o600)
	if _, err := OpenOutbox(home); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged outbox: %v", err)
	}
}

// TestOutboxChangesAtOnce: two processes changing the outbox at the same
// time lose none of each other's changes.
func TestOutboxChangesAtOnce(t *testing.T) {
	home, src := t.TempDir(), t.TempDir()
	p, _ := queueFile(t, src, "a.txt", 1)
	procs := []*Outbox{openOutbox(t, home), openOutbox(t, home)}
	const each = 20
	var wg sync.WaitGroup
	for i, o := range procs {
		wg.Go(func() {
			for range each {
				if _, err := o.Add(identity.ID{byte(i + 1)}, []string{p}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i := range procs {
		if n, _ := procs[0].Waiting(identity.ID{byte(i + 1)}); n != each {
			t.Errorf("process %d queued %d, %d are left", i, each, n)
		}
	}
}

// TestOutboxDeliver: what the receiver declines stays queued with why;
// once it accepts, every entry for it arrives and leaves the outbox, and
// entries for other peers stay.
func TestOutboxDeliver(t *testing.T) {
	home, src, dst := t.TempDir(), t.TempDir(), t.TempDir()
	a, aData := queueFile(t, src, "a.txt", 1000)
	queueFile(t, src, "Ordner/b.txt", 2000)
	var accepting atomic.Bool
	sess := queueSession(t, &Receiver{Dir: dst, Decide: func(identity.ID, Offer) bool { return accepting.Load() }})
	o := openOutbox(t, home)
	o.Add(sess.PeerID(), []string{a})
	o.Add(identity.ID{9}, []string{a})
	o.Add(sess.PeerID(), []string{filepath.Join(src, "Ordner")})
	ctx := context.Background()

	n, err := o.Deliver(ctx, sess)
	if n != 0 || !errors.Is(err, ErrDeclined) {
		t.Fatalf("delivered %d to a receiver that declines: %v", n, err)
	}
	all, _ := o.List()
	if len(all) != 3 || !strings.Contains(all[0].LastError, "declined") || all[0].Tried.IsZero() || all[1].LastError != "" {
		t.Errorf("after the declined attempt: %+v", all)
	}

	accepting.Store(true)
	if n, err := o.Deliver(ctx, sess); n != 2 || err != nil {
		t.Fatalf("delivered %d: %v", n, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "a.txt")); !bytes.Equal(got, aData) {
		t.Error("a.txt did not arrive whole")
	}
	if _, err := os.Stat(filepath.Join(dst, "Ordner", "b.txt")); err != nil {
		t.Errorf("the folder did not arrive: %v", err)
	}
	if all, _ := o.List(); len(all) != 1 || all[0].Peer != (identity.ID{9}) {
		t.Errorf("left in the outbox: %+v", all)
	}
}

// TestOutboxResumesCutDelivery: a delivery cut halfway leaves the entry
// queued; the next one resumes from what the receiver verified.
func TestOutboxResumesCutDelivery(t *testing.T) {
	home, src, dst := t.TempDir(), t.TempDir(), t.TempDir()
	// More than a stream's window (16 MiB) after the cut: the sender
	// cannot have written it all before its cancel closes the stream.
	big, data := queueFile(t, src, "big.bin", 24*ChunkSize)
	ended := make(chan Result, 2)
	sess := queueSession(t, &Receiver{Dir: dst, Decide: acceptQueued, Done: func(_ Offer, r Result) { ended <- r }})
	o := openOutbox(t, home)
	o.Add(sess.PeerID(), []string{big})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Report = func(a Attempt) {
		if a.Progress.Done >= 2*ChunkSize {
			cancel()
		}
	}
	if n, err := o.Deliver(ctx, sess); n != 0 || err == nil {
		t.Fatalf("the cut delivery: %d, %v", n, err)
	}
	if r := <-ended; r.OK { // the receiver is done with what was in flight
		t.Fatal("the receiver saw the cut transfer succeed")
	}
	if all, _ := o.List(); len(all) != 1 {
		t.Fatalf("the cut entry left the outbox: %+v", all)
	}

	var first atomic.Int64
	o.Report = func(a Attempt) {
		if a.Progress.Done > 0 {
			first.CompareAndSwap(0, a.Progress.Done)
		}
	}
	// The receiver releases the name just after Done: until then it
	// declines, and the entry waits for the next try.
	n, err := o.Deliver(context.Background(), sess)
	for try := 0; errors.Is(err, ErrDeclined) && try < 100; try++ {
		time.Sleep(10 * time.Millisecond)
		n, err = o.Deliver(context.Background(), sess)
	}
	if n != 1 || err != nil {
		t.Fatalf("the second delivery: %d, %v", n, err)
	}
	if got := first.Load(); got <= ChunkSize {
		t.Errorf("the second delivery started from scratch (first report at %d bytes)", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "big.bin")); !bytes.Equal(got, data) {
		t.Error("big.bin did not arrive whole")
	}
	if all, _ := o.List(); len(all) != 0 {
		t.Errorf("left in the outbox: %+v", all)
	}
}

// TestOutboxCancel: cancelling a running delivery stops it at once, takes
// the entry out of the outbox, and the attempt ends as cancelled; the
// reports go start, progress, end.
func TestOutboxCancel(t *testing.T) {
	home, src, dst := t.TempDir(), t.TempDir(), t.TempDir()
	big, _ := queueFile(t, src, "big.bin", 64*ChunkSize)
	sess := queueSession(t, &Receiver{Dir: dst, Decide: acceptQueued})
	o := openOutbox(t, home)
	q, err := o.Add(sess.PeerID(), []string{big})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []Attempt
	o.Report = func(a Attempt) {
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
		if a.Progress.Done >= 2*ChunkSize {
			if running, err := o.Cancel(a.Entry.ID); !running || err != nil {
				t.Errorf("Cancel during the delivery: running %v, %v", running, err)
			}
		}
	}
	n, err := o.Deliver(context.Background(), sess)
	if n != 0 || err != nil {
		t.Errorf("Deliver after a cancel: %d, %v (a cancelled entry is no failure)", n, err)
	}
	if all, _ := o.List(); len(all) != 0 {
		t.Errorf("the cancelled entry stays queued: %+v", all)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 3 || seen[0].Ended || seen[0].Progress.Done != 0 || seen[0].Entry.ID != q.ID {
		t.Fatalf("the first report %+v, want the attempt's start", seen[0])
	}
	last := seen[len(seen)-1]
	if !last.Ended || !errors.Is(last.Err, ErrCancelledHere) {
		t.Errorf("the last report: ended %v, err %v", last.Ended, last.Err)
	}
	if running, _ := o.Cancel(q.ID); running {
		t.Error("Cancel after the delivery ended says one is running")
	}
}

func acceptQueued(identity.ID, Offer) bool { return true }

// ExampleOutbox queues a file for a friend; a running node delivers it
// (Deliver) over the next session with them.
func ExampleOutbox() {
	home, _ := os.MkdirTemp("", "p2pd-home")
	defer os.RemoveAll(home)
	doc := filepath.Join(home, "report.pdf")
	os.WriteFile(doc, []byte("%PDF"), 0o600)

	outbox, err := OpenOutbox(home)
	if err != nil {
		fmt.Println(err)
		return
	}
	friend := identity.ID{1} // a friend's node id, from the friends list
	if _, err := outbox.Add(friend, []string{doc}); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := outbox.Waiting(friend)
	fmt.Println(n, "waiting")
	// Output: 1 waiting
}

// TestOutboxStaleLock: a lock left by a process that died holding it is
// taken over, and a change leaves no lock behind.
func TestOutboxStaleLock(t *testing.T) {
	home, src := t.TempDir(), t.TempDir()
	p, _ := queueFile(t, src, "a.txt", 1)
	o := openOutbox(t, home)
	lock := filepath.Join(home, outboxFile+".lock")
	os.WriteFile(lock, []byte("[half"), 0o600)
	old := time.Now().Add(-2 * staleLock)
	os.Chtimes(lock, old, old)
	if _, err := o.Add(identity.ID{1}, []string{p}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock is still there: %v", err)
	}
	if all, err := o.List(); len(all) != 1 || err != nil {
		t.Errorf("outbox %+v, %v", all, err)
	}
}

// TestOutboxSkipsCancelledEntry: an entry cancelled while an earlier one
// is being delivered is not sent after it.
func TestOutboxSkipsCancelledEntry(t *testing.T) {
	home, src, dst := t.TempDir(), t.TempDir(), t.TempDir()
	a, _ := queueFile(t, src, "a.bin", 16*ChunkSize)
	b, _ := queueFile(t, src, "b.txt", 10)
	sess := queueSession(t, &Receiver{Dir: dst, Decide: acceptQueued})
	o := openOutbox(t, home)
	o.Add(sess.PeerID(), []string{a})
	second, _ := o.Add(sess.PeerID(), []string{b})
	var once sync.Once
	o.Report = func(at Attempt) {
		if at.Progress.Done > 0 {
			once.Do(func() { o.Cancel(second.ID) })
		}
	}
	if n, err := o.Deliver(context.Background(), sess); n != 1 || err != nil {
		t.Fatalf("delivered %d: %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b.txt")); err == nil {
		t.Error("the cancelled b.txt was sent anyway")
	}
}

// TestOutboxAddAs: an entry queued again keeps its id; an id queued
// already is refused, and the entry there stays as it was.
func TestOutboxAddAs(t *testing.T) {
	o := openOutbox(t, t.TempDir())
	p, _ := queueFile(t, t.TempDir(), "a.txt", 10)
	other, _ := queueFile(t, t.TempDir(), "b.txt", 10)
	peer := identity.ID{1}
	q, err := o.Add(peer, []string{p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.AddAs(q.ID, peer, []string{other}); err == nil || !strings.Contains(err.Error(), "queued already") {
		t.Errorf("the same id queued twice: %v", err)
	}
	if all, _ := o.List(); len(all) != 1 || all[0].Paths[0] != p {
		t.Errorf("after the refused add: %+v", all)
	}
	if err := o.Remove(q.ID); err != nil {
		t.Fatal(err)
	}
	again, err := o.AddAs(q.ID, peer, []string{p})
	if err != nil || again.ID != q.ID {
		t.Errorf("queued again: %+v, %v", again, err)
	}
	if _, err := o.AddAs("", peer, []string{p}); err == nil {
		t.Error("an empty id was queued")
	}
}
