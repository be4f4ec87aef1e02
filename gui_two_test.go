//go:build !nogui

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// screenNames are the main window's tabs in order, as the screenshots
// are named.
var screenNames = []string{"home", "connect", "friends", "chat", "transfers", "diagnostics", "settings"}

// driven is a real app under Xvfb, worked through its drive hook.
type driven struct {
	t       *testing.T
	name    string
	display string
	in      io.WriteCloser
	out     *bufio.Scanner
	log     *syncBuffer
	home    string // its P2PD_HOME
	user    string // its HOME (Downloads is there)
}

// startDriven starts the app as name in namespace ns on display, with its
// own data dir.
func startDriven(t *testing.T, name, ns, cfg, display string) *driven {
	t.Helper()
	d := &driven{t: t, name: name, display: display, home: t.TempDir(), user: t.TempDir(), log: &syncBuffer{}}
	app := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	app.Env = append(os.Environ(), "P2PD_RUN_MAIN=1", "P2PD_UI_DRIVE=1", "DISPLAY="+display,
		"HOME="+d.user, "P2PD_HOME="+d.home, "P2PD_CONFIG="+cfg)
	app.Stderr = d.log
	app.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	app.WaitDelay = 5 * time.Second
	in, err := app.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := app.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		syscall.Kill(-app.Process.Pid, syscall.SIGKILL)
		app.Wait()
	})
	d.in, d.out = in, bufio.NewScanner(out)
	d.do("title P2PD " + name)
	return d
}

// do sends one command and returns its answer, failing the test on an
// error.
func (d *driven) do(cmd string) string {
	d.t.Helper()
	v, err := d.try(cmd)
	if err != nil {
		d.t.Fatalf("%s: %s: %v\napp log:\n%s", d.name, cmd, err, d.log.String())
	}
	return v
}

func (d *driven) try(cmd string) (string, error) {
	if _, err := fmt.Fprintln(d.in, cmd); err != nil {
		return "", err
	}
	if !d.out.Scan() {
		return "", fmt.Errorf("the app stopped (%v)", d.out.Err())
	}
	var r struct {
		OK           bool
		Value, Error string
	}
	if err := json.Unmarshal(d.out.Bytes(), &r); err != nil {
		return "", fmt.Errorf("the app answered %q", d.out.Text())
	}
	if !r.OK {
		return r.Value, fmt.Errorf("%s", r.Error)
	}
	return r.Value, nil
}

// shot saves a screenshot of the app's window as file in dir (the other
// app's window hidden: the two would overlap, and a GL window's covered
// part has no picture).
func (d *driven) shot(dir, file string) {
	d.t.Helper()
	time.Sleep(500 * time.Millisecond) // a frame or two to draw the change
	id, ok := windowID(d.display, "P2PD "+d.name)
	if !ok {
		d.t.Fatalf("no window P2PD %s", d.name)
	}
	img := screenshot(d.t, d.display, id)
	if err := os.WriteFile(filepath.Join(dir, file), img, 0o644); err != nil {
		d.t.Fatal(err)
	}
	pic, err := png.Decode(bytes.NewReader(img))
	if err != nil || uniform(pic) {
		d.t.Fatalf("the screenshot %s is empty or broken: %v", file, err)
	}
}

// TestGUITwoApps runs two real apps on one computer (one namespace, one
// virtual display, two data dirs) and works them through their windows:
// each connects to the other from the Connect tab and saves it as a
// friend, Ann writes to Bob in the Chat tab and sees it delivered, drops
// a file on her window, Bob's app asks and he accepts, and the file
// arrives whole. Screenshots of every screen (and of the offer's
// question) are saved in P2PD_SCREENSHOTS, default test-artifacts/screens.
func TestGUITwoApps(t *testing.T) {
	requireTool(t, screenTools...)
	shots := os.Getenv("P2PD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join("test-artifacts", "screens")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	display, _ := startXvfb(t)
	ns, cfg := appNetwork(t)
	ann := startDriven(t, "Ann", ns, cfg, display)
	bob := startDriven(t, "Bob", ns, cfg, display)
	annAddr, bobAddr := ann.do("address"), bob.do("address")

	start := time.Now()
	if got := ann.do("connect " + bobAddr); !strings.HasPrefix(got, "Connected") {
		t.Fatalf("Ann's connect: %q", got)
	}
	ann.do("save Bob")
	// One window at a time on the display: the two would overlap, and a
	// GL window's hidden part has no picture.
	bob.do("hide")
	ann.shot(shots, "connect.png")
	bob.do("show")
	bob.do("connect " + annAddr)
	bob.do("save Ann")
	t.Logf("both connected and saved each other in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	ann.do("say Bob Hello Bob, this is Ann ✓")
	bob.do("line Ann Hello Bob, this is Ann ✓")
	ann.do("line Bob Hello Bob, this is Ann ✓") // delivered
	bob.do("say Ann Hi Ann!")
	ann.do("line Ann Hi Ann!")
	t.Logf("chat both ways, delivered, in %v", time.Since(start).Round(time.Millisecond))
	bob.do("hide")
	ann.shot(shots, "chat.png")
	bob.do("show")

	src := filepath.Join(t.TempDir(), "holiday photo.jpg")
	data := make([]byte, 3<<20+123)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	ann.do("drop " + src)
	bob.do("asking")
	ann.do("hide")
	bob.shot(shots, "offer.png")
	ann.do("show")
	bob.do("accept")
	bob.do("done")
	ann.do("done")
	t.Logf("file dropped, accepted and received in %v", time.Since(start).Round(time.Millisecond))
	got, err := os.ReadFile(filepath.Join(bob.user, "Downloads", "holiday photo.jpg"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file in Bob's Downloads: %d bytes, %v (want %d bytes, equal)", len(got), err, len(data))
	}
	bob.do("hide")
	ann.do("tab 4")
	ann.shot(shots, "transfers.png")

	for i, name := range screenNames {
		if name == "connect" || name == "chat" || name == "transfers" {
			continue // taken above, in the middle of things
		}
		ann.do(fmt.Sprint("tab ", i))
		ann.shot(shots, name+".png")
	}
	ann.do("quit")
	bob.do("quit")
	t.Logf("screenshots in %s", shots)
	// This binary is built without migrated_fynedo: Fyne checks that
	// every widget change happens on its goroutine and logs each one that
	// does not. None may.
	for _, d := range []*driven{ann, bob} {
		if strings.Contains(d.log.String(), threadError) {
			t.Errorf("%s changed widgets off the UI goroutine:\n%s", d.name, d.log.String())
		}
	}
}

// threadError starts Fyne's log line for a widget change made off its
// goroutine (or fyne.Do misused on it), when its checks are on.
const threadError = "*** Error in Fyne call thread"
