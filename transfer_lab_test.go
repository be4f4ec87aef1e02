package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"p2pd/netcore/natlab"
)

// TestTransferInLab: `p2pd receive` in host B, `p2pd send` in host A,
// each behind its own NAT: a folder arrives hash for hash over a punched
// path, and over the relay where nothing direct works.
func TestTransferInLab(t *testing.T) {
	cases := []struct {
		name, want string
		nat        natlab.NAT
	}{
		{"punched", "punch", natlab.NAT{Mapping: natlab.MapEIM, Filtering: natlab.FilterAPDF}},
		{"relayed", "relay", natlab.NAT{Mapping: natlab.MapAPDM, Filtering: natlab.FilterAPDF}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := natlab.New(t, natlab.Config{A: c.nat, B: c.nat, TURN: true, MQTT: true, NTP: true})
			src, dst := t.TempDir(), t.TempDir()
			data := make([]byte, 3<<20)
			rand.Read(data)
			os.MkdirAll(filepath.Join(src, "Ordner", "日本"), 0o755)
			os.WriteFile(filepath.Join(src, "Ordner", "日本", "data.bin"), data, 0o644)
			os.WriteFile(filepath.Join(src, "Ordner", "leer.txt"), nil, 0o644)

			path, err := l.WriteNodeConfig("b-recv", l.NodeConfig())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			recv := p2pdIn(ctx, l, l.B.Host, t.TempDir(), "receive", "--yes", "--json", "--dir", dst, "--config", path)
			out, _ := recv.StdoutPipe()
			if err := recv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				recv.Process.Signal(syscall.SIGTERM)
				recv.Wait()
			}()
			lines := json.NewDecoder(bufio.NewReader(out))
			var first struct{ Address string }
			if err := lines.Decode(&first); err != nil {
				t.Fatalf("receive printed no address: %v", err)
			}

			cpath, _ := l.WriteNodeConfig("a-send", l.NodeConfig())
			send := p2pdIn(ctx, l, l.A.Host, t.TempDir(), "send", filepath.Join(src, "Ordner"), "--to", v4Only(t, first.Address), "--json", "--config", cpath)
			var sout, serr bytes.Buffer
			send.Stdout, send.Stderr = &sout, &serr
			if err := send.Run(); err != nil {
				t.Fatalf("send: %v\n%s\n%s", err, sout.String(), serr.String())
			}
			var r struct {
				Strategy string
				Sent     int64
				Seconds  float64
			}
			json.Unmarshal(sout.Bytes(), &r)
			if kindOf(r.Strategy) != c.want {
				t.Errorf("sent over %s, want %s", r.Strategy, c.want)
			}
			got, err := os.ReadFile(filepath.Join(dst, "Ordner", "日本", "data.bin"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("the file did not arrive whole: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dst, "Ordner", "leer.txt")); err != nil {
				t.Errorf("the empty file is missing: %v", err)
			}
			t.Logf("%s: %d bytes over %s in %.2f s", c.name, r.Sent, r.Strategy, r.Seconds)
		})
	}
}

// TestReceiveAsks: `p2pd receive` without --yes asks about each offer on
// its terminal: "y" typed once asked accepts, anything else declines, and
// a sender that goes away while asked ends the question, so the next line
// answers the next offer, and one typed while nothing is asked, none.
func TestReceiveAsks(t *testing.T) {
	t.Parallel()
	open := natlab.NAT{Mapping: natlab.MapNone, Filtering: natlab.FilterEIF}
	l := natlab.New(t, natlab.Config{A: open, B: open})
	src, dst := t.TempDir(), t.TempDir()
	for _, name := range []string{"yes.txt", "gone.txt", "no.txt"} {
		os.WriteFile(filepath.Join(src, name), []byte(name), 0o644)
	}
	path, err := l.WriteNodeConfig("b-ask", l.NodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recv := p2pdIn(ctx, l, l.B.Host, t.TempDir(), "receive", "--dir", dst, "--config", path)
	stdin, _ := recv.StdinPipe()
	var out syncBuffer
	recv.Stdout = &out
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		recv.Process.Signal(syscall.SIGTERM)
		recv.Wait()
	}()
	address := regexp.MustCompile(`P2PD1-[A-Z0-9-]+`).FindString(out.waitFor(t, "P2PD1-", 1))
	send := func(name string) *exec.Cmd {
		cpath, _ := l.WriteNodeConfig("a-"+name, l.NodeConfig())
		cmd := p2pdIn(ctx, l, l.A.Host, t.TempDir(), "send", filepath.Join(src, name), "--to", v4Only(t, address), "--strategies", "direct", "--config", cpath)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	yes := send("yes.txt")
	out.waitFor(t, "Accept? [y/N] ", 1)
	stdin.Write([]byte("y\n"))
	if err := yes.Wait(); err != nil {
		t.Fatalf("the accepted send failed: %v\n%s", err, out.String())
	}
	out.waitFor(t, "Saved yes.txt", 1)

	gone := send("gone.txt")
	out.waitFor(t, "Accept? [y/N] ", 2)
	gone.Process.Kill()
	gone.Wait()
	out.waitFor(t, "No longer asking: the sender went away.", 1)

	// A line typed while nothing is asked answers nothing.
	stdin.Write([]byte("y\n"))
	no := send("no.txt")
	out.waitFor(t, "Accept? [y/N] ", 3)
	stdin.Write([]byte("n\n"))
	if err := no.Wait(); err == nil {
		t.Errorf("the declined send succeeded\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dst, "gone.txt")); err == nil {
		t.Error("the offer of a sender that went away was saved")
	}
	if _, err := os.Stat(filepath.Join(dst, "no.txt")); err == nil {
		t.Error("a declined offer was saved")
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits up to 20 s for the output to hold text n times, and
// returns the output.
func (s *syncBuffer) waitFor(t *testing.T, text string, n int) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out := s.String(); strings.Count(out, text) >= n {
			return out
		}
	}
	t.Fatalf("waited 20 s for %q (%d times) in:\n%s", text, n, s.String())
	return ""
}
