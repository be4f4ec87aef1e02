package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"p2pd/netcore/identity"
	"p2pd/netcore/node/nodetest"
	"p2pd/netcore/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair starts two loopback nodes, the second receiving with r, and
// returns a session from the first to the second.
func pair(t testing.TB, r *Receiver) *session.Session {
	t.Helper()
	a, b := nodetest.Loopback(t), nodetest.Loopback(t)
	b.Handle(Proto, r.Handle)
	return nodetest.Connect(t, a, b)
}

func accept(identity.ID, Offer) bool { return true }

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// tree maps every regular file under dir to its SHA-256.
func tree(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = sha256.Sum256(b)
		}
		return nil
	})
	return out
}

// TestSendFilesAndFolders: an empty file, a small one, a 5 MiB one and a
// nested folder with unicode names arrive whole, hash for hash.
func TestSendFilesAndFolders(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "empty.txt"), nil)
	write(t, filepath.Join(src, "small.txt"), []byte("hello"))
	write(t, filepath.Join(src, "big.bin"), random(5<<20+123))
	write(t, filepath.Join(src, "Fotos", "été 2026", "IMG_001.jpg"), random(70_000))
	write(t, filepath.Join(src, "Fotos", "日本語", "ファイル.txt"), []byte("こんにちは"))
	var mu sync.Mutex
	var last Progress
	sess := pair(t, &Receiver{Dir: dst, Decide: accept})
	res, sent, err := Send(context.Background(), sess,
		[]string{filepath.Join(src, "empty.txt"), filepath.Join(src, "small.txt"), filepath.Join(src, "big.bin"), filepath.Join(src, "Fotos")},
		func(p Progress) { mu.Lock(); last = p; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	want := tree(t, src)
	if got := tree(t, dst); len(got) != len(want) {
		t.Fatalf("received %d files, sent %d: %v", len(got), len(want), res.Saved)
	}
	for name, sum := range want {
		if tree(t, dst)[name] != sum {
			t.Errorf("%s differs", name)
		}
	}
	var total int64
	for _, b := range []int64{0, 5, 5<<20 + 123, 70_000, int64(len("こんにちは"))} {
		total += b
	}
	if sent != total || last.Done != total || last.Total != total {
		t.Errorf("sent %d, progress %+v, want %d", sent, last, total)
	}
}

// TestNeverOverwrites: the same file sent twice gets a second name.
func TestNeverOverwrites(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "a.txt"), []byte("new"))
	write(t, filepath.Join(dst, "a.txt"), []byte("mine"))
	sess := pair(t, &Receiver{Dir: dst, Decide: accept})
	res, _, err := Send(context.Background(), sess, []string{filepath.Join(src, "a.txt")}, nil)
	if err != nil || len(res.Saved) != 1 || res.Saved[0] != "a (1).txt" {
		t.Fatalf("saved %v, %v", res.Saved, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(b) != "mine" {
		t.Errorf("the existing file was overwritten: %q", b)
	}
}

func TestDecline(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "a.txt"), []byte("x"))
	sess := pair(t, &Receiver{Dir: t.TempDir(), Decide: func(identity.ID, Offer) bool { return false }})
	if _, _, err := Send(context.Background(), sess, []string{filepath.Join(src, "a.txt")}, nil); !errors.Is(err, ErrDeclined) {
		t.Errorf("got %v, want ErrDeclined", err)
	}
}

// TestChooseFolder: the receiver's Choose saves an offer into another
// folder than Dir, a busy name there is checked against that folder, and
// declining through Choose declines.
func TestChooseFolder(t *testing.T) {
	src, dir, chosen := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "new")
	write(t, filepath.Join(src, "a.txt"), []byte("chosen"))
	answer := chosen
	sess := pair(t, &Receiver{Dir: dir, Choose: func(_ context.Context, _ identity.ID, _ Offer) (string, bool) { return answer, answer != "no" }})
	res, _, err := Send(context.Background(), sess, []string{filepath.Join(src, "a.txt")}, nil)
	if err != nil || len(res.Saved) != 1 {
		t.Fatalf("saved %v, %v", res.Saved, err)
	}
	if b, _ := os.ReadFile(filepath.Join(chosen, "a.txt")); string(b) != "chosen" {
		t.Errorf("the chosen folder holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); err == nil {
		t.Error("the file also went into Dir")
	}
	answer = "no"
	if _, _, err := Send(context.Background(), sess, []string{filepath.Join(src, "a.txt")}, nil); !errors.Is(err, ErrDeclined) {
		t.Errorf("declined through Choose: %v", err)
	}
}

