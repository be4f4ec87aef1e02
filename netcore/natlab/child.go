package natlab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// childEnv names the child function a re-executed test binary must run.
const childEnv = "NATLAB_CHILD"

// ChildFunc is code that runs inside a lab host: it gets the arguments
// given to [Lab.Run] and reports on standard output.
type ChildFunc func(args []string) error

// ChildMain must be called first in the TestMain of a package whose tests
// use [Lab.Run]. In a child process it runs the requested function and
// exits (status 1 with the error on stderr if it fails); otherwise it
// returns at once.
func ChildMain(children map[string]ChildFunc) {
	name := os.Getenv(childEnv)
	if name == "" {
		return
	}
	fn, ok := children[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "natlab: no child function %q\n", name)
		os.Exit(2)
	}
	var args []string
	for i, a := range os.Args {
		if a == "--" {
			args = os.Args[i+1:]
			break
		}
	}
	if err := fn(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Run runs the child function name in namespace ns (a copy of this test
// binary, re-executed there, so the code under test sees only that host's
// network) and returns its standard output.
func (l *Lab) Run(ctx context.Context, ns, name string, args ...string) ([]byte, error) {
	cmd := l.ChildCommand(ctx, ns, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s in %s: %w: %s", name, ns, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// ChildCommand prepares the child function name to run in namespace ns,
// for a child that runs alongside the test (Run waits for it).
func (l *Lab) ChildCommand(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	cmd := l.Command(ctx, ns, os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(cmd.Env, childEnv+"="+name)
	return cmd
}

// Command prepares a command to run inside namespace ns, with this
// process's environment (add to cmd.Env).
func (l *Lab) Command(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = os.Environ()
	return cmd
}
