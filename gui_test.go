//go:build !nogui

package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/netns/netnstest"
)

// TestGUISmoke starts the real app (this test binary re-executed as p2pd
// with no arguments) on a virtual X display, waits for its window and
// takes a screenshot of it. P2PD_SCREENSHOT=path keeps the picture.
func TestGUISmoke(t *testing.T) {
	requireTool(t, screenTools...)
	display, xvfbLog := startXvfb(t)

	ns, cfg := appNetwork(t)
	app := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	app.Env = append(os.Environ(), "P2PD_RUN_MAIN=1", "DISPLAY="+display, "HOME="+t.TempDir(), "P2PD_HOME="+t.TempDir(), "P2PD_CONFIG="+cfg)
	appOut := &syncBuffer{}
	app.Stdout, app.Stderr = appOut, appOut
	// The app's own children (a session bus Fyne starts) may hold its
	// output open after it is killed: kill them with it, and stop waiting
	// for their output soon after.
	app.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	app.WaitDelay = 5 * time.Second
	started := time.Now()
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed (not sent on) so that both the wait below and the
	// cleanup see the exit.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = app.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-app.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// The window appears once GLFW and the first frame are up.
	var id string
	deadline := time.Now().Add(60 * time.Second)
	for id == "" {
		select {
		case <-exited:
			t.Fatalf("the app exited (%v) before showing a window:\n%s\nXvfb %s: %s", waitErr, appOut.String(), display, xvfbLog.String())
		default:
		}
		if id, _ = windowID(display, "P2PD"); id != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no window titled P2PD appeared:\n%s", appOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Measured, not asserted (machines differ): the goal is 1 s.
	t.Logf("the window appeared %v after the start", time.Since(started).Round(10*time.Millisecond))
	time.Sleep(time.Second) // let the network summary arrive and render

	shot := screenshot(t, display, id)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 || uniform(img) {
		t.Errorf("screenshot %v looks empty", b)
	}
	if strings.Contains(appOut.String(), threadError) {
		t.Errorf("the app changed widgets off the UI goroutine:\n%s", appOut.String())
	}
	if out := os.Getenv("P2PD_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// screenTools are what the GUI tests need to run an app on a virtual
// display and take pictures of its window.
var screenTools = []string{"Xvfb", "xwininfo", "xwd", "xwdtopnm", "pnmtopng"}

// windowID returns the X id of the window titled title on display, if
// there is one.
func windowID(display, title string) (string, bool) {
	out, err := exec.Command("xwininfo", "-display", display, "-name", title).Output()
	if err != nil {
		return "", false
	}
	var id string
	fmt.Sscanf(string(bytes.SplitN(out, []byte("Window id: "), 2)[1]), "%s", &id)
	return id, id != ""
}

// screenshot takes a picture of the window id on display, as PNG.
func screenshot(t *testing.T, display, id string) []byte {
	t.Helper()
	var shot bytes.Buffer
	cmd := exec.Command("sh", "-c", fmt.Sprintf("xwd -silent -display %s -id %s | xwdtopnm 2>/dev/null | pnmtopng", display, id))
	cmd.Stdout = &shot
	if err := cmd.Run(); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return shot.Bytes()
}

// appNetwork gives the app a network of its own and a config with no
// servers: the node it starts touches nothing outside (the X server is
// reached through its socket file). The namespace has loopback and one
// end of a veth pair (the other end stays inside) with a documentation
// address and the default route, so the node has an address to show.
func appNetwork(t *testing.T) (ns, config string) {
	t.Helper()
	ns = netnstest.New(t, "app")
	netnstest.IP(t, "-n", ns, "link", "set", "lo", "up")
	netnstest.IP(t, "-n", ns, "link", "add", "home0", "type", "veth", "peer", "name", "home1")
	netnstest.IP(t, "-n", ns, "addr", "add", "192.0.2.10/24", "dev", "home0")
	netnstest.IP(t, "-n", ns, "link", "set", "home1", "up")
	netnstest.IP(t, "-n", ns, "link", "set", "home0", "up")
	netnstest.IP(t, "-n", ns, "route", "add", "default", "via", "192.0.2.1", "dev", "home0")
	config = filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(config, []byte(`{"stun": [], "mqtt": [], "turn": [], "ntp": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return ns, config
}

// startXvfb starts a virtual display on a free number and returns its
// name once it accepts connections, with the server's output. Lock files
// of displays whose server is gone (killed without cleaning up) are stale
// and cleared.
func startXvfb(t *testing.T) (string, *syncBuffer) {
	t.Helper()
	for n := 90; n < 200; n++ {
		lock := fmt.Sprintf("/tmp/.X%d-lock", n)
		socket := filepath.Join("/tmp/.X11-unix", fmt.Sprintf("X%d", n))
		if b, err := os.ReadFile(lock); err == nil {
			var pid int
			fmt.Sscan(string(b), &pid)
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				continue // a live server owns it
			}
			os.Remove(lock)
		}
		os.Remove(socket) // without a live lock, a socket is stale: it would pass for a ready display
		display := fmt.Sprintf(":%d", n)
		// -noreset: the readiness probe below is the first client, and when the
		// last client leaves Xvfb resets, refusing whoever connects meanwhile.
		x := exec.Command("Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset")
		xOut := &syncBuffer{}
		x.Stdout, x.Stderr = xOut, xOut
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- x.Wait() }()
		for range 200 {
			if c, err := net.Dial("unix", socket); err == nil {
				c.Close()
				t.Cleanup(func() {
					// SIGTERM lets Xvfb remove its lock and socket.
					x.Process.Signal(syscall.SIGTERM)
					select {
					case <-done:
					case <-time.After(5 * time.Second):
						x.Process.Kill()
						<-done
					}
				})
				return display, xOut
			}
			select {
			case <-done: // lost a race for this display number, or failed
				t.Logf("Xvfb %s exited: %s", display, strings.TrimSpace(xOut.String()))
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
		x.Process.Kill()
	}
	t.Fatal("no free X display number")
	return "", nil
}

func uniform(img image.Image) bool {
	b := img.Bounds()
	first := img.At(b.Min.X, b.Min.Y)
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			if img.At(x, y) != first {
				return false
			}
		}
	}
	return true
}