// cutSend sends path and cuts the transfer once at bytes are done,
// returning what it sent and how it ended.
func cutSend(sess *session.Session, path string, at int64) (int64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, sent, err := Send(ctx, sess, []string{path}, func(p Progress) {
		if p.Done >= at {
			cancel()
		}
	})
	return sent, err
}

// TestQuestionEndsWithConnection: the connection under the sender's
// session closing while its offer is asked about (its process killed)
// ends the question as the sender gone, not as the offer withdrawn.
func TestQuestionEndsWithConnection(t *testing.T) {
	idA, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	idB, err := identity.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	asked := make(chan context.Context, 1)
	r := &Receiver{Dir: t.TempDir(), Choose: func(ctx context.Context, _ identity.ID, _ Offer) (string, bool) {
		asked <- ctx
		<-ctx.Done()
		return "", false
	}}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		sess, err := session.Server(context.Background(), c, idB, nil)
		if err != nil {
			return
		}
		defer sess.Close()
		_, st, err := sess.Accept(context.Background(), func(p string) bool { return p == Proto })
		if err == nil {
			r.Handle(context.Background(), sess, st)
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sess, err := session.Client(context.Background(), raw, idA, idB.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	st, err := sess.Open(context.Background(), Proto)
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(st, Offer{ID: "o", Files: []File{{Path: "a.txt", Size: 1}}, Total: 1})
	var q context.Context
	select {
	case q = <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver never asked")
	}
	raw.Close()
	select {
	case <-q.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the question outlived the sender's connection")
	}
	if cause := context.Cause(q); errors.Is(cause, ErrWithdrawn) {
		t.Errorf("a closed connection ended the question as withdrawn: %v", cause)
	}
	<-served
}

// TestChangedWhileSent: a file written to after it was offered, or while
// it is read, is not given its name at the receiver, though each chunk
// it got checks out; sent again (a new offer), it arrives whole, as it is
// now. A file that only grows (a log) arrives as it was offered.
func TestChangedWhileSent(t *testing.T) {
	dst := t.TempDir()
	var touch func()
	sess := pair(t, &Receiver{Dir: dst, Choose: func(context.Context, identity.ID, Offer) (string, bool) {
		if touch != nil {
			touch()
		}
		return "", true
	}})
	src := filepath.Join(t.TempDir(), "live.bin")
	write(t, src, random(16*ChunkSize))
	// An hour ago: a change made now has another time, however coarse
	// the file system's clock.
	past := func() {
		hour := time.Now().Add(-time.Hour)
		if err := os.Chtimes(src, hour, hour); err != nil {
			t.Fatal(err)
		}
	}
	change := func() {
		f, err := os.OpenFile(src, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		f.WriteAt(random(1), 16*ChunkSize-1) // the last chunk: not read yet
	}
	for _, c := range []struct {
		name     string
		when     string
		progress func(Progress)
	}{
		{"after the offer", "since it was offered", nil},
		{"while read", "while it was being sent", func(p Progress) {
			if p.Done == ChunkSize {
				change()
			}
		}},
		{"cut short", "while it was being sent", func(p Progress) {
			if p.Done == ChunkSize {
				os.Truncate(src, 8*ChunkSize)
			}
		}},
	} {
		past()
		touch = nil
		if c.progress == nil {
			touch = change
		}
		_, _, err := sendWhenFree(sess, src, c.progress)
		if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "changed "+c.when) {
			t.Errorf("%s: sending gave %v", c.name, err)
		}
		if _, err := os.Stat(filepath.Join(dst, "live.bin")); err == nil {
			t.Fatalf("%s: a file that changed as it was sent got its name", c.name)
		}
	}
	touch = nil
	res, _, err := sendWhenFree(sess, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(src)
	if got, _ := os.ReadFile(filepath.Join(dst, res.Saved[0])); !bytes.Equal(got, want) {
		t.Error("sent again, the file did not arrive as it is now")
	}

	// Appended to while read: what was offered arrives.
	log := filepath.Join(t.TempDir(), "app.log")
	offered := random(8 * ChunkSize)
	write(t, log, offered)
	res, _, err = sendWhenFree(sess, log, func(p Progress) {
		if p.Done == ChunkSize {
			f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte("another line\n"))
			f.Close()
		}
	})
	if err != nil {
		t.Fatalf("a growing file: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, res.Saved[0])); !bytes.Equal(got, offered) {
		t.Error("a growing file did not arrive as it was offered")
	}
}

// sendWhenFree sends path, again while the receiver is busy with it: it
// lets go of a name once it has seen the last attempt's stream end, just
// after the sender has.
func sendWhenFree(sess *session.Session, path string, progress func(Progress)) (Result, int64, error) {
	res, n, err := Send(context.Background(), sess, []string{path}, progress)
	for tries := 0; errors.Is(err, ErrBusy) && tries < 100; tries++ {
		time.Sleep(20 * time.Millisecond)
		res, n, err = Send(context.Background(), sess, []string{path}, progress)
	}
	return res, n, err
}

// TestResume: the sender's connection is cut mid-transfer; sent again,
// the same file resumes from what the receiver verified.
func TestResume(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	const size = 24 << 20
	write(t, filepath.Join(src, "big.bin"), random(size))
	ended := make(chan Result, 2)
	sess := pair(t, &Receiver{Dir: dst, Decide: accept, Done: func(_ Offer, r Result) { ended <- r }})
	first, err := cutSend(sess, filepath.Join(src, "big.bin"), 6<<20)
	if err == nil || first >= size {
		t.Fatalf("the cut transfer sent %d bytes, err %v", first, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "big.bin"+partSuffix)); err != nil {
		t.Fatalf("no partial file kept: %v", err)
	}
	// The receiver may still be writing what was in flight.
	if r := <-ended; r.OK {
		t.Fatal("the receiver saw the cut transfer succeed")
	}
	res, second, err := Send(context.Background(), sess, []string{filepath.Join(src, "big.bin")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second >= size || second == 0 {
		t.Errorf("the resumed transfer sent %d of %d bytes", second, size)
	}
	t.Logf("first attempt %d bytes, resumed with %d", first, second)
	if tree(t, dst)["big.bin"] != tree(t, src)["big.bin"] || len(res.Saved) != 1 {
		t.Errorf("the resumed file differs: %v", res.Saved)
	}
	if _, err := os.Stat(filepath.Join(dst, "big.bin"+partState)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the partial state was left behind: %v", err)
	}
}

// TestHostileOffers: names that would escape the folder are declined
// before anything is written, and a symbolic link in the folder is not
// followed out of it.
func TestHostileOffers(t *testing.T) {
	dst, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "link")); err != nil {
		t.Fatal(err)
	}
	sess := pair(t, &Receiver{Dir: dst, Decide: accept})
	for _, name := range []string{"../evil.txt", "/etc/evil", `..\evil`, "a/../../evil", "CON", "x\x00y"} {
		st, err := sess.Open(context.Background(), Proto)
		if err != nil {
			t.Fatal(err)
		}
		writeJSON(st, Offer{ID: "x", Files: []File{{Path: name, Size: 1}}, Total: 1})
		var ans Answer
		if err := readJSON(st, &ans); err != nil || ans.Accept || !strings.Contains(ans.Reason, "unsafe") {
			t.Errorf("offer of %q: %+v %v", name, ans, err)
		}
		st.Close()
	}
	// Offers whose names collide with what the receiver makes of others.
	for _, files := range [][]File{
		{{Path: "a.p2pd-part", Size: 1}, {Path: "a", Size: 1}},
		{{Path: "b", Size: 1}, {Path: "b.p2pd-part.json", Size: 1}},
		{{Path: "x", Size: 1}, {Path: "x/y", Size: 1}},
		{{Path: "d.p2pd-part/y", Size: 1}, {Path: "d", Size: 1}},
		{{Path: "e", Size: 1}, {Path: "e.P2PD-PART", Size: 1}},
		{{Path: "d/e/f", Size: 1}, {Path: "D/E", Size: 1}},
	} {
		st, err := sess.Open(context.Background(), Proto)
		if err != nil {
			t.Fatal(err)
		}
		writeJSON(st, Offer{ID: "c", Files: files, Total: 2})
		var ans Answer
		if err := readJSON(st, &ans); err != nil || ans.Accept || ans.Reason == "" {
			t.Errorf("offer of %v: %+v %v", files, ans, err)
		}
		st.Close()
	}
	// Sizes that would overflow the sum and slip past the checks.
	st0, err := sess.Open(context.Background(), Proto)
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(st0, Offer{ID: "o", Files: []File{{Path: "a", Size: 1<<63 - 1}, {Path: "b", Size: 1<<63 - 1}, {Path: "c", Size: 3}}, Total: 1})
	var over Answer
	if err := readJSON(st0, &over); err != nil || over.Accept {
		t.Errorf("an overflowing offer: %+v %v", over, err)
	}
	st0.Close()
	// Two offers of one name at once: the second waits its turn.
	first, _ := sess.Open(context.Background(), Proto)
	defer first.Close()
	writeJSON(first, Offer{ID: "p", Files: []File{{Path: "same.txt", Size: 5}}, Total: 5})
	var a1 Answer
	readJSON(first, &a1)
	second, _ := sess.Open(context.Background(), Proto)
	defer second.Close()
	writeJSON(second, Offer{ID: "q", Files: []File{{Path: "same.txt", Size: 5}}, Total: 5})
	var a2 Answer
	readJSON(second, &a2)
	if !a1.Accept || a2.Accept || !a2.Busy || !strings.Contains(a2.Reason, "being received") {
		t.Errorf("concurrent offers of one name: %+v, %+v", a1, a2)
	}
	// Through the symlink: accepted by name, refused by os.Root.
	st, err := sess.Open(context.Background(), Proto)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	writeJSON(st, Offer{ID: "y", Files: []File{{Path: "link/evil.txt", Size: 1}}, Total: 1})
	var ans Answer
	readJSON(st, &ans)
	if ans.Accept {
		writeChunk(st, []byte("x"), chunkSum([]byte("x")), false)
		writeChunk(st, nil, chunkSum([]byte("x")), false)
		var res Result
		if err := readJSON(st, &res); err != nil || res.OK {
			t.Errorf("writing through a symlink: %+v %v", res, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("a file escaped the folder: %v", entries)
	}
}

// TestQuestionEndsWithOffer: while an offer waits for its answer, the
// question ends at once when the sender withdraws it (cancelled here:
// ErrWithdrawn), stops for another reason (not a withdrawal), or sends
// data before the answer (which would wait in the stream's window); the
// sender of early data hears why.
func TestQuestionEndsWithOffer(t *testing.T) {
	asked := make(chan context.Context)
	sess := pair(t, &Receiver{Dir: t.TempDir(), Choose: func(ctx context.Context, _ identity.ID, _ Offer) (string, bool) {
		asked <- ctx
		<-ctx.Done()
		return "", true
	}})
	src := t.TempDir()
	question := func(name string) context.Context {
		t.Helper()
		select {
		case ctx := <-asked:
			if ctx.Err() != nil {
				t.Fatalf("%s: the question ended before the sender did anything: %v", name, context.Cause(ctx))
			}
			return ctx
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the receiver never asked", name)
			return nil
		}
	}
	ended := func(name string, ctx context.Context) error {
		t.Helper()
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the question is still open", name)
			return nil
		}
	}
	// Through Send, each case with a file of its own (a name is claimed
	// until its question is over).
	for _, c := range []struct {
		name      string
		cause     error
		withdrawn bool
	}{
		{"withdrawn", ErrCancelledHere, true},
		{"stopped", context.Canceled, false},
	} {
		write(t, filepath.Join(src, c.name), []byte(c.name))
		ctx, cancel := context.WithCancelCause(context.Background())
		sent := make(chan error, 1)
		go func() {
			_, _, err := Send(ctx, sess, []string{filepath.Join(src, c.name)}, nil)
			sent <- err
		}()
		q := question(c.name)
		cancel(c.cause)
		if cause := ended(c.name, q); errors.Is(cause, ErrWithdrawn) != c.withdrawn {
			t.Errorf("%s: the question ended with %v", c.name, cause)
		}
		if err := <-sent; err == nil {
			t.Errorf("%s: Send returned no error", c.name)
		}
	}
	st, err := sess.Open(context.Background(), Proto)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	writeJSON(st, Offer{ID: "early", Files: []File{{Path: "early.txt", Size: 1}}, Total: 1})
	q := question("early data")
	st.Write([]byte("chunk before the answer"))
	if cause := ended("early data", q); !errors.Is(cause, errEarlyData) {
		t.Errorf("early data: the question ended with %v", cause)
	}
	var ans Answer
	if err := readJSON(st, &ans); err != nil || ans.Accept || ans.Reason != errEarlyData.Error() {
		t.Errorf("the sender of early data heard %+v %v", ans, err)
	}
}

// TestResumeAfterReceiverRestart: the receiving node stops mid-transfer
// (its process restarted); a new node on the same folder resumes from
// the verified part the first one left.
func TestResumeAfterReceiverRestart(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	const size = 16 << 20
	write(t, filepath.Join(src, "big.bin"), random(size))
	ended := make(chan Result, 1)
	sess := pair(t, &Receiver{Dir: dst, Decide: accept, Done: func(_ Offer, r Result) { ended <- r }})
	first, err := cutSend(sess, filepath.Join(src, "big.bin"), 4<<20)
	if err == nil {
		t.Fatal("the cut transfer succeeded")
	}
	<-ended
	sess.Close()
	// A new receiver (another node, as after a restart) on the same folder.
	sess2 := pair(t, &Receiver{Dir: dst, Decide: accept})
	_, second, err := Send(context.Background(), sess2, []string{filepath.Join(src, "big.bin")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second >= size {
		t.Errorf("after the restart it sent all %d bytes again", second)
	}
	t.Logf("first attempt %d bytes, after the restart %d", first, second)
	if tree(t, dst)["big.bin"] != tree(t, src)["big.bin"] {
		t.Error("the resumed file differs")
	}
}

// TestSeveralAtOnce: transfers on one session run side by side.
func TestSeveralAtOnce(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	sess := pair(t, &Receiver{Dir: dst, Decide: accept})
	var wg sync.WaitGroup
	for i := range 4 {
		name := filepath.Join(src, "f"+string(rune('a'+i))+".bin")
		write(t, name, random(2<<20+i))
		wg.Go(func() {
			if _, _, err := Send(context.Background(), sess, []string{name}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, want := tree(t, dst), tree(t, src)
	if len(got) != 4 {
		t.Fatalf("received %d files", len(got))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s differs", k)
		}
	}
}

// TestDigestIsBLAKE3: digests are BLAKE3-256 (the published test values),
// so nodes built with another BLAKE3 library, older or newer, agree on
// every chunk and file, and resumes across versions verify.
func TestDigestIsBLAKE3(t *testing.T) {
	for in, want := range map[string]string{
		"":    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
		"abc": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
	} {
		if got := chunkSum([]byte(in)); hex.EncodeToString(got[:]) != want {
			t.Errorf("chunkSum(%q) = %x, want %s", in, got, want)
		}
	}
	// A file's digest is BLAKE3 over its chunks' digests.
	f := newFileSum()
	d := chunkSum([]byte("abc"))
	f.add(d)
	if got, want := f.sum(), chunkSum(d[:]); got != want {
		t.Errorf("file digest %x, want %x", got, want)
	}
}
