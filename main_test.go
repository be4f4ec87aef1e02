package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"

	"p2pd/netcore/natlab"
	"p2pd/netcore/netif"
)

// TestMain lets tests run the real program in a child process: the test
// binary re-executed with P2PD_RUN_MAIN=1 behaves as p2pd.
func TestMain(m *testing.M) {
	natlab.ChildMain(map[string]natlab.ChildFunc{"turnsend": childTURNSend, "turnrecv": childTURNRecv, "duplex": childDuplex})
	if os.Getenv("P2PD_RUN_MAIN") == "1" {
		os.Exit(runProfiled(flagArgs()))
	}
	os.Exit(m.Run())
}

// runProfiled runs p2pd; with P2PD_TEST_CPUPROFILE set to a directory,
// it writes its CPU profile there as COMMAND-PID.pprof (to see where a
// lab benchmark's processes spend their time).
func runProfiled(args []string) int {
	dir := os.Getenv("P2PD_TEST_CPUPROFILE")
	if dir == "" || len(args) == 0 {
		return run(args, os.Stdout, os.Stderr)
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", args[0], os.Getpid())))
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return run(args, os.Stdout, os.Stderr)
	}
	defer f.Close()
	defer pprof.StopCPUProfile()
	// SIGTERM (how the lab stops a receiver) must still end the profile.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	code := make(chan int, 1)
	go func() { code <- run(args, os.Stdout, os.Stderr) }()
	select {
	case c := <-code:
		return c
	case <-sig:
		return 1
	}
}

// flagArgs returns the arguments after "--", which the parent passes for p2pd.
func flagArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"version"}, 0, "p2pd dev (go", ""},
		{[]string{"help"}, 0, "usage: p2pd", ""},
		{[]string{"ifs", "-h"}, 0, "-json", ""},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"ifs", "extra"}, 2, "", `p2pd ifs: unexpected argument "extra"`},
		{[]string{"version", "--nope"}, 2, "", "flag provided but not defined: -nope"},
	} {
		code, stdout, stderr := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.inStdout) || !strings.Contains(stderr, tc.inStderr) {
			t.Errorf("p2pd %s: exit %d, stdout %q, stderr %q; want exit %d with %q / %q",
				strings.Join(tc.args, " "), code, stdout, stderr, tc.code, tc.inStdout, tc.inStderr)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	code, stdout, _ := runCLI("version", "--json")
	var v struct{ Version, Go, OS, Arch string }
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v.Version != "dev" || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("exit %d, output %q", code, stdout)
	}
}

// TestCPUProfile: P2PD_CPUPROFILE writes a profile of the command (gzip,
// as pprof writes it), %p naming the process; one that cannot be written
// fails the command with the reason.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("P2PD_CPUPROFILE", filepath.Join(dir, "cpu-%p.out"))
	if code, _, stderr := runCLI("version"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("cpu-%d.out", os.Getpid())))
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("no profile: %v, %d bytes", err, len(b))
	}
	t.Setenv("P2PD_CPUPROFILE", filepath.Join(dir, "missing", "cpu.out"))
	if code, _, stderr := runCLI("version"); code != 1 || !strings.Contains(stderr, "P2PD_CPUPROFILE") {
		t.Errorf("an unwritable profile: exit %d, %q", code, stderr)
	}
}

func TestIfs(t *testing.T) {
	code, stdout, stderr := runCLI("ifs", "--json", "--loopback")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var ifs []struct {
		Name   string
		LAN    bool
		Addrs  []struct{ IP, Scope string }
		Routes []netif.Route
	}
	if err := json.Unmarshal([]byte(stdout), &ifs); err != nil {
		t.Fatalf("ifs --json is not JSON: %v\n%s", err, stdout)
	}
	var lo bool
	for _, i := range ifs {
		if len(i.Addrs) > 0 && i.Addrs[0].IP == "127.0.0.1" {
			lo = true
			if !i.LAN || i.Addrs[0].Scope != "loopback" || len(i.Routes) == 0 || i.Routes[0].NIC[0].String() != "127.0.0.1" {
				t.Errorf("loopback with --loopback: %+v", i)
			}
		}
	}
	if !lo {
		t.Errorf("no loopback interface in %s", stdout)
	}

	code, stdout, _ = runCLI("ifs")
	if code != 0 || !strings.Contains(stdout, "127.0.0.1/8") || !strings.Contains(stdout, "route IPv4") {
		t.Errorf("ifs text output (exit %d):\n%s", code, stdout)
	}
}

// TestScreenshotsArePNG: the README's screenshots (one per screen,
// docs/screens) stay readable images, and the README shows each.
func TestScreenshotsArePNG(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"home", "connect", "friends", "chat", "transfers", "diagnostics", "settings", "offer"} {
		path := "docs/screens/" + name + ".png"
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		f.Close()
		if !strings.Contains(string(readme), "("+path+")") {
			t.Errorf("the README does not show %s", path)
		}
	}
}
