//go:build !nogui

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestDisplayMissing(t *testing.T) {
	for _, tc := range []struct {
		goos    string
		env     map[string]string
		missing bool
	}{
		{"linux", nil, true},
		{"linux", map[string]string{"DISPLAY": ":0"}, false},
		{"linux", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, false},
		{"freebsd", nil, true},
		{"darwin", nil, false},
		{"windows", nil, false},
	} {
		err := displayMissing(tc.goos, func(k string) string { return tc.env[k] })
		if (err != nil) != tc.missing {
			t.Errorf("%s with %v: %v, want missing=%v", tc.goos, tc.env, err, tc.missing)
		}
	}
}

// Without a display, p2pd (no arguments) says so in one line, points at
// the headless command and exits 1: no panic, no stack trace.
func TestNoDisplay(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DISPLAY", "WAYLAND_DISPLAY", "LANG", "LC_ALL":
			continue
		}
		env = append(env, kv)
	}
	// Fyne reports a C locale it cannot parse at start-up (see the
	// README's known issues); a usual desktop locale keeps stderr to ours.
	cmd.Env = append(env, "P2PD_RUN_MAIN=1", "LANG=en_US.UTF-8", "HOME="+t.TempDir(), "P2PD_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("p2pd without a display still runs after 30 s; stderr:\n%s", &stderr)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v, want code 1", err)
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "p2pd: no display") || !strings.Contains(lines[0], "p2pd node") {
		t.Errorf("stderr is not one line saying there is no display and to use 'p2pd node':\n%s", &stderr)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout: %q", &stdout)
	}
}
