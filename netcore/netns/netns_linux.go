// Package netns creates Linux network namespaces and runs code inside them.
// The NAT lab and the tests that need real links (veth pairs, IPv6
// link-local addresses, routes) build their hosts with it. It shells out to
// iproute2's `ip`, the tool every recipe in NATLAB.md was verified with.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Available reports why network namespaces cannot be made here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2's ip command is not installed (packaging/deps.sh test installs it)")
	}
	return nil
}

// IP runs `ip args...`; the error carries what ip printed.
func IP(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", args...)
	return err
}

// Exec runs a command inside namespace ns and returns its standard output.
func Exec(ctx context.Context, ns string, name string, args ...string) ([]byte, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Add creates namespace name with its loopback up and IPv6 duplicate address
// detection off (addresses are usable at once, not "tentative"). It refuses a
// name that already exists.
func Add(ctx context.Context, name string) error {
	if _, err := os.Stat(path(name)); err == nil {
		return fmt.Errorf("network namespace %q already exists", name)
	}
	if err := IP(ctx, "netns", "add", name); err != nil {
		return err
	}
	if err := IP(ctx, "-n", name, "link", "set", "lo", "up"); err != nil {
		return errors.Join(err, Delete(ctx, name))
	}
	if _, err := Exec(ctx, name, "sysctl", "-qw",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"); err != nil {
		return errors.Join(err, Delete(ctx, name))
	}
	return nil
}

// Delete kills every process left in namespace name and removes it.
func Delete(ctx context.Context, name string) error {
	out, _ := run(ctx, "ip", "netns", "pids", name)
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return IP(ctx, "netns", "del", name)
}

// Do runs fn on an OS thread switched into namespace name. Sockets and
// netlink queries made by fn belong to that namespace and keep it after fn
// returns; goroutines fn starts run on other threads and do not. The thread
// returns to its own namespace afterwards, or is thrown away if it cannot.
func Do(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer home.Close()
		if err := setns(path(name)); err != nil {
			errc <- fmt.Errorf("entering network namespace %q: %w", name, err)
			return
		}
		defer func() {
			// Leaving the goroutine still locked makes the runtime end the
			// thread, so a failed return cannot leak the namespace.
			if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		errc <- fn()
	}()
	return <-errc
}

func setns(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

func path(name string) string { return "/run/netns/" + name }
