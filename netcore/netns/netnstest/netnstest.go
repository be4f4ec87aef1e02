// Package netnstest gives tests throwaway network namespaces. A test that
// cannot get one is skipped on a developer's machine and fails under CI
// (CI=true), where a skipped lab test would hide a broken lab.
package netnstest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"p2pd/netcore/netns"
)

var seq atomic.Uint32

// cleanupTimeout bounds teardown: killing processes and deleting a namespace
// takes milliseconds, so a stuck teardown is a bug worth seeing.
const cleanupTimeout = 10 * time.Second

// Require skips (or, under CI, fails) t when namespaces are unavailable.
func Require(t testing.TB) {
	t.Helper()
	if err := netns.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("lab test cannot run under CI: %v", err)
		}
		t.Skipf("skipping lab test: %v", err)
	}
}

// New creates a namespace with a name unique to this process and test run,
// and deletes it (with every process inside) when the test ends.
func New(t testing.TB, tag string) string {
	t.Helper()
	Require(t)
	name := fmt.Sprintf("p2pd-%d-%d-%s", os.Getpid(), seq.Add(1), tag)
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := netns.Add(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := netns.Delete(ctx, name); err != nil {
			t.Errorf("removing network namespace: %v", err)
		}
	})
	return name
}

// IP runs `ip args...` and fails the test on error.
func IP(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := netns.IP(ctx, args...); err != nil {
		t.Fatal(err)
	}
}

// Do runs fn inside namespace ns and fails the test on error.
func Do(t testing.TB, ns string, fn func() error) {
	t.Helper()
	if err := netns.Do(ns, fn); err != nil {
		t.Fatal(err)
	}
}

// WaitLinkLocal waits until interface dev in namespace ns has a usable
// IPv6 link-local address: the kernel adds it a few milliseconds after the
// link comes up.
func WaitLinkLocal(t testing.TB, ns, dev string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for {
		out, err := netns.Exec(ctx, ns, "ip", "-6", "addr", "show", "dev", dev, "scope", "link")
		if err != nil {
			t.Fatal(err)
		}
		if s := string(out); strings.Contains(s, "inet6 fe80:") && !strings.Contains(s, "tentative") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no link-local address on %s in %s: %s", dev, ns, out)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
