package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
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
