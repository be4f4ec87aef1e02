//go:build !nogui

package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"p2pd/ui"
)

// TestPackageInstall makes the Linux package and installs it the way
// users do, into a temporary prefix: `make install` (which runs `make
// package`, Fyne's release build: minutes when nothing is cached, so `make
// test` runs it on its own), then the archive's own Makefile. It checks
// that the files land where desktops look, that the menu entry starts the
// installed app (on Xvfb) with the window class and icon the entry
// promises, and that uninstalling removes every file.
func TestPackageInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release package")
	}
	requireTool(t, "make", "tar", "xz", "desktop-file-validate", "appstreamcli",
		"Xvfb", "xwininfo", "xprop")
	t.Parallel()
	app := readFyneApp(t)
	id := app.Details.ID
	if ui.AppID != id {
		t.Errorf("ui.AppID %q, FyneApp.toml's ID %q", ui.AppID, id)
	}

	tmp := t.TempDir()
	archive := filepath.Join(tmp, "p2pd.tar.xz")
	// Home directories may hold spaces.
	prefix := filepath.Join(tmp, "home dir", ".local")
	runMake(t, ".", "install", "PREFIX="+prefix, "ARCHIVE="+archive)

	files := []string{
		"bin/p2pd",
		"share/applications/" + id + ".desktop",
		"share/icons/hicolor/512x512/apps/" + id + ".png",
		"share/icons/hicolor/scalable/apps/" + id + ".svg",
		"share/metainfo/" + id + ".metainfo.xml",
	}

	t.Run("archive", func(t *testing.T) {
		out, err := exec.Command("tar", "-tJf", archive).Output()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range strings.Fields(string(out)) {
			if !strings.HasSuffix(f, "/") {
				got = append(got, f)
			}
		}
		want := []string{"p2pd/Makefile"}
		for _, f := range files {
			want = append(want, "p2pd/usr/local/"+f)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("the archive holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("make install", func(t *testing.T) {
		exe := checkInstalled(t, prefix, prefix, files)
		if t.Failed() {
			return
		}
		out, err := exec.Command(exe, "version").Output()
		if want := "p2pd " + app.Details.Version; err != nil || !strings.HasPrefix(string(out), want) {
			t.Errorf("%s version: %q (%v), want %s…", exe, out, err, want)
		}
		startFromMenu(t, filepath.Join(prefix, files[1]))
	})

	t.Run("make uninstall", func(t *testing.T) {
		runMake(t, ".", "uninstall", "PREFIX="+prefix)
		checkRemoved(t, prefix, files)
	})

	// What users who download the archive run.
	t.Run("archive Makefile", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("tar", "-xJf", archive, "-C", dir).CombinedOutput(); err != nil {
			t.Fatalf("unpacking: %v\n%s", err, out)
		}
		dir = filepath.Join(dir, "p2pd")
		home := filepath.Join(t.TempDir(), "home")
		runMake(t, dir, "user-install", "HOME="+home)
		local := filepath.Join(home, ".local")
		checkInstalled(t, local, local, files)
		runMake(t, dir, "user-uninstall", "HOME="+home)
		checkRemoved(t, local, files)

		// A system install staged in DESTDIR runs the binary from PREFIX.
		stage := t.TempDir()
		runMake(t, dir, "install", "DESTDIR="+stage)
		checkInstalled(t, filepath.Join(stage, "usr/local"), "/usr/local", files)
		runMake(t, dir, "uninstall", "DESTDIR="+stage)
		checkRemoved(t, filepath.Join(stage, "usr/local"), files)
	})
}

// runMake runs make in dir, with none of the flags of a make this test may
// run under.
func runMake(t *testing.T, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-s", "-C", dir}, args...)...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GNUMAKEFLAGS", "MAKEFILES":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("make %s: %s", args[0], time.Since(start).Round(time.Second))
}

// checkInstalled checks the files under dir, installed for prefix: the
// same icon and metadata as the source, a valid entry that runs
// prefix/bin/p2pd. It returns the binary's path under dir.
func checkInstalled(t *testing.T, dir, prefix string, files []string) string {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return ""
	}
	exe := filepath.Join(dir, files[0])
	if fi, _ := os.Stat(exe); fi.Mode()&0o111 == 0 {
		t.Errorf("%s is not executable: %v", exe, fi.Mode())
	}
	for src, f := range map[string]string{
		"assets/icon.png":                      files[2],
		"assets/icon.svg":                      files[3],
		"packaging/" + filepath.Base(files[4]): files[4],
	} {
		a, _ := os.ReadFile(src)
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s", f, src)
		}
	}
	desktop := filepath.Join(dir, files[1])
	validDesktopEntry(t, desktop)
	validMetainfo(t, filepath.Join(dir, files[4]))
	got, want := desktopEntry(t, desktop), desktopEntry(t, "packaging/"+filepath.Base(desktop))
	want["Exec"] = strconv.Quote(filepath.Join(prefix, "bin/p2pd"))
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%s, want %s", desktop, k, got[k], v)
		}
	}
	return exe
}

func checkRemoved(t *testing.T, dir string, files []string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
}

// startFromMenu runs the command of the desktop entry at path as a desktop
// does on a double-click, on a virtual display, and checks that a window
// of the entry's class (StartupWMClass: how a dock matches the window to
// the entry) shows the app's icon.
func startFromMenu(t *testing.T, path string) {
	t.Helper()
	e := desktopEntry(t, path)
	exe, err := strconv.Unquote(e["Exec"])
	if err != nil {
		t.Fatalf("Exec=%s: %v", e["Exec"], err)
	}
	display, xvfbLog := startXvfb(t)
	ns, cfg := appNetwork(t)
	cmd := exec.Command("ip", "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+t.TempDir(), "P2PD_HOME="+t.TempDir(), "P2PD_CONFIG="+cfg)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()

	// xwininfo -tree lists each window as: 0x200020 "title": ("name" "class")
	class := regexp.MustCompile(`(?m)^\s*(0x[0-9a-f]+) "[^"]*": \("[^"]*" "` + regexp.QuoteMeta(e["StartupWMClass"]) + `"\)`)
	var win string
	for deadline := time.Now().Add(60 * time.Second); win == ""; time.Sleep(100 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("%s exited before showing a window:\n%s\nXvfb: %s", exe, out, xvfbLog)
		default:
		}
		tree, _ := exec.Command("xwininfo", "-display", display, "-root", "-tree").Output()
		if m := class.FindSubmatch(tree); m != nil {
			win = string(m[1])
		} else if time.Now().After(deadline) {
			t.Fatalf("no window of class %q appeared:\n%s\n%s", e["StartupWMClass"], tree, out)
		}
	}

	// The window's icon (_NET_WM_ICON: width, height, then ARGB pixels)
	// is the app's, 512 px wide: compare its middle pixel.
	f, err := os.Open("assets/icon.png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	icon, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, a := icon.At(256, 256).RGBA()
	want := fmt.Sprintf("0x200 0x200 0x%x", a>>8<<24|r>>8<<16|g>>8<<8|b>>8)
	prop, err := exec.Command("xprop", "-display", display, "-id", win, "-len", "2000000",
		"-f", "_NET_WM_ICON", "32x", ` $0 $1 $131330\n`, "_NET_WM_ICON").Output()
	if got := strings.TrimSpace(strings.TrimPrefix(string(prop), "_NET_WM_ICON(CARDINAL)")); err != nil || got != want {
		t.Errorf("window icon: %q (%v), want %q (the middle of assets/icon.png)", prop, err, want)
	}
}
